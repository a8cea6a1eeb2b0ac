package watch

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/auditrec"
	"github.com/harden-dev/harden/internal/alert/sink"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chanSource hands out queued records and errors, then blocks until closed (like the
// kernel's socket when nothing happens); after Close it reports EOF.
type chanSource struct {
	ch   chan item
	once sync.Once
	done chan struct{}
}

func newChanSource() *chanSource {
	return &chanSource{ch: make(chan item, 10000), done: make(chan struct{})}
}

func (s *chanSource) Read() (auditrec.Record, error) {
	select { // queued records first, even after Close
	case it := <-s.ch:
		return it.rec, it.err
	default:
	}
	select {
	case it := <-s.ch:
		return it.rec, it.err
	case <-s.done:
		return auditrec.Record{}, errEOF
	}
}
func (s *chanSource) Close() error { s.once.Do(func() { close(s.done) }); return nil }

func (s *chanSource) fixture(t *testing.T, name string) {
	f, err := os.Open(filepath.Join("..", "testdata", name))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r, err := auditrec.ParseLogLine(sc.Text())
		require.NoError(t, err)
		s.ch <- item{rec: r}
	}
}

type fakeLost struct {
	mu sync.Mutex
	n  uint32
}

func (f *fakeLost) Lost(context.Context) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, nil
}
func (f *fakeLost) add(d uint32) { f.mu.Lock(); f.n += d; f.mu.Unlock() }

func openSpool(t testing.TB) *spool.Spool {
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), MaxAlerts: 100, Sinks: []string{"journal"}})
	require.NoError(t, err)
	return sp
}

func spooled(t *testing.T, sp *spool.Spool) []*alert.Alert {
	var out []*alert.Alert
	for _, id := range sp.IDs() {
		a, err := sp.Load(id)
		require.NoError(t, err)
		out = append(out, a)
	}
	return out
}

func kinds(as []*alert.Alert) map[alert.Kind]int {
	m := map[alert.Kind]int{}
	for _, a := range as {
		m[a.Kind]++
	}
	return m
}

func TestRunSpoolsWhatTheRulesRaise(t *testing.T) {
	src := newChanSource()
	for _, f := range []string{"ssh-failed-password.log", "sudo-su-failures.log", "critical-files.log", "priv-esc.log"} {
		src.fixture(t, f)
	}
	src.ch <- item{err: auditrec.ErrMalformed}
	src.Close()
	sp := openSpool(t)
	ctxInfo := alert.Context{Host: "vm1", App: "app"}
	rules := alert.NewRules(alert.RulesConfig{SSHThreshold: 2, SSHWindow: 10 * time.Minute}, time.Now)
	stats, err := Run(context.Background(), Options{Source: src, Rules: rules, Spool: sp, Context: ctxInfo})
	require.NoError(t, err)
	as := spooled(t, sp)
	assert.Equal(t, map[alert.Kind]int{alert.KindSSHFailures: 1, alert.KindPrivEsc: 6, alert.KindCriticalFile: 3}, kinds(as))
	for _, a := range as {
		assert.Equal(t, ctxInfo, a.Context)
	}
	assert.Equal(t, uint64(10), stats.Alerts)
	assert.Equal(t, uint64(1), stats.Malformed)
	assert.Greater(t, stats.Records, stats.Events)
}

