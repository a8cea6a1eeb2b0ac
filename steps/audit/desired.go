package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/passwd"
	"github.com/harden-dev/harden/internal/policy"
)

// wantRule is one rule the policy asks for, with the policy field that asks.
type wantRule struct {
	rule   *auditrule.Rule // normalized: as the kernel lists it
	key    string          // rule.Key(), computed once
	reason string          // "audit.baseline" (line N) or "audit.rules[i]"
}

// desired is everything the step brings the machine to.
type desired struct {
	rules     []wantRule // in the kernel's listing order
	failure   uint32
	backlog   uint32
	waitTime  *uint32 // nil: leave the kernel's value (policy 0)
	rateLimit uint32
	immutable bool
	findings  []*engine.Finding
}

var failureModes = map[string]uint32{
	"silent": auditnl.FailureSilent, "printk": auditnl.FailurePrintk, "panic": auditnl.FailurePanic,
}

// wantState reads the policy (and the baseline) into the desired state. stat looks at the
// filesystem the kernel sees, which decides how a watched directory is watched.
func wantState(a policy.Audit, stat func(string) (fs.FileInfo, error)) (*desired, error) {
	return wantStateOn(a, stat, nil, nil)
}

// wantStateOn is wantState for the machine the rules are for. resolve follows symlinks there
// (nil: none are followed; see execLinkTarget); ids are its users and groups (nil: this
// host's). A rule of audit.rules that names a user, group or syscall this machine does not
// have is a finding of this step for that rule (audit.rule-skipped), and the others are
// loaded: the policy validated (its syntax is machine-independent), and one rule that cannot
// exist here must not fail the step, let alone the policy.
func wantStateOn(a policy.Audit, stat func(string) (fs.FileInfo, error), resolve func(string) (string, error), ids *machineIDs) (*desired, error) {
	d := &desired{
		backlog:   uint32(a.BacklogLimit),
		rateLimit: uint32(a.RateLimit),
		immutable: a.Immutable,
	}
	f, ok := failureModes[a.Failure]
	if !ok {
		return nil, fmt.Errorf("audit.failure: %q is not one of silent, printk, panic", a.Failure)
	}
	d.failure = f
	if a.BacklogWaitTime > 0 {
		w := uint32(a.BacklogWaitTime)
		d.waitTime = &w
	}
	parser := &auditrule.Parser{IsDir: func(p string) bool {
		fi, err := stat(p)
		return err == nil && fi.IsDir()
	}}
	if ids != nil {
		parser.LookupUser, parser.LookupGroup = ids.user, ids.group
	}
	var all []wantRule
	if a.Baseline {
		rules, findings, err := baselineRules(parser, stat, resolve)
		if err != nil {
			return nil, err
		}
		all, d.findings = rules, append(d.findings, findings...)
	}
	for i, text := range a.Rules {
		r, err := parser.ParseRule(text)
		if err != nil {
			d.findings = append(d.findings, &engine.Finding{
				ID: "audit.rule-skipped", Severity: engine.Warning, Object: "audit rule " + text,
				Message: fmt.Sprintf("not loaded on this machine: %v", err), Reason: fmt.Sprintf("audit.rules[%d]", i),
			})
			continue
		}
		all = append(all, wantRule{rule: r, reason: fmt.Sprintf("audit.rules[%d]", i)})
	}
	d.rules, d.findings = kernelOrder(all, d.findings)
	return d, nil
}

