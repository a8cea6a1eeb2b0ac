package clamav

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/internal/testutil/proc"
)

func TestParseHeader(t *testing.T) {
	built := time.Date(2026, 11, 22, 9, 37, 0, 0, time.UTC)
	h, err := ParseHeader(SyntheticHeader(built, 27100, 2071234))
	require.NoError(t, err)
	assert.Equal(t, built, h.Built)
	assert.Equal(t, 27100, h.Version)
	assert.Equal(t, 2071234, h.Sigs)
	assert.Equal(t, "harden-test", h.Builder)

	// Without stime (older headers) the human build time is used, with its zone.
	old := "ClamAV-VDB:13 Oct 2021 09-37 -0400:62:6647427:90:4dd5a29f3b5b2ea1ccb1bdcc1d5b3e6d:sig:sigmgr"
	h, err = ParseHeader([]byte(old + strings.Repeat(" ", HeaderSize-len(old))))
	require.NoError(t, err)
	assert.Equal(t, time.Date(2021, 10, 13, 13, 37, 0, 0, time.UTC), h.Built)
	assert.Equal(t, 62, h.Version)

	for _, bad := range [][]byte{
		[]byte("ClamAV-VDB:short"),
		[]byte(strings.Repeat("x", HeaderSize)),
		[]byte("ClamAV-VDB:13 Oct 2021 09-37 -0400:notanumber:1:90:m:s:b:1" + strings.Repeat(" ", 460)),
		[]byte("ClamAV-VDB:yesterday:62:1:90:m:s:b" + strings.Repeat(" ", 480)),
	} {
		_, err := ParseHeader(bad)
		assert.Error(t, err, "%.30q", bad)
	}
}

// sigtool, ClamAV's own database tool, reads the synthetic header the same way (its
// integrity check fails: there is no real signature, which is why we do not use its exit
// code). Real databases are parsed when the machine has any; this one has none in
// /var/lib/clamav (the image ships them), so the synthetic header stands in.
func TestHeaderAgreesWithSigtool(t *testing.T) {
	sigtool := need.Tool(t, "sigtool")
	built := time.Date(2026, 11, 20, 7, 47, 0, 0, time.UTC)
	file := filepath.Join(t.TempDir(), "daily.cvd")
	require.NoError(t, os.WriteFile(file, append(SyntheticHeader(built, 27107, 2000), "body"...), 0o644))
	out, _ := exec.Command(sigtool, "--info", file).CombinedOutput()
	assert.Contains(t, string(out), "Build time: 20 Nov 2026 07:47 +0000")
	assert.Contains(t, string(out), "Version: 27107")
	h, err := ReadHeader(file)
	require.NoError(t, err)
	assert.Equal(t, built, h.Built)

	real, _ := filepath.Glob("/var/lib/clamav/*.c[lv]d")
	if len(real) == 0 {
		t.Log("no real .cvd/.cld on this machine: checked against a synthetic header only")
	}
	for _, f := range real {
		h, err := ReadHeader(f)
		require.NoError(t, err, f)
		out, _ := exec.Command(sigtool, "--info", f).CombinedOutput()
		assert.Contains(t, string(out), fmt.Sprintf("Version: %d", h.Version), f)
		assert.Contains(t, string(out), "Build time: "+h.Built.In(time.Local).Format("02 Jan 2006 15:04"), f)
	}
}

func TestDatabaseFreshness(t *testing.T) {
	plan := func(env *engine.Env) *engine.Plan {
		p := &engine.Plan{}
		checkDatabases(env, p, DefaultDBDir)
		return p
	}
	env, _ := testEnv(t, nil, nil) // daily 6h old, max_db_age 3d
	assert.Empty(t, plan(env).Findings)

	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	f := finding(plan(env), "clamav.database-stale")
	require.NotNil(t, f)
	assert.Equal(t, engine.Warning, f.Severity)
	assert.Contains(t, f.Message, "daily version 27090")

	// A newer daily.cvd next to an old daily.cld: clamd loads the higher version.
	writeDB(t, env, "daily.cvd", enginetest.Now.Add(-time.Hour), 27095)
	assert.Empty(t, plan(env).Findings)
	require.NoError(t, os.Remove(env.Root.Path("/var/lib/clamav/daily.cvd")))

	writeDB(t, env, "daily.cld", enginetest.Now.Add(-7*24*time.Hour), 27050)
	assert.Equal(t, engine.Critical, finding(plan(env), "clamav.database-stale").Severity)

	require.NoError(t, os.Remove(env.Root.Path("/var/lib/clamav/daily.cld")))
	f = finding(plan(env), "clamav.database-missing")
	require.NotNil(t, f)
	assert.Equal(t, engine.Critical, f.Severity)

	enginetest.WriteFile(t, env, "/var/lib/clamav/daily.cld", "garbage")
	assert.NotNil(t, finding(plan(env), "clamav.database-unreadable"))
}