func TestLostRecordsAreCountedAndAlertedOncePerInterval(t *testing.T) {
	src := newChanSource()
	lost := &fakeLost{n: 1000} // losses before the watch started are not reported
	sp := openSpool(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stats Stats
	done := make(chan struct{})
	go func() {
		defer close(done)
		stats, _ = Run(ctx, Options{Source: src, Lost: lost, Rules: alert.NewRules(alert.RulesConfig{SSHThreshold: 5, SSHWindow: time.Minute}, time.Now),
			Spool: sp, Tick: 5 * time.Millisecond, LostEvery: 5 * time.Millisecond, LostAlertEvery: time.Hour})
	}()
	src.ch <- item{err: ErrOverrun}
	src.ch <- item{err: ErrOverrun}
	require.Eventually(t, func() bool { return sp.Len() == 1 }, 5*time.Second, 5*time.Millisecond)
	lost.add(7)
	src.ch <- item{err: ErrOverrun}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	as := spooled(t, sp)
	require.Len(t, as, 1, "one alert per interval, however many losses")
	a := as[0]
	assert.Equal(t, alert.KindAuditLost, a.Kind)
	// The first overrun alerts at once; the next two losses wait for the interval.
	assert.Equal(t, "1", a.Attrs["socket_overruns"])
	assert.Equal(t, uint64(3), stats.Overruns)
	assert.Equal(t, uint64(7), stats.KernelLost)
}

func testConfig(t *testing.T) (Config, *changelog.Memory) {
	p := policy.Default()
	p.Alerts.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	p.Alerts.Sinks = nil
	mem := &changelog.Memory{}
	env := map[string]string{"CLAM_VIRUSEVENT_FILENAME": "/home/u/eicar.com", "CLAM_VIRUSEVENT_VIRUSNAME": "Eicar-Signature", "FLY_REGION": "ams"}
	return Config{Policy: p, Root: t.TempDir(), Getenv: func(k string) string { return env[k] }, Journal: mem,
		LockPath: filepath.Join(t.TempDir(), "lock"), PollInterval: 10 * time.Millisecond}, mem
}

func TestVirusDeliversDirectlyWhenNoWatchRuns(t *testing.T) {
	c, mem := testConfig(t)
	res, err := Virus(context.Background(), c)
	require.NoError(t, err)
	assert.True(t, res.Direct)
	require.NoError(t, res.DirectErr)
	assert.Equal(t, "spool", res.Spooled)
	got := mem.ByID(changelog.MsgAlertVirus)
	require.Len(t, got, 1)
	assert.Equal(t, "Eicar-Signature", got[0].Fields["HARDEN_ALERT_VIRUS"])
	assert.Equal(t, "/home/u/eicar.com", got[0].Fields["HARDEN_ALERT_FILE"])
	assert.Equal(t, "ams", got[0].Fields["HARDEN_ALERT_REGION"])
	ents, _ := os.ReadDir(filepath.Join(c.Policy.Alerts.Spool.Dir, "alerts"))
	assert.Empty(t, ents, "delivered everywhere: nothing left in the spool")
}

func TestVirusIsLeftToTheRunningWatch(t *testing.T) {
	c, mem := testConfig(t)
	src := newChanSource()
	c.Source, c.Lost = src, &fakeLost{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, c) }()
	require.Eventually(t, func() bool { return Running(c.LockPath) }, 5*time.Second, 5*time.Millisecond)

	res, err := Virus(context.Background(), c)
	require.NoError(t, err)
	assert.False(t, res.Direct, "the watch delivers it")
	require.Eventually(t, func() bool { return len(mem.ByID(changelog.MsgAlertVirus)) == 1 }, 5*time.Second, 5*time.Millisecond)

	// What an unprivileged clamd writes into the inbox reaches the sinks too; other kinds
	// from there are refused.
	a := alert.New(alert.KindVirus, alert.Info, time.Now(), time.Now(), "from clamav", map[string]string{"virus": "X"})
	require.NoError(t, spool.WriteInbox(c.Policy.Alerts.Spool.Dir, a))
	fake := alert.New(alert.KindSSHFailures, alert.Critical, time.Now(), time.Now(), "forged", nil)
	require.NoError(t, spool.WriteInbox(c.Policy.Alerts.Spool.Dir, fake))
	require.Eventually(t, func() bool { return len(mem.ByID(changelog.MsgAlertVirus)) == 2 }, 5*time.Second, 5*time.Millisecond)
	got := mem.ByID(changelog.MsgAlertVirus)[1]
	assert.Equal(t, "critical", got.Fields["HARDEN_ALERT_SEVERITY"], "severity is the watch's, not the writer's")
	assert.Equal(t, "ams", got.Fields["HARDEN_ALERT_REGION"], "context is the watch's")
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir(spool.InboxDir(c.Policy.Alerts.Spool.Dir))
		return len(ents) == 0
	}, 5*time.Second, 5*time.Millisecond)
	assert.Empty(t, mem.ByID(changelog.MsgAlertSSHFailures))

	// A second watch is refused while the first runs.
	require.ErrorContains(t, Watch(context.Background(), c), "another harden watch")
	cancel()
	require.NoError(t, <-done)
	assert.False(t, Running(c.LockPath))
}

