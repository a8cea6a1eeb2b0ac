package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/steps/clamav"
)

// freshclamTree is a machine with ClamAV's settings, an old daily database, and a fake
// freshclam on PATH that fails its first failures runs and then installs a fresh daily.cld
// (as the real one does, into --datadir). Each run is counted.
func freshclamTree(t *testing.T, failures int) (root, policyFile, counter string) {
	t.Helper()
	requireRoot(t)
	root = machine(t)
	write(t, filepath.Join(root, clamav.FreshclamConf), "DatabaseDirectory /var/lib/clamav\nDatabaseMirror database.clamav.net\n", 0o444)
	write(t, filepath.Join(root, clamav.DefaultDBDir, "daily.cld"), string(clamav.SyntheticHeader(time.Now().Add(-10*24*time.Hour), 27000, 10))+"x", 0o644)
	fresh := filepath.Join(t.TempDir(), "daily.cld")
	write(t, fresh, string(clamav.SyntheticHeader(time.Now().Add(-time.Hour), 27400, 10))+"x", 0o644)
	bin := t.TempDir()
	counter = filepath.Join(bin, "runs")
	write(t, filepath.Join(bin, "freshclam"), `#!/bin/sh
echo run >> `+counter+`
[ "$(wc -l < `+counter+`)" -le `+strconv.Itoa(failures)+` ] && { echo "ERROR: Can't connect to port 443 of host database.clamav.net" >&2; exit 11; }
for a in "$@"; do case "$a" in --datadir=*) cp `+fresh+` "${a#--datadir=}/daily.cld";; esac; done
`, 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	policyFile = filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policyFile, "version: 1\nclamav: {freshclam: {timeout: 10s}}\n", 0o600)
	require.NoError(t, os.Chmod(filepath.Dir(policyFile), 0o755))
	return root, policyFile, counter
}

func runs(t *testing.T, counter string) int {
	b, err := os.ReadFile(counter)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "run")
}

// harden freshclam (harden-freshclam.service) retries a failed update within the boot after
// the back-off, stops once the update succeeded, and runs the services step with it.
func TestFreshclamCommandRetriesThenStops(t *testing.T) {
	root, pol, counter := freshclamTree(t, 2)
	start := time.Now()
	code, out, errs := harden(t, "freshclam", "--root", root, "--policy", pol, "--first-retry", "200ms", "--for", "1m")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errs)
	assert.Equal(t, 3, runs(t, counter), "two failures, then success, then nothing more")
	assert.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "waited 200ms, then 400ms")
	assert.Contains(t, errs, "harden freshclam: retrying at ")
	assert.Contains(t, out, "freshclam: changed")
	assert.Contains(t, out, "services: ", "the services step runs with it (starts clamd once there are signatures)")

	// Done for this boot: a second start does nothing.
	code, _, _ = harden(t, "freshclam", "--root", root, "--policy", pol, "--first-retry", "200ms")
	assert.Equal(t, 0, code)
	assert.Equal(t, 3, runs(t, counter))
}

// Past --for it gives up for this boot, after one attempt, and says so.
func TestFreshclamCommandGivesUpAfterItsWindow(t *testing.T) {
	root, pol, counter := freshclamTree(t, 9)
	_, out, errs := harden(t, "freshclam", "--root", root, "--policy", pol, "--for", "0s")
	assert.Equal(t, 1, runs(t, counter))
	assert.Contains(t, errs, "giving up for this boot")
	assert.Contains(t, out, "refused: freshclam exit status 11")
}

// harden freshclam's download holds only its own lock: it starts while another run holds
// the run lock; while it runs, a person's dry-run does not wait for it (it reports the
// download and who makes it) and a person's apply does not start a second one; the services
// step after it takes the run lock.
func TestFreshclamDownloadHoldsOnlyItsOwnLock(t *testing.T) {
	root, pol, counter := freshclamTree(t, 0)
	gate, started := gateFreshclam(t, counter)

	runLock, err := engine.AcquireIn(context.Background(), fsroot.New(root), engine.DefaultLockPath, true, 0)
	require.NoError(t, err)
	done := startFreshclam(t, root, pol)
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 10*time.Second, 20*time.Millisecond,
		"the download must start while another run holds the run lock")
	require.NoError(t, runLock.Release())

	start := time.Now()
	code, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--policy", pol, "--only", "freshclam", "--lock-wait", "2s")
	assert.Equal(t, 0, code, errs)
	assert.Less(t, time.Since(start), 2*time.Second, "a dry-run does not wait for the download")
	assert.Contains(t, out, "a signature update is running in another run (")

	code, out, errs = harden(t, "apply", "--root", root, "--policy", pol, "--only", "freshclam", "--lock-wait", "2s")
	assert.Equal(t, 0, code, errs)
	assert.Contains(t, out, "a signature update is running in another run (", "no second download beside the first")
	assert.Equal(t, 1, runs(t, started), "one freshclam started")

	write(t, gate, "", 0o644)
	r := await(t, done)
	assert.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.out, r.err)
	assert.Contains(t, r.out, "freshclam: changed")
	assert.Contains(t, r.out, "services: ", "the services step runs after the download")
	assert.Equal(t, 1, runs(t, counter))
}

