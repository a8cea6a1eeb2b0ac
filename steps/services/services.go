// Package services is the step that keeps only the units the policy allows:
// every enabled unit file that is neither allowed (services.allow, the units
// other steps need, harden's own) nor essential is masked persistently and
// stopped; allowed units are enabled and started as the policy says; the
// restarts other steps queued run once at the end.
//
// harden records the masks it makes (StatePath), so a unit the policy later
// allows is unmasked again, while a mask someone else made is left alone and
// reported.
package services

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
)

// Step is the services step.
type Step struct {
	open systemd.Opener

	mu       sync.Mutex
	appliers map[*engine.Plan]*applier
}

// New returns the services step. open is called in Plan (lazily), so runs
// that skip this step never connect to D-Bus.
func New(open systemd.Opener) *Step {
	return &Step{open: open, appliers: map[*engine.Plan]*applier{}}
}

// Name implements engine.Step.
func (s *Step) Name() string { return "services" }

// observed is what systemd told us.
type observed struct {
	files map[string]systemd.UnitFile
	units map[string]systemd.Unit
	recs  *records
	// afterSelf are the units ordered after harden.service while
	// harden.service is starting (see orderedAfterSelf); nil otherwise.
	afterSelf map[string]bool
}

func (o *observed) file(name string) (systemd.UnitFile, bool) {
	if f, ok := o.files[name]; ok {
		return f, true
	}
	// An instance (getty@tty2.service) has no file of its own: its template
	// stands for it.
	f, ok := o.files[template(name)]
	return f, ok
}

// active reports whether the unit is loaded and running (or about to).
func (o *observed) active(name string) (systemd.Unit, bool) {
	u, ok := o.units[name]
	return u, ok && u.Active()
}

// Plan implements engine.Step. It is read-only: it lists unit files and
// units and reads harden's mask record.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	m, err := s.open(ctx)
	if errors.Is(err, systemd.ErrNoSystemd) {
		msg := "no systemd: units not managed (" + strings.TrimPrefix(err.Error(), "no systemd: ") + ")"
		if rs := env.Restarts.Pending(); len(rs) > 0 {
			msg += fmt.Sprintf("; %d queued restart(s) not run", len(rs))
		}
		if rs := env.Restarts.ReloadRequests(); len(rs) > 0 {
			msg += "; daemon-reload asked for (" + strings.Join(rs, "; ") + ") not made"
		}
		p.Find(&engine.Finding{ID: "services.no-systemd", Severity: engine.Warning, Object: "systemd",
			Message: msg, Reason: "services"})
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	allow, order := desired(env.Policy)
	if env.Policy.ClamAV.Enabled {
		holdWithoutSignatures(allow, env.Root)
	}
	obs, err := observe(ctx, env, m, allow)
	if err != nil {
		return nil, err
	}
	if obs.afterSelf, err = orderedAfterSelf(ctx, m, obs); err != nil {
		return nil, err
	}
	ap := &applier{m: m, recs: obs.recs, restarts: env.Restarts, noWait: obs.afterSelf}
	starting := map[string]bool{}
	for _, name := range order {
		planWanted(p, ap, obs, allow[name], starting)
	}
	masking := planMasks(p, ap, obs, allow)
	planRestarts(p, ap, obs, env, starting, masking)
	planReload(p, ap, env)

	// Only the latest plan can be applied next (the runner plans, applies,
	// then plans again to verify), so older appliers are dropped.
	s.mu.Lock()
	s.appliers = map[*engine.Plan]*applier{p: ap}
	s.mu.Unlock()
	return p, nil
}

// Apply implements engine.Step: the planned changes in order, then one
// daemon-reload if any mask or enablement changed since the last one, so
// systemd sees the masks now and not at the next boot.
func (s *Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	s.mu.Lock()
	ap := s.appliers[p]
	delete(s.appliers, p)
	s.mu.Unlock()
	err := engine.ApplyChanges(ctx, p)
	if ap != nil {
		// The masks made so far take effect even when a signal stopped the run between
		// changes: the reload is part of them.
		rctx, cancel := engine.ChangeContext(ctx, 0)
		if rerr := ap.reloadIfDirty(rctx); rerr != nil && err == nil {
			err = rerr
		}
		cancel()
	}
	return err
}

