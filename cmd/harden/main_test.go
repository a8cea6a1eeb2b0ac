package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/testutil/need"
)

func harden(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// machine is a temp root with an Ubuntu 26.04 os-release and a fresh image stamp, so the
// os step has nothing to report.
func machine(t *testing.T) string {
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/os-release"), "ID=ubuntu\nVERSION_ID=\"26.04\"\n", 0o644)
	return root
}

func write(t *testing.T, path, content string, perm os.FileMode) {
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), perm))
	require.NoError(t, os.Chmod(path, perm))
}

func requireRoot(t *testing.T) {
	need.Root(t, "policy files must be owned by root")
}

func TestVersionHelpAndUnknown(t *testing.T) {
	code, out, _ := harden(t, "version")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "harden dev")
	code, out, _ = harden(t, "--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "harden dev (commit unknown)\n", out)
	code, out, _ = harden(t, "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "apply            bring the machine to the policy")
	code, out, errs := harden(t, "frobnicate")
	assert.Equal(t, 2, code, "a usage error")
	assert.Empty(t, out)
	assert.Contains(t, errs, `unknown command "frobnicate"`)
}

func TestPolicyValidateNamesFileLineAndField(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "version: 1\nfirewall:\n  allow:\n    - name: web\n      proto: tcp\n      port: 99999\n      from: public\n      why: x\n", 0o600)
	code, _, errs := harden(t, "policy", "validate", bad, "--content-only")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, bad+":6:13")
	assert.Contains(t, errs, "firewall.allow[0].port")

	good := filepath.Join(dir, "good.yaml")
	write(t, good, "version: 1\n", 0o644)
	code, out, _ := harden(t, "policy", "validate", "--content-only", good)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "good.yaml: ok")
}

func TestPolicyValidateRefusesWritableFile(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	p := filepath.Join(dir, "policy.yaml")
	write(t, p, "version: 1\n", 0o664)
	code, _, errs := harden(t, "policy", "validate", p)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "writable")
	require.NoError(t, os.Chmod(p, 0o644))
	code, _, _ = harden(t, "policy", "validate", p)
	assert.Equal(t, 0, code)
}

func TestPolicyShowAndDoc(t *testing.T) {
	code, out, _ := harden(t, "policy", "show")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "exposure: private")
	code, out, _ = harden(t, "policy", "doc")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "| ssh |")
}

func TestApplyDryRunJSON(t *testing.T) {
	root := machine(t)
	code, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--only", "os", "--output", "json", "--detailed-exitcode")
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
	assert.True(t, rep.DryRun)
	assert.Equal(t, "embedded:policy.yaml", rep.Policy)
	assert.Len(t, rep.RunID, 32)
	require.Equal(t, "os", rep.Steps[0].Name)
	// Only the image stamp is missing: a warning, below the default fail_on (critical).
	assert.Equal(t, "os.image-stamp-missing", rep.Steps[0].Findings[0].ID)
	assert.Equal(t, 0, code)
	_, err := os.Stat(filepath.Join(root, "var/lib/harden/last-run.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a dry-run by hand writes no report")
}

func TestDryRunChangesNothingUnderTheRoot(t *testing.T) {
	root := machine(t)
	before := enginetest.TreeDigest(t, root)
	code, out, _ := harden(t, "apply", "--dry-run", "--root", root, "--only", "os")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "harden apply --dry-run")
	// The lock file is the one thing a dry-run may create (under /run).
	require.NoError(t, os.RemoveAll(filepath.Join(root, "run")))
	assert.Equal(t, before, enginetest.TreeDigest(t, root))
}

func TestApplyFailsClosedOnABrokenPolicy(t *testing.T) {
	requireRoot(t)
	root := machine(t)
	write(t, filepath.Join(root, "etc/harden/policy.yaml"), "version: 1\nfirewall:\n  exposure: wide-open\n", 0o600)
	// Fail-closed applies the firewall: never in this machine's own network namespace.
	code, out, errs := harden(t, "apply", "--root", root, "--output", "json", "--netns", netns(t))
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "failing closed")
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.True(t, rep.FailClosed)
	assert.Contains(t, rep.PolicyError, "policy.yaml:3:13")
	for _, s := range rep.Steps {
		if s.Name != engine.FailClosedStep {
			assert.Equal(t, engine.StatusSkipped, s.Status, s.Name)
		}
	}
	// A real apply records its report and metrics for the fleet.
	saved, err := os.ReadFile(filepath.Join(root, "var/lib/harden/last-run.json"))
	require.NoError(t, err)
	assert.Contains(t, string(saved), `"fail_closed": true`)
	_, err = os.Stat(filepath.Join(root, "var/lib/prometheus/node-exporter/harden.prom"))
	assert.NoError(t, err)
}

