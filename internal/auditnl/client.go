// Package auditnl is a client for the kernel's audit netlink socket: status,
// rule list/add/delete, and a multicast reader of audit records. It never
// registers itself as the audit daemon, so it does not fight auditd.
//
// Protocol notes (verified on Linux 6.x): every request is sent with
// NLM_F_ACK; the kernel answers with the ACK first and then, for GET and
// LIST_RULES, the data (LIST_RULES is multipart until NLMSG_DONE). Replies
// are matched by sequence number. A request that times out half-way leaves
// replies in the socket, so the socket is then replaced.
package auditnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Message types (include/uapi/linux/audit.h).
const (
	typeGet        netlink.HeaderType = 1000
	typeSet        netlink.HeaderType = 1001
	typeAddRule    netlink.HeaderType = 1011
	typeDelRule    netlink.HeaderType = 1012
	typeListRules  netlink.HeaderType = 1013
	typeSetFeature netlink.HeaderType = 1018
	typeGetFeature netlink.HeaderType = 1019
)

// Client is the part of the audit subsystem a hardening step needs. *Conn
// implements it against the kernel; tests use a fake.
type Client interface {
	GetStatus(ctx context.Context) (*Status, error)
	SetStatus(ctx context.Context, u StatusUpdate) error
	ListRules(ctx context.Context) ([]*auditrule.Rule, error)
	AddRule(ctx context.Context, r *auditrule.Rule) error
	DeleteRule(ctx context.Context, r *auditrule.Rule) error
}

// Options tune a Conn.
type Options struct {
	// AllowLock permits enabled=2, failure=2 (panic) and loginuid
	// immutability: changes that hold until reboot. Off by default so that
	// no test or tool can lock a host by accident.
	AllowLock bool
	// Timeout bounds one request when the context has no deadline.
	// Default 5s.
	Timeout time.Duration
}

// Conn is a netlink connection to the kernel's audit subsystem. It is safe
// for concurrent use; requests are serialized.
type Conn struct {
	opts Options
	mu   sync.Mutex
	nl   *netlink.Conn // nil after a broken request; redialed on next use
	// batch reads multipart replies many datagrams at a time (mmsg.go); nil until the
	// first. noBatch is set once a reply did not fit its slots: from then on the
	// library's reader takes multipart replies too.
	batch   *batch
	noBatch bool
}

var _ Client = (*Conn)(nil)

// Dial opens a connection. It fails if the kernel has no audit support.
func Dial(opts Options) (*Conn, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	c := &Conn{opts: opts}
	nl, err := dial()
	if err != nil {
		return nil, err
	}
	c.nl = nl
	return c, nil
}

// replyBuffer holds the largest reply the kernel sends: a listed rule is struct
// audit_rule_data (1,040 bytes) and its strings, at most AUDIT_MAX_FIELDS of PATH_MAX each.
// With a fixed buffer the netlink library reads each reply with one recvmsg; without one
// it peeks at every message first (MSG_PEEK) to size a new buffer: two system calls a rule,
// 1,000 for a list of 500. A reply that did not fit would be an error, never cut short.
const replyBuffer = 16 + 1040 + 64*4096

// dial opens the socket; a variable so that a test can prove that a
// refused change never reaches the kernel.
var dial = func() (*netlink.Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_AUDIT, &netlink.Config{MessageBufferSize: replyBuffer})
	if err != nil {
		return nil, fmt.Errorf("audit netlink: %w", err)
	}
	return nl, nil
}

// Close releases the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		return nil
	}
	err := c.nl.Close()
	c.nl = nil
	return err
}

// request sends one message and collects the replies that belong to it.
// want is the data message type expected after the ACK (0: ACK only);
// multi says the data is a multipart list ending in NLMSG_DONE.
func (c *Conn) request(ctx context.Context, op string, typ netlink.HeaderType, data []byte, want netlink.HeaderType, multi bool) ([]netlink.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		nl, err := dial()
		if err != nil {
			return nil, err
		}
		c.nl = nl
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	if err := c.nl.SetDeadline(deadline); err != nil {
		return nil, err
	}
	out, err := c.exchange(op, typ, data, want, multi)
	if errors.Is(err, errTruncated) {
		// A reply too large for the batch slots: it is lost in the read, so the request
		// goes again, on a fresh socket and through the library's reader, which sizes
		// its buffer for every message.
		_ = c.nl.Close()
		c.nl, c.noBatch = nil, true
		if c.nl, err = dial(); err != nil {
			return nil, err
		}
		if err := c.nl.SetDeadline(deadline); err != nil {
			return nil, err
		}
		out, err = c.exchange(op, typ, data, want, multi)
	}
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			// Not a clean kernel answer (timeout, short read): replies
			// may still be queued, so start over with a fresh socket.
			_ = c.nl.Close()
			c.nl = nil
		}
		return nil, err
	}
	return out, nil
}

