// Package packages is the packages step: it purges the packages the policy's remove list
// names, reports installed packages that are not on the approved list, and keeps an audit
// log of system updates: at every run it records each package installed, removed, upgraded
// or downgraded since the last run (with versions) as its own journal entry, and saves the
// new package set.
//
// It reads dpkg's status database directly (no dpkg-query per run: it costs a process and
// tens of milliseconds for what a 1 MB parse does in a few) and only execs dpkg to purge.
package packages

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/dpkg"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/install"
)

// Paths the step reads and writes.
const (
	StatusPath = dpkg.StatusPath
	// SnapshotPath holds the package set of the last run, for the update log.
	SnapshotPath = "/var/lib/harden/packages.json"
	// ImageStampPath is written by `harden stamp` at image build; the update log records it.
	ImageStampPath = install.StampFile
)

// Actions of the update-log changes: what happened to a package since the last run. They
// are past tense on purpose: harden records them, it did not do them.
const (
	ActionInstalled  = "installed"
	ActionRemoved    = "removed"
	ActionUpgraded   = "upgraded"
	ActionDowngraded = "downgraded"
	ActionPurge      = "purge"
)

// Options are the step's handles.
type Options struct {
	// Dpkg is the dpkg binary ("" = "dpkg" from PATH).
	Dpkg string
}

// Step is the packages step.
type Step struct{ opts Options }

// New returns the packages step.
func New(opts Options) *Step {
	if opts.Dpkg == "" {
		opts.Dpkg = "dpkg"
	}
	return &Step{opts: opts}
}

// Name implements engine.Step.
func (*Step) Name() string { return "packages" }

func readInstalled(env *engine.Env) ([]dpkg.Pkg, bool, error) {
	return dpkg.ReadInstalled(env.Root)
}

// Plan implements engine.Step. Changes come in the order Apply makes them: purges, then the
// update-log records and the snapshot that saves them.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	installed, ok, err := readInstalled(env)
	if err != nil {
		return nil, err
	}
	if !ok {
		p.Find(&engine.Finding{ID: "packages.dpkg-missing", Severity: engine.Warning, Object: StatusPath,
			Message: "no dpkg status database: packages cannot be audited", Reason: "packages"})
		return p, nil
	}
	purging := planPurges(env, p, installed)
	if err := audit(env, p, installed, purging); err != nil {
		return nil, err
	}
	if err := planUpdateLog(env, p, installed, purging); err != nil {
		return nil, err
	}
	return p, nil
}

// planPurges plans one purge change per installed package on the remove list (every
// architecture of it).
func planPurges(env *engine.Env, p *engine.Plan, installed []dpkg.Pkg) map[string]bool {
	purging := map[string]bool{}
	for i, name := range env.Policy.Packages.Remove {
		for _, pkg := range installed {
			if pkg.Name != name || purging[pkg.Key()] {
				continue
			}
			purging[pkg.Key()] = true
			p.Add(&engine.Change{
				Object: "package " + pkg.Key(), Action: ActionPurge,
				Before: pkg.Version, After: "purged",
				Reason: fmt.Sprintf("packages.remove[%d]", i),
			})
		}
	}
	return purging
}

// Apply implements engine.Step: one dpkg call purges everything planned (one dpkg lock, one
// trigger run), then the package set as it now is becomes the snapshot. The snapshot is saved
// even when the purge failed, so the update log never repeats itself; the purge error is the
// step's error and the re-plan shows what is still installed.
func (s *Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	var purges, records []*engine.Change
	for _, c := range p.Changes {
		if c.Action == ActionPurge {
			purges = append(purges, c)
		} else {
			records = append(records, c)
		}
	}
	// One dpkg call is one change as far as a signal goes: it runs to its end (or to
	// packages.timeout, then SIGTERM and a grace period), never killed half-way.
	pctx, cancel := engine.ChangeContext(ctx, env.Policy.Packages.Timeout.D()+command.DefaultGrace+5*time.Second)
	purgeErr := s.purge(pctx, env, purges)
	cancel()
	installed, _, err := readInstalled(env)
	if err != nil {
		return err
	}
	if len(records) > 0 {
		if err := saveSnapshot(env, installed); err != nil {
			return err
		}
		for _, c := range records {
			c.Applied = true
		}
	}
	gone := map[string]bool{}
	for _, c := range purges {
		gone[strings.TrimPrefix(c.Object, "package ")] = true
	}
	for _, pkg := range installed {
		delete(gone, pkg.Key())
	}
	for _, c := range purges {
		c.Applied = gone[strings.TrimPrefix(c.Object, "package ")]
	}
	return purgeErr
}

// purge runs `dpkg --purge` on the planned packages, bounded by packages.timeout. dpkg, not
// apt-get: apt-get would also remove whatever depends on a package (more than the plan
// says); dpkg refuses, names the dependents, and removes nothing it was not asked to. No
// prompts: DEBIAN_FRONTEND=noninteractive, and conffile questions do not arise on purge.
func (s *Step) purge(ctx context.Context, env *engine.Env, purges []*engine.Change) error {
	if len(purges) == 0 {
		return nil
	}
	args := []string{"--purge"}
	if env.Root.Dir() != "/" {
		args = append([]string{"--root=" + env.Root.Dir()}, args...)
	}
	for _, c := range purges {
		args = append(args, strings.TrimPrefix(c.Object, "package "))
	}
	env.Progress.Update("packages", fmt.Sprintf("purging %d package(s)", len(purges)))
	defer env.Progress.Done("packages")
	res, err := env.Exec.Run(ctx, command.Cmd{
		Name:    s.opts.Dpkg,
		Args:    args,
		Env:     []string{"DEBIAN_FRONTEND=noninteractive", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Timeout: env.Policy.Packages.Timeout.D(),
	})
	for _, stream := range [][]byte{res.Stdout, res.Stderr} {
		for _, line := range strings.Split(string(stream), "\n") {
			if l := strings.TrimSpace(line); l != "" {
				env.Log.WithField("program", "dpkg").Info(l)
			}
		}
	}
	return err
}
