package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/sink"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
	"golang.org/x/sys/unix"
)

// DefaultLockPath is held by a running watch (flock). RuntimeDirectory=harden-watch in the
// unit creates /run/harden-watch world-readable, so `harden alert virus` running as clamav
// can test the lock.
const DefaultLockPath = "/run/harden-watch/lock"

// Config is what `harden watch` and `harden alert` need.
type Config struct {
	Policy   *policy.Policy
	Root     string // prefix for /etc/harden/image-build ("/" in production)
	Getenv   func(string) string
	Journal  changelog.Sink
	LockPath string
	Log      func(format string, args ...any)
	// Source and Lost replace the kernel's multicast reader and status (tests).
	Source Source
	Lost   LostCounter
	// PollInterval for the spool and the inbox (2s).
	PollInterval time.Duration
	// Record gets every record as an audit.log line (harden watch --record FILE).
	Record io.Writer
	// MetricsPath is the watch's node_exporter textfile. Empty: MetricsFileName next to the
	// policy's run.metrics, under Root (none when run.metrics is empty); "-": none.
	MetricsPath string
	// MetricsInterval is how often the textfile is rewritten (DefaultMetricsInterval).
	MetricsInterval time.Duration
}

func (c *Config) defaults() {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.LockPath == "" {
		c.LockPath = DefaultLockPath
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = DefaultMetricsInterval
	}
	switch {
	case c.MetricsPath == "-":
		c.MetricsPath = ""
	case c.MetricsPath == "" && c.Policy != nil && c.Policy.Run.Metrics != "":
		c.MetricsPath = filepath.Join(c.Root, filepath.Dir(c.Policy.Run.Metrics), MetricsFileName)
	}
}

// Watch runs the alert daemon until ctx ends.
func Watch(ctx context.Context, c Config) error {
	c.defaults()
	unlock, err := lock(c.LockPath)
	if err != nil {
		return err
	}
	defer unlock()

	a := c.Policy.Alerts
	sinks, err := sink.FromPolicy(a.Sinks, c.Journal)
	if err != nil {
		return err
	}
	sp, err := spool.Open(spool.Options{Dir: a.Spool.Dir, MaxAlerts: a.Spool.MaxAlerts, Sinks: names(sinks)})
	if err != nil {
		return err
	}
	if err := prepareInbox(a.Spool.Dir); err != nil {
		c.Log("watch: %v (harden alert virus from clamd cannot reach the watch)", err)
	}
	machine := alert.LoadContext(c.Root, c.Getenv)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := spool.NewDispatcher(sp, sinks, spool.DispatchOptions{PollInterval: c.PollInterval,
		Log: func(s, id string, attempt int, err error, giveUp bool) {
			if giveUp {
				c.Log("watch: sink %s refused alert %s for good (kept in its dead-letter directory): %v", s, id, err)
			} else if attempt == 1 || attempt%10 == 0 {
				c.Log("watch: sink %s: alert %s: attempt %d failed: %v", s, id, attempt, err)
			}
		}})
	counters := &Counters{}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	go ingestLoop(ctx, sp, machine, c, counters)
	mw := &metricsWriter{path: c.MetricsPath, start: time.Now(), counters: counters, disp: d, sp: sp,
		spoolMax: a.Spool.MaxAlerts, sinks: names(sinks), log: c.Log}
	metricsDone := make(chan struct{})
	go func() { defer close(metricsDone); metricsLoop(ctx, mw, c.MetricsInterval) }()

	src, lost := c.Source, c.Lost
	if src == nil {
		r, err := auditnl.NewReader(ctx)
		if err != nil {
			cancel()
			<-done
			return err
		}
		src = NetlinkSource{R: r}
		if conn, err := auditnl.Dial(auditnl.Options{}); err == nil {
			defer conn.Close()
			lost = StatusLost{C: conn}
		} else {
			c.Log("watch: no audit status (the kernel's lost counter is not watched): %v", err)
		}
	}
	rules := alert.NewRules(alert.RulesConfig{SSHThreshold: a.SSHFailures.Threshold, SSHWindow: a.SSHFailures.Window.D()}, time.Now)
	stats, err := Run(ctx, Options{Source: src, Lost: lost, Rules: rules, Spool: sp, Context: machine, Log: c.Log, Record: c.Record,
		Counters: counters})
	c.Log("watch: stopped after %d records, %d events, %d alerts, %d overruns, %d lost by the kernel",
		stats.Records, stats.Events, stats.Alerts, stats.Overruns, stats.KernelLost)
	cancel()
	<-done
	<-metricsDone
	mw.write(false) // harden_watch_up 0: stopped, not merely quiet
	return err
}

