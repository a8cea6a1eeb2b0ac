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
// first, and masks must be reloaded before the step ends.
type applier struct {
	m        systemd.Manager
	recs     *records
	restarts *engine.RestartQueue

	mu    sync.Mutex
	dirty bool
	// folded are queued restarts that a planned start makes unnecessary.
	folded map[string]bool
	// noWait are units whose start is only queued, not waited for: they are
	// ordered after harden.service, which is starting (orderedAfterSelf).
	noWait map[string]bool
}

func (a *applier) setDirty() {
	a.mu.Lock()
	a.dirty = true
	a.mu.Unlock()
}

func (a *applier) reloadIfDirty(ctx context.Context) error {
	a.mu.Lock()
	dirty := a.dirty
	a.dirty = false
	a.mu.Unlock()
	if !dirty {
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
		a.setDirty()
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
		a.setDirty()
		return a.recs.update(name, false)
	}
}

func (a *applier) enable(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.reloadIfDirty(ctx); err != nil {
			return err
		}
		if _, err := a.m.Enable(ctx, name); err != nil {
			return err
		}
		// systemctl enable reloads too: the new links change dependencies.
		a.setDirty()
		return nil
	}
}

func (a *applier) start(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.reloadIfDirty(ctx); err != nil {
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
		if err := a.reloadIfDirty(ctx); err != nil {
			return err
		}
		if _, err := a.m.Restart(ctx, name); err != nil {
			return err
		}
		a.restarts.Done(name)
		return nil
	}
}