func (c *Conn) exchange(op string, typ netlink.HeaderType, data []byte, want netlink.HeaderType, multi bool) ([]netlink.Message, error) {
	sent, err := c.nl.Send(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Acknowledge},
		Data:   data,
	})
	if err != nil {
		return nil, fmt.Errorf("audit %s: send: %w", op, err)
	}
	seq := sent.Header.Sequence
	if multi && want != 0 && !c.noBatch {
		return c.receiveMulti(op, seq, want)
	}
	acked := false
	var out []netlink.Message
	for {
		msgs, err := c.nl.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) {
				var errno unix.Errno
				if errors.As(oe.Err, &errno) {
					return nil, &Error{Op: op, Errno: errno}
				}
			}
			return nil, fmt.Errorf("audit %s: receive: %w", op, err)
		}
		gotData := false
		for _, m := range msgs {
			if m.Header.Sequence != seq {
				return nil, fmt.Errorf("audit %s: reply for sequence %d, want %d", op, m.Header.Sequence, seq)
			}
			switch m.Header.Type {
			case netlink.Error: // error code 0: the ACK (errors come back from Receive)
				acked = true
			case want:
				out = append(out, m)
				gotData = true
			default:
				return nil, fmt.Errorf("audit %s: unexpected reply type %d", op, m.Header.Type)
			}
		}
		switch {
		case !acked:
			continue
		case want == 0:
			return out, nil
		case multi && (gotData || len(msgs) == 0):
			// netlink.Conn.Receive reads a multipart reply up to and
			// including NLMSG_DONE (which it drops): the list is complete.
			// An empty batch after the ACK is a list with no rules.
			return out, nil
		case !multi && gotData:
			return out, nil
		}
	}
}

// GetStatus reads the kernel's audit status.
func (c *Conn) GetStatus(ctx context.Context) (*Status, error) {
	msgs, err := c.request(ctx, "get status", typeGet, nil, typeGet, false)
	if err != nil {
		return nil, err
	}
	return unmarshalStatus(msgs[0].Data)
}

// SetStatus changes the status values that are set in u, one request per
// value, with enabled last: once enabled is 2 nothing else can change.
func (c *Conn) SetStatus(ctx context.Context, u StatusUpdate) error {
	if !c.opts.AllowLock && ((u.Enabled != nil && *u.Enabled == EnabledLocked) || (u.Failure != nil && *u.Failure == FailurePanic)) {
		return ErrRefused
	}
	if u.Enabled != nil && *u.Enabled > EnabledLocked {
		return fmt.Errorf("audit set enabled: %d is not 0, 1 or 2", *u.Enabled)
	}
	if u.Failure != nil && *u.Failure > FailurePanic {
		return fmt.Errorf("audit set failure: %d is not 0, 1 or 2", *u.Failure)
	}
	steps := []struct {
		name string
		v    *uint32
		mask uint32
		set  func(*Status, uint32)
	}{
		{"failure", u.Failure, maskFailure, func(s *Status, v uint32) { s.Failure = v }},
		{"rate_limit", u.RateLimit, maskRateLimit, func(s *Status, v uint32) { s.RateLimit = v }},
		{"backlog_limit", u.BacklogLimit, maskBacklogLimit, func(s *Status, v uint32) { s.BacklogLimit = v }},
		{"backlog_wait_time", u.BacklogWaitTime, maskBacklogWaitTime, func(s *Status, v uint32) { s.BacklogWaitTime = v }},
		{"enabled", u.Enabled, maskEnabled, func(s *Status, v uint32) { s.Enabled = v }},
	}
	for _, st := range steps {
		if st.v == nil {
			continue
		}
		s := &Status{Mask: st.mask}
		st.set(s, *st.v)
		if _, err := c.request(ctx, "set "+st.name, typeSet, s.marshal(), 0, false); err != nil {
			return err
		}
	}
	return nil
}

// GetFeatures reads the kernel's audit feature flags.
func (c *Conn) GetFeatures(ctx context.Context) (*Features, error) {
	msgs, err := c.request(ctx, "get features", typeGetFeature, nil, typeGetFeature, false)
	if err != nil {
		return nil, err
	}
	b := msgs[0].Data
	if len(b) < 16 {
		return nil, fmt.Errorf("audit get features: %d bytes, want 16", len(b))
	}
	ne := binary.NativeEndian
	return &Features{ne.Uint32(b), ne.Uint32(b[4:]), ne.Uint32(b[8:]), ne.Uint32(b[12:])}, nil
}

// SetLoginUIDImmutable makes loginuids unchangeable and locks that setting
// until reboot (auditctl --loginuid-immutable). Needs Options.AllowLock.
func (c *Conn) SetLoginUIDImmutable(ctx context.Context) error {
	if !c.opts.AllowLock {
		return ErrRefused
	}
	const bit = 1 << 1
	b := make([]byte, 16)
	ne := binary.NativeEndian
	ne.PutUint32(b, 1)       // AUDIT_FEATURE_VERSION
	ne.PutUint32(b[4:], bit) // mask
	ne.PutUint32(b[8:], bit) // features
	ne.PutUint32(b[12:], bit)
	_, err := c.request(ctx, "set loginuid immutable", typeSetFeature, b, 0, false)
	return err
}

