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
	"sort"

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
	width  int
	ranges []Range
}

// NewRangeBuilder returns a builder for keys of width bytes.
func NewRangeBuilder(width int) *RangeBuilder { return &RangeBuilder{width: width} }

// Add adds the inclusive range [from, to]; both must be width bytes.
func (b *RangeBuilder) Add(from, to []byte) {
	if len(from) != b.width || len(to) != b.width {
		panic(fmt.Sprintf("nft: key width %d/%d, want %d", len(from), len(to), b.width))
	}
	b.ranges = append(b.ranges, Range{From: clone(from), To: clone(to)})
}

// AddPrefix adds every address of p (its family must match the builder's width).
func (b *RangeBuilder) AddPrefix(p netip.Prefix) {
	p = p.Masked()
	first := p.Addr()
	last := lastAddr(p)
	b.Add(first.AsSlice(), last.AsSlice())
}

// AddPorts adds the inclusive port range [lo, hi].
func (b *RangeBuilder) AddPorts(lo, hi uint16) {
	b.Add([]byte{byte(lo >> 8), byte(lo)}, []byte{byte(hi >> 8), byte(hi)})
}

// Ranges returns the merged ranges.
func (b *RangeBuilder) Ranges() []Range { return Merge(b.ranges) }

// Merge sorts ranges and joins those that overlap or touch.
func Merge(in []Range) []Range {
	rs := append([]Range(nil), in...)
	sort.Slice(rs, func(i, j int) bool { return bytes.Compare(rs[i].From, rs[j].From) < 0 })
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next, overflow := increment(last.To)
			if overflow || bytes.Compare(r.From, next) <= 0 {
				if bytes.Compare(r.To, last.To) > 0 {
					last.To = r.To
				}
				continue
			}
		}
		out = append(out, Range{From: clone(r.From), To: clone(r.To)})
	}
	return out
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