func readRecord(t *testing.T, env *engine.Env) attempt {
	t.Helper()
	data, err := env.Root.ReadFile(StatePath)
	require.NoError(t, err)
	var a attempt
	require.NoError(t, json.Unmarshal(data, &a))
	return a
}

func updateOnly(env *engine.Env) {
	env.Policy.ClamAV.OnAccessPaths = nil // keep plans about freshclam
}

func TestFreshclamUpdatesOncePerBoot(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	fake.fn = func(_ context.Context, c command.Cmd) (command.Result, error) {
		assert.Equal(t, 60*time.Second, c.Timeout, "bounded by clamav.freshclam.timeout")
		assert.Contains(t, c.Args, "--config-file="+env.Root.Path(FreshclamConf))
		assert.Contains(t, c.Args, "--datadir="+env.Root.Path(DefaultDBDir))
		writeDB(t, env, "daily.cld", enginetest.Now.Add(-2*time.Hour), 27104)
		return command.Result{Stdout: []byte("daily.cld updated (version: 27104)\n")}, nil
	}
	rep := enginetest.Converges(t, env, NewFreshclam(Options{}))
	assert.Equal(t, 1, fake.count())
	assert.Empty(t, rep.Steps[0].Findings, "fresh after the update: no finding")
	a := readRecord(t, env)
	assert.True(t, a.OK)
	assert.Equal(t, 27104, a.Daily)
	assert.Equal(t, "0b1c2d3e-0000-4000-8000-000000000001", a.BootID)

	// Next boot: one more run.
	enginetest.WriteFile(t, env, BootIDPath, "next-boot\n")
	enginetest.Converges(t, env, NewFreshclam(Options{}))
	assert.Equal(t, 2, fake.count())
}

// The clamav step never runs freshclam (its own step and unit do, and under harden boot it
// runs in the background): the app must not wait for the network. The step still judges the
// signatures it finds.
func TestClamavStepNeverRunsFreshclam(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	rep := enginetest.Converges(t, env, New(Options{}))
	assert.Zero(t, fake.count(), "freshclam is not run")
	for _, c := range rep.Steps[0].Changes {
		assert.NotContains(t, c.Object, "signatures", "no update planned")
	}
	var ids []string
	for _, f := range rep.Steps[0].Findings {
		ids = append(ids, f.ID)
	}
	assert.Contains(t, ids, "clamav.database-stale", "the 4-day-old daily is still judged")
}

