package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every test here runs real processes (/bin/sh and what it starts): the point of the package
// is what the kernel does with them (exit statuses, signals, orphans, process groups).

// recorder keeps the Supervisor's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) log(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) of(kind EventKind, service string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == kind && (service == "*" || e.Service == service) {
			out = append(out, e)
		}
	}
	return out
}

func newSup(t *testing.T, b Backoff) (*Supervisor, *recorder) {
	t.Helper()
	rec := &recorder{}
	s, err := New(Options{Log: rec.log, Backoff: b})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s, rec
}

func sh(name, script string) Spec {
	return Spec{Name: name, Path: "/bin/sh", Args: []string{"-c", script}}
}

func waitDone(t *testing.T, sv *Service, d time.Duration) ExitStatus {
	t.Helper()
	select {
	case <-sv.Done():
		return sv.Status()
	case <-time.After(d):
		t.Fatalf("%s did not end within %s", sv.Name(), d)
		return ExitStatus{}
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestExitStatusIsTheProgramsOwn(t *testing.T) {
	s, rec := newSup(t, Backoff{})
	for _, c := range []struct {
		script string
		code   int
		sig    syscall.Signal
	}{
		{"exit 0", 0, 0},
		{"exit 7", 7, 0},
		{"exit 255", 255, 0},
		{"kill -TERM $$", 143, syscall.SIGTERM},
		{"kill -KILL $$", 137, syscall.SIGKILL},
		{"kill -SEGV $$", 139, syscall.SIGSEGV},
	} {
		sv, err := s.Start(sh("app", c.script))
		require.NoError(t, err)
		st := waitDone(t, sv, 5*time.Second)
		assert.Equal(t, c.code, st.ExitCode(), c.script)
		assert.Equal(t, c.sig, st.Signal, c.script)
	}
	assert.Empty(t, rec.of(EventOrphan, "*"), "a supervised program's exit must never be taken for an orphan's")
}

// A program that exits at once, many times over: the reaper races the registration of the
// pid every time, and must still hand every status to its service.
func TestQuickExitsNeverLoseTheirStatus(t *testing.T) {
	s, rec := newSup(t, Backoff{})
	for i := 0; i < 200; i++ {
		code := i % 5
		sv, err := s.Start(Spec{Name: "quick", Path: "/bin/sh", Args: []string{"-c", "exit " + strconv.Itoa(code)}})
		require.NoError(t, err)
		require.Equal(t, code, waitDone(t, sv, 5*time.Second).ExitCode())
	}
	assert.Empty(t, rec.of(EventOrphan, "*"))
	assert.Len(t, rec.of(EventStart, "quick"), 200)
	assert.Len(t, rec.of(EventExit, "quick"), 200)
}

func TestSignalsReachTheProgram(t *testing.T) {
	s, _ := newSup(t, Backoff{})
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	ready := filepath.Join(dir, "ready")
	script := fmt.Sprintf(`
for sig in HUP USR1 USR2 INT QUIT; do trap "echo $sig >>%[1]s" $sig; done
trap 'echo TERM >>%[1]s; exit 42' TERM
touch %[2]s
while :; do sleep 0.05; done`, got, ready)
	sv, err := s.Start(sh("app", script))
	require.NoError(t, err)
	waitFor(t, 5*time.Second, "the trap to be set", func() bool { _, err := os.Stat(ready); return err == nil })
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGQUIT} {
		require.NoError(t, sv.Signal(sig))
		name := strings.TrimPrefix(sigName(sig), "SIG")
		waitFor(t, 5*time.Second, name+" to be trapped", func() bool { return strings.Contains(readFile(t, got), name+"\n") })
	}
	require.NoError(t, sv.Signal(syscall.SIGTERM))
	st := waitDone(t, sv, 5*time.Second)
	assert.Equal(t, 42, st.ExitCode())
	assert.Equal(t, "HUP\nUSR1\nUSR2\nINT\nQUIT\nTERM\n", readFile(t, got))
	assert.ErrorIs(t, sv.Signal(syscall.SIGTERM), ErrNotRunning)
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT"}[s]
}

func TestRestartWithGrowingBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, ResetAfter: time.Hour}
	s, rec := newSup(t, b)
	starts := filepath.Join(t.TempDir(), "starts")
	spec := sh("crashy", "date +%s%N >>"+starts+"; exit 3")
	spec.Restart = Always
	sv, err := s.Start(spec)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "5 starts", func() bool { return strings.Count(readFile(t, starts), "\n") >= 5 })
	sv.Stop(context.Background())

	var delays []time.Duration
	for _, e := range rec.of(EventRestart, "crashy")[:4] {
		delays = append(delays, e.Delay)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	assert.Equal(t, want, delays, "back-off doubles up to Max")
	// The delays were really waited for: the starts are at least that far apart.
	var at []int64
	for _, l := range strings.Fields(readFile(t, starts)) {
		n, err := strconv.ParseInt(l, 10, 64)
		require.NoError(t, err)
		at = append(at, n)
	}
	for i, d := range want {
		gap := time.Duration(at[i+1] - at[i])
		assert.GreaterOrEqual(t, gap, d, "gap before start %d", i+2)
	}
	for _, e := range rec.of(EventExit, "crashy")[:4] { // the last one may be Stop's SIGTERM
		assert.Equal(t, 3, e.Status.ExitCode())
	}
	assert.GreaterOrEqual(t, sv.Restarts(), 4)
}

