// Package audit is the audit step: it owns the kernel's whole audit rule list and status and
// /etc/audit/rules.d/harden.rules. After Apply the kernel holds exactly the policy's rules
// (the embedded baseline plus audit.rules), in order, with the policy's status values, and
// what auditd loads at its next start (augenrules) is the same. It talks to the kernel over
// netlink (internal/auditnl), never through auditctl. Locking (enabled 2) comes last; a
// kernel that is already locked is reported, not fought.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Files the step owns.
const (
	RulesDir   = "/etc/audit/rules.d"
	RulesFile  = RulesDir + "/harden.rules"
	AuditRules = "/etc/audit/audit.rules" // what augenrules generates from RulesDir
)

// Client is what the step needs from the kernel's audit subsystem. *auditnl.Conn is the
// real one; tests of the ordering logic use a fake that records calls.
type Client interface {
	GetStatus(ctx context.Context) (*auditnl.Status, error)
	SetStatus(ctx context.Context, u auditnl.StatusUpdate) error
	ListRules(ctx context.Context) ([]*auditrule.Rule, error)
	AddRule(ctx context.Context, r *auditrule.Rule) error
	DeleteRule(ctx context.Context, r *auditrule.Rule) error
}

// Step is the audit step.
type Step struct {
	client Client
	// stat looks at the filesystem the kernel resolves rule paths in (the real one, not
	// env.Root: audit watches are the kernel's, whatever root harden writes files under).
	stat func(string) (fs.FileInfo, error)
	// resolve follows symlinks in that filesystem (exec watches go to the program a link
	// runs); nil follows none.
	resolve func(string) (string, error)
	// adds maps the rule-add changes of the last plan to their rules (see Apply).
	adds map[*engine.Change]*auditrule.Rule
	// last is the desired state of the last plan's policy: the runner plans again right
	// after Apply to verify, and parsing (and keying) every rule twice is wasted work.
	last struct {
		policy *policy.Policy
		root   string
		want   *desired
	}
}

// New returns the audit step. client nil means the kernel, opened on first use (so that
// `--only firewall` never touches audit) with locking allowed: the step sets enabled 2
// only when the policy says immutable. With client nil and a root other than /, the
// kernel is not touched at all (see offlinePlan).
func New(client Client) *Step {
	return &Step{client: client, stat: os.Stat, resolve: filepath.EvalSymlinks}
}

// Name implements engine.Step.
func (*Step) Name() string { return "audit" }

// GuardEnv, when set to 1, opens the kernel client without the right to lock: enabled 2
// and failure panic are then refused (auditnl.ErrRefused) and the step fails instead of
// making the machine's audit rules unchangeable until reboot. `make test` and .ci/run set
// it; machines harden protects never do.
const GuardEnv = "HARDEN_REFUSE_AUDIT_LOCK"

// dialOptions are the kernel client's options: locking allowed unless GuardEnv is set.
func dialOptions(env *engine.Env) auditnl.Options {
	return auditnl.Options{AllowLock: env.Getenv(GuardEnv) != "1"}
}

func (s *Step) conn(env *engine.Env) (Client, error) {
	if s.client == nil {
		c, err := auditnl.Dial(dialOptions(env))
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	return s.client, nil
}

// kernelState is what Plan read from the kernel.
type kernelState struct {
	status *auditnl.Status
	rules  []*auditrule.Rule
}

// Plan implements engine.Step. It only reads.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	offline := s.client == nil && env.Root.Dir() != "/"
	want, err := s.desired(env, offline)
	if err != nil {
		return nil, err
	}
	p := &engine.Plan{Findings: slices.Clone(want.findings)}
	s.adds = map[*engine.Change]*auditrule.Rule{}
	if offline {
		return s.offlinePlan(env, want, p)
	}
	have, err := s.readKernel(ctx, env)
	if err != nil {
		if unavailable(err) {
			p.Find(&engine.Finding{ID: "audit.unavailable", Severity: engine.Critical, Object: "kernel audit",
				Message: fmt.Sprintf("the kernel's audit subsystem cannot be used: %v", err), Reason: "audit"})
			return p, nil
		}
		return nil, err
	}
	settings := s.statusChanges(have.status, want)
	dels, adds := diffRules(have.rules, want.rules)
	locked := have.status.Enabled == auditnl.EnabledLocked
	if locked {
		reportLocked(p, want, settings, dels, adds)
	} else {
		p.Add(settings...)
		p.Add(s.deleteChanges(dels, want)...)
		p.Add(s.addChanges(adds)...)
	}
	// The files are written even when the kernel is locked: they are what the next boot
	// loads, which is the only way a locked machine reaches the policy.
	files, err := fileChanges(env, want)
	if err != nil {
		return nil, err
	}
	p.Add(files...)
	if !locked {
		if c := s.enabledChange(have.status, want); c != nil {
			p.Add(c) // last: once enabled is 2 nothing else can change until reboot
		}
	}
	return p, nil
}

