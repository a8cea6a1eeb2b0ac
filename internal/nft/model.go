// Package nft is harden's narrow layer over github.com/google/nftables: a plain model of one
// table (sets with their elements, chains with their rules), a whole-table replace in one
// netlink transaction, a read-back of the kernel's table into the same model, and a renderer
// that prints either as nft-like text. Plans compare the rendered texts: what the kernel
// gives back and what harden wants go through the same printer, so hand edits show up as
// lines people can read.
package nft

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Ruleset is one nftables table and everything in it.
type Ruleset struct {
	Table  string
	Family nftables.TableFamily
	// Flags are the table's flags as read back (harden creates tables without any); a
	// "dormant" table is in the kernel but filters nothing, so it must show in a plan.
	Flags  uint32
	Sets   []*Set
	Chains []*Chain
}

// Set is a named set. Elements are inclusive ranges of big-endian keys, sorted and
// non-overlapping; a set without Interval holds single keys (From == To).
type Set struct {
	Name     string
	KeyType  nftables.SetDatatype
	Interval bool
	Elements []Range
}

// Range is an inclusive range of keys [From, To], both KeyType.Bytes long, big-endian.
type Range struct{ From, To []byte }

// Chain is a base chain and its rules, in order.
type Chain struct {
	Name     string
	Type     nftables.ChainType
	Hook     *nftables.ChainHook
	Priority *nftables.ChainPriority
	Policy   nftables.ChainPolicy
	Rules    []*Rule
}

// Rule is a list of expressions and an optional comment (stored in the rule's userdata in
// the format nft uses, so `nft list ruleset` shows it too).
type Rule struct {
	Exprs   []expr.Any
	Comment string
}

// Set returns the set called name, or nil.
func (r *Ruleset) Set(name string) *Set {
	for _, s := range r.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Counts returns the number of rules and of set elements, for one-line summaries.
func (r *Ruleset) Counts() (rules, elements int) {
	if r == nil {
		return 0, 0
	}
	for _, c := range r.Chains {
		rules += len(c.Rules)
	}
	for _, s := range r.Sets {
		elements += len(s.Elements)
	}
	return rules, elements
}

// RangeBuilder collects keys and ranges of one width and returns them merged: sorted, with
// overlapping and adjacent ranges joined. Interval sets refuse overlapping elements, and
// policies do overlap (10.0.0.0/8 and 10.1.0.0/16), so every set goes through here.
type RangeBuilder struct {
	width int
	// keys holds each added range's first and last key back to back: one growing buffer
	// instead of two small allocations per range (a policy may list 10,000 sources).
	keys []byte
}

// NewRangeBuilder returns a builder for keys of width bytes.
func NewRangeBuilder(width int) *RangeBuilder { return &RangeBuilder{width: width} }

// Add adds the inclusive range [from, to]; both must be width bytes.
func (b *RangeBuilder) Add(from, to []byte) {
	if len(from) != b.width || len(to) != b.width {
		panic(fmt.Sprintf("nft: key width %d/%d, want %d", len(from), len(to), b.width))
	}
	b.keys = append(append(b.keys, from...), to...)
}

// AddPrefix adds every address of p (its family must match the builder's width).
func (b *RangeBuilder) AddPrefix(p netip.Prefix) {
	p = p.Masked()
	first := p.Addr().As16()
	last := first
	for i := p.Bits() + 128 - p.Addr().BitLen(); i < 128; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	skip := 16 - p.Addr().BitLen()/8 // an IPv4 address is the last 4 bytes of As16
	b.Add(first[skip:], last[skip:])
}

// AddPorts adds the inclusive port range [lo, hi].
func (b *RangeBuilder) AddPorts(lo, hi uint16) {
	b.Add([]byte{byte(lo >> 8), byte(lo)}, []byte{byte(hi >> 8), byte(hi)})
}

// Ranges returns the merged ranges.
func (b *RangeBuilder) Ranges() []Range {
	w := b.width
	in := make([]Range, 0, len(b.keys)/(2*max(w, 1)))
	for k := b.keys; len(k) >= 2*w && w > 0; k = k[2*w:] {
		in = append(in, Range{From: k[:w:w], To: k[w : 2*w : 2*w]})
	}
	return Merge(in)
}

// Merge sorts ranges and joins those that overlap or touch. The result shares no memory
// with in.
func Merge(in []Range) []Range {
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(x, y Range) int { return bytes.Compare(x.From, y.From) })
	out := rs[:0] // joined in place: out never gets ahead of the range being read
	size := 0
	for _, r := range rs {
		if n := len(out); n > 0 && joins(out[n-1].To, r.From) {
			if bytes.Compare(r.To, out[n-1].To) > 0 {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
		size += len(r.From) + len(r.To)
	}
	// Copy the keys out of in, into one buffer.
	buf := make([]byte, 0, size)
	for i, r := range out {
		buf = append(buf, r.From...)
		from := buf[len(buf)-len(r.From) : len(buf) : len(buf)]
		buf = append(buf, r.To...)
		out[i] = Range{From: from, To: buf[len(buf)-len(r.To) : len(buf) : len(buf)]}
	}
	return out
}

// joins reports whether a range starting at from overlaps or touches one ending at to
// (from <= to+1), without computing to+1.
func joins(to, from []byte) bool {
	if bytes.Compare(from, to) <= 0 {
		return true
	}
	// from > to: they touch when from == to+1, that is to's trailing 0xff bytes are
	// from's trailing zero bytes, the byte before is one higher, and the rest is equal.
	i := len(to) - 1
	for ; i >= 0 && to[i] == 0xff; i-- {
		if from[i] != 0 {
			return false
		}
	}
	return i >= 0 && from[i] == to[i]+1 && bytes.Equal(from[:i], to[:i])
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// increment returns k+1 and whether it overflowed (k was all ones).
func increment(k []byte) ([]byte, bool) {
	out := clone(k)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, false
		}
	}
	return out, true
}

// decrement returns k-1 (k must not be zero).
func decrement(k []byte) []byte {
	out := clone(k)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
