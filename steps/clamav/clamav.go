// Package clamav is the clamav step: it sets the keys harden owns in clamd.conf (on-access
// scanning, VirusEvent) and freshclam.conf (mirror) key by key and leaves every other line
// as Debian's packaging wrote it; it updates the signatures with freshclam once per boot,
// bounded in time and backing off when the CDN says so; and it judges the signatures by the
// build time in their headers, not by freshclam's exit code (a rate-limited freshclam exits
// 0 without updating). It also checks what on-access scanning needs from the machine:
// memory for clamd and enough inotify watches for clamonacc.
//
// clamd and clamonacc are started by the services step; this step only asks for restarts.
package clamav

import (
	"context"
	"time"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/install"
)

// Debian's file locations.
const (
	ClamdConf     = "/etc/clamav/clamd.conf"
	FreshclamConf = "/etc/clamav/freshclam.conf"
	DefaultDBDir  = "/var/lib/clamav"
	// StatePath records freshclam attempts (time, boot, result) for the back-off.
	StatePath = "/var/lib/harden/freshclam.json"
	// DownloadLockPath is held for the length of a signature download, by whichever run makes
	// it: downloads are one at a time, and the run lock (/run/harden.lock) is not held for
	// them by harden freshclam, so a person's apply or dry-run never waits minutes for the CDN.
	// In its own directory: the run lock's directory lock is /run's.
	DownloadLockPath = "/run/harden-freshclam/lock"
	// HardenPath is where images install harden (the same path every unit runs); VirusEvent
	// calls it.
	HardenPath = install.Binary
)

// Units the step asks the services step to restart when clamd.conf changed. clamonacc reads
// its OnAccess* settings from clamd.conf too.
var restartUnits = []string{"clamav-daemon.service", "clamav-clamonacc.service"}

// Options are the step's handles.
type Options struct {
	// Freshclam is the freshclam binary ("" = "freshclam" from PATH).
	Freshclam string
	// HardenPath is the harden binary VirusEvent runs ("" = HardenPath).
	HardenPath string
	// RetryAfterFailure is the longest wait between freshclam attempts after failures
	// (0 = 1h). The CDN's own cool-down (freshclam.dat) can be longer.
	RetryAfterFailure time.Duration
	// Offline: harden works on a directory tree (--root), not on this machine: files are
	// written, nothing is loaded into this machine's kernel (clamd's AppArmor profile).
	Offline bool
	// FirstRetry is the wait after the first failure of a boot; each further failure in
	// the same boot doubles it, up to RetryAfterFailure (0 = 1m).
	FirstRetry time.Duration
}

func (opts Options) withDefaults() Options {
	if opts.Freshclam == "" {
		opts.Freshclam = "freshclam"
	}
	if opts.HardenPath == "" {
		opts.HardenPath = HardenPath
	}
	if opts.RetryAfterFailure == 0 {
		opts.RetryAfterFailure = time.Hour
	}
	if opts.FirstRetry == 0 {
		opts.FirstRetry = time.Minute
	}
	return opts
}

// Step is the clamav step.
type Step struct{ opts Options }

// New returns the clamav step.
func New(opts Options) *Step {
	return &Step{opts: opts.withDefaults()}
}

// Name implements engine.Step.
func (*Step) Name() string { return "clamav" }

// Plan implements engine.Step. The order of changes is the order Apply makes them: settings
// first, then the kernel limit and directories. The signature update is the freshclam step's
// (it needs the network; see Freshclam); this step judges the signatures the machine has.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	if !env.Policy.ClamAV.Enabled {
		return p, nil
	}
	clamd, err := s.planClamd(env, p)
	if err != nil {
		return nil, err
	}
	fresh, err := s.planFreshclamConf(env, p)
	if err != nil {
		return nil, err
	}
	if clamd != nil && len(env.Policy.ClamAV.OnAccessPaths) > 0 {
		if err := planInotify(env, p); err != nil {
			return nil, err
		}
		if err := planQuarantine(env, p); err != nil {
			return nil, err
		}
		if err := planClamdTempDir(env, p, clamdUser(clamd)); err != nil {
			return nil, err
		}
		if err := s.planAppArmor(env, p, env.Policy.ClamAV.OnAccessPaths); err != nil {
			return nil, err
		}
	}
	checkMemory(env, p)
	dbDir := DefaultDBDir
	if fresh != nil {
		dbDir = dbDirOf(fresh)
	}
	checkDatabases(env, p, dbDir)
	return p, nil
}

// Apply implements engine.Step.
func (*Step) Apply(ctx context.Context, _ *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}
