package firewall

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/policy"
)

// TableName and Family name the one table this step owns. It never touches any other.
const (
	TableName = "harden"
	Family    = nftables.TableFamilyINet
)

// DropLogPrefix starts every kernel log line of a dropped packet (README: firewall).
const DropLogPrefix = "harden-drop: "

// digestPrefix marks the digest comment on the input chain's first rule.
const digestPrefix = "harden ruleset sha256:"

// ICMP types always accepted: errors that path MTU discovery and good failure reporting
// need. ICMPv6 also needs neighbour and router discovery (133-136), which conntrack does
// not track: without them IPv6 stops working even on allowed ports. Redirects (137) stay out.
var (
	icmpErrors = []byte{3, 11, 12}                      // unreachable, time exceeded, parameter problem
	icmp6Ok    = []byte{1, 2, 3, 4, 133, 134, 135, 136} // errors, RS, RA, NS, NA
)

const (
	icmpEchoRequest  = 8
	icmp6EchoRequest = 128
	// Drop logging: at most logRate lines per second after a burst, so a scan cannot fill
	// the journal.
	logRate  = 5
	logBurst = 10
)

// Machine is what `private_networks: [auto]` is resolved from.
type Machine struct {
	// FlyPrivateIP is the FLY_PRIVATE_IP environment variable. Fly sets it for the image's
	// entrypoint only: systemd units and shells do not see it.
	FlyPrivateIP string
	// Addrs are the addresses on the machine's interfaces, where the 6PN address is always.
	Addrs []netip.Addr
}

// Build turns the firewall policy into the table it wants. getenv reads FLY_PRIVATE_IP for
// `private_networks: [auto]`. The returned warning (may be "") says when auto had to fall
// back to the whole 6PN range.
func Build(f policy.Firewall, getenv func(string) string) (*nft.Ruleset, string, error) {
	return BuildFor(f, Machine{FlyPrivateIP: getenv("FLY_PRIVATE_IP")})
}

// BuildFor is Build with `auto` resolved from m: FLY_PRIVATE_IP, else the interfaces.
func BuildFor(f policy.Firewall, m Machine) (*nft.Ruleset, string, error) {
	private, warning, err := ResolvePrivateNetworks(f.PrivateNetworks, m)
	if err != nil {
		return nil, "", err
	}
	b := &builder{rs: &nft.Ruleset{Table: TableName, Family: Family}}
	b.addPrivateSets(private)
	b.pointSet("icmp_ok", nftables.TypeICMPType, icmpErrors)
	b.pointSet("icmpv6_ok", nftables.TypeICMP6Type, icmp6Ok)

	b.rule("", nft.CtState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), nft.Accept())
	b.rule("", nft.CtState(expr.CtStateBitINVALID), nft.Counter(), nft.Drop())
	b.rule("", nft.IifName("lo"), nft.Accept())
	b.rule("", nft.L4Proto(unix.IPPROTO_ICMPV6), nft.ICMPTypeIn("icmpv6_ok"), nft.Accept())
	b.rule("", nft.L4Proto(unix.IPPROTO_ICMP), nft.ICMPTypeIn("icmp_ok"), nft.Accept())
	b.ping(f.Ping)
	if err := b.allow(f); err != nil {
		return nil, "", err
	}
	if f.LogDrops {
		b.rule("", nft.LimitPerSecond(logRate, logBurst), nft.LogPrefix(DropLogPrefix))
	}
	b.rule("default deny", nft.Counter(), nft.Drop())

	b.rs.Chains = []*nft.Chain{
		b.input,
		forwardChain(f.Forward),
		{Name: "output", Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookOutput,
			Priority: nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyAccept},
	}
	stampDigest(b.rs)
	return b.rs, warning, nil
}

// ForwardDropComment marks the forward chain's counter: what it counts, the drop policy drops.
const ForwardDropComment = "forward drop"