// observe asks systemd about the units in the plan's scope only (see scope): their unit
// files' states and, of those loaded, their run states.
func observe(ctx context.Context, env *engine.Env, m systemd.Manager, allow map[string]want) (*observed, error) {
	recs, err := loadRecords(env.Root)
	if err != nil {
		return nil, err
	}
	names, err := scope(env.Root, allow, recs, env.Restarts.Pending())
	if err != nil {
		return nil, err
	}
	files, err := m.ListUnitFiles(ctx, names...)
	if err != nil {
		return nil, err
	}
	units, err := m.ListLoadedUnits(ctx, names...)
	if err != nil {
		return nil, err
	}
	o := &observed{files: map[string]systemd.UnitFile{}, units: map[string]systemd.Unit{}, recs: recs}
	for _, f := range files {
		o.files[f.Name] = f
	}
	for _, u := range units {
		o.units[u.Name] = u
	}
	return o, nil
}

// selfUnit is the unit harden runs in at boot.
const selfUnit = "harden.service"

// orderedAfterSelf returns the units whose start jobs cannot finish while
// harden.service is starting, or nil when harden.service is not starting.
//
// At boot this step runs inside harden.service's own start job, and
// harden.service is Before= ssh.service and clamav (so they start with the
// hardened configuration), and harden-watch is After= it. systemd runs a
// start job only once every job of the units it is ordered after is done, so
// a start of any of those units queued now waits for harden.service, which
// waits for this step: waiting for that job is a deadlock that only the job
// timeout ends. For these units the step therefore only queues the start
// (the boot transaction usually has queued it already, see Unit.Starting)
// and does not wait; systemd starts them as soon as harden.service is done,
// and the daily drift check (`harden apply --dry-run`) sees whether they run.
//
// Why the unit's own ordering and not "is the caller harden.service": the
// ordering is what makes the wait impossible, and it is read from systemd
// (harden.service's Before=, which also lists the units that say After=
// harden.service), so it stays right when the unit file changes. When
// harden.service is not starting (a run by hand, the daily check) nothing
// waits for it, and every start is waited for as before. A unit ordered after
// harden.service only through another unit is not caught here; its wait is
// still bounded by the job timeout.
func orderedAfterSelf(ctx context.Context, m systemd.Manager, o *observed) (map[string]bool, error) {
	self, ok := o.units[selfUnit]
	if !ok || !self.Starting() {
		return nil, nil
	}
	after, err := m.OrderedAfter(ctx, selfUnit)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(after))
	for _, n := range after {
		set[n] = true
	}
	return set, nil
}

