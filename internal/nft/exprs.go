package nft

import (
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Statement constructors: each returns the expressions of one nft statement, so rule
// builders read like nft ("meta l4proto tcp", "th dport @ports"). They all use register 1.

// L4Proto matches the transport protocol (unix.IPPROTO_TCP, ...), in either IP family.
func L4Proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// NFProto matches the IP family (unix.NFPROTO_IPV4 or NFPROTO_IPV6). In an inet table it
// must come before any ip/ip6 header match, or the match reads the wrong header.
func NFProto(family byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
	}
}

// IifName matches the input interface name exactly: the name is NUL-padded to 16 bytes,
// because a shorter comparison is a prefix match ("lo" would match "lo*").
func IifName(name string) []expr.Any {
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// CtState matches when the connection state is any of bits (expr.CtStateBit...).
func CtState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// SaddrIn matches the source address against a set (v6 picks ip6 saddr over ip saddr).
func SaddrIn(v6 bool, set string) []expr.Any {
	off, n := uint32(12), uint32(4)
	if v6 {
		off, n = 8, 16
	}
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}

// DportIn matches the TCP/UDP destination port against a set ("th dport @set"); put
// L4Proto before it.
func DportIn(set string) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}

// ICMPTypeIn matches the ICMP or ICMPv6 type (the first transport byte) against a set; put
// L4Proto(IPPROTO_ICMP or IPPROTO_ICMPV6) before it.
func ICMPTypeIn(set string) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}

// ICMPType matches one ICMP or ICMPv6 type.
func ICMPType(t byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t}},
	}
}

// Counter counts packets and bytes.
func Counter() []expr.Any { return []expr.Any{&expr.Counter{}} }

// LimitPerSecond passes at most rate packets per second after a burst (nft "limit rate").
func LimitPerSecond(rate uint64, burst uint32) []expr.Any {
	return []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: rate, Unit: expr.LimitTimeSecond, Burst: burst}}
}

// LogPrefix logs the packet to the kernel log with prefix.
func LogPrefix(prefix string) []expr.Any {
	return []expr.Any{&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(prefix)}}
}

// Accept and Drop are the verdicts.
func Accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

// Drop is the drop verdict.
func Drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// Stmts joins statements into one rule's expressions.
func Stmts(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
