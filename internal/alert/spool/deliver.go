package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/harden-dev/harden/internal/alert"
)

// Sink delivers alerts somewhere (journal, webhook, Alertmanager).
type Sink interface {
	// Name is stable across restarts: delivered markers are kept under it.
	Name() string
	// Send delivers one alert; ctx carries the per-attempt timeout.
	Send(ctx context.Context, a *alert.Alert) error
}

// PermanentError marks a failure retrying cannot fix (the receiver answered 4xx: a rotated
// secret, a wrong URL, an alert it calls malformed). The alert is not counted delivered: it
// goes to the sink's dead-letter directory, and a delivery-refused alert goes to every other
// sink, instead of blocking that sink forever.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// DispatchOptions tune delivery; zero values take the defaults.
type DispatchOptions struct {
	Timeout      time.Duration // per attempt when the sink has no own timeout (10s)
	MinBackoff   time.Duration // first retry delay (1s)
	MaxBackoff   time.Duration // retry delay cap (5m)
	QueueLen     int           // per-sink queue; beyond it the worker rescans the spool (1024)
	PollInterval time.Duration // how often the spool is rescanned for other writers (2s)
	// Log reports failed attempts and give-ups (nil: silent).
	Log func(sink, id string, attempt int, err error, giveUp bool)
	// Now stamps refusal notices (nil: time.Now).
	Now func() time.Time
}

// SinkStats count one sink's deliveries since the dispatcher started (the watch's metrics).
type SinkStats struct {
	Delivered uint64 // alerts the sink accepted
	Failed    uint64 // attempts that failed and will be retried (network, 5xx, 408, 429)
	Refused   uint64 // alerts the sink refused for good (4xx), now in its dead-letter directory
}

// Dispatcher runs one worker per sink. Each worker has its own bounded queue fed from the
// spool, so a slow or dead sink delays only itself: the watch loop's Put never waits on a
// sink (Notify does not block), and the other sinks go on.
type Dispatcher struct {
	spool   *Spool
	opts    DispatchOptions
	workers []*worker
}

type worker struct {
	d      *Dispatcher
	sink   Sink
	queue  chan string
	rescan chan struct{} // a queue overflow happened: reread the spool

	delivered, failed, refused atomic.Uint64
}

// NewDispatcher wires the workers; Run starts them. It registers itself with the spool.
func NewDispatcher(sp *Spool, sinks []Sink, o DispatchOptions) *Dispatcher {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.QueueLen == 0 {
		o.QueueLen = 1024
	}
	if o.PollInterval == 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Dispatcher{spool: sp, opts: o}
	for _, s := range sinks {
		d.workers = append(d.workers, &worker{d: d, sink: s, queue: make(chan string, o.QueueLen), rescan: make(chan struct{}, 1)})
	}
	sp.SetNotify(d.Notify)
	return d
}

// Stats returns each sink's counts, by sink name.
func (d *Dispatcher) Stats() map[string]SinkStats {
	out := make(map[string]SinkStats, len(d.workers))
	for _, w := range d.workers {
		out[w.sink.Name()] = SinkStats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Refused: w.refused.Load()}
	}
	return out
}

// Notify hands a newly spooled id to every worker without ever blocking: a full queue only
// makes that worker reread the spool once it catches up.
func (d *Dispatcher) Notify(id string) {
	for _, w := range d.workers {
		select {
		case w.queue <- id:
		default:
			w.kick()
		}
	}
}

func (w *worker) kick() {
	select {
	case w.rescan <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. Every worker first delivers what the spool holds from before
// (a restart), then what is notified.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range d.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	t := time.NewTicker(d.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			fresh, _ := d.spool.Rescan()
			for _, id := range fresh {
				d.Notify(id)
			}
		}
	}
}

func (w *worker) run(ctx context.Context) {
	w.catchUp(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-w.queue:
			w.deliver(ctx, id)
		case <-w.rescan:
			w.catchUp(ctx)
		}
	}
}

// catchUp delivers every spooled alert this sink has not delivered, oldest first.
func (w *worker) catchUp(ctx context.Context) {
	for _, id := range w.d.spool.Pending(w.sink.Name()) {
		if ctx.Err() != nil {
			return
		}
		w.deliver(ctx, id)
	}
}