// metricsLoop rewrites the textfile now and at every interval until ctx ends.
func metricsLoop(ctx context.Context, mw *metricsWriter, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mw.write(true)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func names(sinks []spool.Sink) []string {
	out := make([]string, len(sinks))
	for i, s := range sinks {
		out[i] = s.Name()
	}
	return out
}

// ingestLoop moves alerts from the inbox into the spool. Only virus alerts are accepted
// from there (the one unprivileged writer), re-stamped with this machine's context.
func ingestLoop(ctx context.Context, sp *spool.Spool, machine alert.Context, c Config, counters *Counters) {
	t := time.NewTicker(c.PollInterval)
	defer t.Stop()
	accept := func(a *alert.Alert) error {
		if a.Kind != alert.KindVirus {
			return fmt.Errorf("kind %q is not accepted from the inbox", a.Kind)
		}
		a.Severity, a.Context = alert.Critical, machine
		a.DedupeKey = "virus:" + a.ID
		if err := a.Validate(); err != nil {
			return err
		}
		counters.Raised(a.Kind)
		return nil
	}
	for {
		if _, errs := sp.IngestInbox(accept); len(errs) > 0 {
			for _, err := range errs {
				c.Log("watch: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prepareInbox makes the inbox writable by clamd's group when that group exists. The
// tmpfiles.d entry normally did it already; this covers a spool dir created by hand.
func prepareInbox(spoolDir string) error {
	dir := spool.InboxDir(spoolDir)
	if err := os.MkdirAll(dir, 0o730); err != nil {
		return err
	}
	g, err := user.LookupGroup("clamav")
	if err != nil {
		return nil // no ClamAV here: nobody else needs the inbox
	}
	gid, _ := strconv.Atoi(g.Gid)
	// Usually tmpfiles.d made it right already: then change nothing. harden-watch.service
	// denies the chown family (SystemCallFilter=~@privileged), so a needless chown fails.
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 && int(st.Gid) == gid && fi.Mode().Perm() == 0o730 {
			return nil
		}
	}
	if err := os.Chown(dir, 0, gid); err != nil {
		return fmt.Errorf("inbox %s: %w", dir, err)
	}
	return os.Chmod(dir, 0o730)
}

// lock takes the watch lock: one watch at a time, and a way for `harden alert` to know a
// watch is running.
func lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another harden watch holds %s", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// Running reports whether a watch holds the lock.
func Running(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // no lock file: no watch has run since boot (/run is a tmpfs)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// VirusResult says what Raise (harden alert virus) did.
type VirusResult struct {
	Alert     *alert.Alert
	Spooled   string // "spool" or "inbox"
	Direct    bool   // delivered directly because no watch was running
	DirectErr error  // what the direct delivery could not do (the spool keeps it)
}

// DirectTimeout bounds direct delivery: clamd waits for VirusEvent to return.
const DirectTimeout = 5 * time.Second

// Virus raises a ClamAV detection (clamd's VirusEvent sets the two variables). The alert is
// always spooled first, so nothing is lost whatever happens next. A running watch delivers it
// within its poll interval. When no watch runs, the alert is delivered directly, one attempt
// per sink bounded by DirectTimeout: the policy asks for every detection to alert at once,
// and a spool nobody reads would hold it until the next boot.
func Virus(ctx context.Context, c Config) (*VirusResult, error) {
	c.defaults()
	file := c.Getenv("CLAM_VIRUSEVENT_FILENAME")
	name := c.Getenv("CLAM_VIRUSEVENT_VIRUSNAME")
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("CLAM_VIRUSEVENT_VIRUSNAME is not set: harden alert virus is run by clamd's VirusEvent")
	}
	now := time.Now()
	a := alert.New(alert.KindVirus, alert.Critical, now, now, fmt.Sprintf("ClamAV found %s in %s", clip(name), clip(file)),
		map[string]string{"virus": clip(name), "file": clip(file)})
	a.DedupeKey = "virus:" + a.ID
	return Raise(ctx, c, a)
}

// Raise spools an alert raised outside the watch (a virus detection, the daily drift
// audit) and, when no watch is running, delivers it directly (one attempt per sink, within
// DirectTimeout). The machine context is filled in here.
func Raise(ctx context.Context, c Config, a *alert.Alert) (*VirusResult, error) {
	c.defaults()
	a.Context = alert.LoadContext(c.Root, c.Getenv)
	res := &VirusResult{Alert: a}

	p := c.Policy.Alerts
	sinks, err := sink.FromPolicy(p.Sinks, c.Journal)
	if err != nil {
		return nil, err
	}
	sp, err := spool.Open(spool.Options{Dir: p.Spool.Dir, MaxAlerts: p.Spool.MaxAlerts, Sinks: names(sinks)})
	if err == nil {
		err = sp.Put(a)
		res.Spooled = "spool"
	} else if errors.Is(err, os.ErrPermission) && a.Kind == alert.KindVirus {
		// Not root (clamd's user): the inbox is ours, for virus alerts only.
		sp = nil
		err = spool.WriteInbox(p.Spool.Dir, a)
		res.Spooled = "inbox"
	}
	if err != nil {
		return nil, fmt.Errorf("spooling the %s alert: %w", a.Kind, err)
	}
	if Running(c.LockPath) {
		return res, nil
	}
	res.Direct = true
	ctx, cancel := context.WithTimeout(ctx, DirectTimeout)
	defer cancel()
	if sp != nil {
		res.DirectErr = spool.DeliverNow(ctx, sp, sinks, a.ID)
	} else {
		// From the inbox the watch will deliver it to every sink later; the journal is the
		// one sink any user can reach now (webhook secrets are root's).
		res.DirectErr = sinks[0].Send(ctx, a)
	}
	return res, nil
}

// clip bounds a value from the environment (a file name can be long).
func clip(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "..."
	}
	return s
}