func TestBackoffStartsOverAfterALongRun(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: time.Second, ResetAfter: 300 * time.Millisecond}
	assert.Equal(t, 10*time.Millisecond, b.next(0, 0))
	assert.Equal(t, 40*time.Millisecond, b.next(20*time.Millisecond, time.Millisecond))
	assert.Equal(t, time.Second, b.next(800*time.Millisecond, time.Millisecond))
	assert.Equal(t, 10*time.Millisecond, b.next(800*time.Millisecond, 300*time.Millisecond))

	// And for real: a program that fails quickly twice, then runs long, then fails.
	s, rec := newSup(t, b)
	count := filepath.Join(t.TempDir(), "count")
	spec := sh("flappy", `n=$(cat `+count+` 2>/dev/null || echo 0); n=$((n+1)); echo $n >`+count+`
[ $n = 3 ] && sleep 0.5
exit 1`)
	spec.Restart = Always
	sv, err := s.Start(spec)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "4 restarts", func() bool { return len(rec.of(EventRestart, "flappy")) >= 4 })
	sv.Stop(context.Background())
	r := rec.of(EventRestart, "flappy")
	assert.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond},
		[]time.Duration{r[0].Delay, r[1].Delay, r[2].Delay, r[3].Delay}, "the third run lasted 0.5s: the back-off started over")
}

func TestOnFailureStopsAfterSuccess(t *testing.T) {
	s, rec := newSup(t, Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond, ResetAfter: time.Hour})
	count := filepath.Join(t.TempDir(), "count")
	spec := sh("update", `n=$(cat `+count+` 2>/dev/null || echo 0); n=$((n+1)); echo $n >`+count+`; [ $n -ge 3 ]`)
	spec.Restart = OnFailure
	sv, err := s.Start(spec)
	require.NoError(t, err)
	st := waitDone(t, sv, 5*time.Second)
	assert.True(t, st.Success())
	assert.Equal(t, "3\n", readFile(t, count))
	assert.Len(t, rec.of(EventRestart, "update"), 2)

	never := sh("once", "exit 1")
	sv, err = s.Start(never)
	require.NoError(t, err)
	assert.Equal(t, 1, waitDone(t, sv, 5*time.Second).ExitCode())
	assert.Empty(t, rec.of(EventRestart, "once"))
}

// An orphan (the supervised program's child whose parent exited) is re-parented to this
// process and reaped when it exits: no zombie is left, and the supervised program's own
// status, reported in the middle of it, is still its own.
func TestOrphansAreReapedWithoutStealing(t *testing.T) {
	s, rec := newSup(t, Backoff{})
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The inner shell leaves five sleepers behind and exits; the app exits 9 a moment later,
	// about when the orphans do.
	script := fmt.Sprintf(`sh -c 'for i in 1 2 3 4 5; do sleep 1 & echo $! >>%s; done'; sleep 0.95; exit 9`, pids)
	sv, err := s.Start(sh("app", script))
	require.NoError(t, err)
	waitFor(t, 5*time.Second, "the orphans' pids", func() bool { return strings.Count(readFile(t, pids), "\n") == 5 })
	orphans := strings.Fields(readFile(t, pids))
	for _, p := range orphans {
		// Once the inner shell has exited, the kernel hands its children to us, not to PID 1.
		waitFor(t, 5*time.Second, "orphan "+p+" re-parented to the subreaper", func() bool {
			return field(t, p, "PPid") == strconv.Itoa(os.Getpid())
		})
	}
	assert.Equal(t, 9, waitDone(t, sv, 5*time.Second).ExitCode())
	waitFor(t, 5*time.Second, "5 orphans reaped", func() bool { return len(rec.of(EventOrphan, "*")) == 5 })
	for _, p := range orphans {
		_, err := os.Stat("/proc/" + p)
		assert.True(t, os.IsNotExist(err), "orphan %s must be gone, not a zombie", p)
	}
	var reaped []string
	for _, e := range rec.of(EventOrphan, "*") {
		reaped = append(reaped, strconv.Itoa(e.PID))
		assert.True(t, e.Status.Success(), "sleep exits 0")
	}
	assert.ElementsMatch(t, orphans, reaped)
}