// cmdResult is what a harden command run in the background returned.
type cmdResult struct {
	code     int
	out, err string
}

// startFreshclam runs harden freshclam on root in the background.
func startFreshclam(t *testing.T, root, pol string) <-chan cmdResult {
	done := make(chan cmdResult, 1)
	go func() {
		code, out, errs := harden(t, "freshclam", "--root", root, "--policy", pol, "--lock-wait", "30s")
		done <- cmdResult{code, out, errs}
	}()
	return done
}

// await waits, at most 30 s, for a background command's result.
func await(t *testing.T, done <-chan cmdResult) cmdResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("harden freshclam did not finish within 30 s")
		return cmdResult{}
	}
}

// gateFreshclam puts the fake freshclam of freshclamTree behind a gate: it counts its
// starts in the returned file, then waits (at most 20 s) for the gate file to exist.
func gateFreshclam(t *testing.T, counter string) (gate, started string) {
	t.Helper()
	gate, started = filepath.Join(t.TempDir(), "gate"), filepath.Join(t.TempDir(), "started")
	bin := filepath.Dir(counter)
	fake, err := os.ReadFile(filepath.Join(bin, "freshclam"))
	require.NoError(t, err)
	write(t, filepath.Join(bin, "freshclam"), strings.Replace(string(fake), "#!/bin/sh\n",
		"#!/bin/sh\necho run >> "+started+"\nfor i in $(seq 200); do [ -e "+gate+" ] && break; sleep 0.1; done\n", 1), 0o755)
	return gate, started
}

// harden freshclam started while a person's apply downloads waits for that download, and
// then does not ask the CDN a second time: that run's attempt is this boot's.
func TestFreshclamWaitsForAnotherRunsDownload(t *testing.T) {
	root, pol, counter := freshclamTree(t, 0)
	gate, started := gateFreshclam(t, counter)
	byHand := make(chan int, 1)
	go func() {
		code, _, _ := harden(t, "apply", "--root", root, "--policy", pol, "--only", "freshclam")
		byHand <- code
	}()
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, 10*time.Second, 20*time.Millisecond)

	done := startFreshclam(t, root, pol)
	time.Sleep(700 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("harden freshclam did not wait for the running download: %+v", r)
	default:
	}
	write(t, gate, "", 0o644)
	assert.Equal(t, 0, <-byHand)
	r := await(t, done)
	assert.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.out, r.err)
	assert.Contains(t, r.err, "harden freshclam: waiting for another run's signature download (")
	assert.Contains(t, r.out, "freshclam: ok", "nothing left to do after the other run's update")
	assert.Equal(t, 1, runs(t, started), "one request to the CDN this boot")
	assert.Equal(t, 1, runs(t, counter))
}

// harden.service's run leaves out what SSH must not wait for.
func TestSkipLeavesStepsOut(t *testing.T) {
	root := machine(t)
	_, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--skip", "packages,freshclam", "--output", "json")
	require.NotEmpty(t, out, errs)
	assert.Contains(t, out, `"name": "packages",`+"\n      \"status\": \"skipped\"")
	assert.Contains(t, out, `"name": "freshclam",`+"\n      \"status\": \"skipped\"")
	code, _, errs := harden(t, "apply", "--dry-run", "--root", root, "--skip", "nosuch")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, `--skip: unknown step "nosuch"`)
}

// A rule naming a user this machine does not have is the audit step's finding for that rule:
// the policy loads, nothing fails closed, and `policy validate` says ok.
func TestMachineFactsDoNotFailThePolicy(t *testing.T) {
	requireRoot(t)
	root := machine(t)
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, pol, "version: 1\naudit:\n  rules:\n    - \"-a always,exit -F arch=b64 -S execve -F auid=deploy -k deploy_exec\"\n", 0o600)
	require.NoError(t, os.Chmod(filepath.Dir(pol), 0o755))

	code, out, errs := harden(t, "policy", "validate", pol)
	assert.Equal(t, 0, code, errs)
	assert.Contains(t, out, ": ok")

	_, out, errs = harden(t, "apply", "--dry-run", "--root", root, "--policy", pol, "--only", "audit", "--output", "json")
	assert.NotContains(t, errs, "failing closed")
	assert.Contains(t, out, `"fail_closed": false`)
	assert.Contains(t, out, `"id": "audit.rule-skipped"`)
	assert.Contains(t, out, `unknown user \"deploy\"`)
}

// Every harden command line in the units harden install writes parses: a flag value the
// command does not take fails a boot unit, not this test suite, otherwise ("30min" is not
// a Go duration). --help stops each command after its flags are parsed: a usage error
// exits 2 instead of 0.
func TestUnitCommandLinesParse(t *testing.T) {
	units, err := install.Units()
	require.NoError(t, err)
	n := 0
	for _, u := range units {
		for _, line := range strings.Split(string(u.Data), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || !strings.HasPrefix(k, "Exec") {
				continue
			}
			f := strings.Fields(v)
			if len(f) < 2 || f[0] != install.Binary {
				continue
			}
			n++
			code, _, errs := harden(t, append(f[1:], "--help")...)
			assert.Equal(t, 0, code, "%s: %s: %s", u.Name, v, errs)
		}
	}
	assert.GreaterOrEqual(t, n, 7, "every unit's harden command line was tried")
}