func TestFreshclamFailureBacksOff(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	fake.fn = func(_ context.Context, c command.Cmd) (command.Result, error) {
		res := command.Result{Stdout: []byte("ERROR: Can't connect to port 443 of host database.clamav.net\n"), ExitCode: 11}
		return res, &command.ExitError{Cmd: c, Result: res, Err: fmt.Errorf("exit status 11")}
	}
	step := NewFreshclam(Options{})
	rep := enginetest.Converges(t, env, step)
	assert.NotEqual(t, engine.StatusFailed, rep.Steps[0].Status, "a failed update does not fail the step")
	a := readRecord(t, env)
	assert.False(t, a.OK)
	assert.Contains(t, a.Error, "Can't connect")
	assert.Equal(t, enginetest.Now.Add(time.Minute), a.RetryAfter, "the first retry comes a minute later")

	// The re-plan reports it.
	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Contains(t, finding(plan, "clamav.freshclam-failed").Message, "Can't connect")

	// Within the same boot it retries, each wait twice the last: 1m, 2m, 4m, ... up to 1h.
	at := enginetest.Now
	for i, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		at = at.Add(wait - time.Second)
		env.Now = func() time.Time { return at }
		plan, err = step.Plan(context.Background(), env)
		require.NoError(t, err)
		assert.Empty(t, updates(plan), "attempt %d came before its back-off", i+2)
		at = at.Add(time.Second)
		enginetest.Converges(t, env, step)
		assert.Equal(t, i+2, fake.count())
		assert.Equal(t, i+2, readRecord(t, env).Failures)
	}
	assert.Equal(t, at.Add(16*time.Minute), readRecord(t, env).RetryAfter)
	assert.Equal(t, time.Hour, step.backoff(20), "the back-off stops at RetryAfterFailure")

	// A reboot inside the back-off: a back-off finding, no attempt; after it, one attempt.
	enginetest.WriteFile(t, env, BootIDPath, "boot-2\n")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, updates(plan))
	assert.Contains(t, finding(plan, "clamav.freshclam-backoff").Message, "the last attempt failed")
	env.Now = func() time.Time { return at.Add(17 * time.Minute) }
	enginetest.Converges(t, env, step)
	assert.Equal(t, 6, fake.count())
	assert.Equal(t, 1, readRecord(t, env).Failures, "a new boot starts the back-off over")

	// Once it succeeds, nothing more this boot.
	fake.fn = func(context.Context, command.Cmd) (command.Result, error) {
		writeDB(t, env, "daily.cld", env.Now().Add(-time.Hour), 27200)
		return command.Result{}, nil
	}
	env.Now = func() time.Time { return at.Add(time.Hour) }
	enginetest.Converges(t, env, step)
	next, done, err := NextUpdate(env)
	require.NoError(t, err)
	assert.True(t, done, "next %s", next)
	env.Now = func() time.Time { return at.Add(3 * time.Hour) }
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, updates(plan))
}

// A rate-limited freshclam exits 0 without updating: the header says stale, so it counts as
// a failure and backs off.
func TestFreshclamExitZeroWithoutUpdate(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-5*24*time.Hour), 27080)
	rep := enginetest.Converges(t, env, NewFreshclam(Options{}))
	assert.Equal(t, 1, fake.count())
	assert.Equal(t, "freshclam exited 0 but daily 27080 is still from 2026-11-18T12:00:00Z (rate-limited or mirror stale?)",
		rep.Steps[0].Changes[0].Refused)
	a := readRecord(t, env)
	assert.False(t, a.OK)
	assert.Contains(t, a.Error, "exited 0 but daily 27080 is still from")
	assert.False(t, a.RetryAfter.IsZero())
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.NotNil(t, finding(plan, "clamav.database-stale"), "the clamav step judges the signatures")
}

func datFile(retryAfter time.Time) []byte {
	b := []byte(datMagic)
	body := make([]byte, 77)
	binary.LittleEndian.PutUint32(body, 1)
	copy(body[4:], "72399a62-ea0c-43ed-9f69-f6c9df718c8f")
	binary.LittleEndian.PutUint64(body[48:], uint64(retryAfter.Unix()))
	return append(b, body...)
}

