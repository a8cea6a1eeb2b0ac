package nft

import (
	"bytes"
	"slices"
	"strings"
)

// Equal reports whether a and b are the same table element for element: when it says
// yes, Render(a) == Render(b). It compares set elements as bytes, so a converged plan of
// a 10,000 entry table does not print and compare two 10,000 line texts; chains are few
// and short, and are compared as rendered text, which is what normalises the kernel's
// read-back (counter values, padding) against what harden builds. When it says no, the
// caller renders both (for the diff) and the texts decide: Equal is a shortcut, never a
// second definition of "same".
func Equal(a, b *Ruleset) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Table != b.Table || a.Family != b.Family || a.Flags != b.Flags ||
		len(a.Sets) != len(b.Sets) || len(a.Chains) != len(b.Chains) {
		return false
	}
	as, bs := sortedSets(a), sortedSets(b)
	for i := range as {
		if !setEqual(as[i], bs[i]) {
			return false
		}
	}
	for i := range a.Chains {
		var ca, cb strings.Builder
		renderChain(&ca, a.Chains[i])
		renderChain(&cb, b.Chains[i])
		if ca.String() != cb.String() {
			return false
		}
	}
	return true
}

// sortedSets returns rs's sets in the order Render prints them.
func sortedSets(rs *Ruleset) []*Set {
	return slices.SortedStableFunc(slices.Values(rs.Sets), func(x, y *Set) int { return strings.Compare(x.Name, y.Name) })
}

// setEqual compares what renderSet prints: name, key type name, interval flag, elements.
func setEqual(a, b *Set) bool {
	if a.Name != b.Name || a.KeyType.Name != b.KeyType.Name || a.Interval != b.Interval ||
		len(a.Elements) != len(b.Elements) {
		return false
	}
	for i, r := range a.Elements {
		if !bytes.Equal(r.From, b.Elements[i].From) || !bytes.Equal(r.To, b.Elements[i].To) {
			return false
		}
	}
	return true
}
