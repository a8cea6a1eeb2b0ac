package firewall

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/policy"
)

// group is a set of allow rules that become the same nft rule(s) with one port set: rules
// with the same protocol and keyword source (private, public, proxy) share one port set;
// rules with the same protocol and ports but CIDR sources share one port set and the union
// of their sources. So thousands of entries cost one set lookup, not thousands of rules.
type group struct {
	proto   string
	kind    string // policy.FromPrivate, FromPublic, FromProxy, FromCIDRs
	setBase string
	ports   *nft.RangeBuilder
	sources []netip.Prefix
	names   []string
}

// allow adds the policy's allow rules, grouped, in the order each group first appears.
func (b *builder) allow(f policy.Firewall) error {
	var order []*group
	byKey := map[string]*group{}
	for i, r := range f.Allow {
		lo, hi := uint16(r.Port), uint16(r.Port)
		if r.Port == 0 {
			lo, hi = r.Ports.Lo, r.Ports.Hi
		}
		if lo == 0 || (r.Proto != "tcp" && r.Proto != "udp") {
			return fmt.Errorf("firewall.allow[%d] (%s): need tcp or udp and a port", i, r.Name)
		}
		key, base := r.Proto+" "+r.From.Kind, r.Proto+"_"+r.From.Kind
		if r.From.Kind == policy.FromCIDRs {
			span := portSpan(lo, hi)
			key, base = r.Proto+" cidrs "+span, r.Proto+"_p"+strings.ReplaceAll(span, "-", "_")
		}
		g := byKey[key]
		if g == nil {
			g = &group{proto: r.Proto, kind: r.From.Kind, setBase: base, ports: nft.NewRangeBuilder(2)}
			byKey[key] = g
			order = append(order, g)
		}
		g.ports.AddPorts(lo, hi)
		g.sources = append(g.sources, r.From.CIDRs...)
		g.names = append(g.names, r.Name)
	}
	for _, g := range order {
		b.allowGroup(g, f.ProxyInterface)
	}
	return nil
}

func portSpan(lo, hi uint16) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

func (b *builder) allowGroup(g *group, proxyIf string) {
	portSet := g.setBase + "_ports"
	b.addSet(&nft.Set{Name: portSet, KeyType: nftables.TypeInetService, Interval: true, Elements: g.ports.Ranges()})
	proto := byte(unix.IPPROTO_TCP)
	if g.proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	match := nft.Stmts(nft.L4Proto(proto), nft.DportIn(portSet), nft.Accept())
	comment := allowComment(g.names)
	switch g.kind {
	case policy.FromPublic:
		b.rule(comment, match)
	case policy.FromProxy:
		// fly-proxy's source addresses are not documented: what identifies it is IPv4
		// arriving on the proxy interface.
		b.rule(comment, nft.NFProto(unix.NFPROTO_IPV4), nft.IifName(proxyIf), match)
	case policy.FromPrivate:
		b.fromSets(comment, "private", b.has4, b.has6, match)
	case policy.FromCIDRs:
		has4, has6 := b.addrSets(g.setBase+"_src", g.sources)
		b.fromSets(comment, g.setBase+"_src", has4, has6, match)
	}
}

// fromSets adds one rule per address family whose source set exists.
func (b *builder) fromSets(comment, base string, has4, has6 bool, match []expr.Any) {
	if has4 {
		b.rule(comment, nft.NFProto(unix.NFPROTO_IPV4), nft.SaddrIn(false, base+"4"), match)
	}
	if has6 {
		b.rule(comment, nft.NFProto(unix.NFPROTO_IPV6), nft.SaddrIn(true, base+"6"), match)
	}
}

// allowComment names the policy's allow rules behind an nft rule; nft comments hold at most
// 128 bytes.
func allowComment(names []string) string {
	s := "allow " + strings.Join(names, ",")
	if len(s) > 120 {
		s = s[:110] + fmt.Sprintf("... (%d)", len(names))
	}
	return s
}