// withOwnDirs reports the directories the step's own files live in (RulesDir and its
// parents) as directories even before the step has written them: the baseline watches /etc/audit as a tree, and judging
// it by a disk where auditd's package has not made it yet would turn the watch into a path
// watch now and a tree watch once harden.rules is written (a plan that never converges).
func withOwnDirs(stat func(string) (fs.FileInfo, error)) func(string) (fs.FileInfo, error) {
	return func(p string) (fs.FileInfo, error) {
		if p == RulesDir || strings.HasPrefix(RulesDir, p+"/") {
			if fi, err := stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
				return fi, err
			}
			return ownDir(path.Base(p)), nil
		}
		return stat(p)
	}
}

// resolveInRoot follows the symlinks of p (a machine path) inside the tree at root: an
// absolute link target is the tree's, never the build host's. It returns the machine path.
func resolveInRoot(root, p string) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EINVAL) {
				cur = next // missing (the rest is as written) or not a link
				continue
			}
			return "", err
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts...)
		cur = "/"
	}
	return cur, nil
}

// ownDir is the FileInfo of a directory the step will create.
type ownDir string

func (d ownDir) Name() string     { return string(d) }
func (ownDir) Size() int64        { return 0 }
func (ownDir) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (ownDir) ModTime() time.Time { return time.Time{} }
func (ownDir) IsDir() bool        { return true }
func (ownDir) Sys() any           { return nil }

// desired returns the state the policy asks for, computed once per policy and root: the
// runner plans again right after Apply to verify, and parsing (and keying) every rule twice
// is wasted work. offline: the rules are for the machine the tree will boot, which resolves
// watched paths in the tree: a watch whose parent exists on the build host but not in the
// image would make auditctl -R (audit-rules.service) stop at that line on the image's first
// boot.
func (s *Step) desired(env *engine.Env, offline bool) (*desired, error) {
	if s.last.want != nil && s.last.policy == env.Policy && s.last.root == env.Root.Dir() {
		return s.last.want, nil
	}
	stat, resolve := s.stat, s.resolve
	if offline {
		stat = env.Root.Stat
		resolve = func(p string) (string, error) { return resolveInRoot(env.Root.Dir(), p) }
	}
	want, err := wantStateOn(env.Policy.Audit, withOwnDirs(stat), resolve, rootIDs(env.Root))
	if err != nil {
		return nil, err
	}
	s.last.policy, s.last.root, s.last.want = env.Policy, env.Root.Dir(), want
	return want, nil
}

// offlinePlan is the plan under --root (an image being prepared, a test): the kernel
// belongs to the machine running harden, not to the tree under the root, so only the files
// are planned. Without this, `harden apply --root /mnt/image` on a build host would load
// (and with immutable: true lock) the build host's audit rules.
func (s *Step) offlinePlan(env *engine.Env, want *desired, p *engine.Plan) (*engine.Plan, error) {
	p.Find(&engine.Finding{ID: "audit.kernel-skipped", Severity: engine.Info, Object: "kernel audit",
		Message: "harden works on a tree (--root), not on this machine: only the rules files are written; the kernel is left alone",
		Reason:  "audit"})
	files, err := fileChanges(env, want)
	if err != nil {
		return nil, err
	}
	p.Add(files...)
	return p, nil
}

