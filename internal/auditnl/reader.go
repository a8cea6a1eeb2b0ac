package auditnl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// groupReadLog is AUDIT_NLGRP_READLOG: a read-only copy of every record
// the kernel emits, whether or not auditd runs. Joining needs
// CAP_AUDIT_READ and works only in the initial network namespace.
const groupReadLog = 1

// DefaultReadBuffer is the socket receive buffer a Reader asks for. The
// kernel drops multicast records when it is full (the reader then sees
// ENOBUFS), so it is sized for bursts: 4 MiB holds ~15,000 typical records.
const DefaultReadBuffer = 4 << 20

// ErrOverrun is returned by Read when the socket's receive buffer
// overflowed and the kernel dropped records for this reader. It is not
// fatal: keep reading. How many records were lost is unknown (netlink
// does not say); Overruns counts the occurrences.
var ErrOverrun = errors.New("audit reader: receive buffer overrun, records were lost")

// ErrClosed is returned by Read after Close or once the context is done.
var ErrClosed = errors.New("audit reader: closed")

// Record is one audit record as the kernel multicasts it: the record type
// (1300 SYSCALL, 1112 USER_LOGIN, 1320 EOE, ...) and its text,
// `audit(1700000000.123:456): key=value ...`. Records of one event share
// the `(timestamp:serial)`; EOE ends a multi-record event.
type Record struct {
	Type uint16
	Data []byte
}

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// ReadBuffer is the socket receive buffer in bytes (default
	// DefaultReadBuffer). As root the system limit is overridden.
	ReadBuffer int
}

// Reader receives audit records from the kernel's multicast group. It is
// not the audit daemon and does not take records away from auditd.
type Reader struct {
	nl       *netlink.Conn
	pending  []netlink.Message
	overruns atomic.Uint64
	records  atomic.Uint64
	closed   atomic.Bool
	stop     func() bool // unregisters the context watcher
	once     sync.Once
}

// NewReader joins the audit multicast group. The reader closes itself
// when ctx is done, which also ends a blocked Read.
func NewReader(ctx context.Context, opts ...ReaderOptions) (*Reader, error) {
	var o ReaderOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	nl, err := dial()
	if err != nil {
		return nil, err
	}
	if err := nl.JoinGroup(groupReadLog); err != nil {
		nl.Close()
		return nil, fmt.Errorf("audit reader: join multicast group (needs CAP_AUDIT_READ, initial network namespace): %w", err)
	}
	if err := nl.SetReadBuffer(o.ReadBuffer); err != nil {
		nl.Close()
		return nil, fmt.Errorf("audit reader: receive buffer: %w", err)
	}
	r := &Reader{nl: nl}
	r.stop = context.AfterFunc(ctx, func() { _ = r.Close() })
	return r, nil
}

// Read returns the next record. It blocks until one arrives, the reader is
// closed (ErrClosed), or the socket overflowed (ErrOverrun, not fatal).
// Read must not be called from more than one goroutine at a time.
func (r *Reader) Read() (Record, error) {
	for len(r.pending) == 0 {
		if r.closed.Load() {
			return Record{}, ErrClosed
		}
		msgs, err := r.nl.Receive()
		if err != nil {
			if r.closed.Load() {
				return Record{}, ErrClosed
			}
			if errors.Is(err, unix.ENOBUFS) {
				r.overruns.Add(1)
				return Record{}, ErrOverrun
			}
			return Record{}, fmt.Errorf("audit reader: %w", err)
		}
		r.pending = msgs
	}
	m := r.pending[0]
	r.pending = r.pending[1:]
	r.records.Add(1)
	// Some kernels and user-space senders end the text with NUL or a
	// newline; callers want the bare text.
	return Record{Type: uint16(m.Header.Type), Data: bytes.TrimRight(m.Data, "\x00\n")}, nil
}

// Overruns is how many times the kernel reported lost records (ENOBUFS).
func (r *Reader) Overruns() uint64 { return r.overruns.Load() }

// Records is how many records Read has returned.
func (r *Reader) Records() uint64 { return r.records.Load() }

// Close leaves the group and releases the socket; a blocked Read returns
// ErrClosed. Close is safe to call more than once and concurrently.
func (r *Reader) Close() error {
	var err error
	r.once.Do(func() {
		r.closed.Store(true)
		if r.stop != nil {
			r.stop()
		}
		err = r.nl.Close()
	})
	return err
}