// netns makes a network namespace for the test and removes it afterwards.
func netns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("harden-cmd-%d", os.Getpid())
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return name
}

func TestApplyWaitsForTheLock(t *testing.T) {
	root := machine(t)
	held, err := engine.Acquire(context.Background(), filepath.Join(root, engine.DefaultLockPath), true, 0)
	require.NoError(t, err)
	defer held.Release()
	code, _, errs := harden(t, "apply", "--root", root, "--only", "os", "--lock-wait", "100ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "another harden run holds")
}

func TestApplyRejectsUnknownStep(t *testing.T) {
	code, _, errs := harden(t, "apply", "--dry-run", "--root", machine(t), "--only", "nosuch")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, `unknown step "nosuch"`)
}

func TestRecordedDryRunRaisesADriftAlert(t *testing.T) {
	requireRoot(t)
	root := machine(t)
	spoolDir := t.TempDir()
	policyFile := func(extra string) string {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		write(t, p, "version: 1\nalerts:\n  spool: {dir: "+spoolDir+", max_alerts: 100}\n"+extra, 0o600)
		require.NoError(t, os.Chmod(filepath.Dir(p), 0o755))
		return p
	}
	const driftID = "8da6ef1676d0474699aa25edf036a32d"

	// On policy (only a missing image stamp, a warning): no alert.
	code, _, errs := harden(t, "apply", "--dry-run", "--record", "--root", root, "--only", "os", "--policy", policyFile(""))
	require.Equal(t, 0, code, errs)
	assert.NotContains(t, errs, driftID)

	// Off policy (the machine is Ubuntu, the policy wants Debian): the drift alert, through
	// the journal sink (JSON lines on stderr without journald).
	code, _, errs = harden(t, "apply", "--dry-run", "--record", "--root", root, "--only", "os",
		"--policy", policyFile("os: {id: debian, min_version: \"12\"}\n"))
	require.Equal(t, 1, code, errs)
	assert.Contains(t, errs, driftID)
	assert.Contains(t, errs, "drift: 0 change(s) pending, status failed, steps: os")

	// A hand-run dry-run (no --record) never alerts.
	_, _, errs = harden(t, "apply", "--dry-run", "--root", root, "--only", "os",
		"--policy", policyFile("os: {id: debian, min_version: \"12\"}\n"))
	assert.NotContains(t, errs, driftID)
}

// Under --root other than / harden works on a tree: this machine's firewall and units are
// not its business. Dry-run, so a regression shows as a planned change, never a real one.
func TestOfflineRootLeavesThisMachineAlone(t *testing.T) {
	root := machine(t)
	code, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--only", "firewall,services", "--output", "json", "--detailed-exitcode")
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
	ids := map[string]string{}
	for _, s := range rep.Steps {
		assert.Empty(t, s.Changes, "step %s plans changes to this machine", s.Name)
		for _, f := range s.Findings {
			ids[f.ID] = s.Name
		}
	}
	assert.Equal(t, "firewall", ids["firewall.offline"])
	assert.Equal(t, "services", ids["services.no-systemd"])
	assert.Equal(t, 0, code)
}

// The lockout rules reach the command line: a policy that moves sshd to a port the firewall
// keeps closed, or that closes SSH from the private network without saying so, is refused
// with both fields placed in the file.
func TestPolicyValidateRefusesUnreachableSSH(t *testing.T) {
	dir := t.TempDir()
	port := filepath.Join(dir, "port.yaml")
	write(t, port, "version: 1\nsshd:\n  settings:\n    Port: \"2222\"\n", 0o644)
	code, _, errs := harden(t, "policy", "validate", "--content-only", port)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, port+":4:11: sshd.settings.Port: sshd would listen on tcp/2222")
	assert.Contains(t, errs, "no rule of firewall.allow (embedded:policy.yaml:")

	closed := filepath.Join(dir, "closed.yaml")
	write(t, closed, "version: 1\nfirewall:\n  allow: []\n", 0o644)
	code, _, errs = harden(t, "policy", "validate", "--content-only", closed)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, closed+":3:10: firewall.allow: no rule lets anyone reach sshd on tcp/22")
	assert.Contains(t, errs, closed+":3:10: firewall.allow: a private machine must keep tcp/22 open")

	write(t, closed, "version: 1\nfirewall:\n  close_private_ssh: true\n  allow:\n    - {name: ssh, proto: tcp, port: 22, from: [fdaa:0:1::/48], why: one team only}\n", 0o644)
	code, out, errs := harden(t, "policy", "validate", "--content-only", closed)
	assert.Equal(t, 0, code, errs)
	assert.Contains(t, out, "closed.yaml: ok")
}
