package nft

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is an nftables netlink connection, optionally inside a network namespace.
type Conn struct {
	*nftables.Conn
	nsFd int
	// dump is a second socket, dialled on first use, for set element dumps (dump.go).
	dump *netlink.Conn
	// wrapped: made by Wrap, with no namespace of its own to dial a dump socket in.
	wrapped bool
}

// socketBuffer bounds one batch (the kernel refuses a netlink message larger than the
// socket's send buffer with EMSGSIZE; 10,000 IPv4 interval entries are about 1 MiB) and holds
// its acknowledgements (overflowing acks are ENOBUFS, and the batch result is lost to us).
// The *FORCE options pass the sysctl caps (rmem_max/wmem_max), as nft itself does; they need
// CAP_NET_ADMIN, which changing nftables needs anyway. Memory is only used while in flight.
const socketBuffer = 64 << 20

// Open connects to nftables in netns: "" is the current namespace, a name is looked up
// under /run/netns (as `ip netns` creates them), a path is used as is.
func Open(netns string) (*Conn, error) {
	c := &Conn{nsFd: -1}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(tuneSocket)}
	if netns != "" {
		path := NetNSPath(netns)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", path, err)
		}
		c.nsFd = fd
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		c.closeNS()
		return nil, fmt.Errorf("nftables netlink socket (is nf_tables available in this kernel?): %w", err)
	}
	c.Conn = conn
	return c, nil
}

// NetNSPath maps a namespace name to its bind mount under /run/netns; paths pass through.
func NetNSPath(netns string) string {
	if strings.ContainsRune(netns, '/') {
		return netns
	}
	return filepath.Join("/run/netns", netns)
}

// tuneSocket asks for short acknowledgements (no copy of each request) and a big receive
// buffer, so a large batch's acks fit.
func tuneSocket(c *netlink.Conn) error {
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("netlink cap_ack: %w", err)
	}
	_ = c.SetOption(netlink.ExtendedAcknowledge, true) // nicer kernel errors when available
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, socketBuffer); e != nil {
				serr = e
			}
		}
	})
	if err == nil && serr != nil {
		// Without CAP_NET_ADMIN: take what the sysctl caps allow; Plan (read-only) still works.
		_ = c.SetReadBuffer(socketBuffer)
		_ = c.SetWriteBuffer(socketBuffer)
	}
	return err
}

// Close closes the socket and the namespace handle.
func (c *Conn) Close() error {
	var err error
	if c.Conn != nil {
		err = c.Conn.CloseLasting()
	}
	if c.dump != nil {
		if derr := c.dump.Close(); err == nil {
			err = derr
		}
		c.dump = nil
	}
	c.closeNS()
	return err
}

func (c *Conn) closeNS() {
	if c.nsFd >= 0 {
		_ = unix.Close(c.nsFd)
		c.nsFd = -1
	}
}

// Wrap adapts an existing google/nftables Conn (a test dialer, a caller-made socket). Close
// then only closes it if it is lasting.
func Wrap(c *nftables.Conn) *Conn { return &Conn{Conn: c, nsFd: -1, wrapped: true} }