func TestCDNCooldownRespected(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	until := enginetest.Now.Add(3 * time.Hour)
	enginetest.WriteFile(t, env, "/var/lib/clamav/freshclam.dat", string(datFile(until)))
	got, err := ParseFreshclamDat(datFile(until))
	require.NoError(t, err)
	assert.Equal(t, until.Unix(), got.Unix())

	plan, err := NewFreshclam(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, updates(plan))
	assert.Contains(t, finding(plan, "clamav.freshclam-backoff").Message, "CDN asked for a cool-down")
	assert.Zero(t, fake.count())

	env.Now = func() time.Time { return until.Add(time.Minute) }
	plan, err = NewFreshclam(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Len(t, updates(plan), 1)

	_, err = ParseFreshclamDat([]byte("FreshClamData"))
	assert.Error(t, err)
}

// A freshclam that hangs (and leaves a child behind) is killed at the policy's deadline,
// process group and all, and the run goes on.
func TestFreshclamHangKilledAtDeadline(t *testing.T) {
	env, _ := testEnv(t, testPolicy(func(p *policy.Policy) { p.ClamAV.Freshclam.Timeout = policy.Duration(time.Second) }), nil)
	updateOnly(env)
	dir := t.TempDir()
	script := filepath.Join(dir, "freshclam")
	pidFile := filepath.Join(dir, "child.pid")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 60 &\necho $! > "+pidFile+"\nwait\n"), 0o755))
	env.Exec = command.Exec{}
	start := time.Now()
	rep, mem := enginetest.Run(t, env, false, NewFreshclam(Options{Freshclam: script}))
	assert.Less(t, time.Since(start), 10*time.Second)
	a := readRecord(t, env)
	assert.False(t, a.OK)
	assert.Contains(t, a.Error, "stopped (SIGTERM) after")
	// The update did not happen: recorded as refused, never as an applied change.
	c := rep.Steps[0].Changes[len(rep.Steps[0].Changes)-1]
	require.Equal(t, "signatures /var/lib/clamav", c.Object)
	assert.False(t, c.Applied)
	assert.Equal(t, a.Error, c.Refused)
	for _, e := range mem.ByID(changelog.MsgChange) {
		assert.NotEqual(t, c.Object, e.Fields["HARDEN_OBJECT"], "a failed update recorded as an applied change")
	}
	require.Len(t, mem.ByID(changelog.MsgRefused), 1)
	assert.Equal(t, "signatures /var/lib/clamav", mem.ByID(changelog.MsgRefused)[0].Fields["HARDEN_OBJECT"])
	enginetest.Converges(t, env, NewFreshclam(Options{Freshclam: script}))
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return proc.Exited(pid) }, 5*time.Second, 50*time.Millisecond,
		"freshclam's child survived the deadline")
}

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// The real freshclam against a mirror on loopback that rate-limits (429 with Retry-After)
// or has nothing (404): harden records the failure, freshclam records the CDN cool-down in
// freshclam.dat, and the next boot neither runs freshclam nor touches the mirror until the
// cool-down is over.
func TestRealFreshclamAgainstLocalMirror(t *testing.T) {
	freshclam := need.Tool(t, "freshclam")
	need.Root(t, "freshclam drops privileges to DatabaseOwner clamav")
	need.User(t, "clamav", "the DatabaseOwner the clamav packages create")
	u, err := user.Lookup("clamav")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	for _, tc := range []struct {
		name   string
		status int
	}{{"429", http.StatusTooManyRequests}, {"404", http.StatusNotFound}} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tc.status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "7200")
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			env, _ := testEnv(t, testPolicy(func(p *policy.Policy) {
				p.ClamAV.Freshclam.Mirror = srv.URL
				p.ClamAV.Freshclam.Timeout = policy.Duration(30 * time.Second)
			}), nil)
			updateOnly(env)
			now := time.Now()
			env.Now = func() time.Time { return now }
			writeDB(t, env, "daily.cld", now.Add(-5*24*time.Hour), 27080)
			env.Exec = command.Exec{}
			// freshclam runs as clamav: it must reach and write the database directory, and
			// must not write the host's log or notify the host's clamd.
			for d := env.Root.Path(DefaultDBDir); d != "/"; d = filepath.Dir(d) {
				if strings.HasPrefix(d, os.TempDir()+"/") {
					require.NoError(t, os.Chmod(d, 0o755))
				}
			}
			require.NoError(t, os.Chown(env.Root.Path(DefaultDBDir), uid, -1))
			enginetest.Converges(t, env, New(Options{})) // the clamav step writes the mirror
			conf := readConf(t, env, FreshclamConf)
			conf.Delete("UpdateLogFile")
			conf.Delete("NotifyClamd")
			_, _ = conf.Set("MaxAttempts", "1")
			_, _ = conf.Set("ConnectTimeout", "5")
			require.NoError(t, os.WriteFile(env.Root.Path(FreshclamConf), conf.Bytes(), 0o444))

			step := NewFreshclam(Options{Freshclam: freshclam, RetryAfterFailure: time.Minute})
			start := time.Now()
			enginetest.Converges(t, env, step)
			t.Logf("freshclam took %s, mirror hit %d times", time.Since(start), hits.Load())
			assert.Positive(t, hits.Load(), "freshclam used the policy's mirror")
			a := readRecord(t, env)
			assert.False(t, a.OK)
			t.Logf("record: %+v", a)

			// Next boot, after harden's own back-off but inside the CDN's cool-down.
			before := hits.Load()
			enginetest.WriteFile(t, env, BootIDPath, "boot-2\n")
			env.Now = func() time.Time { return now.Add(10 * time.Minute) }
			plan, err := step.Plan(context.Background(), env)
			require.NoError(t, err)
			if tc.status == http.StatusTooManyRequests {
				cd := cdnCooldown(env, DefaultDBDir)
				assert.WithinDuration(t, now.Add(2*time.Hour), cd, 5*time.Minute, "freshclam.dat holds the Retry-After")
				assert.Empty(t, updates(plan))
				assert.Contains(t, finding(plan, "clamav.freshclam-backoff").Message, "CDN")
			} else {
				assert.Len(t, updates(plan), 1, "404 is not a cool-down: retry after harden's back-off")
			}
			assert.Equal(t, before, hits.Load())
		})
	}
}

