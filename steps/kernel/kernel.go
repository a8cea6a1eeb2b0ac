// Package kernel is the "kernel" step: hardened sysctl values (written to sysctl.d for the
// next boot and applied now through /proc/sys, then read back), core dumps off, and kernel
// modules refused through modprobe.d.
//
// The step never runs sysctl(8): it reads and writes /proc/sys files itself, so it costs a
// few hundred small reads on a converged machine, and a key the kernel lacks or refuses
// becomes a finding instead of a failed run.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

// Options are the handles the step needs beyond Env.
type Options struct {
	// ProcSys is the host path of /proc/sys; "" means /proc/sys under env.Root (a fake tree
	// in tests). A test in a fresh network namespace points it at the real /proc/sys.
	ProcSys string
	// Keys, when set, limits which live sysctls the step reads and writes (by dotted name).
	// The privileged test uses it to touch only net.* keys, which belong to its namespace.
	// The sysctl.d file is written whole either way.
	Keys func(name string) bool
}

// Step is the kernel step.
type Step struct {
	opts Options
	// write writes one sysctl (nil: procSys.write); tests replace it to play a kernel that
	// refuses a value.
	write func(path, value string) error

	mu sync.Mutex
	// refused remembers the sysctls this run could not set, so the plan after apply reports
	// them as findings instead of planning them again (which would fail the step).
	refused map[string]string // path -> why
}

// New returns the kernel step.
func New(opts Options) *Step {
	return &Step{opts: opts, refused: map[string]string{}}
}

// Name is the step's name in policies, reports and --only.
func (*Step) Name() string { return "kernel" }

// procSys is /proc/sys inside env.Root (an image tree's own, which is usually absent, never
// the build host's through a link), or the host directory Options.ProcSys names.
func (s *Step) procSys(env *engine.Env) procSys {
	if s.opts.ProcSys != "" {
		return procSys{root: fsroot.New("/"), dir: s.opts.ProcSys}
	}
	return procSys{root: env.Root, dir: "/proc/sys"}
}

// Plan compares the files and the live values with the policy. It only reads.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	k := env.Policy.Kernel
	settings := desired(env.Policy)
	p := &engine.Plan{}
	if err := planFile(env, p, SysctlFile, renderSysctl(settings), "kernel.baseline, kernel.sysctl"); err != nil {
		return nil, err
	}
	if err := s.planLive(env, p, settings); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, want, reason string }{
		{LimitsFile, renderLimits(k), reasonCoreDumps},
		{CoredumpFile, renderCoredump(k), reasonCoreDumps},
		{ModprobeFile, renderModprobe(k), "kernel.disable_modules"},
	} {
		if err := planFile(env, p, f.name, f.want, f.reason); err != nil {
			return nil, err
		}
	}
	if err := loadedModules(env, p, k.DisableModules); err != nil {
		return nil, err
	}
	return p, nil
}

// Apply makes the planned changes in order.
func (s *Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

// planLive reads each sysctl and plans a write where it differs.
func (s *Step) planLive(env *engine.Env, p *engine.Plan, settings []setting) error {
	ps := s.procSys(env)
	if fi, err := ps.root.Stat(ps.dir); err != nil || !fi.IsDir() {
		// An offline image (--root on a directory; its /proc, even a link to /proc, is the
		// tree's) or a container without /proc: one finding, not one per key. The file
		// still carries the values to the next boot.
		// The machine's path: the report is written into the tree, which knows no build host.
		where, why := ps.dir, "no "+ps.dir
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			why = err.Error()
		}
		p.Find(&engine.Finding{ID: "kernel.no-proc-sys", Severity: engine.Info, Object: where,
			Message: why + ": sysctl values are written to " + SysctlFile + " only", Reason: reasonBaseline})
		return nil
	}
	targets, err := resolve(ps, settings, s.opts.Keys)
	if err != nil {
		return err
	}
	var diffs []diff
	for _, t := range targets {
		cur, err := ps.read(t.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.Find(missing(t))
			continue
		case err != nil:
			p.Find(&engine.Finding{ID: "kernel.sysctl-unreadable", Severity: engine.Warning,
				Object: "sysctl " + t.Name, Message: fmt.Sprintf("cannot read %s: %v", t.Name, err), Reason: t.Reason})
			continue
		case cur == t.Value:
			continue
		}
		if why, ok := s.refusedWhy(t.Path); ok {
			p.Find(&engine.Finding{ID: "kernel.sysctl-refused", Severity: engine.Warning, Object: "sysctl " + t.Name,
				Message: fmt.Sprintf("the kernel keeps %s = %s, policy wants %s: %s", t.Name, cur, t.Value, why),
				Reason:  t.Reason})
			continue
		}
		diffs = append(diffs, diff{t, cur})
	}
	for _, g := range groupByInterface(diffs) {
		p.Add(s.change(ps, g))
	}
	return nil
}

// diff is one live sysctl that differs from the policy.
type diff struct {
	live
	cur string
}

// ifaceName splits a per-interface key, net.ipv4.conf.eth0.rp_filter, into its family part,
// interface and setting; ok is false for any other key. It is what the regexp
// ^(net\.ipv[46]\.conf)\.([^.]+)\.(.+)$ matches, without a regexp compiled at every process
// start (TestIfaceNameMatchesItsRegexp).
func ifaceName(key string) (family, iface, setting string, ok bool) {
	for _, f := range []string{"net.ipv4.conf", "net.ipv6.conf"} {
		rest, found := strings.CutPrefix(key, f+".")
		if !found {
			continue
		}
		iface, setting, found = strings.Cut(rest, ".")
		if !found || iface == "" || setting == "" {
			return "", "", "", false
		}
		return f, iface, setting, true
	}
	return "", "", "", false
}

