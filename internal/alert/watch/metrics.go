package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
)

// MetricsFileName is the watch's node_exporter textfile, next to the apply's (run.metrics).
const MetricsFileName = "harden-watch.prom"

// DefaultMetricsInterval is how often the watch rewrites its textfile. The alert rules call
// the watch down when the file is older than a few intervals.
const DefaultMetricsInterval = 15 * time.Second

// metricsState is what one textfile shows.
type metricsState struct {
	up          bool
	now, start  time.Time
	stats       Stats
	raised      map[alert.Kind]uint64
	sinks       map[string]spool.SinkStats
	deadLetters map[string]int
	spoolLen    int
	spoolMax    int
	oldest      time.Duration
}

// render writes the state in the textfile collector's format. Names and labels are a
// contract with assets/monitoring/harden.rules.yml (its promtool test reads a file written
// by this code, so a rename breaks that test).
func (m *metricsState) render() string {
	var b strings.Builder
	help := func(name, typ, text string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ)
	}
	help("harden_watch_up", "gauge", "1 while harden watch runs; 0 written when it stops.")
	fmt.Fprintf(&b, "harden_watch_up %d\n", b2i(m.up))
	help("harden_watch_last_update_timestamp_seconds", "gauge", "When harden watch last wrote this file (Unix time).")
	fmt.Fprintf(&b, "harden_watch_last_update_timestamp_seconds %d\n", m.now.Unix())
	help("harden_watch_start_timestamp_seconds", "gauge", "When this harden watch process started (Unix time).")
	fmt.Fprintf(&b, "harden_watch_start_timestamp_seconds %d\n", m.start.Unix())

	help("harden_watch_alerts_raised_total", "counter", "Alerts raised by this watch (audit rules, lost records, inbox), by kind.")
	for _, k := range alert.Kinds {
		fmt.Fprintf(&b, "harden_watch_alerts_raised_total{kind=%q} %d\n", k, m.raised[k])
	}
	names := make([]string, 0, len(m.sinks))
	for n := range m.sinks {
		names = append(names, n)
	}
	sort.Strings(names)
	perSink := func(name, typ, text string, v func(string) uint64) {
		help(name, typ, text)
		for _, n := range names {
			fmt.Fprintf(&b, "%s{sink=%q} %d\n", name, n, v(n))
		}
	}
	perSink("harden_watch_alerts_delivered_total", "counter", "Alerts the sink accepted.",
		func(n string) uint64 { return m.sinks[n].Delivered })
	perSink("harden_watch_delivery_failures_total", "counter", "Delivery attempts that failed and are retried (network, 5xx, 408, 429).",
		func(n string) uint64 { return m.sinks[n].Failed })
	perSink("harden_watch_alerts_refused_total", "counter", "Alerts the sink refused for good (4xx), moved to its dead-letter directory.",
		func(n string) uint64 { return m.sinks[n].Refused })
	perSink("harden_watch_dead_letter_alerts", "gauge", "Alerts in the sink's dead-letter directory (until an operator removes them).",
		func(n string) uint64 { return uint64(m.deadLetters[n]) })

	help("harden_watch_spool_alerts", "gauge", "Alerts in the spool, not yet delivered to every sink.")
	fmt.Fprintf(&b, "harden_watch_spool_alerts %d\n", m.spoolLen)
	help("harden_watch_spool_max_alerts", "gauge", "The spool's bound (alerts.spool.max_alerts); beyond it the oldest are dropped.")
	fmt.Fprintf(&b, "harden_watch_spool_max_alerts %d\n", m.spoolMax)
	help("harden_watch_spool_oldest_alert_age_seconds", "gauge", "How long the oldest spooled alert has waited (0: spool empty).")
	fmt.Fprintf(&b, "harden_watch_spool_oldest_alert_age_seconds %g\n", m.oldest.Seconds())
	help("harden_watch_spool_write_errors_total", "counter", "Alerts that could not be written to the spool (disk full).")
	fmt.Fprintf(&b, "harden_watch_spool_write_errors_total %d\n", m.stats.SpoolErrors)

	help("harden_watch_audit_records_total", "counter", "Audit records read from the kernel.")
	fmt.Fprintf(&b, "harden_watch_audit_records_total %d\n", m.stats.Records)
	help("harden_watch_audit_records_lost_total", "counter",
		"Audit records lost: by the kernel (backlog full, rate limit) or by this watch's socket (receive buffer overruns).")
	fmt.Fprintf(&b, "harden_watch_audit_records_lost_total{source=\"kernel\"} %d\n", m.stats.KernelLost)
	fmt.Fprintf(&b, "harden_watch_audit_records_lost_total{source=\"socket\"} %d\n", m.stats.Overruns)
	return b.String()
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// writeTextfile replaces path atomically (temp file in the same directory, then rename), so
// node_exporter never reads half a file. The temp name does not end in .prom, which the
// collector would read.
func writeTextfile(path, content string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".harden-watch-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// metricsWriter gathers the state from the loop's counters, the dispatcher and the spool.
type metricsWriter struct {
	path     string
	start    time.Time
	counters *Counters
	disp     *spool.Dispatcher
	sp       *spool.Spool
	spoolMax int
	sinks    []string
	logged   bool // one log line for a directory that cannot be written, not one per interval
	log      func(string, ...any)
}

func (w *metricsWriter) write(up bool) {
	if w.path == "" {
		return
	}
	stats, raised := w.counters.Snapshot()
	st := &metricsState{up: up, now: time.Now(), start: w.start, stats: stats, raised: raised,
		sinks: w.disp.Stats(), deadLetters: map[string]int{}, spoolLen: w.sp.Len(), spoolMax: w.spoolMax, oldest: w.sp.OldestAge()}
	for _, n := range w.sinks {
		st.deadLetters[n] = w.sp.DeadLetters(n)
	}
	err := writeTextfile(w.path, st.render())
	switch {
	case err != nil && !w.logged:
		w.logged = true
		w.log("watch: metrics textfile %s: %v (no metrics until it can be written)", w.path, err)
	case err == nil && w.logged:
		w.logged = false
		w.log("watch: metrics textfile %s written again", w.path)
	}
}
