package auditnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel sends a rule list one rule per datagram (a kernel thread queues one reply per
// rule), so reading it with recvmsg costs a system call per rule: ~500 for a list of 500, on
// every plan and every verifying plan. A multipart reply is read with recvmmsg instead,
// recvBatch datagrams per call into slots of recvSlot bytes. A listed rule is its 1,040-byte
// header and its strings (a path, a key, an exe: a few KB); a datagram larger than a slot
// would come back truncated, which request turns into one retry of the request on the
// netlink library's own reader (peek, then read), so no reply is ever cut.
var (
	recvBatch = 16
	recvSlot  = 16 << 10
)

// errTruncated is a datagram that did not fit its slot.
var errTruncated = errors.New("audit netlink: reply larger than the batch slot")

// batch holds the recvmmsg buffers of a Conn, reused by every multipart request.
type batch struct {
	bufs [][]byte
	iovs []unix.Iovec
	hdrs []unix.Mmsghdr
}

func newBatch() *batch {
	b := &batch{bufs: make([][]byte, recvBatch), iovs: make([]unix.Iovec, recvBatch), hdrs: make([]unix.Mmsghdr, recvBatch)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, recvSlot)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(recvSlot)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv reads at least one datagram, waiting (within the socket's deadline) until one is
// there, and returns how many slots hold one.
func (b *batch) recv(nl *netlink.Conn) (int, error) {
	rc, err := nl.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var errno unix.Errno
	err = rc.Read(func(fd uintptr) bool {
		for i := range b.hdrs {
			b.hdrs[i].Len, b.hdrs[i].Hdr.Flags = 0, 0
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		n, errno = int(r), e
		return errno != unix.EAGAIN && errno != unix.EINTR // false: wait until readable, then again
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", errno)
	}
	return n, nil
}

// receiveMulti reads the replies to request seq of a multipart request: the ACK, the data
// messages of type want and the NLMSG_DONE that ends them, in whatever order they come (the
// ACK is sent by the request, the list by a kernel thread).
func (c *Conn) receiveMulti(op string, seq uint32, want netlink.HeaderType) ([]netlink.Message, error) {
	if c.batch == nil {
		c.batch = newBatch()
	}
	var out []netlink.Message
	acked, done := false, false
	for !acked || !done {
		n, err := c.batch.recv(c.nl)
		if err != nil {
			return nil, fmt.Errorf("audit %s: receive: %w", op, err)
		}
		for i := range n {
			h := c.batch.hdrs[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				return nil, errTruncated
			}
			msgs, err := splitMessages(c.batch.bufs[i][:h.Len])
			if err != nil {
				return nil, fmt.Errorf("audit %s: %w", op, err)
			}
			for _, m := range msgs {
				if m.Header.Sequence != seq {
					return nil, fmt.Errorf("audit %s: reply for sequence %d, want %d", op, m.Header.Sequence, seq)
				}
				switch m.Header.Type {
				case netlink.Error:
					if len(m.Data) < 4 {
						return nil, fmt.Errorf("audit %s: short error message", op)
					}
					if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
						return nil, &Error{Op: op, Errno: unix.Errno(-code)}
					}
					acked = true
				case netlink.Done:
					done = true
				case want:
					// The slot is reused by the next read: the caller keeps a copy.
					m.Data = append([]byte(nil), m.Data...)
					out = append(out, m)
				default:
					return nil, fmt.Errorf("audit %s: unexpected reply type %d", op, m.Header.Type)
				}
			}
		}
	}
	return out, nil
}

// splitMessages cuts one datagram into its netlink messages (without copying).
func splitMessages(b []byte) ([]netlink.Message, error) {
	var out []netlink.Message
	for len(b) >= unix.NLMSG_HDRLEN {
		ne := binary.NativeEndian
		l := int(ne.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return nil, fmt.Errorf("netlink message of %d bytes in %d", l, len(b))
		}
		out = append(out, netlink.Message{
			Header: netlink.Header{
				Length:   uint32(l),
				Type:     netlink.HeaderType(ne.Uint16(b[4:6])),
				Flags:    netlink.HeaderFlags(ne.Uint16(b[6:8])),
				Sequence: ne.Uint32(b[8:12]),
				PID:      ne.Uint32(b[12:16]),
			},
			Data: b[unix.NLMSG_HDRLEN:l],
		})
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
	return out, nil
}
