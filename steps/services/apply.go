package services

import (
	"context"
	"sync"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
)

// applier makes one plan's changes. It remembers whether unit files changed
// since the last daemon-reload: systemd keeps using a unit's old load state
// (masked or not) until it reloads, so a start after an unmask must reload
// first (stale), and masks and enablements must be reloaded before the step
// ends (dirty). An enable alone does not make a start wait for a reload: its
// links change what other units pull in, not the unit being started. Under
// QEMU a reload takes 12-15 s, and a first boot used to pay one per enabled
// unit.
type applier struct {
	m        systemd.Manager
	recs     *records
	restarts *engine.RestartQueue

	mu    sync.Mutex
	dirty bool
	stale bool
	// folded are queued restarts that a planned start makes unnecessary.
	folded map[string]bool
	// noWait are units whose start is only queued, not waited for: they are
	// ordered after harden.service, which is starting (orderedAfterSelf).
	noWait map[string]bool
}

// setDirty notes a change systemd must reload before the step ends; stale,
// one it must reload before it starts a unit.
func (a *applier) setDirty(stale bool) {
	a.mu.Lock()
	a.dirty = true
	a.stale = a.stale || stale
	a.mu.Unlock()
}

// reloadIfDirty reloads when anything changed since the last reload (at the
// end of the step).
func (a *applier) reloadIfDirty(ctx context.Context) error { return a.reloadIf(ctx, false) }

// reloadIfStale reloads when a load state changed since the last reload
// (before a start or restart).
func (a *applier) reloadIfStale(ctx context.Context) error { return a.reloadIf(ctx, true) }

func (a *applier) reloadIf(ctx context.Context, onlyStale bool) error {
	a.mu.Lock()
	need := a.dirty
	if onlyStale {
		need = a.stale
	}
	if need {
		a.dirty, a.stale = false, false
	}
	a.mu.Unlock()
	if !need {
		return nil
	}
	return a.m.DaemonReload(ctx)
}

func (a *applier) alsoDone(unit string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.folded == nil {
		a.folded = map[string]bool{}
	}
	a.folded[unit] = true
}

// mask masks persistently, records the mask, then stops the unit if it ran.
// The record is written right after the mask so a run cut short does not
// leave a harden mask that looks foreign.
func (a *applier) mask(name string, stop bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := a.m.Mask(ctx, name); err != nil {
			return err
		}
		a.setDirty(true)
		if err := a.recs.update(name, true); err != nil {
			return err
		}
		if stop {
			if _, err := a.m.Stop(ctx, name); err != nil {
				return err
			}
		}
		// A restart another step queued for a unit now masked is moot.
		a.restarts.Done(name)
		return nil
	}
}

func (a *applier) unmask(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := a.m.Unmask(ctx, name); err != nil {
			return err
		}
		a.setDirty(true)
		return a.recs.update(name, false)
	}
}

func (a *applier) enable(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.reloadIfStale(ctx); err != nil {
			return err // enabling a unit systemd still holds as masked fails
		}
		if _, err := a.m.Enable(ctx, name); err != nil {
			return err
		}
		// systemctl enable reloads too: the new links change dependencies.
		a.setDirty(false)
		return nil
	}
}

func (a *applier) start(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.reloadIfStale(ctx); err != nil {
			return err
		}
		if a.noWait[name] {
			if _, err := a.m.EnqueueStart(ctx, name); err != nil {
				return err
			}
		} else if _, err := a.m.Start(ctx, name); err != nil {
			return err
		}
		a.mu.Lock()
		folded := a.folded[name]
		a.mu.Unlock()
		if folded {
			a.restarts.Done(name)
		}
		return nil
	}
}

func (a *applier) stop(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := a.m.Stop(ctx, name)
		return err
	}
}

func (a *applier) restart(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.reloadIfStale(ctx); err != nil {
			return err
		}
		if _, err := a.m.Restart(ctx, name); err != nil {
			return err
		}
		a.restarts.Done(name)
		return nil
	}
}
