package clamav

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/kvconf"
)

// Freshclam is the freshclam step: it updates the signatures once per boot, bounded in time,
// retrying within the boot with a back-off that doubles (clamav.freshclam; Options) and
// honouring the CDN's cool-down, and records every attempt. It needs the network, so at boot
// it runs in its own unit after network-online.target (harden-freshclam.service, `harden
// freshclam`), never in harden.service, which SSH waits for.
type Freshclam struct{ opts Options }

// NewFreshclam returns the freshclam step.
func NewFreshclam(opts Options) *Freshclam { return &Freshclam{opts: opts.withDefaults()} }

// Name implements engine.Step.
func (*Freshclam) Name() string { return "freshclam" }

// Plan implements engine.Step: one update when one is due.
func (s *Freshclam) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	if !env.Policy.ClamAV.Enabled {
		return p, nil
	}
	data, ok, err := env.Root.ReadFileIfExists(FreshclamConf)
	if err != nil || !ok {
		return p, err // no freshclam: the clamav step reports ClamAV missing
	}
	return p, s.planUpdate(ctx, env, p, dbDirOf(kvconf.Parse(data, kvconf.Space)))
}

// Apply implements engine.Step.
func (*Freshclam) Apply(ctx context.Context, _ *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

// NextUpdate says when the freshclam step will next plan an update: done is true when this
// boot's update succeeded (nothing more to do until the next boot). `harden freshclam` waits
// for it between runs.
// Without ClamAV, freshclam, or any attempt on record there is nothing to wait for.
func NextUpdate(env *engine.Env) (next time.Time, done bool, err error) {
	if !env.Policy.ClamAV.Enabled {
		return time.Time{}, true, nil
	}
	if _, err := env.Root.Stat(FreshclamConf); err != nil {
		return time.Time{}, true, nil
	}
	last, err := readAttempt(env)
	if err != nil {
		return time.Time{}, false, err
	}
	if last.At.IsZero() || (last.OK && sameBoot(env, last, Options{}.withDefaults().RetryAfterFailure)) {
		return time.Time{}, true, nil
	}
	dbDir := DefaultDBDir
	if data, ok, _ := env.Root.ReadFileIfExists(FreshclamConf); ok {
		dbDir = dbDirOf(kvconf.Parse(data, kvconf.Space))
	}
	next = last.RetryAfter
	if cd := cdnCooldown(env, dbDir); cd.After(next) {
		next = cd
	}
	return next, false, nil
}

// BootIDPath identifies the current boot: freshclam runs once per boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// attempt is the record of the last freshclam run, kept in StatePath.
type attempt struct {
	At     time.Time `json:"at"`
	BootID string    `json:"boot_id,omitempty"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	// RetryAfter: no new attempt before this time (after a failure or a run that left the
	// signatures stale, which is what a rate-limited run looks like).
	RetryAfter time.Time `json:"retry_after,omitzero"`
	// Failures counts the failed attempts in a row within this boot (the back-off's step).
	Failures int `json:"failures,omitempty"`
	// Daily is the daily database version after the run.
	Daily int `json:"daily,omitempty"`
}

func readAttempt(env *engine.Env) (attempt, error) {
	var a attempt
	data, ok, err := env.Root.ReadFileIfExists(StatePath)
	if err != nil || !ok {
		return a, err
	}
	if err := json.Unmarshal(data, &a); err != nil {
		// A damaged record must not stop updates: start over, say so.
		env.Log.Warnf("%s: ignoring unreadable freshclam record: %v", StatePath, err)
		return attempt{}, nil
	}
	return a, nil
}

func bootID(env *engine.Env) string {
	data, _, _ := env.Root.ReadFileIfExists(BootIDPath)
	return strings.TrimSpace(string(data))
}

// freshclamDatPath is freshclam's own state in the database directory: a UUID it sends as
// its user agent and the CDN's cool-down. It must never be baked into an image (every VM
// would share one UUID and one cool-down): StampCleanup removes it.
func freshclamDatPath(dbDir string) string { return dbDir + "/freshclam.dat" }

// datMagic precedes freshclam_dat_v1_t { uint32 version; char uuid[37]; time_t
// retry_after; } written raw by freshclam (libfreshclam): on 64-bit Linux retry_after is an
// int64 at offset 48 of the struct (uuid ends at 41, time_t is 8-aligned).
const datMagic = "FreshClamData"

// ParseFreshclamDat returns the CDN cool-down freshclam recorded (zero when none).
func ParseFreshclamDat(b []byte) (time.Time, error) {
	const structSize, retryOff = 56, 48
	if len(b) < len(datMagic)+structSize || string(b[:len(datMagic)]) != datMagic {
		return time.Time{}, fmt.Errorf("not a freshclam.dat (%d bytes)", len(b))
	}
	body := b[len(datMagic):]
	if v := binary.LittleEndian.Uint32(body); v != 1 {
		return time.Time{}, fmt.Errorf("freshclam.dat version %d, want 1", v)
	}
	sec := int64(binary.LittleEndian.Uint64(body[retryOff:]))
	if sec <= 0 {
		return time.Time{}, nil
	}
	return time.Unix(sec, 0).UTC(), nil
}

func cdnCooldown(env *engine.Env, dbDir string) time.Time {
	data, ok, err := env.Root.ReadFileIfExists(freshclamDatPath(dbDir))
	if err != nil || !ok {
		return time.Time{}
	}
	t, err := ParseFreshclamDat(data)
	if err != nil {
		env.Log.Warnf("%s: %v", freshclamDatPath(dbDir), err)
	}
	return t
}

// sameBoot reports whether the attempt was made in this boot. Without a boot ID (a test
// tree, a container), an attempt within window counts as this boot's.
func sameBoot(env *engine.Env, last attempt, window time.Duration) bool {
	if last.At.IsZero() {
		return false
	}
	if boot := bootID(env); boot != "" {
		return last.BootID == boot
	}
	return env.Now().Sub(last.At) < window
}

// planUpdate plans a freshclam run when one is due: none after this boot's run succeeded;
// after a failure, not before its back-off (and the CDN's cool-down) has passed. The re-plan
// after Apply and a second run in the same boot plan nothing until then. While another run
// downloads (it holds DownloadLockPath), nothing either: that run records the outcome.
func (s *Freshclam) planUpdate(ctx context.Context, env *engine.Env, p *engine.Plan, dbDir string) error {
	if who, held, err := engine.Held(ctx, env.Root, DownloadLockPath); err != nil {
		return err
	} else if held {
		p.Find(&engine.Finding{ID: "clamav.freshclam-running", Severity: engine.Info, Object: "freshclam",
			Message: "a signature update is running in another run" + holderSuffix(who) + ": this run leaves it alone",
			Reason:  "clamav.freshclam"})
		return nil
	}
	last, err := readAttempt(env)
	if err != nil {
		return err
	}
	now, boot := env.Now(), bootID(env)
	thisBoot := sameBoot(env, last, s.opts.RetryAfterFailure)
	if thisBoot && last.OK {
		return nil
	}
	wait, why := last.RetryAfter, "the last attempt failed: "+last.Error
	if cd := cdnCooldown(env, dbDir); cd.After(wait) {
		wait, why = cd, "the ClamAV CDN asked for a cool-down (freshclam.dat)"
	}
	if now.Before(wait) {
		if thisBoot {
			p.Find(&engine.Finding{ID: "clamav.freshclam-failed", Severity: engine.Warning, Object: "freshclam",
				Message: fmt.Sprintf("signature update at %s failed: %s (%d attempt(s) this boot; next after %s)",
					last.At.Format(time.RFC3339), last.Error, last.Failures, wait.Format(time.RFC3339)),
				Reason: "clamav.freshclam"})
			return nil
		}
		p.Find(&engine.Finding{ID: "clamav.freshclam-backoff", Severity: engine.Info, Object: "freshclam",
			Message: fmt.Sprintf("signature update skipped until %s: %s", wait.Format(time.RFC3339), why),
			Reason:  "clamav.freshclam"})
		return nil
	}
	before := "none"
	if h, _, ok, _ := findDB(env, dbDir, "daily"); ok {
		before = fmt.Sprintf("daily %d built %s", h.Version, h.Built.Format("2006-01-02 15:04"))
	}
	from := "the ClamAV CDN"
	if m := env.Policy.ClamAV.Freshclam.Mirror; m != "" {
		from = m
	}
	p.Add(&engine.Change{
		Object: "signatures " + dbDir, Action: engine.ActionUpdate,
		Before: before, After: "latest from " + from,
		Reason: "clamav.freshclam",
		Do:     func(ctx context.Context) error { return s.download(ctx, env, dbDir, boot, last) },
		// freshclam's own bound, then SIGTERM and the grace it gets to finish writing.
		Timeout: env.Policy.ClamAV.Freshclam.Timeout.D() + command.DefaultGrace + 5*time.Second,
	})
	return nil
}

func holderSuffix(who string) string {
	if who == "" {
		return ""
	}
	return " (" + who + ")"
}

// download runs freshclam under DownloadLockPath. When another run holds it (its download
// began after this plan), or made an attempt between this plan and now, the change is
// refused, not applied: this run downloaded nothing, and a second request to the CDN right
// after the first is what gets a machine rate-limited. It does not wait: a change runs to
// its end whatever the signals say, and a wait is no change (harden freshclam waits for a
// running download before it plans, where SIGTERM still stops it).
func (s *Freshclam) download(ctx context.Context, env *engine.Env, dbDir, boot string, planned attempt) error {
	lock, err := engine.AcquireIn(ctx, env.Root, DownloadLockPath, true, 0)
	var held *engine.HeldError
	if errors.As(err, &held) {
		return engine.Refuse("a signature update is running in another run%s", holderSuffix(held.Holder))
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	if now, err := readAttempt(env); err != nil {
		return err
	} else if !now.At.Equal(planned.At) {
		return engine.Refuse("another run tried to update the signatures since this plan (at %s: %s)",
			now.At.Format(time.RFC3339), outcome(now))
	}
	return s.runFreshclam(ctx, env, dbDir, boot)
}

func outcome(a attempt) string {
	if a.OK {
		return fmt.Sprintf("daily %d", a.Daily)
	}
	return "failed: " + a.Error
}

// runFreshclam runs freshclam once, bounded by clamav.freshclam.timeout (its whole process
// group is killed at the deadline), and records the outcome. Its exit code is not the
// verdict: the daily database's header afterwards is. A failed update is not a failed step
// (the run goes on; the machine keeps the image's signatures): the re-plan turns the record
// into a finding, and a stale database is a finding of its own.
func (s *Freshclam) runFreshclam(ctx context.Context, env *engine.Env, dbDir, boot string) error {
	timeout := env.Policy.ClamAV.Freshclam.Timeout.D()
	env.Progress.Update("clamav", fmt.Sprintf("freshclam: updating signatures (at most %s)", timeout))
	defer env.Progress.Done("clamav")

	old, _, hadOld, _ := findDB(env, dbDir, "daily")
	// freshclam gets the files' real places: a link in an image tree is resolved inside
	// the tree, never on the build host.
	conf, runErr := env.Root.HostPath(FreshclamConf)
	var datadir string
	if runErr == nil {
		datadir, runErr = env.Root.HostPath(dbDir)
	}
	if runErr == nil {
		var res command.Result
		res, runErr = env.Exec.Run(ctx, command.Cmd{
			Name:    s.opts.Freshclam,
			Args:    []string{"--config-file=" + conf, "--datadir=" + datadir, "--stdout"},
			Timeout: timeout,
		})
		logOutput(env, res)
	}

	a := attempt{At: env.Now(), BootID: boot, OK: true}
	cur, _, ok, hdrErr := findDB(env, dbDir, "daily")
	switch {
	case runErr != nil:
		a.OK, a.Error = false, shortErr(runErr)
	case hdrErr != nil:
		a.OK, a.Error = false, hdrErr.Error()
	case !ok:
		a.OK, a.Error = false, "freshclam exited 0 but there is no daily database"
	case env.Now().Sub(cur.Built) > env.Policy.ClamAV.Freshclam.MaxDBAge.D():
		// What a rate-limited (429) run looks like: exit 0, nothing new.
		a.OK, a.Error = false, fmt.Sprintf("freshclam exited 0 but daily %d is still from %s (rate-limited or mirror stale?)",
			cur.Version, cur.Built.Format(time.RFC3339))
	}
	if ok {
		a.Daily = cur.Version
	}
	if !a.OK {
		a.Failures = 1
		if last, err := readAttempt(env); err == nil && !last.OK && sameBoot(env, last, s.opts.RetryAfterFailure) {
			a.Failures = last.Failures + 1
		}
		a.RetryAfter = a.At.Add(s.backoff(a.Failures))
		env.Log.Warnf("freshclam: %s", a.Error)
	} else if !hadOld || cur.Version != old.Version {
		env.Log.Infof("freshclam: daily updated to version %d built %s", cur.Version, cur.Built.Format(time.RFC3339))
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := env.Root.WriteState(StatePath, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if !a.OK {
		// Not a failed step (the machine keeps the signatures it has), but not an applied
		// change either: recorded as refused, and the re-plan's finding says when next.
		return engine.Refuse("%s", a.Error)
	}
	return nil
}

// backoff is the wait after the n-th failure in a row: FirstRetry doubled n-1 times, at most
// RetryAfterFailure.
func (s *Freshclam) backoff(n int) time.Duration {
	d := s.opts.FirstRetry
	for i := 1; i < n && d < s.opts.RetryAfterFailure; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryAfterFailure)
}

// shortErr keeps the last line of freshclam's output in the record: the whole output is in
// the log already.
func shortErr(err error) string {
	if ee, ok := err.(*command.ExitError); ok {
		out := strings.TrimSpace(string(ee.Result.Stderr) + "\n" + string(ee.Result.Stdout))
		lines := strings.Split(out, "\n")
		last := strings.TrimSpace(lines[len(lines)-1])
		if command.IsTimeout(err) {
			return fmt.Sprintf("freshclam %v", ee.Err)
		}
		if last != "" {
			return fmt.Sprintf("freshclam %v: %s", ee.Err, last)
		}
		return fmt.Sprintf("freshclam %v", ee.Err)
	}
	return err.Error()
}

// logOutput passes freshclam's output to the log line by line (bounded by command's cap).
func logOutput(env *engine.Env, res command.Result) {
	for _, stream := range [][]byte{res.Stdout, res.Stderr} {
		for _, line := range bytes.Split(stream, []byte("\n")) {
			if l := strings.TrimSpace(string(line)); l != "" {
				env.Log.WithField("program", "freshclam").Info(l)
			}
		}
	}
}
