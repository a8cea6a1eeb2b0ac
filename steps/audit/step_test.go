package audit

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func testPolicy(immutable bool, rules ...string) *policy.Policy {
	p := policy.Default()
	p.Audit.Baseline = true
	p.Audit.Rules = rules
	p.Audit.Immutable = immutable
	p.Audit.BacklogLimit = 8192
	p.Audit.Failure = "printk"
	return p
}

func newTestStep(k Client) *Step {
	s := New(k)
	s.stat = allDirs
	return s
}

func mustRule(t *testing.T, text string) *auditrule.Rule {
	t.Helper()
	r, err := (&auditrule.Parser{IsDir: func(string) bool { return false }}).ParseRule(text)
	require.NoError(t, err)
	return r.Normalize()
}

func ruleTexts(rules []*auditrule.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.String())
	}
	return out
}

func wantedTexts(t *testing.T, p *policy.Policy) []string {
	t.Helper()
	d, err := wantState(p.Audit, allDirs)
	require.NoError(t, err)
	var out []string
	for _, w := range d.rules {
		out = append(out, w.rule.String())
	}
	return out
}

// With immutable: true everything is loaded and written first and enabled 2 is the very
// last call; the second run plans nothing (locked, and already what the policy says).
func TestImmutableLocksLastAndConverges(t *testing.T) {
	k := &fakeKernel{status: auditnl.Status{Enabled: 0, Failure: 1, BacklogLimit: 64}}
	p := testPolicy(true)
	env := enginetest.Env(t, p, nil)
	rep := enginetest.Converges(t, env, newTestStep(k))

	changes := rep.Steps[0].Changes
	require.NotEmpty(t, changes)
	lastChange := changes[len(changes)-1]
	assert.Equal(t, "audit status enabled", lastChange.Object)
	assert.Equal(t, "2 (locked until reboot)", lastChange.After)
	require.NotEmpty(t, k.calls)
	assert.Equal(t, "set enabled 2", k.calls[len(k.calls)-1], "the lock is the last call")
	for _, c := range k.calls[:len(k.calls)-1] {
		assert.NotContains(t, c, "enabled", "enabled is set once, last")
	}
	assert.Equal(t, "set backlog_limit 8192", k.calls[0], "status values come before the rules")
	assert.Equal(t, wantedTexts(t, p), ruleTexts(k.rules))

	data, err := os.ReadFile(env.Root.Path(RulesFile))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(data), "\n-e 2\n"), "harden.rules locks last too")
	// The files are written before the lock (they are still writable after it, but a
	// failed lock must not leave auditd's next start without them).
	var fileIdx, lockIdx int
	for i, c := range changes {
		switch c.Object {
		case RulesFile:
			fileIdx = i
		case "audit status enabled":
			lockIdx = i
		}
	}
	assert.Less(t, fileIdx, lockIdx)
}

// A kernel locked with a different configuration cannot change until reboot: the plan has
// a finding instead of changes that would fail, still writes harden.rules for the next
// boot, and never calls the kernel to change anything.
func TestLockedKernelIsAFindingNotAnError(t *testing.T) {
	stray := mustRule(t, "-a always,exit -F arch=b64 -S ptrace -F key=stray")
	k := &fakeKernel{status: auditnl.Status{Enabled: 2, Failure: 1, BacklogLimit: 64}, rules: []*auditrule.Rule{stray}}
	env := enginetest.Env(t, testPolicy(true), nil)

	dry, _ := enginetest.Run(t, env, true, newTestStep(k))
	require.Equal(t, engine.StatusPending, dry.Steps[0].Status, "dry-run still reports the drift")
	var locked *engine.Finding
	for _, f := range dry.Steps[0].Findings {
		if f.ID == "audit.locked" {
			locked = f
		}
	}
	require.NotNil(t, locked, "findings: %+v", dry.Steps[0].Findings)
	assert.Equal(t, engine.Warning, locked.Severity)
	assert.Contains(t, locked.Message, "locked (enabled 2) until reboot")
	assert.Contains(t, locked.Message, "backlog_limit 64 -> 8192")
	assert.Contains(t, locked.Message, "1 rule(s) to delete, first: -a always,exit -F arch=b64 -S ptrace -F key=stray")
	for _, c := range dry.Steps[0].Changes {
		assert.True(t, strings.HasPrefix(c.Object, "/etc/audit/"), "only files may change while locked: %s", c)
	}

	enginetest.Converges(t, env, newTestStep(k))
	assert.Empty(t, k.calls, "nothing may be sent to a locked kernel")
	assert.FileExists(t, env.Root.Path(RulesFile))
}

