// Package watch is `harden watch`: it reads audit records, assembles events, applies the
// alert rules and spools what they raise, while the spool's dispatcher delivers to the sinks
// on its own goroutines. Reading never waits on delivery: the only thing between a record and
// the next Read is parsing, the rules and (rarely) one fsync'd spool write.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/auditrec"
	"github.com/harden-dev/harden/internal/alert/spool"
)

// Source yields audit records: the kernel's multicast group in production (NetlinkSource),
// recorded records in tests.
type Source interface {
	Read() (auditrec.Record, error)
}

// ErrOverrun is what a Source returns when records were lost on the way to us (the socket
// buffer overflowed: ENOBUFS). Reading goes on; the loss is counted and alerted.
var ErrOverrun = errors.New("audit records lost: receive buffer overrun")

// LostCounter reads the kernel's count of records it could not queue (audit_status.lost).
type LostCounter interface {
	Lost(ctx context.Context) (uint32, error)
}

// Options configure Run.
type Options struct {
	Source  Source
	Lost    LostCounter // nil: only socket overruns are counted
	Rules   *alert.Rules
	Spool   *spool.Spool
	Context alert.Context
	Now     func() time.Time
	// Tick drives event timeouts and housekeeping (1s); LostEvery how often the kernel's
	// lost counter is read (10s); LostAlertEvery the least time between two audit-lost
	// alerts, so a flood of losses gives one alert with a count, not a flood (1m).
	Tick, LostEvery, LostAlertEvery time.Duration
	// Log reports errors that do not stop the watch (nil: dropped).
	Log func(format string, args ...any)
	// Record, when set, gets every record as an audit.log line (fixture capture).
	Record io.Writer
	// Counters, when set, get the loop's running totals (the metrics textfile reads them
	// while the loop runs).
	Counters *Counters
}

// Counters are a loop's running totals, safe to read while it runs.
type Counters struct {
	mu     sync.Mutex
	stats  Stats
	raised map[alert.Kind]uint64
}

// Snapshot returns the totals and the alerts raised by kind.
func (c *Counters) Snapshot() (Stats, map[alert.Kind]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	raised := make(map[alert.Kind]uint64, len(c.raised))
	for k, v := range c.raised {
		raised[k] = v
	}
	return c.stats, raised
}

// Raised counts an alert raised (by the loop, or taken from the inbox).
func (c *Counters) Raised(k alert.Kind) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.raised == nil {
		c.raised = map[alert.Kind]uint64{}
	}
	c.raised[k]++
	c.mu.Unlock()
}

func (c *Counters) set(s Stats) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.stats = s
	c.mu.Unlock()
}

// Stats count what the loop saw.
type Stats struct {
	Records, Malformed, Events, Alerts, Overruns, KernelLost uint64
	SpoolErrors                                              uint64
}

type item struct {
	rec auditrec.Record
	err error
}

// Run reads until ctx ends or the source fails. The source is read on its own goroutine
// and handed over through a buffer, so timeouts and the lost-counter still run while no
// record arrives.
func Run(ctx context.Context, o Options) (Stats, error) {
	w := newLoop(o)
	items := make(chan item, 4096)
	go func() {
		defer close(items)
		for {
			r, err := o.Source.Read()
			select {
			case items <- item{r, err}:
			case <-ctx.Done():
				return
			}
			if err != nil && !errors.Is(err, ErrOverrun) && !errors.Is(err, auditrec.ErrMalformed) {
				return
			}
		}
	}()
	if c, ok := o.Source.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		defer stop()
	}
	tick := time.NewTicker(w.o.Tick)
	defer tick.Stop()
	w.baseline(ctx)
	for {
		select {
		case <-ctx.Done():
			return w.end(nil)
		case it, ok := <-items:
			if !ok {
				return w.end(nil)
			}
			if err := w.handle(it); err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) {
					err = nil
				}
				return w.end(err)
			}
		case <-tick.C:
			w.tick(ctx)
			w.o.Counters.set(w.stats)
		}
	}
}

// end flushes the events still being assembled and publishes the final totals.
func (w *loop) end(err error) (Stats, error) {
	w.asm.Flush()
	w.o.Counters.set(w.stats)
	return w.stats, err
}