// forwardChain is the forward hook's chain, with policy firewall.forward. Accept (the
// default) lets a machine that routes keep routing: Docker's bridge and published ports,
// Tailscale's subnet routes; other tools' own chains still filter their traffic (a packet
// must pass every base chain on the hook). Drop stops all routed traffic, and counts it
// first, so a plan can say when something tried to route through the drop.
func forwardChain(policy string) *nft.Chain {
	c := &nft.Chain{Name: "forward", Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookForward,
		Priority: nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyAccept}
	if policy == "drop" {
		c.Policy = nftables.ChainPolicyDrop
		c.Rules = []*nft.Rule{{Exprs: nft.Counter(), Comment: ForwardDropComment}}
	}
	return c
}

// PrivateNetworks resolves `private_networks` with FLY_PRIVATE_IP from getenv and no
// interface addresses (see ResolvePrivateNetworks).
func PrivateNetworks(entries []string, getenv func(string) string) ([]netip.Prefix, string, error) {
	return ResolvePrivateNetworks(entries, Machine{FlyPrivateIP: getenv("FLY_PRIVATE_IP")})
}

// ResolvePrivateNetworks resolves `private_networks`. "auto" is the organisation's 6PN
// network, the /48 of the machine's 6PN address: from FLY_PRIVATE_IP when it is set (the
// entrypoint's environment), else from the fdaa:: addresses on the machine's interfaces (the
// same address, seen by a systemd unit or a shell), so `harden boot`, a run by hand and the
// drift timer all build the same table. Without either it is all of fdaa::/16.
func ResolvePrivateNetworks(entries []string, m Machine) ([]netip.Prefix, string, error) {
	var out []netip.Prefix
	warning := ""
	for i, e := range entries {
		if e != "auto" {
			p, err := policy.ParseCIDR(e)
			if err != nil {
				return nil, "", fmt.Errorf("firewall.private_networks[%d]: %w", i, err)
			}
			out = append(out, p)
			continue
		}
		auto, w := resolveAuto(m)
		out = append(out, auto...)
		warning = w
	}
	return out, warning, nil
}

// orgBits is the length of a Fly organisation's 6PN prefix.
const orgBits = 48

func resolveAuto(m Machine) ([]netip.Prefix, string) {
	own := sixPNPrefixes(m.Addrs)
	ip := strings.TrimSpace(m.FlyPrivateIP)
	a, err := netip.ParseAddr(ip)
	switch {
	case ip == "" && len(own) > 0:
		return own, ""
	case ip == "":
		return []netip.Prefix{policy.FlyPrivateNetwork}, ""
	case err != nil || !a.Is6() || !policy.FlyPrivateNetwork.Contains(a):
		w := fmt.Sprintf("FLY_PRIVATE_IP=%q is not an address in %s", ip, policy.FlyPrivateNetwork)
		if len(own) > 0 {
			return own, w + "; private_networks: auto uses the /48 of this machine's own 6PN address"
		}
		return []netip.Prefix{policy.FlyPrivateNetwork}, w + "; private_networks: auto uses all of " + policy.FlyPrivateNetwork.String()
	}
	org := netip.PrefixFrom(a, orgBits).Masked()
	if len(own) > 0 && !slices.Contains(own, org) {
		return []netip.Prefix{org}, fmt.Sprintf("FLY_PRIVATE_IP=%s is in %s, but this machine's own 6PN addresses are in %v: a run without FLY_PRIVATE_IP (a shell, the drift timer) builds another table",
			ip, org, own)
	}
	return []netip.Prefix{org}, ""
}