// Stray rules go, rules out of order are re-added in place, and the kernel ends with
// exactly the wanted list; a converged kernel costs nothing.
func TestStraysDeletedAndOrderRestored(t *testing.T) {
	p := testPolicy(false, "-a always,exit -F arch=b64 -S kill -F key=kill", "-a always,exit -F arch=b64 -S tkill -F key=kill")
	want := wantedTexts(t, p)
	kill := mustRule(t, want[len(want)-2])
	tkill := mustRule(t, want[len(want)-1])
	first := mustRule(t, want[0])
	k := &fakeKernel{status: auditnl.Status{Enabled: 1, Failure: 1, BacklogLimit: 8192},
		rules: []*auditrule.Rule{
			first,
			mustRule(t, "-a always,exit -F path=/tmp/stray -F perm=w -F key=stray"),
			tkill, kill, // swapped
			mustRule(t, "-a never,exclude -F msgtype=CWD"),
		}}
	env := enginetest.Env(t, p, nil)
	rep := enginetest.Converges(t, env, newTestStep(k))
	assert.Equal(t, want, ruleTexts(k.rules))

	var deleted []string
	for _, c := range rep.Steps[0].Changes {
		if c.Action == engine.ActionDelete {
			deleted = append(deleted, c.Object)
		}
	}
	assert.Contains(t, deleted, "audit rule -w /tmp/stray -p w -k stray", "objects read like auditctl -l")
	assert.Contains(t, deleted, "audit rule -a never,exclude -F msgtype=CWD")
	assert.NotContains(t, deleted, "audit rule "+first.String(), "the head already in order is kept")
	assert.NotContains(t, k.calls, "add "+first.String())
}

