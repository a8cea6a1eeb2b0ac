package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Read returns the kernel's table name of family as a Ruleset, or nil when there is no such
// table. It is read-only.
func Read(c *Conn, name string, family nftables.TableFamily) (*Ruleset, error) {
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var t *nftables.Table
	for _, kt := range tables {
		if kt.Name == name {
			t = kt
		}
	}
	if t == nil {
		return nil, nil
	}
	// google/nftables v0.3.0 decodes NFTA_TABLE_FLAGS in host order; netlink sends it
	// big-endian (a dormant table reads as 0x1000000 here).
	flags := binary.BigEndian.Uint32(binary.NativeEndian.AppendUint32(nil, t.Flags))
	rs := &Ruleset{Table: name, Family: family, Flags: flags}
	if err := readSets(c, t, rs); err != nil {
		return nil, err
	}
	if err := readChains(c, t, rs); err != nil {
		return nil, err
	}
	return rs, nil
}

func readSets(c *Conn, t *nftables.Table, rs *Ruleset) error {
	sets, err := c.GetSets(t)
	if err != nil {
		return fmt.Errorf("list sets of %s: %w", t.Name, err)
	}
	for _, ks := range sets {
		elems, err := c.setElements(ks)
		if err != nil {
			return fmt.Errorf("elements of set %s: %w", ks.Name, err)
		}
		s := &Set{Name: ks.Name, KeyType: ks.KeyType, Interval: ks.Interval}
		s.Elements = rangesFromKernel(elems, ks.Interval, ks.KeyType.Bytes)
		rs.Sets = append(rs.Sets, s)
	}
	// The kernel lists sets in creation order already; sort by name anyway so a table
	// rebuilt by hand in another order still compares equal set by set.
	sort.Slice(rs.Sets, func(i, j int) bool { return rs.Sets[i].Name < rs.Sets[j].Name })
	return nil
}

// rangesFromKernel turns start and interval-end elements back into inclusive ranges. The
// kernel returns them in no promised order (an interval set's tree lists them highest
// first); at equal keys an end sorts first (it closes the range before it).
func rangesFromKernel(elems []kernelElem, interval bool, width uint32) []Range {
	for i := range elems {
		elems[i].key = fitKey(elems[i].key, int(width))
	}
	byKey := func(a, b kernelElem) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		switch {
		case a.end == b.end:
			return 0
		case a.end:
			return -1
		}
		return 1
	}
	// Elements equal by byKey are identical, so an unstable sort is exact; reversing
	// the kernel's descending order first makes it a linear pass.
	if slices.IsSortedFunc(elems, func(a, b kernelElem) int { return byKey(b, a) }) {
		slices.Reverse(elems)
	}
	if !slices.IsSortedFunc(elems, byKey) {
		slices.SortFunc(elems, byKey)
	}
	out := make([]Range, 0, len(elems)/2+1)
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		if e.end {
			continue // an end without a start: nft's "0 interval end" marker
		}
		r := Range{From: e.key, To: e.key}
		if interval {
			r.To = bytes.Repeat([]byte{0xff}, len(e.key))
			if i+1 < len(elems) && elems[i+1].end {
				r.To = decrement(elems[i+1].key)
				i++
			}
		}
		out = append(out, r)
	}
	return out
}

// fitKey trims or pads a key to the set's width (the kernel may pad keys to 4 bytes).
func fitKey(k []byte, width int) []byte {
	if width <= 0 || len(k) == width {
		return k
	}
	if len(k) > width {
		return k[:width]
	}
	return append(clone(k), make([]byte, width-len(k))...)
}

func readChains(c *Conn, t *nftables.Table, rs *Ruleset) error {
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	for _, kc := range chains {
		if kc.Table.Name != t.Name {
			continue
		}
		ch := &Chain{Name: kc.Name, Type: kc.Type, Hook: kc.Hooknum, Priority: kc.Priority}
		if kc.Policy != nil {
			ch.Policy = *kc.Policy
		}
		rules, err := c.GetRules(t, kc)
		if err != nil {
			return fmt.Errorf("rules of chain %s: %w", kc.Name, err)
		}
		for _, kr := range rules {
			r := &Rule{Exprs: kr.Exprs}
			if s, ok := userdata.GetString(kr.UserData, userdata.TypeComment); ok {
				r.Comment = s
			}
			ch.Rules = append(ch.Rules, r)
		}
		rs.Chains = append(rs.Chains, ch)
	}
	return nil
}