// sixPNPrefixes returns the distinct /48s of the 6PN addresses among addrs, sorted.
func sixPNPrefixes(addrs []netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if !a.Is6() || !policy.FlyPrivateNetwork.Contains(a) {
			continue
		}
		p := netip.PrefixFrom(a, orgBits).Masked()
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

type builder struct {
	rs       *nft.Ruleset
	input    *nft.Chain
	has4     bool // a private4 set exists
	has6     bool // a private6 set exists
	setNames map[string]bool
}

func (b *builder) rule(comment string, stmts ...[]expr.Any) {
	if b.input == nil {
		b.input = &nft.Chain{Name: "input", Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookInput,
			Priority: nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyDrop}
	}
	b.input.Rules = append(b.input.Rules, &nft.Rule{Exprs: nft.Stmts(stmts...), Comment: comment})
}

func (b *builder) addSet(s *nft.Set) {
	if b.setNames == nil {
		b.setNames = map[string]bool{}
	}
	if b.setNames[s.Name] {
		panic("firewall: duplicate set name " + s.Name) // builder bug, names are derived
	}
	b.setNames[s.Name] = true
	b.rs.Sets = append(b.rs.Sets, s)
}

func (b *builder) pointSet(name string, t nftables.SetDatatype, keys []byte) {
	s := &nft.Set{Name: name, KeyType: t}
	for _, k := range keys {
		s.Elements = append(s.Elements, nft.Range{From: []byte{k}, To: []byte{k}})
	}
	b.addSet(s)
}

// addrSets adds name4/name6 interval sets for the prefixes of each family that has any,
// and reports which exist.
func (b *builder) addrSets(name string, prefixes []netip.Prefix) (has4, has6 bool) {
	v4, v6 := nft.NewRangeBuilder(4), nft.NewRangeBuilder(16)
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4.AddPrefix(p)
			has4 = true
		} else {
			v6.AddPrefix(p)
			has6 = true
		}
	}
	if has4 {
		b.addSet(&nft.Set{Name: name + "4", KeyType: nftables.TypeIPAddr, Interval: true, Elements: v4.Ranges()})
	}
	if has6 {
		b.addSet(&nft.Set{Name: name + "6", KeyType: nftables.TypeIP6Addr, Interval: true, Elements: v6.Ranges()})
	}
	return has4, has6
}

func (b *builder) addPrivateSets(private []netip.Prefix) {
	b.has4, b.has6 = b.addrSets("private", private)
}

// ping accepts echo requests from nobody, the private networks, or anyone.
func (b *builder) ping(who string) {
	v4 := nft.Stmts(nft.L4Proto(unix.IPPROTO_ICMP), nft.ICMPType(icmpEchoRequest))
	v6 := nft.Stmts(nft.L4Proto(unix.IPPROTO_ICMPV6), nft.ICMPType(icmp6EchoRequest))
	switch who {
	case "public":
		b.rule("ping", v4, nft.Accept())
		b.rule("ping", v6, nft.Accept())
	case "private":
		if b.has4 {
			b.rule("ping", nft.NFProto(unix.NFPROTO_IPV4), nft.SaddrIn(false, "private4"), v4, nft.Accept())
		}
		if b.has6 {
			b.rule("ping", nft.NFProto(unix.NFPROTO_IPV6), nft.SaddrIn(true, "private6"), v6, nft.Accept())
		}
	}
}

// stampDigest puts a digest of the whole wanted ruleset into the first input rule's
// comment, so `nft list ruleset` shows which policy a table came from and a plan can tell
// "policy changed" from "hand-edited".
func stampDigest(rs *nft.Ruleset) {
	first := rs.Chains[0].Rules[0]
	first.Comment = ""
	sum := sha256.Sum256([]byte(nft.Render(rs)))
	first.Comment = digestPrefix + hex.EncodeToString(sum[:8])
}

// digestOf returns the digest a table carries, or "".
func digestOf(rs *nft.Ruleset) string {
	if rs == nil {
		return ""
	}
	for _, c := range rs.Chains {
		if c.Name == "input" && len(c.Rules) > 0 {
			d, ok := strings.CutPrefix(c.Rules[0].Comment, digestPrefix)
			if ok {
				return d
			}
		}
	}
	return ""
}
