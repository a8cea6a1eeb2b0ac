package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// elementsPerMessage keeps each NEWSETELEM message well under netlink's 64 KiB attribute
// limit (an IPv6 interval element takes about 60 bytes).
const elementsPerMessage = 512

// Replace swaps the kernel's table for rs in one netlink batch, which the kernel applies as
// one transaction: AddTable (a no-op if it exists, so the DelTable below never fails with
// ENOENT), DelTable, AddTable, then every set, chain and rule. Packets see either the old
// table or the new one, never none; a batch the kernel refuses changes nothing.
//
// The Conn must not be reused after an error: google/nftables keeps marshalling errors.
func Replace(c *Conn, rs *Ruleset) error {
	t := &nftables.Table{Name: rs.Table, Family: rs.Family}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ids := map[string]uint32{}
	for _, s := range rs.Sets {
		id, err := addSet(c, t, s)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		ids[s.Name] = id
	}
	for _, ch := range rs.Chains {
		kc := c.AddChain(&nftables.Chain{
			Name: ch.Name, Table: t, Type: ch.Type, Hooknum: ch.Hook, Priority: ch.Priority,
			Policy: &ch.Policy,
		})
		for _, r := range ch.Rules {
			exprs, err := withSetIDs(r.Exprs, ids)
			if err != nil {
				return fmt.Errorf("chain %s: %w", ch.Name, err)
			}
			kr := &nftables.Rule{Table: t, Chain: kc, Exprs: exprs}
			if r.Comment != "" {
				kr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			c.AddRule(kr)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction for table %s %s: %w", familyName(rs.Family), rs.Table, err)
	}
	return nil
}

func addSet(c *Conn, t *nftables.Table, s *Set) (uint32, error) {
	ks := &nftables.Set{Table: t, Name: s.Name, KeyType: s.KeyType, Interval: s.Interval}
	// The elements go out elementsPerMessage at a time through one reused buffer:
	// google/nftables marshals each message's elements when they are handed over, and a
	// SetElement is ~150 bytes, so holding all 20,000 of a 10,000-range set at once cost
	// 3 MB of fresh memory (and its page faults) for nothing.
	buf := make([]nftables.SetElement, 0, min(elementsPerMessage, 2*len(s.Elements)))
	created := false
	send := func() error {
		var err error
		if !created {
			err, created = c.AddSet(ks, buf), true
		} else {
			err = c.SetAddElements(ks, buf)
		}
		buf = buf[:0]
		return err
	}
	add := func(e nftables.SetElement) error {
		buf = append(buf, e)
		if len(buf) == elementsPerMessage {
			return send()
		}
		return nil
	}
	// Ranges go the way the kernel's interval sets take them: the first key, then the key
	// after the last flagged as an interval end (left out when the range reaches the top of
	// the key space). A plain set takes the key alone.
	for _, r := range s.Elements {
		if err := add(nftables.SetElement{Key: r.From}); err != nil {
			return 0, err
		}
		if !s.Interval {
			continue
		}
		if end, overflow := increment(r.To); !overflow {
			if err := add(nftables.SetElement{Key: end, IntervalEnd: true}); err != nil {
				return 0, err
			}
		}
	}
	if len(buf) > 0 || !created {
		if err := send(); err != nil {
			return 0, err
		}
	}
	return ks.ID, nil
}

// withSetIDs copies exprs, giving each lookup the batch-local id of its set: a set created in
// the same transaction is not yet findable by name.
func withSetIDs(exprs []expr.Any, ids map[string]uint32) ([]expr.Any, error) {
	out := make([]expr.Any, len(exprs))
	for i, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			id, found := ids[l.SetName]
			if !found {
				return nil, fmt.Errorf("rule looks up unknown set @%s", l.SetName)
			}
			cp := *l
			cp.SetID = id
			e = &cp
		}
		out[i] = e
	}
	return out, nil
}