// Other rules files are moved to the run's backup folder; harden.rules and audit.rules are
// what augenrules would build; non-.rules files are left alone.
func TestRulesDirectoryIsOwned(t *testing.T) {
	k := &fakeKernel{status: auditnl.Status{Enabled: 1, Failure: 1, BacklogLimit: 8192}}
	env := enginetest.Env(t, testPolicy(false), nil)
	enginetest.WriteFile(t, env, RulesDir+"/audit.rules", "-D\n-b 320\n")
	enginetest.WriteFile(t, env, RulesDir+"/50-site.rules", "-w /etc/motd -p wa\n")
	enginetest.WriteFile(t, env, RulesDir+"/README", "notes\n")
	enginetest.Converges(t, env, newTestStep(k))

	entries, err := os.ReadDir(env.Root.Path(RulesDir))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"harden.rules", "README"}, names)
	backup, err := os.ReadFile(env.Root.Path(env.Root.BackupDir() + RulesDir + "/50-site.rules"))
	require.NoError(t, err)
	assert.Equal(t, "-w /etc/motd -p wa\n", string(backup))

	rules, err := os.ReadFile(env.Root.Path(RulesFile))
	require.NoError(t, err)
	generated, err := os.ReadFile(env.Root.Path(AuditRules))
	require.NoError(t, err)
	assert.Equal(t, augenrules(string(rules)), string(generated))
	fi, err := os.Stat(env.Root.Path(RulesFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestDryRunChangesNothingWithFake(t *testing.T) {
	k := &fakeKernel{status: auditnl.Status{Enabled: 0, Failure: 1, BacklogLimit: 64},
		rules: []*auditrule.Rule{mustRule(t, "-a always,exit -F path=/tmp/stray -F perm=w")}}
	env := enginetest.Env(t, testPolicy(true), nil)
	enginetest.WriteFile(t, env, RulesDir+"/audit.rules", "-D\n")
	rep := enginetest.DryRunChangesNothing(t, env, newTestStep(k), func() string {
		return enginetest.TreeDigest(t, env.Root.Dir()) + strings.Join(ruleTexts(k.rules), "\n")
	})
	assert.Empty(t, k.calls)
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
}

func TestUnavailableKernelIsAFinding(t *testing.T) {
	env := enginetest.Env(t, testPolicy(false), nil)
	s := newTestStep(unavailableClient{&fakeKernel{}})
	p, err := s.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, p.Findings, 1)
	assert.Equal(t, "audit.unavailable", p.Findings[0].ID)
	assert.Empty(t, p.Changes)
}

type unavailableClient struct{ *fakeKernel }

func (unavailableClient) GetStatus(context.Context) (*auditnl.Status, error) {
	return nil, &auditnl.Error{Op: "get status", Errno: unix.ECONNREFUSED} // not the initial netns
}

// Under a root other than / (an image, a test) the step without an injected client plans
// only the files: it must never load or lock the audit rules of the machine running it.
func TestOtherRootLeavesTheKernelAlone(t *testing.T) {
	env := enginetest.Env(t, testPolicy(true), nil)
	s := New(nil)
	s.stat = allDirs
	enginetest.Converges(t, env, s)
	assert.Nil(t, s.client, "no audit socket was opened")
	assert.FileExists(t, env.Root.Path(RulesFile))
	p, err := s.Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotEmpty(t, p.Findings)
	assert.Equal(t, "audit.kernel-skipped", p.Findings[len(p.Findings)-1].ID)
}

// Under --root the watched paths are judged in the tree, not on the build host: the rules
// file is what the image's audit-rules.service loads at its first boot, and auditctl -R
// stops at the first watch whose parent directory does not exist there.
func TestOtherRootJudgesWatchesInTheTree(t *testing.T) {
	env := enginetest.Env(t, testPolicy(true), nil)
	enginetest.WriteFile(t, env, "/etc/passwd", "root:x:0:0::/root:/bin/sh\n") // the tree has /etc, not /var/spool
	s := New(nil)
	s.stat = allDirs // what the build host would say: everything exists
	enginetest.Converges(t, env, s)
	rules, err := os.ReadFile(env.Root.Path(RulesFile))
	require.NoError(t, err)
	assert.Contains(t, string(rules), "-F path=/etc/passwd ")
	assert.NotContains(t, string(rules), "/var/spool/cron", "its parent is not in the tree")
	assert.Contains(t, string(rules), "-F path=/etc/sudoers.d ", "a missing directory under /etc is watched as a path")

	p, err := s.Plan(context.Background(), env)
	require.NoError(t, err)
	var skipped []string
	for _, f := range p.Findings {
		if f.ID == "audit.watch-skipped" {
			skipped = append(skipped, f.Object)
		}
	}
	assert.Contains(t, skipped, "audit rule -w /var/spool/cron -p wa -k cron")
}

// With HARDEN_REFUSE_AUDIT_LOCK=1 (make test, CI) the kernel client may not lock; the
// refusal itself is tested in auditnl without touching the kernel.
func TestGuardEnvForbidsTheLock(t *testing.T) {
	guarded := enginetest.Env(t, nil, map[string]string{GuardEnv: "1"})
	assert.False(t, dialOptions(guarded).AllowLock)
	free := enginetest.Env(t, nil, nil)
	assert.True(t, dialOptions(free).AllowLock, "machines harden protects lock when the policy says so")
}

// A rule that names a user or a syscall this machine does not have is a finding of this step
// for that rule; every other rule is loaded and the step converges. The policy that holds it
// validates (that is the policy package's test): it is not a policy error.
func TestRuleForAnotherMachineIsAFindingNotAFailure(t *testing.T) {
	k := &fakeKernel{status: auditnl.Status{Enabled: 1, Failure: 1, BacklogLimit: 8192}}
	p := testPolicy(false,
		"-a always,exit -F arch=b64 -S execve -F auid=deploy -k deploy_exec", // no such user here
		"-a always,exit -F arch=b64 -S open -k opens",                        // no open(2) on arm64
		"-w /etc/harden -p wa -k harden",
	)
	env := enginetest.Env(t, p, nil)
	enginetest.WriteFile(t, env, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
	rep := enginetest.Converges(t, env, newTestStep(k))
	var skipped []string
	for _, f := range rep.Steps[0].Findings {
		if f.ID == "audit.rule-skipped" {
			skipped = append(skipped, f.Reason+": "+f.Message)
		}
	}
	want := []string{`audit.rules[0]: not loaded on this machine: -F auid=deploy: unknown user "deploy"`}
	if auditrule.HostMachine() == auditrule.MachineAArch64 {
		want = append(want, "audit.rules[1]")
	}
	require.Len(t, skipped, len(want), "%v", skipped)
	assert.Contains(t, skipped[0], want[0])
	loaded := strings.Join(ruleTexts(k.rules), "\n")
	assert.Contains(t, loaded, "-k harden")
	assert.NotContains(t, loaded, "deploy")

	// The account exists in this tree: the rule is loaded (as auid=<its uid>).
	enginetest.WriteFile(t, env, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndeploy:x:1042:1042::/home/deploy:/bin/sh\n")
	enginetest.Converges(t, env, newTestStep(k))
	assert.Contains(t, strings.Join(ruleTexts(k.rules), "\n"), "auid=1042")
}