// loop is the state of one Run, owned by its goroutine.
type loop struct {
	o     Options
	asm   *auditrec.Assembler
	stats Stats

	lastLostRead  time.Time
	kernelLost    uint32 // last value read
	haveBaseline  bool
	pendingKernel uint64 // losses not alerted yet
	pendingOver   uint64
	lastLostAlert time.Time
	lastSweep     time.Time
}

func newLoop(o Options) *loop {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.LostEvery == 0 {
		o.LostEvery = 10 * time.Second
	}
	if o.LostAlertEvery == 0 {
		o.LostAlertEvery = time.Minute
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	w := &loop{o: o}
	w.asm = auditrec.NewAssembler(w.event)
	return w
}

func (w *loop) handle(it item) error {
	switch {
	case it.err == nil:
		w.stats.Records++
		r := it.rec
		if w.o.Record != nil {
			_, _ = io.WriteString(w.o.Record, r.LogLine()+"\n")
		}
		w.asm.Push(&r, w.o.Now())
	case errors.Is(it.err, ErrOverrun):
		w.stats.Overruns++
		w.pendingOver++
		w.maybeAlertLost()
	case errors.Is(it.err, auditrec.ErrMalformed):
		w.stats.Malformed++
		w.o.Log("watch: skipping a record: %v", it.err)
	default:
		return it.err
	}
	return nil
}

func (w *loop) event(ev *auditrec.Event) {
	w.stats.Events++
	for _, a := range w.o.Rules.Event(ev) {
		w.raise(a)
	}
}

func (w *loop) raise(a *alert.Alert) {
	a.Context = w.o.Context
	w.stats.Alerts++
	w.o.Counters.Raised(a.Kind)
	if err := w.o.Spool.Put(a); err != nil {
		// The spool is the only way out; if it cannot be written (disk full), the journal
		// still gets the reason through the log, and the watch keeps reading.
		w.stats.SpoolErrors++
		w.o.Log("watch: spooling %s alert %s: %v", a.Kind, a.DedupeKey, err)
	}
}

func (w *loop) tick(ctx context.Context) {
	now := w.o.Now()
	w.asm.Expire(now)
	if now.Sub(w.lastSweep) >= time.Minute {
		w.o.Rules.Tick(now)
		w.lastSweep = now
	}
	if w.o.Lost != nil && now.Sub(w.lastLostRead) >= w.o.LostEvery {
		w.readLost(ctx)
	}
	w.maybeAlertLost()
}

// baseline reads the kernel's counter at start: losses before this watch ran are not ours
// to report again at every restart.
func (w *loop) baseline(ctx context.Context) {
	if w.o.Lost == nil {
		return
	}
	n, err := w.o.Lost.Lost(ctx)
	if err != nil {
		w.o.Log("watch: reading the kernel's lost counter: %v", err)
		return
	}
	w.kernelLost, w.haveBaseline = n, true
	w.lastLostRead = w.o.Now()
}

func (w *loop) readLost(ctx context.Context) {
	w.lastLostRead = w.o.Now()
	n, err := w.o.Lost.Lost(ctx)
	if err != nil {
		w.o.Log("watch: reading the kernel's lost counter: %v", err)
		return
	}
	if !w.haveBaseline {
		w.kernelLost, w.haveBaseline = n, true
		return
	}
	delta := uint64(n - w.kernelLost) // uint32 arithmetic wraps the way the counter does
	w.kernelLost = n
	w.stats.KernelLost += delta
	w.pendingKernel += delta
}

func (w *loop) maybeAlertLost() {
	if w.pendingKernel == 0 && w.pendingOver == 0 {
		return
	}
	now := w.o.Now()
	if !w.lastLostAlert.IsZero() && now.Sub(w.lastLostAlert) < w.o.LostAlertEvery {
		return
	}
	w.lastLostAlert = now
	attrs := map[string]string{
		"kernel_lost": strconv.FormatUint(w.pendingKernel, 10), "socket_overruns": strconv.FormatUint(w.pendingOver, 10),
		"kernel_lost_total": strconv.FormatUint(uint64(w.kernelLost), 10),
	}
	sum := fmt.Sprintf("audit records lost: %d by the kernel (backlog full or rate limit), %d receive-buffer overruns of harden watch",
		w.pendingKernel, w.pendingOver)
	a := alert.New(alert.KindAuditLost, alert.Warning, now, now, sum, attrs)
	w.pendingKernel, w.pendingOver = 0, 0
	w.raise(a)
}

// errEOF ends the loop without an error (the reader was closed).
var errEOF = io.EOF
