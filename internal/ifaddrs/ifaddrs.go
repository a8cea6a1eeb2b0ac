// Package ifaddrs lists the IP addresses on a network namespace's interfaces, read from the
// kernel over rtnetlink (RTM_GETADDR). The firewall uses it to find the machine's own Fly 6PN
// address when FLY_PRIVATE_IP is not in its environment (a systemd unit, a shell).
package ifaddrs

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/nft"
)

// Addr is one address on one interface.
type Addr struct {
	Prefix netip.Prefix // the address with its prefix length, as `ip addr` shows it
	Index  int          // the interface index
	Scope  uint8        // RT_SCOPE_*: 0 universe (global), 253 link, 254 host
}

// List returns the addresses of netns ("" is this process's namespace; a name is looked up
// under /run/netns, a path is used as is).
func List(netns string) ([]Addr, error) {
	cfg := &netlink.Config{}
	if netns != "" {
		fd, err := unix.Open(nft.NetNSPath(netns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", netns, err)
		}
		defer unix.Close(fd)
		cfg.NetNS = fd
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, cfg)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	defer c.Close()
	// struct ifaddrmsg { family, prefixlen, flags, scope u8; index u32 }: AF_UNSPEC dumps both
	// families.
	req := netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfAddrmsg),
	}
	msgs, err := c.Execute(req)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var out []Addr
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		a, ok, err := parse(m.Data)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// parse decodes one RTM_NEWADDR payload. IFA_ADDRESS is the address itself for IPv6 and the
// peer on point-to-point IPv4 links, where IFA_LOCAL is ours: IFA_LOCAL wins when present.
func parse(b []byte) (Addr, bool, error) {
	family, plen, scope := b[0], int(b[1]), b[3]
	index := int(binary.NativeEndian.Uint32(b[4:8]))
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfAddrmsg:])
	if err != nil {
		return Addr{}, false, fmt.Errorf("address attributes: %w", err)
	}
	var addr, local []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.IFA_ADDRESS:
			addr = ad.Bytes()
		case unix.IFA_LOCAL:
			local = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return Addr{}, false, fmt.Errorf("address attributes: %w", err)
	}
	if local != nil {
		addr = local
	}
	ip, ok := netip.AddrFromSlice(addr)
	if !ok || (family == unix.AF_INET) != ip.Is4() {
		return Addr{}, false, nil
	}
	return Addr{Prefix: netip.PrefixFrom(ip, plen), Index: index, Scope: scope}, true, nil
}