// planWanted makes an allowed unit what its rule ensures: unmasked if harden
// masked it, enabled, started.
func planWanted(p *engine.Plan, ap *applier, o *observed, w want, starting map[string]bool) {
	f, exists := o.file(w.Name)
	if !exists {
		if w.Ensure == EnsureAllowed {
			return
		}
		sev, hint := engine.Warning, ""
		if w.Optional {
			sev, hint = engine.Info, " (run `harden install`)"
		}
		p.Find(&engine.Finding{ID: "services.unit-missing", Severity: sev, Object: unitObj(w.Name),
			Message: fmt.Sprintf("%s should be %s but has no unit file%s", w.Name, w.Ensure, hint), Reason: w.Reason})
		return
	}
	state := f.State
	if state.IsMasked() {
		if state != systemd.Masked || !o.recs.has(f.Name) {
			if w.Ensure != EnsureAllowed {
				p.Find(&engine.Finding{ID: "services.allowed-but-masked", Severity: engine.Warning, Object: unitObj(w.Name),
					Message: fmt.Sprintf("%s should be %s but someone else masked it (%s); harden leaves foreign masks alone",
						w.Name, w.Ensure, f.Path), Reason: w.Reason})
			}
			return
		}
		p.Add(&engine.Change{Object: unitObj(f.Name), Action: engine.ActionUnmask, Before: "masked by harden",
			After: "unmasked", Reason: w.Reason, Do: ap.unmask(f.Name)})
		state = "" // unknown until unmasked: enable/start below are no-ops when not needed
	}
	if (w.Ensure == EnsureEnabled || w.Ensure == EnsureRunning) && (state == "" || state == systemd.Disabled) {
		before := string(state)
		if before == "" {
			before = "masked"
		}
		p.Add(&engine.Change{Object: unitObj(w.Name), Action: engine.ActionEnable, Before: before, After: "enabled",
			Reason: w.Reason, Do: ap.enable(w.Name)})
	}
	if w.Ensure != EnsureRunning {
		return
	}
	u, active := o.active(w.Name)
	// A unit with a start job queued (at boot, waiting in the boot
	// transaction for harden.service) or activating is on its way up: a
	// start from here would merge into that job, and the re-plan must see
	// the same state as satisfied. A unit just unmasked is started anyway.
	if (active || u.Starting()) && state != "" {
		return
	}
	after := "active"
	if o.afterSelf[w.Name] {
		after = "start queued (runs after " + selfUnit + ")"
	}
	p.Add(&engine.Change{Object: unitObj(w.Name), Action: engine.ActionStart, Before: runState(u),
		After: after, Reason: w.Reason, Do: ap.start(w.Name)})
	starting[w.Name] = true
}

// planMasks masks every enabled unit file that is neither allowed nor
// essential, stops harden-masked units that still run, and reports masks
// harden did not make.
func planMasks(p *engine.Plan, ap *applier, o *observed, allow map[string]want) map[string]bool {
	masking := map[string]bool{}
	for _, f := range sortedFiles(o.files) {
		_, allowed := lookup(allow, f.Name)
		switch {
		case f.State.IsEnabled() && !allowed && !isEssential(f.Name):
			if planMask(p, ap, o, f) {
				masking[f.Name] = true
			}
		case f.State == systemd.Masked && o.recs.has(f.Name):
			// Masked by harden on an earlier run: make sure it is not still
			// running (a stop that failed, a unit started by hand since).
			if u, active := o.active(f.Name); active && !allowed {
				p.Add(&engine.Change{Object: unitObj(f.Name), Action: engine.ActionStop, Before: runState(u),
					After: "inactive", Reason: "services.allow (not listed; masked by harden)", Do: ap.stop(f.Name)})
			}
		case f.State.IsMasked() && !vendorMask(f.Path):
			if _, ok := lookup(allow, f.Name); ok {
				continue // reported by planWanted when it matters
			}
			p.Find(&engine.Finding{ID: "services.foreign-mask", Severity: engine.Info, Object: unitObj(f.Name),
				Message: fmt.Sprintf("%s is masked (%s) but not by harden: left alone", f.Name, f.Path),
				Reason:  "services"})
		}
	}
	return masking
}

// planMask plans masking one unit and reports whether it did.
func planMask(p *engine.Plan, ap *applier, o *observed, f systemd.UnitFile) bool {
	// A unit file that lives in /etc/systemd/system itself cannot be masked
	// without deleting it (systemd refuses: the mask link goes there).
	if f.Path == "/etc/systemd/system/"+f.Name {
		p.Find(&engine.Finding{ID: "services.cannot-mask", Severity: engine.Warning, Object: unitObj(f.Name),
			Message: fmt.Sprintf("%s is enabled and not allowed, but its unit file is %s: masking would delete it; allow it in the policy or remove it",
				f.Name, f.Path), Reason: "services.allow"})
		return false
	}
	u, active := o.active(f.Name)
	before, after := string(f.State), "masked"
	if active {
		before += ", " + runState(u)
		after += ", stopped"
	}
	p.Add(&engine.Change{Object: unitObj(f.Name), Action: engine.ActionMask, Before: before, After: after,
		Reason: "services.allow (not listed)", Do: ap.mask(f.Name, active)})
	return true
}