// field reads one field of /proc/PID/status.
func field(t *testing.T, pid, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%s/status", name, pid)
	return ""
}

// Stop goes in the order given; a program that ignores its stop signal is killed with its
// whole process group after its StopTimeout, and the whole shutdown stays within the bound.
func TestStopAllInOrderWithinBound(t *testing.T) {
	s, rec := newSup(t, Backoff{})
	dir := t.TempDir()
	child := filepath.Join(dir, "child")
	polite := func(name string) Spec {
		sp := sh(name, `trap 'exit 0' TERM; while :; do sleep 0.05; done`)
		sp.Restart = Always
		return sp
	}
	stubborn := sh("stubborn", `trap '' TERM; sleep 600 & echo $! >`+child+`; while :; do sleep 0.05; done`)
	stubborn.Restart = Always
	stubborn.StopTimeout = 300 * time.Millisecond
	var svs []*Service
	for _, sp := range []Spec{polite("first"), stubborn, polite("third")} {
		sv, err := s.Start(sp)
		require.NoError(t, err)
		svs = append(svs, sv)
	}
	waitFor(t, 5*time.Second, "the stubborn one's child", func() bool { return readFile(t, child) != "" })
	grandchild := strings.TrimSpace(readFile(t, child))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	StopAll(ctx, svs...)
	took := time.Since(start)

	assert.Less(t, took, 2*time.Second, "stubborn's 300ms plus two quick stops")
	var order []string
	for _, e := range rec.of(EventStop, "*") {
		order = append(order, e.Service)
	}
	assert.Equal(t, []string{"first", "stubborn", "third"}, order)
	require.Len(t, rec.of(EventKill, "*"), 1)
	assert.Equal(t, "stubborn", rec.of(EventKill, "*")[0].Service)
	assert.True(t, svs[0].Status().Success())
	assert.Equal(t, syscall.SIGKILL, svs[1].Status().Signal)
	assert.True(t, svs[2].Status().Success())
	for _, sv := range svs {
		assert.Zero(t, sv.PID())
		assert.Empty(t, rec.of(EventRestart, sv.Name()), "a stopped service is not restarted")
	}
	// The group kill took the stubborn one's child too; it was then reaped as an orphan.
	waitFor(t, 5*time.Second, "the grandchild to be gone", func() bool {
		_, err := os.Stat("/proc/" + grandchild)
		return os.IsNotExist(err)
	})
}

// With a total bound shorter than the services' own timeouts, the bound wins.
func TestStopAllBoundWins(t *testing.T) {
	s, _ := newSup(t, Backoff{})
	var svs []*Service
	for i := 0; i < 3; i++ {
		sp := sh(fmt.Sprintf("stubborn%d", i), `trap '' TERM; while :; do sleep 0.05; done`)
		sp.StopTimeout = 5 * time.Second
		sv, err := s.Start(sp)
		require.NoError(t, err)
		svs = append(svs, sv)
	}
	time.Sleep(100 * time.Millisecond) // let the traps be set
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	StopAll(ctx, svs...)
	assert.Less(t, time.Since(start), 1500*time.Millisecond)
	for _, sv := range svs {
		assert.Equal(t, syscall.SIGKILL, sv.Status().Signal, sv.Name())
	}
}

// Output goes to a writer one whole line at a time, a last line without newline included.
func TestOutputLineByLine(t *testing.T) {
	s, _ := newSup(t, Backoff{})
	var lines lineRec
	sp := sh("talker", `printf 'one\ntwo\n'; printf 'oops\n' >&2; printf 'partial'`)
	sp.Stdout, sp.Stderr = &lines, &lines
	sv, err := s.Start(sp)
	require.NoError(t, err)
	waitDone(t, sv, 5*time.Second)
	waitFor(t, 5*time.Second, "4 lines", func() bool { return len(lines.get()) == 4 })
	assert.ElementsMatch(t, []string{"one\n", "two\n", "oops\n", "partial\n"}, lines.get())
}