// Apply implements engine.Step: the changes in plan order, lock last. Rule additions (the
// changes without Do) are sent in batches when the client can (AddRules), which is what
// makes loading hundreds of rules at boot as fast as auditctl -R.
func (s *Step) Apply(ctx context.Context, _ *engine.Env, p *engine.Plan) error {
	changes := p.Changes
	for i := 0; i < len(changes); {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cancelled before %s: %w", changes[i], err)
		}
		if changes[i].Do != nil {
			if err := engine.RunChange(ctx, changes[i]); err != nil {
				return fmt.Errorf("%s: %w", changes[i], err)
			}
			i++
			continue
		}
		j := i
		for j < len(changes) && changes[j].Do == nil {
			j++
		}
		// One batch is one change as far as a signal goes: it is sent whole.
		actx, cancel := engine.ChangeContext(ctx, 0)
		err := s.addRules(actx, changes[i:j])
		cancel()
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// batchAdder is implemented by *auditnl.Conn.
type batchAdder interface {
	AddRules(ctx context.Context, rules []*auditrule.Rule) error
}

// addRules loads the rules of a run of add changes, in order.
func (s *Step) addRules(ctx context.Context, changes []*engine.Change) error {
	rules := make([]*auditrule.Rule, len(changes))
	for i, c := range changes {
		r, ok := s.adds[c]
		if !ok {
			return fmt.Errorf("%s: not a change of this plan (step bug)", c)
		}
		rules[i] = r
	}
	if b, ok := s.client.(batchAdder); ok {
		if err := b.AddRules(ctx, rules); err != nil {
			var be *auditnl.BatchError
			if errors.As(err, &be) && be.Index < len(changes) {
				for _, c := range changes[:be.Index] {
					c.Applied = true // loaded before the one the kernel refused
				}
				return fmt.Errorf("%s: %w", changes[be.Index], be.Err)
			}
			return err
		}
	} else {
		for i, r := range rules {
			if err := s.client.AddRule(ctx, r); err != nil {
				return fmt.Errorf("%s: %w", changes[i], err)
			}
			changes[i].Applied = true
		}
	}
	for _, c := range changes {
		c.Applied = true
	}
	return nil
}

func (s *Step) readKernel(ctx context.Context, env *engine.Env) (*kernelState, error) {
	c, err := s.conn(env)
	if err != nil {
		return nil, err
	}
	st, err := c.GetStatus(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := c.ListRules(ctx)
	if err != nil {
		return nil, err
	}
	return &kernelState{status: st, rules: rules}, nil
}

// unavailable says the kernel has no audit support here (a container, a kernel built
// without it, a non-initial network namespace): a finding, not a crash.
func unavailable(err error) bool {
	return auditnl.IsUnsupported(err)
}

// statusChanges lists the status values (not enabled) that differ from the policy.
func (s *Step) statusChanges(st *auditnl.Status, want *desired) []*engine.Change {
	type setting struct {
		name, reason string
		have, want   uint32
		update       auditnl.StatusUpdate
	}
	settings := []setting{
		{"failure", "audit.failure", st.Failure, want.failure, auditnl.StatusUpdate{Failure: auditnl.Uint32(want.failure)}},
		{"backlog_limit", "audit.backlog_limit", st.BacklogLimit, want.backlog, auditnl.StatusUpdate{BacklogLimit: auditnl.Uint32(want.backlog)}},
		{"rate_limit", "audit.rate_limit", st.RateLimit, want.rateLimit, auditnl.StatusUpdate{RateLimit: auditnl.Uint32(want.rateLimit)}},
	}
	if want.waitTime != nil {
		settings = append(settings, setting{"backlog_wait_time", "audit.backlog_wait_time", st.BacklogWaitTime, *want.waitTime,
			auditnl.StatusUpdate{BacklogWaitTime: want.waitTime}})
	}
	var out []*engine.Change
	for _, set := range settings {
		if set.have == set.want {
			continue
		}
		u := set.update
		out = append(out, &engine.Change{
			Object: "audit status " + set.name, Action: engine.ActionSet,
			Before: statusText(set.name, set.have), After: statusText(set.name, set.want), Reason: set.reason,
			Do: func(ctx context.Context) error { return s.client.SetStatus(ctx, u) },
		})
	}
	return out
}

// enabledChange turns auditing on (1) or locks it (2), or nil when it already is.
func (s *Step) enabledChange(st *auditnl.Status, want *desired) *engine.Change {
	w := want.enabled()
	if st.Enabled == w {
		return nil
	}
	reason := "audit.immutable"
	if !want.immutable {
		reason = "audit"
	}
	return &engine.Change{
		Object: "audit status enabled", Action: engine.ActionSet,
		Before: statusText("enabled", st.Enabled), After: statusText("enabled", w), Reason: reason,
		Do: func(ctx context.Context) error {
			return s.client.SetStatus(ctx, auditnl.StatusUpdate{Enabled: auditnl.Uint32(w)})
		},
	}
}

func statusText(name string, v uint32) string {
	switch {
	case name == "failure":
		for n, f := range failureModes {
			if f == v {
				return n
			}
		}
	case name == "enabled" && v == auditnl.EnabledLocked:
		return "2 (locked until reboot)"
	}
	return strconv.FormatUint(uint64(v), 10)
}

// diffRules compares the kernel's rules with the wanted ones, filter list by filter list.
// Rules only match by position in their list (the first matching never/always wins), and
// the kernel can only append: so the rules kept are the longest run at the head of the
// list that is already in the wanted order, every other kernel rule is deleted, and the
// rest of the wanted list is added after them in order. On a converged machine both are
// empty; one missing rule at the end costs one add.
func diffRules(have []*auditrule.Rule, want []wantRule) (dels []*auditrule.Rule, adds []wantRule) {
	wantKeys := make(map[string]bool, len(want))
	for _, w := range want {
		wantKeys[w.key] = true
	}
	// Each kernel rule is keyed once: a key is the rule's bytes, and a list has hundreds.
	type haveRule struct {
		rule *auditrule.Rule
		key  string
	}
	haveKeyed := make([]haveRule, len(have))
	for i, r := range have {
		haveKeyed[i] = haveRule{r, r.Key()}
	}
	byList := func(f auditrule.Filter) (h []haveRule, w []wantRule) {
		for _, r := range haveKeyed {
			if r.rule.Filter == f {
				h = append(h, r)
			}
		}
		for _, r := range want {
			if r.rule.Filter == f {
				w = append(w, r)
			}
		}
		return h, w
	}
	for _, f := range filtersOf(have, want) {
		h, w := byList(f)
		// The kernel's wanted rules, in kernel order; the common head with w is kept.
		var kept []haveRule
		for _, r := range h {
			if wantKeys[r.key] {
				kept = append(kept, r)
			}
		}
		n := 0
		for n < len(kept) && n < len(w) && kept[n].key == w[n].key {
			n++
		}
		keep := make(map[string]bool, n)
		for _, r := range kept[:n] {
			keep[r.key] = true
		}
		for _, r := range h {
			if !keep[r.key] {
				dels = append(dels, r.rule)
			}
		}
		adds = append(adds, w[n:]...)
	}
	return dels, adds
}

func filtersOf(have []*auditrule.Rule, want []wantRule) []auditrule.Filter {
	seen := map[auditrule.Filter]bool{}
	var out []auditrule.Filter
	add := func(f auditrule.Filter) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, r := range have {
		add(r.Filter)
	}
	for _, w := range want {
		add(w.rule.Filter)
	}
	sortFilters(out)
	return out
}

func (s *Step) deleteChanges(dels []*auditrule.Rule, want *desired) []*engine.Change {
	wanted := make(map[string]bool, len(want.rules))
	for _, w := range want.rules {
		wanted[w.key] = true
	}
	var out []*engine.Change
	for _, r := range dels {
		r := r
		before := "loaded, not in the policy"
		if wanted[r.Key()] {
			before = "loaded out of order (re-added in place)"
		}
		out = append(out, &engine.Change{
			Object: "audit rule " + r.String(), Action: engine.ActionDelete, Before: before,
			Reason: "audit.rules",
			Do: func(ctx context.Context) error {
				err := s.client.DeleteRule(ctx, r)
				if auditnl.IsNotExist(err) {
					return nil // gone already (someone ran auditctl -D): the goal is met
				}
				return err
			},
		})
	}
	return out
}

// addChanges lists the rules to load. They have no Do: Apply loads a run of them in one
// batch, finding each rule through s.adds.
func (s *Step) addChanges(adds []wantRule) []*engine.Change {
	var out []*engine.Change
	for _, w := range adds {
		c := &engine.Change{
			Object: "audit rule " + w.rule.String(), Action: engine.ActionCreate, After: "loaded",
			Reason: w.reason,
		}
		s.adds[c] = w.rule
		out = append(out, c)
	}
	return out
}

// reportLocked is the plan for a kernel locked with enabled 2: nothing can change until
// reboot, so the differences become one finding (dry-run and the drift timer still see
// them) instead of changes that would fail with EPERM.
func reportLocked(p *engine.Plan, want *desired, settings []*engine.Change, dels []*auditrule.Rule, adds []wantRule) {
	var diffs []string
	for _, c := range settings {
		diffs = append(diffs, fmt.Sprintf("%s %s -> %s", strings.TrimPrefix(c.Object, "audit status "), c.Before, c.After))
	}
	if len(dels) > 0 {
		diffs = append(diffs, fmt.Sprintf("%d rule(s) to delete, first: %s", len(dels), dels[0]))
	}
	if len(adds) > 0 {
		diffs = append(diffs, fmt.Sprintf("%d rule(s) to add, first: %s", len(adds), adds[0].rule))
	}
	switch {
	case len(diffs) > 0:
		p.Find(&engine.Finding{ID: "audit.locked", Severity: engine.Warning, Object: "kernel audit",
			Message: "audit rules are locked (enabled 2) until reboot and differ from the policy: " +
				strings.Join(diffs, "; ") + "; harden.rules is updated so the next boot loads the policy",
			Reason: "audit.immutable"})
	case !want.immutable:
		p.Find(&engine.Finding{ID: "audit.locked", Severity: engine.Info, Object: "kernel audit",
			Message: "audit rules are locked (enabled 2) until reboot, although the policy has immutable: false",
			Reason:  "audit.immutable"})
	}
}

// fileChanges writes harden.rules and the audit.rules augenrules would build from it, and
// moves every other *.rules file out of rules.d (to the run's backup folder), so that the
// next `augenrules --load` yields exactly the kernel list this step loads.
func fileChanges(env *engine.Env, want *desired) ([]*engine.Change, error) {
	var out []*engine.Change
	entries, err := env.Root.ReadDir(RulesDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := RulesDir + "/" + e.Name()
		if name == RulesFile || !strings.HasSuffix(e.Name(), ".rules") || e.IsDir() {
			continue
		}
		out = append(out, &engine.Change{
			Object: name, Action: engine.ActionRemove, Before: "present", After: "moved to " + env.Root.BackupDir(),
			Reason: "audit (harden owns " + RulesDir + ")",
			Do: func(context.Context) error {
				_, err := env.Root.Remove(name)
				return err
			},
		})
	}
	rules := want.rulesFile()
	for _, f := range []struct{ name, content string }{{RulesFile, rules}, {AuditRules, augenrules(rules)}} {
		c, err := fileChange(env, f.name, f.content)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// rulesPerm is auditd's: rules can reveal what is watched, so not world-readable.
const rulesPerm = 0o640

func fileChange(env *engine.Env, name, content string) (*engine.Change, error) {
	// harden owns these files: a rules file someone else came to own is taken back.
	d, err := env.Root.Check(name, []byte(content), rulesPerm)
	if err != nil || d.Same() {
		return nil, err
	}
	old, exists, err := env.Root.ReadFileIfExists(name)
	if err != nil {
		return nil, err
	}
	action := engine.ActionCreate
	if exists {
		action = engine.ActionUpdate
	}
	c := &engine.Change{
		Object: name, Action: action, Diff: textdiff.Lines(string(old), content),
		Reason: "audit.baseline, audit.rules",
		Do: func(context.Context) error {
			_, err := env.Root.WriteOwned(name, []byte(content), rulesPerm)
			return err
		},
	}
	if exists && !d.Content {
		uid, gid := env.Root.Owner()
		c.Before, c.After = d.String(), fmt.Sprintf("mode %04o, owner %d:%d", rulesPerm, uid, gid)
	}
	return c, nil
}