// planRestarts runs the restarts other steps queued, once each. A unit this
// plan starts anyway, or that is not running, needs no restart: the next
// start reads the new configuration. A unit this plan masks is not
// restarted either (its mask change drains the request).
func planRestarts(p *engine.Plan, ap *applier, o *observed, env *engine.Env, starting, masking map[string]bool) {
	for _, r := range env.Restarts.Pending() {
		why := strings.Join(r.Reasons, "; ")
		switch {
		case masking[r.Unit]:
			continue
		case starting[r.Unit]:
			ap.alsoDone(r.Unit)
			continue
		case queuedStart(o.units[r.Unit]):
			// Its start job has not run yet: the unit will read the new
			// configuration when it starts. Nothing to do or report.
			continue
		}
		if f, ok := o.file(r.Unit); ok && f.State.IsMasked() {
			p.Find(&engine.Finding{ID: "services.restart-skipped", Severity: engine.Warning, Object: unitObj(r.Unit),
				Message: fmt.Sprintf("restart of %s not run: the unit is masked (asked for: %s)", r.Unit, why)})
			continue
		}
		u, active := o.active(r.Unit)
		if !active {
			p.Find(&engine.Finding{ID: "services.restart-skipped", Severity: engine.Info, Object: unitObj(r.Unit),
				Message: fmt.Sprintf("restart of %s not needed: it is %s (asked for: %s)", r.Unit, runState(u), why)})
			continue
		}
		p.Add(&engine.Change{Object: unitObj(r.Unit), Action: engine.ActionRestart, Before: runState(u),
			After: "restarted", Reason: why, Do: ap.restart(r.Unit)})
	}
}

// planReload makes the daemon-reloads other steps asked for (engine.RestartQueue) the last
// change of the plan: one reload, which also serves this plan's own masks and enablements
// (Apply's reload after it finds nothing left to reload).
func planReload(p *engine.Plan, ap *applier, env *engine.Env) {
	reasons := env.Restarts.ReloadRequests()
	if len(reasons) == 0 {
		return
	}
	p.Add(&engine.Change{Object: "systemd manager (daemon-reload)", Action: engine.ActionReload,
		Reason: strings.Join(reasons, "; "), Do: func(ctx context.Context) error {
			ap.setDirty(false)
			if err := ap.reloadIfDirty(ctx); err != nil {
				return err
			}
			env.Restarts.ReloadDone()
			return nil
		}})
}

// sortedFiles orders unit files so that triggers (sockets, paths, timers)
// are masked and stopped before the services they start.
func sortedFiles(files map[string]systemd.UnitFile) []systemd.UnitFile {
	out := make([]systemd.UnitFile, 0, len(files))
	for _, f := range files {
		out = append(out, f)
	}
	rank := func(n string) int {
		switch path.Ext(n) {
		case ".socket", ".path", ".timer":
			return 0
		}
		return 1
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].Name), rank(out[j].Name)
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// vendorMask reports a mask shipped by a package (a /dev/null link in
// /lib or /usr/lib), which is part of the OS and not worth a finding.
func vendorMask(p string) bool {
	return strings.HasPrefix(p, "/lib/") || strings.HasPrefix(p, "/usr/lib/")
}

// queuedStart reports a unit that is not running yet but has a start job
// waiting (not an activating one, which may have read its configuration).
func queuedStart(u systemd.Unit) bool { return !u.Active() && u.Starting() }

func unitObj(name string) string { return "unit " + name }

func runState(u systemd.Unit) string {
	if u.ActiveState == "" {
		return "inactive"
	}
	if u.SubState == "" {
		return u.ActiveState
	}
	return u.ActiveState + " (" + u.SubState + ")"
}