// groupByInterface puts the per-interface copies of one setting (all, default and every
// interface, each its own /proc/sys file) into one group, so a plan shows one line for
// "rp_filter on every interface", not one per interface. Other keys stay one per group.
func groupByInterface(diffs []diff) [][]diff {
	var groups [][]diff
	index := map[string]int{}
	for _, d := range diffs {
		family, _, setting, ok := ifaceName(d.Name)
		if !ok {
			groups = append(groups, []diff{d})
			continue
		}
		key := family + "\x00" + setting + "\x00" + d.Value + "\x00" + d.Reason
		if i, ok := index[key]; ok {
			groups[i] = append(groups[i], d)
			continue
		}
		index[key] = len(groups)
		groups = append(groups, []diff{d})
	}
	return groups
}

// change is the planned write of one group: one sysctl, or one setting on several
// interfaces ("sysctl net.ipv4.conf.{all,default,eth0}.rp_filter", before "0" or, when
// the interfaces differ, "all=0 eth0=2").
func (s *Step) change(ps procSys, g []diff) *engine.Change {
	first := g[0]
	if len(g) == 1 {
		c := &engine.Change{Object: "sysctl " + first.Name, Action: engine.ActionSet, Before: first.cur, After: first.Value, Reason: first.Reason}
		c.Do = s.setter(ps, c, first.live)
		return c
	}
	family, _, setting, _ := ifaceName(first.Name)
	var ifaces, befores []string
	same := true
	for _, d := range g {
		_, iface, _, _ := ifaceName(d.Name)
		ifaces = append(ifaces, iface)
		befores = append(befores, iface+"="+d.cur)
		same = same && d.cur == first.cur
	}
	before := strings.Join(befores, " ")
	if same {
		before = first.cur
	}
	c := &engine.Change{Object: fmt.Sprintf("sysctl %s.{%s}.%s", family, strings.Join(ifaces, ","), setting),
		Action: engine.ActionSet, Before: before, After: first.Value, Reason: first.Reason}
	c.Do = func(ctx context.Context) error {
		var refused []string
		for _, d := range g {
			err := s.setter(ps, &engine.Change{}, d.live)(ctx)
			var r *engine.Refusal
			switch {
			case errors.As(err, &r):
				_, iface, _, _ := ifaceName(d.Name)
				refused = append(refused, iface+": "+r.Why)
			case err != nil:
				return err
			}
		}
		switch {
		case len(refused) == len(g):
			// Nothing was set: the whole change was refused.
			return engine.Refuse("%s", strings.Join(refused, "; "))
		case len(refused) > 0:
			// Set on some interfaces: applied there; the others are named here and are the
			// plan's findings (kernel.sysctl-refused) from now on.
			c.After = first.Value + " (refused on " + strings.Join(refused, "; ") + ")"
		}
		return nil
	}
	return c
}

// missing is the finding for a key this kernel does not have. The baseline's keys are
// generic; a kernel built without (say) Yama or IPv6 simply lacks that risk too, so that is
// information, while a key the policy names itself is a warning.
func missing(t live) *engine.Finding {
	sev := engine.Warning
	if t.Reason == reasonBaseline {
		sev = engine.Info
	}
	return &engine.Finding{ID: "kernel.sysctl-missing", Severity: sev, Object: "sysctl " + t.Name,
		Message: fmt.Sprintf("this kernel has no %s (not applied now; kept in %s)", t.Name, SysctlFile), Reason: t.Reason}
}

// setter writes one sysctl and reads it back. A value the kernel refuses (EINVAL out of range,
// EPERM for a setting locked until reboot, EROFS in a container) or silently keeps is not a
// failure of the run: the change is recorded as refused (not applied), and the plan after
// apply reports it as a finding.
func (s *Step) setter(ps procSys, c *engine.Change, t live) func(context.Context) error {
	write := s.write
	if write == nil {
		write = ps.write
	}
	return func(context.Context) error {
		why := ""
		if err := write(t.Path, t.Value); err != nil {
			why = "write refused: " + errText(err)
		} else if got, err := ps.read(t.Path); err != nil {
			why = "read back failed: " + errText(err)
		} else if got != t.Value {
			why = "read back " + got
		}
		if why != "" {
			s.mu.Lock()
			s.refused[t.Path] = why
			s.mu.Unlock()
			return engine.Refuse("%s", why)
		}
		return nil
	}
}

func (s *Step) refusedWhy(path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	why, ok := s.refused[path]
	return why, ok
}

// errText is the errno's text without the path (the finding already names the key).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loadedModules reports modules the policy refuses that are loaded now: modprobe.d only stops
// the next load, and unloading under a running service is not harden's call.
func loadedModules(env *engine.Env, p *engine.Plan, refuse []string) error {
	b, _, err := env.Root.ReadFileIfExists("/proc/modules")
	if errors.Is(err, syscall.ELOOP) {
		return nil // an image tree's /proc linked to "/proc": there is no kernel to ask
	}
	if err != nil || len(refuse) == 0 {
		return err
	}
	loaded := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			loaded[f[0]] = true
		}
	}
	for i, m := range refuse {
		// /proc/modules spells module names with "_" where modprobe accepts "-".
		if loaded[strings.ReplaceAll(m, "-", "_")] {
			p.Find(&engine.Finding{ID: "kernel.module-loaded", Severity: engine.Warning, Object: "module " + m,
				Message: fmt.Sprintf("module %s is loaded now; %s refuses it from the next load (reboot or rmmod to remove it)", m, ModprobeFile),
				Reason:  fmt.Sprintf("kernel.disable_modules[%d]", i)})
		}
	}
	return nil
}