// deliver sends one alert until it is delivered, refused for good, gone from the spool
// (dropped, or delivered by another process), or ctx ends.
func (w *worker) deliver(ctx context.Context, id string) {
	name := w.sink.Name()
	for attempt := 1; ctx.Err() == nil; attempt++ {
		if w.d.spool.Delivered(id, name) {
			return
		}
		a, err := w.d.spool.Load(id)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err == nil {
			err = w.send(ctx, a)
		}
		if err == nil {
			w.delivered.Add(1)
			if merr := w.d.spool.MarkDelivered(id, name); merr != nil && w.d.opts.Log != nil {
				w.d.opts.Log(name, id, attempt, merr, false)
			}
			return
		}
		var perm *PermanentError
		giveUp := a != nil && errors.As(err, &perm)
		if w.d.opts.Log != nil && ctx.Err() == nil {
			w.d.opts.Log(name, id, attempt, err, giveUp)
		}
		if giveUp {
			w.refuse(a, err)
			return
		}
		if ctx.Err() == nil {
			w.failed.Add(1)
		}
		if !sleep(ctx, Backoff(attempt, w.d.opts.MinBackoff, w.d.opts.MaxBackoff)) {
			return
		}
	}
}

// refuse handles a sink's refusal for good: the alert goes to the sink's dead-letter
// directory, and a delivery-refused alert to every other sink (the journal always among
// them), so a rotated secret or a moved URL is seen where alerts are still read.
func (w *worker) refuse(a *alert.Alert, reason error) {
	name := w.sink.Name()
	w.refused.Add(1)
	logErr := func(what string, err error) {
		if err != nil && w.d.opts.Log != nil {
			w.d.opts.Log(name, a.ID, 0, fmt.Errorf("%s: %w", what, err), true)
		}
	}
	// Dead letter, notice, then the marker: until the marker is written the alert stays
	// pending, so a crash anywhere in between repeats the refusal rather than losing it.
	path, err := w.d.spool.WriteDeadLetter(a, name, reason)
	logErr("dead-letter", err)
	if a.Kind != alert.KindDeliveryRefused { // a notice about a notice would bounce between two refusing sinks
		logErr("spooling the delivery-refused alert", w.d.spool.PutSkipping(RefusedNotice(a, name, path, reason, w.d.opts.Now()), name))
	}
	logErr("marker", w.d.spool.MarkDelivered(a.ID, name))
}

// RefusedNotice is the alert that says a sink refused an alert for good.
func RefusedNotice(a *alert.Alert, sink, deadLetter string, reason error, now time.Time) *alert.Alert {
	why := reason.Error()
	if len(why) > 300 {
		why = why[:300] + "..."
	}
	n := alert.New(alert.KindDeliveryRefused, alert.Critical, now, now,
		fmt.Sprintf("alert sink %s refused a %s alert for good (%s): kept in %s; check the sink's URL and secret", sink, a.Kind, why, deadLetter),
		map[string]string{"sink": sink, "refused_alert_id": a.ID, "refused_kind": string(a.Kind),
			"refused_dedupe_key": a.DedupeKey, "error": why, "dead_letter": deadLetter})
	n.DedupeKey = "delivery-refused:" + sink + ":" + a.ID
	n.Context = a.Context
	return n
}

func (w *worker) send(ctx context.Context, a *alert.Alert) error {
	ctx, cancel := context.WithTimeout(ctx, w.d.opts.Timeout)
	defer cancel()
	return w.sink.Send(ctx, a)
}

// Backoff is the delay before retry number attempt (1-based): exponential from min, capped
// at max, with "equal jitter" (half fixed, half random) so that a fleet of machines whose
// receiver came back does not retry in lockstep, yet never retries faster than min/2.
func Backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// DeliverNow makes one attempt per sink, all at once, within ctx, and records what was
// delivered. It is for `harden alert virus` when no watch is running: the alert is already
// spooled, so whatever fails here is delivered by the next watch.
func DeliverNow(ctx context.Context, sp *Spool, sinks []Sink, id string) error {
	a, err := sp.Load(id)
	if err != nil {
		return err
	}
	errs := make([]error, len(sinks))
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = s.Send(ctx, a); errs[i] == nil {
				errs[i] = sp.MarkDelivered(id, s.Name())
			} else {
				errs[i] = fmt.Errorf("%s: %w", s.Name(), errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
