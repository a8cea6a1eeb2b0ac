package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// mutating are the system calls that create, remove, rename or change files. A dry-run must
// make none of them (an open for writing or with O_CREAT counts too).
const mutating = "open,openat,openat2,creat,mkdir,mkdirat,symlink,symlinkat,link,linkat,mknod,mknodat," +
	"rename,renameat,renameat2,unlink,unlinkat,rmdir,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown," +
	"truncate,ftruncate,utimensat"

// readOnlyNS runs a command in a mount namespace of its own where every mount is read-only
// (so even a bug cannot change this machine) but outDir, under strace following every thread
// and child, and returns the trace.
const readOnlyNS = `set -e
out=$1; shift
mount --make-rprivate /
mount --bind "$out" "$out"
awk '{print $2}' /proc/self/mounts | sort -u | while read -r m; do
	m=$(printf '%b' "$m")
	[ "$m" = "$out" ] && continue
	mount -o remount,bind,ro "$m" 2>/dev/null || true
done
touch /harden-ro-check 2>/dev/null && { echo "the namespace is not read-only" >&2; exit 99; }
exec strace -f -qq -o "$out/trace" -e trace=` + mutating + ` "$@"
`

var (
	writeOpen = regexp.MustCompile(`O_CREAT|O_WRONLY|O_RDWR|O_TRUNC`)
	openCall  = regexp.MustCompile(`^\d+\s+(open|openat|openat2|creat)\(`)
)

// changesIn returns the trace lines that change files. Opening /dev/null for writing (os/exec
// does it for a child's unused stdout) changes nothing.
func changesIn(trace string) []string {
	var out []string
	for _, line := range strings.Split(trace, "\n") {
		// A call strace saw start and end apart is judged by its first line, which has the
		// arguments; the "resumed" line has only the result.
		if line == "" || strings.Contains(line, "+++ exited") || strings.Contains(line, "--- SIG") ||
			strings.Contains(line, " resumed>") {
			continue
		}
		if openCall.MatchString(line) {
			if !writeOpen.MatchString(line) || strings.Contains(line, `"/dev/null"`) {
				continue
			}
		}
		out = append(out, line)
	}
	return out
}

// dryRunTraced runs `harden apply --dry-run args...` (this test binary as harden) in a
// read-only mount namespace under strace and returns its report and every change it tried.
func dryRunTraced(t *testing.T, args ...string) (*engine.Report, []string) {
	t.Helper()
	need.Root(t, "a mount namespace and strace")
	need.Tool(t, "strace", "unshare")
	exe, err := os.Executable()
	require.NoError(t, err)
	outDir := t.TempDir()
	cmd := exec.Command("unshare", append([]string{"--mount", "--", "sh", "-c", readOnlyNS, "sh", outDir, exe,
		"apply", "--dry-run", "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "HARDEN_REFUSE_HOST_NETNS=1", "HARDEN_REFUSE_AUDIT_LOCK=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 {
		t.Fatalf("could not make the namespace read-only: %s", stderr.String())
	}
	trace, rerr := os.ReadFile(filepath.Join(outDir, "trace"))
	require.NoError(t, rerr, "no trace (%v): %s", err, stderr.String())
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &rep), "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	require.Len(t, rep.Steps, len(buildSteps(stepOptions{})), "every step ran")
	for _, s := range rep.Steps {
		assert.NotContains(t, s.Error, "read-only file system", "step %s tried to write", s.Name)
	}
	return &rep, changesIn(string(trace))
}

// imageTree is a temp root with this machine's /etc, dpkg database and os-release: every
// step has real files to plan against (and plans plenty of changes).
func imageTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, src := range []string{"/etc", "/var/lib/dpkg/status", "/usr/lib/os-release"} {
		dst := filepath.Join(root, src)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	return root
}

// A dry-run of every step creates, removes and changes nothing, on an image tree: not the
// lock, not a state file, not a directory.
func TestDryRunCreatesNothingInATree(t *testing.T) {
	root := imageTree(t)
	rep, changes := dryRunTraced(t, "--root", root)
	assert.Positive(t, rep.ChangeCount(), "the tree is far from the policy: the dry-run plans changes")
	assert.Empty(t, changes, "a dry-run changed files")
}

// The same on this machine (root /), seen read-only: whatever a dry-run plans, it changes
// nothing anywhere.
func TestDryRunCreatesNothingOnThisMachine(t *testing.T) {
	_, changes := dryRunTraced(t)
	assert.Empty(t, changes, "a dry-run changed files")
}

// An apply into an image tree writes the machine's paths into the files it writes, never
// the build host's path to the tree (the report included: it is written into the tree, and
// sshd's Include line). packages and freshclam run dpkg and freshclam: left out.
func TestApplyIntoATreeWritesNoBuildHostPaths(t *testing.T) {
	requireRoot(t)
	root := imageTree(t)
	before := map[string]string{}
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			before[p] = fi.ModTime().String() + fi.Mode().String()
		}
		return err
	}))
	_, _, errs := harden(t, "apply", "--root", root, "--only", "os,firewall,kernel,sshd,accounts,audit,clamav,services")
	var written []string
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || before[p] == fi.ModTime().String()+fi.Mode().String() {
			return err
		}
		written = append(written, p)
		b, err := os.ReadFile(p)
		if err == nil {
			if i := strings.Index(string(b), root); i >= 0 {
				t.Errorf("%s holds the build host's path to the tree: ...%s...", strings.TrimPrefix(p, root),
					string(b[max(0, i-80):min(len(b), i+len(root)+40)]))
			}
		}
		return err
	}))
	assert.Greater(t, len(written), 5, "the apply wrote files: %v\n%s", written, errs)
	assert.Contains(t, written, filepath.Join(root, "var/lib/harden/last-run.json"))
}
