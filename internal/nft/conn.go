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
}

// socketBuffer is large enough for the acknowledgements of a 10,000-entry batch; the
// kernel reports ENOBUFS (and the batch result is lost to us) when acks overflow it.
const socketBuffer = 8 << 20

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
	if err := c.SetReadBuffer(socketBuffer); err != nil {
		return fmt.Errorf("netlink read buffer: %w", err)
	}
	return nil
}

// Close closes the socket and the namespace handle.
func (c *Conn) Close() error {
	var err error
	if c.Conn != nil {
		err = c.Conn.CloseLasting()
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
