package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dumpBuffer is the fixed receive buffer for set element dumps. The kernel sizes each dump
// message by the largest read the socket has seen, up to 32 KiB: reading into buffers
// sized by peeking (mdlayher/netlink's default, which google/nftables uses) keeps every
// message at the ~4 KiB first size. Each message makes the kernel walk the set from its
// start again (it skips what it sent before), so small messages make a dump of n elements
// cost n/40 walks of n. 64 KiB is above the kernel's cap, so nothing is ever truncated.
const dumpBuffer = 64 << 10

// kernelElem is one set element as the kernel lists it: a key, and whether it closes an
// interval (its key is one past the range's last).
type kernelElem struct {
	key []byte
	end bool
}

// setElements lists the elements of set s. Connections made by Open dump them on a
// socket of their own with a big buffer and decode only what Read needs (key and
// interval-end flag); google/nftables' GetSetElements decodes every field of every element
// into a growing slice, which cost ~70 ms of CPU for 20,000 elements. A wrapped Conn (a
// test dialer) has no namespace to dial into and uses GetSetElements.
func (c *Conn) setElements(s *nftables.Set) ([]kernelElem, error) {
	if c.wrapped {
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, err
		}
		out := make([]kernelElem, len(elems))
		for i, e := range elems {
			out[i] = kernelElem{key: e.Key, end: e.IntervalEnd}
		}
		return out, nil
	}
	nl, err := c.dumpConn()
	if err != nil {
		return nil, err
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(s.Table.Name + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(s.Name + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		// nfgenmsg: family, version, resource id.
		Data: append([]byte{byte(s.Table.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	}
	if _, err := nl.Send(req); err != nil {
		return nil, fmt.Errorf("request elements: %w", err)
	}
	var out []kernelElem
	for m, err := range nl.ReceiveIter() {
		if err != nil {
			return nil, err
		}
		if out, err = appendElements(out, m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dumpConn dials the dump socket on first use, in the Conn's namespace.
func (c *Conn) dumpConn() (*netlink.Conn, error) {
	if c.dump != nil {
		return c.dump, nil
	}
	cfg := &netlink.Config{MessageBufferSize: dumpBuffer}
	if c.nsFd >= 0 {
		cfg.NetNS = c.nsFd
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink socket for dumps: %w", err)
	}
	c.dump = nl
	return nl, nil
}

// appendElements decodes one NEWSETELEM dump message: nfgenmsg, then
// NFTA_SET_ELEM_LIST_ELEMENTS holding NFTA_LIST_ELEM entries, each with NFTA_SET_ELEM_KEY
// (holding NFTA_DATA_VALUE) and NFTA_SET_ELEM_FLAGS. Keys alias the message's buffer,
// which is the caller's to keep.
func appendElements(out []kernelElem, m netlink.Message) ([]kernelElem, error) {
	const newSetElem = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM
	if m.Header.Type != newSetElem {
		return nil, fmt.Errorf("set element dump: unexpected message type 0x%x", m.Header.Type)
	}
	if len(m.Data) < 4 {
		return nil, fmt.Errorf("set element dump: short message (%d bytes)", len(m.Data))
	}
	err := walkAttrs(m.Data[4:], func(typ uint16, list []byte) error {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return nil
		}
		return walkAttrs(list, func(typ uint16, elem []byte) error {
			if typ != unix.NFTA_LIST_ELEM {
				return nil
			}
			e, err := decodeElement(elem)
			out = append(out, e)
			return err
		})
	})
	return out, err
}

func decodeElement(b []byte) (kernelElem, error) {
	var e kernelElem
	err := walkAttrs(b, func(typ uint16, data []byte) error {
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			return walkAttrs(data, func(typ uint16, v []byte) error {
				if typ == unix.NFTA_DATA_VALUE {
					e.key = v
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(data) != 4 {
				return fmt.Errorf("set element flags: %d bytes", len(data))
			}
			e.end = binary.BigEndian.Uint32(data)&unix.NFT_SET_ELEM_INTERVAL_END != 0
		}
		return nil
	})
	return e, err
}

// walkAttrs calls fn with the type (without the nested and byte-order bits) and payload of
// each netlink attribute in b, without allocating: a 10,000 entry set is 20,000 elements
// of four attributes each.
func walkAttrs(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlAttr {
			return fmt.Errorf("netlink attribute: %d trailing bytes", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < unix.SizeofNlAttr || n > len(b) {
			return fmt.Errorf("netlink attribute: length %d of %d bytes", n, len(b))
		}
		if err := fn(typ, b[unix.SizeofNlAttr:n]); err != nil {
			return err
		}
		b = b[min(len(b), (n+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return nil
}