// baselineRules parses the embedded baseline. A watched directory that does not exist here
// is watched as a path (its creation is seen), as auditctl -w does; a watch whose parent
// directory is missing cannot be loaded (the kernel says ENOENT) and is left out with a
// finding, so one absent package does not stop the rest of the baseline.
//
// A program watched for execution (path= with perm=x) that is a symlink here is watched at
// its target: the kernel matches a watch by inode, the symlink's own, while exec runs the
// target's, so a watch on the link never fires. Ubuntu 26.04's /usr/bin/sudo is such a
// link (alternatives: /usr/lib/cargo/bin/sudo, sudo-rs).
func baselineRules(parser *auditrule.Parser, stat func(string) (fs.FileInfo, error), resolve func(string) (string, error)) ([]wantRule, []*engine.Finding, error) {
	file, err := parser.ParseString("assets/audit/baseline.rules", string(assets.AuditBaseline))
	if err != nil {
		return nil, nil, fmt.Errorf("embedded baseline: %w", err)
	}
	if len(file.Controls) > 0 {
		return nil, nil, errors.New("embedded baseline: control lines (-D, -b, -e, ...) belong to the policy, not the baseline")
	}
	var out []wantRule
	var findings []*engine.Finding
	seen := map[string]bool{}
	for _, r := range file.Rules {
		reason := fmt.Sprintf("audit.baseline (line %d)", r.Line)
		if link, target := execLinkTarget(r, resolve); target != "" {
			reason = fmt.Sprintf("audit.baseline (line %d: %s runs %s)", r.Line, link, target)
			if seen[r.Key()] {
				continue // sudoedit and sudo are one program under sudo-rs: one rule
			}
		}
		seen[r.Key()] = true
		missing := watchParentMissing(r, stat)
		if missing != "" {
			findings = append(findings, &engine.Finding{
				ID: "audit.watch-skipped", Severity: engine.Info, Object: "audit rule " + r.Normalize().String(),
				Message: fmt.Sprintf("not loaded: %s does not exist on this machine", missing),
				Reason:  "audit.baseline",
			})
			continue
		}
		out = append(out, wantRule{rule: r, reason: reason})
	}
	return out, findings, nil
}

// execLinkTarget points an exec watch (path= with perm=x and nothing else) whose path is a
// symlink at the program it runs, and returns both; "" when the rule is no such watch or
// the path is no link.
func execLinkTarget(r *auditrule.Rule, resolve func(string) (string, error)) (string, string) {
	if resolve == nil {
		return "", ""
	}
	watch := -1
	for i, f := range r.Fields {
		switch {
		case f.Type == auditrule.FieldWatch:
			watch = i
		case f.Type == auditrule.FieldPerm && f.Value != auditrule.PermExec:
			return "", ""
		}
	}
	if watch < 0 {
		return "", ""
	}
	link := r.Fields[watch].Str
	target, err := resolve(link)
	if err != nil || target == link {
		return "", ""
	}
	r.Fields[watch].Str = target
	return link, target
}

// watchParentMissing turns a dir= field whose directory is absent into path=, and returns
// the missing parent directory when the kernel could not watch the path at all.
func watchParentMissing(r *auditrule.Rule, stat func(string) (fs.FileInfo, error)) string {
	for i, f := range r.Fields {
		if f.Type != auditrule.FieldDir && f.Type != auditrule.FieldWatch {
			continue
		}
		if f.Type == auditrule.FieldDir {
			if fi, err := stat(f.Str); err != nil || !fi.IsDir() {
				r.Fields[i].Type = auditrule.FieldWatch
			}
		}
		parent := path.Dir(f.Str)
		if fi, err := stat(parent); err != nil || !fi.IsDir() {
			return parent
		}
	}
	return ""
}

// kernelOrder returns the rules in the order the kernel will list them once loaded one by
// one: list by list (user, task, exit, exclude, filesystem), each in insertion order with
// -A rules at the head. Duplicates (the kernel would refuse them) are dropped with a
// finding. The rules come back normalized, as the kernel lists them.
func kernelOrder(all []wantRule, findings []*engine.Finding) ([]wantRule, []*engine.Finding) {
	seen := map[string]string{}
	lists := map[auditrule.Filter][]wantRule{}
	var filters []auditrule.Filter
	for _, w := range all {
		n := w.rule.Normalize()
		k := n.Key()
		if first, dup := seen[k]; dup {
			findings = append(findings, &engine.Finding{
				ID: "audit.duplicate-rule", Severity: engine.Info, Object: "audit rule " + n.String(),
				Message: "the same rule is also given by " + first + "; loaded once", Reason: w.reason,
			})
			continue
		}
		seen[k] = w.reason
		if _, ok := lists[n.Filter]; !ok {
			filters = append(filters, n.Filter)
		}
		nw := wantRule{rule: n, key: k, reason: w.reason}
		if w.rule.Prepend {
			lists[n.Filter] = append([]wantRule{nw}, lists[n.Filter]...)
		} else {
			lists[n.Filter] = append(lists[n.Filter], nw)
		}
	}
	sortFilters(filters)
	var out []wantRule
	for _, f := range filters {
		out = append(out, lists[f]...)
	}
	return out, findings
}