// updates lists the planned freshclam runs.
func updates(p *engine.Plan) []*engine.Change {
	var out []*engine.Change
	for _, c := range p.Changes {
		if strings.HasPrefix(c.Object, "signatures ") {
			out = append(out, c)
		}
	}
	return out
}

// holdDownload holds the download lock inside env's root as another run's download would
// (exclusive, with a holder line), until the returned func is called.
func holdDownload(t *testing.T, env *engine.Env) func() {
	t.Helper()
	l, err := engine.AcquireIn(context.Background(), env.Root, DownloadLockPath, true, 0)
	require.NoError(t, err)
	var once sync.Once
	release := func() { once.Do(func() { _ = l.Release() }) }
	t.Cleanup(release)
	return release
}

// While another run downloads, a plan leaves the update to it, says so and who, and a
// dry-run of that plan changes nothing. Once the download is over, the update is planned.
func TestFreshclamLeavesARunningDownloadAlone(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	step := NewFreshclam(Options{})
	release := holdDownload(t, env)

	rep := enginetest.DryRunChangesNothing(t, env, step, func() string { return enginetest.TreeDigest(t, env.Root.Path("/")) })
	assert.Zero(t, rep.ChangeCount())
	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, updates(plan))
	f := finding(plan, "clamav.freshclam-running")
	require.NotNil(t, f, "findings: %+v", plan.Findings)
	assert.Contains(t, f.Message, "(pid ", "names the run that holds it")
	enginetest.Converges(t, env, step)
	assert.Zero(t, fake.count(), "no second download beside the running one")

	release()
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Len(t, updates(plan), 1, "the lock is free: the update is due again")
	assert.Nil(t, finding(plan, "clamav.freshclam-running"))
}

// A download that starts after the plan and is still running at the change: without a wait
// the change is refused at once, naming the holder; the machine is left as it was.
func TestFreshclamRefusedWhileAnotherRunDownloads(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	step := NewFreshclam(Options{})
	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, updates(plan), 1)

	holdDownload(t, env)
	err = updates(plan)[0].Do(context.Background())
	var refused *engine.Refusal
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, refused.Why, "a signature update is running in another run (")
	assert.Zero(t, fake.count())
	_, statErr := env.Root.Stat(StatePath)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "no attempt recorded: this run made none")
}

// Another run's attempt between this plan and its change (its download began and ended in
// between): the change is refused and the CDN is not asked a second time. An unchanged record
// downloads as planned.
func TestFreshclamLeavesAnAttemptMadeSinceThePlan(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	updateOnly(env)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-4*24*time.Hour), 27090)
	fake.fn = func(context.Context, command.Cmd) (command.Result, error) {
		writeDB(t, env, "daily.cld", enginetest.Now.Add(-time.Hour), 27300)
		return command.Result{}, nil
	}
	step := NewFreshclam(Options{})
	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, updates(plan), 1)

	other := attempt{At: enginetest.Now.Add(time.Second), BootID: "0b1c2d3e-0000-4000-8000-000000000001", OK: true, Daily: 27200}
	b, err := json.Marshal(other)
	require.NoError(t, err)
	require.NoError(t, env.Root.WriteState(StatePath, b, 0o644))
	err = updates(plan)[0].Do(context.Background())
	var refused *engine.Refusal
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, refused.Why, "another run tried to update the signatures since this plan")
	assert.Contains(t, refused.Why, "daily 27200")
	assert.Zero(t, fake.count(), "the CDN is asked once per boot, not once per run")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, updates(plan), "converged: the other run's update counts")

	// Control: the next boot, nothing new on record between plan and change: it downloads.
	enginetest.WriteFile(t, env, BootIDPath, "boot-2\n")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, updates(plan), 1)
	require.NoError(t, updates(plan)[0].Do(context.Background()))
	assert.Equal(t, 1, fake.count())
	assert.Equal(t, 27300, readRecord(t, env).Daily)
}
