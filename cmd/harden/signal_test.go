package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// runMainEnv makes the test binary run harden's main (TestMain, in cli_test.go), so a test
// can send a real signal to a real harden process, or trace one.
const runMainEnv = "HARDEN_TEST_RUN_MAIN"

// hardenProcess starts harden (this test binary running main) with args.
func hardenProcess(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out, &errb
}

// dpkgTree is an image tree with a dpkg database holding telnet, whose prerm takes a while
// (the moment a signal arrives) and marks its start and its end. dpkg runs maintainer
// scripts chrooted in the tree: busybox is its /bin/sh.
func dpkgTree(t *testing.T) string {
	need.Tool(t, "dpkg")
	busybox := need.Tool(t, "busybox")
	root := machine(t)
	w := func(name, content string, perm os.FileMode) { write(t, filepath.Join(root, name), content, perm) }
	w("var/lib/dpkg/status", "Package: telnet\nStatus: install ok installed\nArchitecture: all\nVersion: 0.17+2.4-2\n"+
		"Maintainer: x <x@example.org>\nDescription: d\n", 0o644)
	w("var/lib/dpkg/available", "", 0o644)
	w("var/lib/dpkg/info/telnet.list", "/.\n/usr\n/usr/bin\n/usr/bin/telnet-fixture\n", 0o644)
	w("var/lib/dpkg/info/telnet.prerm", "#!/bin/sh\n/bin/busybox touch /prerm-started\n/bin/busybox sleep 2\n"+
		"/bin/busybox touch /prerm-finished\n", 0o755)
	w("usr/bin/telnet-fixture", "x", 0o755)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var/lib/dpkg/updates"), 0o755))
	bb, err := os.ReadFile(busybox)
	require.NoError(t, err)
	w("bin/busybox", string(bb), 0o755)
	require.NoError(t, os.Symlink("busybox", filepath.Join(root, "bin/sh")))
	return root
}

// SIGTERM while dpkg purges: harden lets dpkg finish (the package is purged whole, its prerm
// ran to its end, the database has no half-removed package), then stops before the next step.
// Before, the run's cancellation reached the command runner, which SIGKILLed dpkg's process
// group in the middle of the purge.
func TestSIGTERMDuringPurgeLetsDpkgFinish(t *testing.T) {
	need.Root(t, "dpkg --root and its chroot for maintainer scripts")
	root := dpkgTree(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, pol, "version: 1\npackages: {remove: [telnet], timeout: 60s}\n", 0o600)
	require.NoError(t, os.Chmod(filepath.Dir(pol), 0o755))

	cmd, out, errb := hardenProcess(t, "apply", "--root", root, "--policy", pol, "--only", "packages,clamav", "--output", "json")
	require.Eventually(t, func() bool { _, err := os.Stat(filepath.Join(root, "prerm-started")); return err == nil },
		20*time.Second, 10*time.Millisecond, "dpkg's prerm never started: %s", errb)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}

	_, err = os.Stat(filepath.Join(root, "prerm-finished"))
	assert.NoError(t, err, "dpkg's prerm was killed half-way: %s", errb)
	status, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	require.NoError(t, err)
	assert.NotContains(t, string(status), "half-", "dpkg left a half-done package")
	assert.True(t, !strings.Contains(string(status), "Package: telnet") || strings.Contains(string(status), "Status: purge ok not-installed"),
		"telnet is not purged:\n%s", status)
	_, err = os.Stat(filepath.Join(root, "usr/bin/telnet-fixture"))
	assert.True(t, os.IsNotExist(err), "telnet's files are still there")

	var rep engine.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "stdout: %s\nstderr: %s", out, errb)
	got := map[string]string{}
	for _, s := range rep.Steps {
		got[s.Name] = s.Status
	}
	assert.Equal(t, engine.StatusChanged, got["packages"], "the purge that was running is done and recorded")
	assert.Equal(t, engine.StatusCancelled, got["clamav"], "the run stopped before the next step")
	assert.Equal(t, 1, code, "a cancelled run fails")
}

// At the purge's own deadline (packages.timeout) dpkg and its maintainer script get SIGTERM
// first, and a grace period, not SIGKILL.
func TestPurgeDeadlineSendsSIGTERMFirst(t *testing.T) {
	need.Root(t, "dpkg --root and its chroot for maintainer scripts")
	root := dpkgTree(t)
	write(t, filepath.Join(root, "var/lib/dpkg/info/telnet.prerm"),
		"#!/bin/sh\ntrap '/bin/busybox touch /prerm-got-term; exit 1' TERM\n/bin/busybox touch /prerm-started\n"+
			"/bin/busybox sleep 30\n", 0o755)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, pol, "version: 1\npackages: {remove: [telnet], timeout: 1s}\n", 0o600)
	require.NoError(t, os.Chmod(filepath.Dir(pol), 0o755))

	start := time.Now()
	code, out, errs := harden(t, "apply", "--root", root, "--policy", pol, "--only", "packages", "--output", "json")
	assert.Equal(t, 1, code)
	assert.Less(t, time.Since(start), 20*time.Second)
	_, err := os.Stat(filepath.Join(root, "prerm-got-term"))
	assert.NoError(t, err, "the maintainer script never saw SIGTERM: %s", errs)
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
	for _, s := range rep.Steps {
		if s.Name == "packages" {
			assert.Contains(t, s.Error, "stopped (SIGTERM)")
		}
	}
}