// ListRulesRaw returns the kernel's rules as struct audit_rule_data bytes,
// in the kernel's order (filter list by filter list, each in order).
func (c *Conn) ListRulesRaw(ctx context.Context) ([][]byte, error) {
	msgs, err := c.request(ctx, "list rules", typeListRules, nil, typeListRules, true)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Data
	}
	return out, nil
}

// ListRules returns the kernel's rules, decoded.
func (c *Conn) ListRules(ctx context.Context) ([]*auditrule.Rule, error) {
	raw, err := c.ListRulesRaw(ctx)
	if err != nil {
		return nil, err
	}
	rules := make([]*auditrule.Rule, len(raw))
	for i, b := range raw {
		r, err := auditrule.Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("audit list rules: rule %d: %w", i+1, err)
		}
		rules[i] = r
	}
	return rules, nil
}

// AddRule loads one rule (at the end of its list, or the head for -A).
func (c *Conn) AddRule(ctx context.Context, r *auditrule.Rule) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return c.AddRuleRaw(ctx, b)
}

// AddRuleRaw loads one rule given as struct audit_rule_data bytes.
func (c *Conn) AddRuleRaw(ctx context.Context, b []byte) error {
	_, err := c.request(ctx, "add rule", typeAddRule, b, 0, false)
	return err
}

// DeleteRule removes the kernel rule equal to r.
func (c *Conn) DeleteRule(ctx context.Context, r *auditrule.Rule) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return c.DeleteRuleRaw(ctx, b)
}

// DeleteRuleRaw removes a rule given as bytes (e.g. as listed).
func (c *Conn) DeleteRuleRaw(ctx context.Context, b []byte) error {
	_, err := c.request(ctx, "delete rule", typeDelRule, b, 0, false)
	return err
}

// DeleteAllRules removes every rule, like auditctl -D.
func (c *Conn) DeleteAllRules(ctx context.Context) error {
	raw, err := c.ListRulesRaw(ctx)
	if err != nil {
		return err
	}
	for _, b := range raw {
		if err := c.DeleteRuleRaw(ctx, b); err != nil && !IsNotExist(err) {
			return err
		}
	}
	return nil
}

// addBatch is how many ADD_RULE messages AddRules puts in one datagram: 64 rules of at most
// ~5 KiB stay far below the socket's send buffer, and their ACKs below the receive buffer.
const addBatch = 64

// AddRules loads rules in order, like AddRule for each, with far fewer system calls: the
// messages go in batches of one datagram each, and the kernel answers each with its own
// ACK, in order. The kernel handles every message of a datagram even after one fails, so
// on an error the rules after the failed one in the same batch may be loaded; no further
// batch is sent. A refused rule comes back as a *BatchError with its index.
func (c *Conn) AddRules(ctx context.Context, rules []*auditrule.Rule) error {
	for start := 0; start < len(rules); start += addBatch {
		end := min(start+addBatch, len(rules))
		if err := c.addBatch(ctx, rules[start:end], start); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) addBatch(ctx context.Context, rules []*auditrule.Rule, offset int) error {
	msgs := make([]netlink.Message, len(rules))
	for i, r := range rules {
		b, err := r.Marshal()
		if err != nil {
			return fmt.Errorf("audit add rule %d: %w", offset+i+1, err)
		}
		msgs[i] = netlink.Message{
			Header: netlink.Header{Type: typeAddRule, Flags: netlink.Request | netlink.Acknowledge},
			Data:   b,
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		nl, err := dial()
		if err != nil {
			return err
		}
		c.nl = nl
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	if err := c.nl.SetDeadline(deadline); err != nil {
		return err
	}
	sent, err := c.nl.SendMessages(msgs)
	if err != nil {
		return fmt.Errorf("audit add rules: send: %w", err)
	}
	// Read every ACK (in the kernel's order, which is ours) even after an error, so that
	// none is left in the socket for the next request. Each ACK is a datagram of its own:
	// they are read many per recvmmsg (mmsg.go), not one recvmsg (and a peek) each.
	if c.batch == nil {
		c.batch = newBatch()
	}
	outOfStep := func(err error) error {
		// The socket cannot be trusted any more.
		_ = c.nl.Close()
		c.nl = nil
		return fmt.Errorf("audit add rules: receive: %w", err)
	}
	var first error
	for i := 0; i < len(sent); {
		n, err := c.batch.recv(c.nl)
		if err != nil {
			return outOfStep(err)
		}
		for k := range n {
			h := c.batch.hdrs[k]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				return outOfStep(errTruncated)
			}
			replies, err := splitMessages(c.batch.bufs[k][:h.Len])
			if err != nil {
				return outOfStep(err)
			}
			for _, m := range replies {
				if i >= len(sent) || m.Header.Type != netlink.Error || m.Header.Sequence != sent[i].Header.Sequence || len(m.Data) < 4 {
					return outOfStep(fmt.Errorf("unexpected reply %+v", m.Header))
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 && first == nil {
					first = &BatchError{Index: offset + i, Err: &Error{Op: "add rule", Errno: unix.Errno(-code)}}
				}
				i++
			}
		}
	}
	return first
}