func sortFilters(f []auditrule.Filter) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j] < f[j-1]; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// rulesFile is /etc/audit/rules.d/harden.rules: what auditd loads (through augenrules) at
// its next start, the same rules and settings the step loads now. The lines are in
// augenrules' own order (-D, -b, -f first, -e last) so that the audit.rules it generates
// keeps them where they are.
func (d *desired) rulesFile() string {
	var b strings.Builder
	b.WriteString("## Written by harden (audit step) from its policy: audit.baseline and audit.rules.\n")
	b.WriteString("## harden replaces this file on every run and moves other rules files out of\n")
	b.WriteString("## this directory, so that auditd loads exactly the rules harden loaded.\n")
	b.WriteString("-D\n")
	fmt.Fprintf(&b, "-b %d\n", d.backlog)
	fmt.Fprintf(&b, "-f %d\n", d.failure)
	if d.waitTime != nil {
		fmt.Fprintf(&b, "--backlog_wait_time %d\n", *d.waitTime)
	}
	fmt.Fprintf(&b, "-r %d\n", d.rateLimit)
	for _, w := range d.rules {
		b.WriteString(w.rule.FileText() + "\n")
	}
	fmt.Fprintf(&b, "-e %d\n", d.enabled())
	return b.String()
}

// enabled is the enabled value the policy wants: 2 locks until reboot.
func (d *desired) enabled() uint32 {
	if d.immutable {
		return auditnl.EnabledLocked
	}
	return auditnl.EnabledOn
}

// augenrules returns the /etc/audit/audit.rules that `augenrules` builds from a rules.d
// holding only the given file: comments and blank lines dropped, the last -D, -b and -f
// first, the last -e at the end. Writing it too means auditd finds the same rules even
// where it loads audit.rules directly, and `augenrules --check` reports no change.
func augenrules(rulesD string) string {
	var minusD, minusB, minusF, minusE string
	var rest []string
	for _, line := range strings.Split(rulesD, "\n") {
		t := strings.TrimLeft(line, " \t")
		switch {
		case line == "" || strings.HasPrefix(t, "#"):
		case strings.HasPrefix(t, "-e"):
			minusE = line
		case strings.TrimRight(t, " \t") == "-D":
			minusD = line
		case strings.HasPrefix(t, "-f"):
			minusF = line
		case strings.HasPrefix(t, "-b"):
			minusB = line
		default:
			rest = append(rest, line)
		}
	}
	var b strings.Builder
	b.WriteString("## This file is automatically generated from /etc/audit/rules.d\n")
	fmt.Fprintf(&b, "%s\n%s\n%s\n", minusD, minusB, minusF)
	for _, l := range rest {
		b.WriteString(l + "\n")
	}
	b.WriteString(minusE + "\n")
	return b.String()
}

// machineIDs resolves user and group names as the machine harden works on has them: its
// /etc/passwd and /etc/group inside the root (an image's own accounts under --root).
type machineIDs struct{ users, groups map[string]uint32 }

func rootIDs(root fsroot.Root) *machineIDs {
	ids := &machineIDs{users: map[string]uint32{}, groups: map[string]uint32{}}
	users, _ := passwd.Users(root) // unreadable: no names resolve, each rule naming one is a finding
	for _, u := range users {
		ids.users[u.Name] = uint32(u.UID)
	}
	groups, _ := passwd.Groups(root)
	for name, gid := range groups {
		ids.groups[name] = uint32(gid)
	}
	return ids
}

func (ids *machineIDs) user(name string) (uint32, error)  { return lookupID(ids.users, "user", name) }
func (ids *machineIDs) group(name string) (uint32, error) { return lookupID(ids.groups, "group", name) }

func lookupID(m map[string]uint32, what, name string) (uint32, error) {
	if id, ok := m[name]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("no %s %q on this machine", what, name)
}
