package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newAlert(t testing.TB, n int) *alert.Alert {
	a := alert.New(alert.KindCriticalFile, alert.Critical, time.Unix(1700000000, 0), time.Unix(1700000000, int64(n)), "test", map[string]string{"n": string(rune('a' + n%26))})
	a.DedupeKey = "test:" + a.ID
	a.Context.Host = "h"
	return a
}

func open(t testing.TB, dir string, max int, sinks ...string) *Spool {
	s, err := Open(Options{Dir: dir, MaxAlerts: max, Sinks: sinks})
	require.NoError(t, err)
	return s
}

func TestPutIsDurableOrderedAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 100, "a", "b")
	var ids []string
	for i := 3; i > 0; i-- { // raised out of order: the spool orders by raise time
		a := newAlert(t, i)
		require.NoError(t, s.Put(a))
		ids = append([]string{a.ID}, ids...)
	}
	assert.Equal(t, ids, s.IDs())
	// A half-written file from a crash is cleaned, not loaded.
	old := time.Now().Add(-2 * time.Minute)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "x.json.123"), []byte("{"), 0o600))
	require.NoError(t, os.Chtimes(filepath.Join(dir, "tmp", "x.json.123"), old, old))
	// One being written right now by another process is left alone.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "y.json.456"), []byte("{"), 0o600))

	s2 := open(t, dir, 100, "a", "b")
	assert.Equal(t, ids, s2.IDs())
	got, err := s2.Load(ids[0])
	require.NoError(t, err)
	assert.Equal(t, "test:"+ids[0], got.DedupeKey)
	ents, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	require.Len(t, ents, 1)
	assert.Equal(t, "y.json.456", ents[0].Name())
}

func TestAlertLeavesWhenEverySinkDelivered(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 100, "a", "b")
	a := newAlert(t, 1)
	require.NoError(t, s.Put(a))
	assert.Equal(t, []string{a.ID}, s.Pending("a"))
	require.NoError(t, s.MarkDelivered(a.ID, "a"))
	assert.Empty(t, s.Pending("a"))
	assert.Equal(t, []string{a.ID}, s.Pending("b"))
	assert.FileExists(t, filepath.Join(dir, "alerts", a.ID+".json"))
	require.NoError(t, s.MarkDelivered(a.ID, "b"))
	assert.Equal(t, 0, s.Len())
	assert.NoFileExists(t, filepath.Join(dir, "alerts", a.ID+".json"))
	assert.NoFileExists(t, filepath.Join(dir, "delivered", "a", a.ID))
}

func TestFullSpoolDropsOldestAndSaysSo(t *testing.T) {
	s := open(t, t.TempDir(), 5, "a")
	var ids []string
	for i := 0; i < 7; i++ {
		a := newAlert(t, i)
		require.NoError(t, s.Put(a))
		ids = append(ids, a.ID)
	}
	assert.Equal(t, 5, s.Len(), "bounded")
	have := s.IDs()
	assert.NotContains(t, have, ids[0])
	assert.Contains(t, have, ids[6], "the newest alert is kept")
	total := 0
	for _, id := range have {
		a, err := s.Load(id)
		require.NoError(t, err)
		if a.Kind == alert.KindSpoolDropped {
			n, err := strconv.Atoi(a.Attrs["dropped"])
			require.NoError(t, err)
			total += n
			assert.Equal(t, "h", a.Context.Host, "the notice carries the machine context")
		}
	}
	// 0..4 fill the spool; alert 5 drops 0 and 1 (room for itself and the notice), alert 6
	// drops 2 and 3. Every alert that is gone is counted in a notice.
	assert.Equal(t, []string{ids[4], ids[5], ids[6]}, have[:3])
	assert.Equal(t, 4, total)
}

func TestRescanPicksUpOtherWritersAndEnforcesBound(t *testing.T) {
	dir := t.TempDir()
	watch := open(t, dir, 3, "a")
	other := open(t, dir, 3, "a") // harden alert virus in another process
	a := newAlert(t, 1)
	require.NoError(t, other.Put(a))
	fresh, err := watch.Rescan()
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID}, fresh)
	for i := 2; i < 6; i++ {
		require.NoError(t, other.Put(newAlert(t, i)))
	}
	_, err = watch.Rescan()
	require.NoError(t, err)
	assert.LessOrEqual(t, watch.Len(), 3)
}

