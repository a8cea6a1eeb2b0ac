package audit

// Tests against the host kernel and the real auditctl/augenrules. They take the shared host
// audit lock, which snapshots the host's rules and status and restores them afterwards. The
// policy here never sets immutable, and the hostaudit connection refuses enabled 2 and
// failure panic anyway.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func needTool(t testing.TB, tools ...string) {
	t.Helper()
	need.Tool(t, tools...)
}

// kernelPolicy is the baseline plus rules of every list, never immutable.
func kernelPolicy() *policy.Policy {
	p := testPolicy(false,
		"-a always,exit -F arch=b64 -S openat,open_by_handle_at -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access",
		"-A always,exit -F arch=b64 -S ptrace -F key=tracing",
		"-a never,exclude -F msgtype=CWD",
		"-a always,user -F uid=0",
	)
	p.Audit.RateLimit = 0
	p.Audit.BacklogWaitTime = 60000
	return p
}

func kernelStep(conn *auditnl.Conn) *Step { return New(conn) } // real os.Stat: the kernel's view

func auditctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("auditctl", args...).CombinedOutput()
	require.NoError(t, err, "auditctl %v: %s", args, out)
	return strings.TrimRight(string(out), "\n")
}

func rawRules(t testing.TB, conn *auditnl.Conn) []string {
	t.Helper()
	raw, err := conn.ListRulesRaw(context.Background())
	require.NoError(t, err)
	out := make([]string, len(raw))
	for i, b := range raw {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

func wantedRules(t testing.TB, p *policy.Policy) ([]string, []string) {
	t.Helper()
	d, err := wantState(p.Audit, os.Stat)
	require.NoError(t, err)
	var texts, bytes []string
	for _, w := range d.rules {
		texts = append(texts, w.rule.String())
		b, err := w.rule.Marshal()
		require.NoError(t, err)
		bytes = append(bytes, hex.EncodeToString(b))
	}
	return texts, bytes
}

// Apply loads exactly the wanted list, `auditctl -l` prints it as our formatter does, the
// status is the policy's, and a second run changes nothing.
func TestKernelApplyMatchesAuditctlAndConverges(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	// A stray rule and a rule the policy wants, loaded by auditctl beforehand.
	require.NoError(t, conn.DeleteAllRules(ctx))
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "chmod", "-k", "stray")
	auditctl(t, "-w", "/etc/passwd", "-p", "wa", "-k", "identity")

	p := kernelPolicy()
	env := enginetest.Env(t, p, nil)
	rep := enginetest.Converges(t, env, kernelStep(conn))
	assert.Contains(t, changeObjects(rep.Steps[0].Changes), "audit rule -a always,exit -F arch=b64 -S chmod -F key=stray")

	texts, wantBytes := wantedRules(t, p)
	assert.Equal(t, strings.Join(texts, "\n"), auditctl(t, "-l"), "auditctl -l vs our formatter")
	assert.Equal(t, wantBytes, rawRules(t, conn), "kernel bytes vs our encoder")
	st := auditctl(t, "-s")
	for _, want := range []string{"enabled 1", "failure 1", "backlog_limit 8192", "rate_limit 0", "backlog_wait_time 60000"} {
		assert.Contains(t, st, want)
	}
}

// auditctl -R of the file the step writes loads the same bytes the step loads.
func TestKernelAuditctlLoadsTheSameRulesFromHardenRules(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	p := kernelPolicy()
	env := enginetest.Env(t, p, nil)
	enginetest.Converges(t, env, kernelStep(conn))
	ours := rawRules(t, conn)

	// harden.rules ends in -e 1 and holds -D: auditctl replaces everything.
	auditctl(t, "-R", env.Root.Path(RulesFile))
	assert.Equal(t, ours, rawRules(t, conn))
}

// After apply, what augenrules builds from the step's rules.d (a private mount namespace
// puts the test root's /etc/audit in place of the host's) is the step's audit.rules
// (`augenrules --check`: no change), and `auditctl -D; augenrules --load` yields the same
// kernel list and status. That is the boot of auditd 4 (Ubuntu 26.04): audit-rules.service
// loads the files before harden.service runs, and harden then has nothing left to change.
func TestKernelAugenrulesLoadsTheSameList(t *testing.T) {
	needTool(t, "auditctl", "augenrules", "unshare", "mount")
	conn := hostaudit.Lock(t)
	p := kernelPolicy()
	env := enginetest.Env(t, p, nil)
	enginetest.WriteFile(t, env, RulesDir+"/audit.rules", "-D\n-b 320\n-a always,exit -F arch=b64 -S chown -k moved-away\n")
	enginetest.Converges(t, env, kernelStep(conn))
	ours := rawRules(t, conn)

	etcAudit := env.Root.Path("/etc/audit")
	script := `set -e
mount --bind "$1" /etc/audit
augenrules --check
auditctl -D >/dev/null
auditctl -b 320 -f 0 -r 5 --backlog_wait_time 1000 >/dev/null
augenrules --load >/dev/null
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", etcAudit)
	out, err := cmd.CombinedOutput()
	if err != nil && bytes.Contains(out, []byte("unshare failed")) {
		need.Missing(t, "mount namespaces (unshare --mount): %s", out)
	}
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "No change", "augenrules would build the audit.rules the step wrote")
	assert.Equal(t, ours, rawRules(t, conn), "augenrules --load yields the step's kernel list")
	p2, err := kernelStep(conn).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, p2.Changes, "after augenrules --load, harden has nothing to change")
}

// Dry-run touches neither the kernel's rules and status nor the root tree.
func TestKernelDryRunChangesNothing(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	require.NoError(t, conn.DeleteAllRules(context.Background()))
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "chmod", "-k", "stray")
	env := enginetest.Env(t, kernelPolicy(), nil)
	enginetest.WriteFile(t, env, RulesDir+"/audit.rules", "-D\n")
	enginetest.DryRunChangesNothing(t, env, kernelStep(conn), func() string {
		return enginetest.TreeDigest(t, env.Root.Dir()) + "\n" + strings.Join(rawRules(t, conn), "\n") + "\n" + auditctl(t, "-s")
	})
}

// A policy rule the kernel refuses fails the step with the kernel's reason, naming the rule.
func TestKernelRefusedRuleNamesTheRule(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "file")
	p := testPolicy(false, "-a always,exit -F path="+missing+" -F perm=wa -k x")
	p.Audit.Baseline = false
	env := enginetest.Env(t, p, nil)
	rep, _ := enginetest.Run(t, env, false, kernelStep(conn))
	require.Equal(t, "failed", rep.Steps[0].Status)
	assert.Contains(t, rep.Steps[0].Error, missing)
	assert.Contains(t, rep.Steps[0].Error, "parent directory does not exist")
	assert.NoFileExists(t, env.Root.Path(RulesFile), "files come after the rules: nothing half-written")
}

func changeObjects[T interface{ String() string }](cs []T) []string {
	var out []string
	for _, c := range cs {
		s := c.String()
		if i := strings.Index(s, ": "); i >= 0 {
			s = s[:i]
		}
		out = append(out, strings.TrimPrefix(strings.TrimPrefix(s, "delete "), "create "))
	}
	return out
}

// The policy's rules as written, loaded by `auditctl -R`, give the kernel list the step
// loads from them (-w, -A, exclude and user lists, -C, errno names, user names).
func TestKernelStepLoadsWhatAuditctlLoadsForTheSameLines(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	lines := []string{
		"-w /etc/passwd -p wa -k identity",
		"-w /etc/ssh/ -p wa -k sshd_config",
		"-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -k priv_esc",
		"-a exit,always -F arch=b32 -S chown,fchown,lchown32 -F auid>=1000 -F auid!=unset -k perm",
		"-a always,exit -F arch=b64 -S openat -F exit=-EACCES -F uid=root -k access",
		"-A always,exit -F arch=b64 -S ptrace -k tracing",
		"-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k priv_cmd",
		"-a never,exclude -F msgtype=CWD",
		"-a always,user -F uid=0",
		"-a always,exit -F dir=/etc/audit/ -F perm=wa -k audit_config",
	}
	p := testPolicy(false, lines...)
	p.Audit.Baseline = false
	env := enginetest.Env(t, p, nil)
	// The machine's accounts, as auditctl sees them on this host (user names resolve
	// through the root's /etc/passwd).
	passwd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	enginetest.WriteFile(t, env, "/etc/passwd", string(passwd))
	enginetest.Converges(t, env, kernelStep(conn))
	ours := rawRules(t, conn)

	require.NoError(t, conn.DeleteAllRules(context.Background()))
	file := filepath.Join(t.TempDir(), "same.rules")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	auditctl(t, "-R", file)
	assert.Equal(t, ours, rawRules(t, conn))
}

// Why exec watches follow links (baselineRules): the kernel matches a path= watch by the
// inode the path named when the rule was loaded, the link's own, while exec runs the
// target's. Running a program through a link fires a watch on the target, never one on the
// link. (Ubuntu 26.04's /usr/bin/sudo is such a link.)
// auditSyscallRecord is AUDIT_SYSCALL, the record a rule's key is reported on.
const auditSyscallRecord = 1300

func TestKernelExecWatchOnALinkNeverFires(t *testing.T) {
	needTool(t, "auditctl")
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.DeleteAllRules(ctx))
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{Enabled: auditnl.Uint32(1), BacklogLimit: auditnl.Uint32(8192), RateLimit: auditnl.Uint32(0)}))
	dir := t.TempDir()
	b, err := os.ReadFile("/bin/true")
	require.NoError(t, err)
	real, link := filepath.Join(dir, "real-true"), filepath.Join(dir, "link-true")
	require.NoError(t, os.WriteFile(real, b, 0o755))
	require.NoError(t, os.Symlink(real, link))
	auditctl(t, "-a", "always,exit", "-F", "path="+link, "-F", "perm=x", "-k", "harden-test-link")
	auditctl(t, "-a", "always,exit", "-F", "path="+real, "-F", "perm=x", "-k", "harden-test-target")

	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, err := auditnl.NewReader(rctx)
	require.NoError(t, err)
	defer r.Close()
	for range 3 {
		require.NoError(t, exec.Command(link).Run())
	}
	// The last one runs the target directly: when its record arrives, the three before it
	// have arrived too (the kernel emits them in order).
	require.NoError(t, exec.Command(real, "--harden-test-end").Run())
	keys := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, auditnl.ErrOverrun) {
			continue
		}
		require.NoError(t, err)
		// The direct run's EXECVE (or PROCTITLE) record names the marker argument; it
		// follows that exec's SYSCALL record, so every count is in when it arrives.
		if bytes.Contains(rec.Data, []byte("2D2D68617264656E2D746573742D656E64")) || bytes.Contains(rec.Data, []byte("--harden-test-end")) {
			break
		}
		// Only SYSCALL records count: the CONFIG_CHANGE records of the two rule loads carry
		// the keys too, and kauditd may deliver them after the reader joined (CI saw 5).
		if rec.Type != auditSyscallRecord {
			continue
		}
		for _, k := range []string{"harden-test-link", "harden-test-target"} {
			if bytes.Contains(rec.Data, []byte(`key="`+k+`"`)) {
				keys[k]++
			}
		}
	}
	assert.Equal(t, 4, keys["harden-test-target"], "every exec through the link and the direct one")
	assert.Zero(t, keys["harden-test-link"], "a watch on the link never fires")
}