func TestVirusNeedsTheVariables(t *testing.T) {
	c, _ := testConfig(t)
	c.Getenv = func(string) string { return "" }
	_, err := Virus(context.Background(), c)
	require.ErrorContains(t, err, "CLAM_VIRUSEVENT_VIRUSNAME")
}

var _ spool.Sink = sink.Journal{}

func TestRaiseDriftFromTheDailyAudit(t *testing.T) {
	c, mem := testConfig(t)
	now := time.Now()
	a := alert.New(alert.KindDrift, alert.Warning, now, now, "3 changes pending", map[string]string{"changes": "3"})
	res, err := Raise(context.Background(), c, a)
	require.NoError(t, err)
	require.NoError(t, res.DirectErr)
	got := mem.ByID(changelog.MsgAlertDrift)
	require.Len(t, got, 1)
	assert.Equal(t, "3", got[0].Fields["HARDEN_ALERT_CHANGES"])
	assert.Equal(t, "ams", got[0].Fields["HARDEN_ALERT_REGION"])
}

// The watch's textfile says what it raised, what each sink delivered or refused, what sits
// in the dead-letter directory and the spool, and that it stopped.
func TestWatchWritesItsMetricsTextfile(t *testing.T) {
	c, mem := testConfig(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("k"), 0o600))
	c.Policy.Alerts.Sinks = []policy.Sink{{Type: "webhook", URL: refusing.URL, SecretFile: secret}}
	c.Policy.Alerts.SSHFailures.Threshold = 2
	c.Policy.Run.Metrics = "/var/lib/prometheus/node-exporter/harden.prom"
	c.MetricsInterval = 10 * time.Millisecond
	src := newChanSource()
	src.fixture(t, "ssh-failed-password.log")
	src.ch <- item{err: ErrOverrun}
	c.Source, c.Lost = src, &fakeLost{}
	prom := filepath.Join(c.Root, "var/lib/prometheus/node-exporter", MetricsFileName)
	require.NoError(t, os.MkdirAll(filepath.Dir(prom), 0o755))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, c) }()
	defer func() { cancel(); <-done }() // on failure too: the watch writes under the temp dir
	read := func() string { b, _ := os.ReadFile(prom); return string(b) }
	wh := (&sink.Webhook{URL: refusing.URL}).Name()
	require.Eventually(t, func() bool {
		return strings.Contains(read(), `harden_watch_dead_letter_alerts{sink="`+wh+`"} 2`)
	}, 10*time.Second, 10*time.Millisecond, "the ssh-failures and audit-lost alerts, refused: %s", read())
	require.Eventually(t, func() bool {
		m := read()
		return strings.Contains(m, `harden_watch_alerts_delivered_total{sink="journal"} 4`) && strings.Contains(m, "harden_watch_spool_alerts 0\n")
	}, 10*time.Second, 10*time.Millisecond, "two alerts and two delivery-refused notices: %s", read())
	cancel()
	require.NoError(t, <-done)
	done <- nil // for the deferred wait
	got := read()
	for _, want := range []string{
		"harden_watch_up 0\n",
		`harden_watch_alerts_raised_total{kind="ssh-failures"} 1`,
		`harden_watch_alerts_raised_total{kind="audit-lost"} 1`,
		`harden_watch_alerts_refused_total{sink="` + wh + `"} 2`,
		`harden_watch_alerts_delivered_total{sink="` + wh + `"} 0`,
		"harden_watch_spool_alerts 0\n",
		"harden_watch_spool_max_alerts 10000\n",
		`harden_watch_audit_records_lost_total{source="socket"} 1`,
	} {
		assert.Contains(t, got, want)
	}
	assert.Len(t, mem.ByID(changelog.MsgAlertDeliveryRefused), 2)
	ents, _ := os.ReadDir(filepath.Dir(prom))
	assert.Len(t, ents, 1, "no temp file left beside the textfile")
}
