package auditrec

import "time"

// Event is the records that share one stamp, in arrival order.
type Event struct {
	Stamp   Stamp
	Records []*Record
	// Complete is false when the event was flushed by the timeout or the pending limit
	// rather than by its EOE (multicast may have lost the rest).
	Complete bool

	seen time.Time // arrival of the first record, for the timeout
}

// First returns the event's first record of a type, or nil.
func (e *Event) First(typ uint16) *Record {
	for _, r := range e.Records {
		if r.Type == typ {
			return r
		}
	}
	return nil
}

// Keys returns the rule keys of the event (from its SYSCALL record, or any record with key=).
func (e *Event) Keys() []string {
	if s := e.First(TypeSyscall); s != nil {
		return s.Keys()
	}
	for _, r := range e.Records {
		if k := r.Keys(); k != nil {
			return k
		}
	}
	return nil
}

// Standalone reports whether a record type is a whole event by itself: user-space messages
// (USER_*, ANOM_LOGIN_*, ...) are sent by a process through netlink and never get an EOE.
func Standalone(typ uint16) bool {
	return (typ >= TypeFirstUserMsg && typ <= TypeLastUserMsg) ||
		(typ >= TypeFirstUserMsg2 && typ <= TypeLastUserMsg2)
}

// Assembler groups records into events. It is not safe for concurrent use: one reader loop
// owns it.
type Assembler struct {
	// Timeout flushes an event whose EOE has not come (lost, or a record type without one).
	Timeout time.Duration
	// MaxPending bounds memory when EOEs go missing: the oldest pending event is flushed.
	MaxPending int

	emit    func(*Event)
	pending map[Stamp]*Event
	order   []Stamp // arrival order of pending stamps (may hold flushed ones; skipped)
}

// DefaultTimeout is how long an event waits for its EOE. The kernel emits an event's records
// back to back, so anything not complete after this is not going to be.
const DefaultTimeout = 2 * time.Second

// NewAssembler calls emit for every complete (or timed-out) event.
func NewAssembler(emit func(*Event)) *Assembler {
	return &Assembler{Timeout: DefaultTimeout, MaxPending: 4096, emit: emit, pending: make(map[Stamp]*Event)}
}

// Push adds a record received at now.
func (a *Assembler) Push(r *Record, now time.Time) {
	if Standalone(r.Type) {
		a.emit(&Event{Stamp: r.Stamp, Records: []*Record{r}, Complete: true})
		return
	}
	ev := a.pending[r.Stamp]
	if r.Type == TypeEOE {
		if ev == nil {
			return // an EOE alone: its records were lost or already flushed
		}
		delete(a.pending, r.Stamp)
		ev.Complete = true
		a.emit(ev)
		return
	}
	if ev == nil {
		ev = &Event{Stamp: r.Stamp, Records: make([]*Record, 0, 6), seen: now}
		a.pending[r.Stamp] = ev
		a.order = append(a.order, r.Stamp)
		if len(a.pending) > a.MaxPending {
			a.flushOldest()
		}
	}
	ev.Records = append(ev.Records, r)
}

// Expire flushes events older than Timeout. Call it periodically (once a second is plenty).
func (a *Assembler) Expire(now time.Time) {
	for len(a.order) > 0 {
		st := a.order[0]
		ev := a.pending[st]
		if ev != nil && now.Sub(ev.seen) < a.Timeout {
			break
		}
		a.order = a.order[1:]
		if ev != nil {
			delete(a.pending, st)
			a.emit(ev)
		}
	}
	a.compact()
}

// Flush emits everything pending (at shutdown).
func (a *Assembler) Flush() {
	for _, st := range a.order {
		if ev := a.pending[st]; ev != nil {
			delete(a.pending, st)
			a.emit(ev)
		}
	}
	a.order = a.order[:0]
}

// Pending returns the number of events waiting for their EOE.
func (a *Assembler) Pending() int { return len(a.pending) }

func (a *Assembler) flushOldest() {
	for len(a.order) > 0 {
		st := a.order[0]
		a.order = a.order[1:]
		if ev := a.pending[st]; ev != nil {
			delete(a.pending, st)
			a.emit(ev)
			return
		}
	}
}

// compact drops the already-flushed stamps from the front of order so it does not grow
// without bound when events complete by EOE (the common case).
func (a *Assembler) compact() {
	i := 0
	for i < len(a.order) && a.pending[a.order[i]] == nil {
		i++
	}
	if i > 0 {
		a.order = append(a.order[:0], a.order[i:]...)
	}
}
