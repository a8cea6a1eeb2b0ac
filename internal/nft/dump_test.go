package nft

import (
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// elemMsg builds a NEWSETELEM dump message the way the kernel does, with mdlayher's
// encoder (independent of walkAttrs).
func elemMsg(t *testing.T, elems ...kernelElem) netlink.Message {
	t.Helper()
	list := netlink.NewAttributeEncoder()
	for _, e := range elems {
		list.Nested(unix.NFTA_LIST_ELEM, func(ae *netlink.AttributeEncoder) error {
			ae.Nested(unix.NFTA_SET_ELEM_KEY, func(ke *netlink.AttributeEncoder) error {
				ke.Bytes(unix.NFTA_DATA_VALUE, e.key)
				return nil
			})
			if e.end {
				ae.Bytes(unix.NFTA_SET_ELEM_FLAGS, binary.BigEndian.AppendUint32(nil, unix.NFT_SET_ELEM_INTERVAL_END))
			}
			return nil
		})
	}
	inner, err := list.Encode()
	require.NoError(t, err)
	outer, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte("harden\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte("s\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_ELEMENTS | unix.NLA_F_NESTED, Data: inner},
	})
	require.NoError(t, err)
	return netlink.Message{
		Header: netlink.Header{Type: unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM},
		Data:   append([]byte{unix.NFPROTO_INET, 0, 0, 0}, outer...),
	}
}

func TestAppendElementsDecodesKeysAndEnds(t *testing.T) {
	want := []kernelElem{{key: []byte{10, 0, 0, 0}}, {key: []byte{11, 0, 0, 0}, end: true}, {key: []byte{0, 22}}}
	got, err := appendElements(nil, elemMsg(t, want...))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestAppendElementsRefusesMalformed(t *testing.T) {
	m := elemMsg(t, kernelElem{key: []byte{1, 2, 3, 4}})
	m.Data = m.Data[:len(m.Data)-3] // the last attribute now claims more bytes than there are
	_, err := appendElements(nil, m)
	assert.ErrorContains(t, err, "netlink attribute: length")

	m = elemMsg(t)
	m.Header.Type = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSET
	_, err = appendElements(nil, m)
	assert.ErrorContains(t, err, "unexpected message type")
}

// The kernel lists an interval set highest first; ranges come out ascending, and a range
// reaching the top of the key space has no end element.
func TestRangesFromKernelOrder(t *testing.T) {
	elems := []kernelElem{
		{key: []byte{0xff, 0}},
		{key: []byte{0x20, 0}, end: true},
		{key: []byte{0x10, 0}},
		{key: []byte{0x10, 0}, end: true},
		{key: []byte{0x01, 0}},
	}
	got := rangesFromKernel(elems, true, 2)
	assert.Equal(t, []Range{
		{From: []byte{0x01, 0}, To: []byte{0x0f, 0xff}},
		{From: []byte{0x10, 0}, To: []byte{0x1f, 0xff}},
		{From: []byte{0xff, 0}, To: []byte{0xff, 0xff}},
	}, got)
}