// fakeSink records deliveries; fail makes it fail, block makes it hang until ctx ends.
type fakeSink struct {
	name  string
	mu    sync.Mutex
	got   []string
	fails int // fail this many attempts first
	perm  bool
	block bool
}

func (f *fakeSink) Name() string { return f.name }
func (f *fakeSink) Send(ctx context.Context, a *alert.Alert) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		if f.perm {
			return Permanent(errors.New("400 bad alert"))
		}
		return errors.New("503 unavailable")
	}
	f.got = append(f.got, a.ID)
	return nil
}
func (f *fakeSink) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.got) }

func TestDeadSinkBlocksNeitherPutNorOtherSinks(t *testing.T) {
	s := open(t, t.TempDir(), 1000, "dead", "live")
	dead, live := &fakeSink{name: "dead", block: true}, &fakeSink{name: "live"}
	d := NewDispatcher(s, []Sink{dead, live}, DispatchOptions{QueueLen: 4, Timeout: time.Hour, PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()

	start := time.Now()
	for i := 0; i < 50; i++ { // far more than the queue holds
		require.NoError(t, s.Put(newAlert(t, i)))
	}
	assert.Less(t, time.Since(start), 5*time.Second, "Put never waits for a sink")
	require.Eventually(t, func() bool { return live.count() == 50 }, 10*time.Second, 10*time.Millisecond)
	assert.Empty(t, s.Pending("live"))
	assert.Len(t, s.Pending("dead"), 50, "kept for the dead sink")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("dispatcher did not stop")
	}
}

func TestRetriesUntilDeliveredAndGivesUpOnPermanent(t *testing.T) {
	s := open(t, t.TempDir(), 100, "flaky", "picky")
	flaky := &fakeSink{name: "flaky", fails: 3}
	picky := &fakeSink{name: "picky", fails: 1, perm: true}
	var mu sync.Mutex
	var logged []string
	d := NewDispatcher(s, []Sink{flaky, picky}, DispatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Log: func(sink, id string, attempt int, err error, giveUp bool) {
			mu.Lock()
			defer mu.Unlock()
			if giveUp {
				logged = append(logged, sink+" gave up")
			}
		}})
	a := newAlert(t, 1)
	require.NoError(t, s.Put(a)) // before Run: delivered by the catch-up, as after a restart
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	require.Eventually(t, func() bool { return s.Len() == 0 }, 5*time.Second, 5*time.Millisecond)
	flaky.mu.Lock()
	require.Len(t, flaky.got, 2, "the alert, then the notice of picky's refusal")
	assert.Equal(t, a.ID, flaky.got[0], "delivered once, after 3 failures")
	notice := flaky.got[1]
	flaky.mu.Unlock()
	assert.Empty(t, picky.got, "a refused alert is not delivered, and the notice skips picky")
	mu.Lock()
	assert.Equal(t, []string{"picky gave up"}, logged)
	mu.Unlock()
	assert.Equal(t, 1, s.DeadLetters("picky"))
	assert.Equal(t, 0, s.DeadLetters("flaky"))
	b, err := os.ReadFile(filepath.Join(s.Dir(), "deadletter", "picky", a.ID+".json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"dedupe_key": "test:`+a.ID+`"`)
	assert.True(t, alert.ValidID(notice))
	st := d.Stats()
	assert.Equal(t, SinkStats{Delivered: 2, Failed: 3}, st["flaky"])
	assert.Equal(t, SinkStats{Refused: 1}, st["picky"])
}

func TestOldestAge(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s, err := Open(Options{Dir: t.TempDir(), MaxAlerts: 10, Sinks: []string{"a"}, Now: func() time.Time { return now }})
	require.NoError(t, err)
	assert.Zero(t, s.OldestAge())
	a := alert.New(alert.KindVirus, alert.Critical, now, now.Add(-90*time.Second), "x", nil)
	require.NoError(t, s.Put(a))
	assert.Equal(t, 90*time.Second, s.OldestAge())
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	for attempt := 1; attempt <= 12; attempt++ {
		want := time.Second << (attempt - 1)
		if want > time.Minute {
			want = time.Minute
		}
		for i := 0; i < 20; i++ {
			d := Backoff(attempt, time.Second, time.Minute)
			assert.GreaterOrEqual(t, d, want/2)
			assert.LessOrEqual(t, d, want)
		}
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		seen[Backoff(5, time.Second, time.Minute)] = true
	}
	assert.Greater(t, len(seen), 1, "jittered")
}