type lineRec struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineRec) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *lineRec) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestStartFailures(t *testing.T) {
	s, rec := newSup(t, Backoff{})
	_, err := s.Start(Spec{Name: "ghost", Path: "/nonexistent/program"})
	assert.Error(t, err)
	_, err = s.Start(Spec{Name: "unready", Path: "/bin/true", Prepare: func() error { return fmt.Errorf("no runtime dir") }})
	assert.ErrorContains(t, err, "no runtime dir")
	assert.Len(t, rec.of(EventStartFailed, "*"), 2)
	assert.Empty(t, rec.of(EventOrphan, "*"), "the failed exec's child is reaped by the fork, not taken for an orphan")
}

func TestOneSupervisorAtATime(t *testing.T) {
	_, _ = newSup(t, Backoff{})
	_, err := New(Options{})
	assert.ErrorIs(t, err, ErrActive)
}

func TestExitStatusStrings(t *testing.T) {
	assert.Equal(t, "exit 3", ExitStatus{Code: 3}.String())
	assert.Equal(t, "killed by signal 15 (SIGTERM)", ExitStatus{Signal: syscall.SIGTERM}.String())
}

// A run longer than RunTimeout is stopped and counts as a failure: OnFailure starts it again
// after the program's own back-off.
func TestRunTimeoutStopsAndRetries(t *testing.T) {
	s, rec := newSup(t, DefaultBackoff)
	count := filepath.Join(t.TempDir(), "count")
	sp := sh("update", `n=$(cat `+count+` 2>/dev/null || echo 0); n=$((n+1)); echo $n >`+count+`
[ $n -ge 2 ] && exit 0
trap 'exit 5' TERM; while :; do sleep 0.05; done`)
	sp.Restart = OnFailure
	sp.RunTimeout = 300 * time.Millisecond
	sp.Backoff = Backoff{Min: 50 * time.Millisecond, Max: time.Second, ResetAfter: time.Hour}
	sv, err := s.Start(sp)
	require.NoError(t, err)
	st := waitDone(t, sv, 5*time.Second)
	assert.True(t, st.Success(), "the second run succeeded")
	require.Len(t, rec.of(EventTimeout, "update"), 1)
	exits := rec.of(EventExit, "update")
	require.Len(t, exits, 2)
	assert.Equal(t, 5, exits[0].Status.ExitCode(), "stopped by its stop signal")
	assert.GreaterOrEqual(t, exits[0].Ran, 300*time.Millisecond)
	assert.Equal(t, 50*time.Millisecond, rec.of(EventRestart, "update")[0].Delay, "the program's own back-off")
}

// Hold is taken before each start and released when that run has ended: never while no run
// is alive, never twice at once. A refused hold is a failed start, retried after the
// back-off; a start that fails after its hold releases it.
func TestHoldLastsExactlyOneRun(t *testing.T) {
	s, rec := newSup(t, Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond, ResetAfter: time.Hour})
	dir := t.TempDir()
	count, alive := filepath.Join(dir, "count"), filepath.Join(dir, "alive")
	var mu sync.Mutex
	held, holds, refuse := 0, 0, 1 // the second hold is refused
	var violations []string
	spec := sh("update", `[ -e `+alive+` ] && echo two-runs >>`+count+`; touch `+alive+`; sleep 0.05
n=$(grep -c run `+count+` 2>/dev/null); echo run >>`+count+`; rm -f `+alive+`; [ "$n" -ge 2 ]`)
	spec.Restart = OnFailure
	spec.Hold = func() (func(), error) {
		mu.Lock()
		defer mu.Unlock()
		holds++
		if holds == 2 && refuse > 0 {
			refuse--
			return nil, fmt.Errorf("held by another run")
		}
		if held != 0 {
			violations = append(violations, "held twice")
		}
		held++
		before := strings.Count(readFileOrEmpty(count), "run")
		return func() {
			mu.Lock()
			defer mu.Unlock()
			if _, err := os.Stat(alive); err == nil || strings.Count(readFileOrEmpty(count), "run") != before+1 {
				violations = append(violations, "released before the run had ended")
			}
			held--
		}, nil
	}
	sv, err := s.Start(spec)
	require.NoError(t, err)
	assert.True(t, waitDone(t, sv, 5*time.Second).Success())
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, violations)
	assert.Zero(t, held, "released after the last run")
	assert.Equal(t, 4, holds, "three runs and the refused hold")
	assert.NotContains(t, readFile(t, count), "two-runs")
	failed := rec.of(EventStartFailed, "update")
	require.Len(t, failed, 1)
	assert.ErrorContains(t, failed[0].Err, "held by another run")

	// A start that fails after its hold (no such program) releases it at once.
	released := false
	_, err = s.Start(Spec{Name: "ghost", Path: "/nonexistent/program",
		Hold: func() (func(), error) { return func() { released = true }, nil }})
	assert.Error(t, err)
	assert.True(t, released)
}

func readFileOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
