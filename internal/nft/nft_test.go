package nft_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/nft/nfttest"
)

func sample(extraV4 int) *nft.Ruleset {
	src := nft.NewRangeBuilder(4)
	src.AddPrefix(netip.MustParsePrefix("10.0.0.0/8"))
	src.AddPrefix(netip.MustParsePrefix("10.1.0.0/16")) // inside the /8: merged away
	src.AddPrefix(netip.MustParsePrefix("192.168.7.0/24"))
	src.AddPrefix(netip.MustParsePrefix("255.255.255.0/24")) // reaches the top: no end key
	for i := 0; i < extraV4; i++ {
		src.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(i>>15), byte(i >> 7), byte(i%128) * 2}), 32)) // not adjacent: no merging
	}
	src6 := nft.NewRangeBuilder(16)
	src6.AddPrefix(netip.MustParsePrefix("fdaa:0:1::/48"))
	ports := nft.NewRangeBuilder(2)
	ports.AddPorts(22, 22)
	ports.AddPorts(8000, 8100)
	ports.AddPorts(8101, 8200) // touches the previous range: joined
	drop := nftables.ChainPolicyDrop
	return &nft.Ruleset{
		Table: "harden", Family: nftables.TableFamilyINet,
		Sets: []*nft.Set{
			{Name: "src4", KeyType: nftables.TypeIPAddr, Interval: true, Elements: src.Ranges()},
			{Name: "src6", KeyType: nftables.TypeIP6Addr, Interval: true, Elements: src6.Ranges()},
			{Name: "ports", KeyType: nftables.TypeInetService, Interval: true, Elements: ports.Ranges()},
			{Name: "icmp_ok", KeyType: nftables.TypeICMPType, Elements: []nft.Range{{From: []byte{3}, To: []byte{3}}, {From: []byte{11}, To: []byte{11}}}},
		},
		Chains: []*nft.Chain{{
			Name: "input", Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookInput,
			Priority: nftables.ChainPriorityFilter, Policy: drop,
			Rules: []*nft.Rule{
				{Exprs: nft.Stmts(nft.CtState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), nft.Accept()), Comment: "replies"},
				{Exprs: nft.Stmts(nft.IifName("lo"), nft.Accept())},
				{Exprs: nft.Stmts(nft.L4Proto(unix.IPPROTO_ICMP), nft.ICMPTypeIn("icmp_ok"), nft.Accept())},
				{Exprs: nft.Stmts(nft.NFProto(unix.NFPROTO_IPV4), nft.SaddrIn(false, "src4"), nft.L4Proto(unix.IPPROTO_TCP), nft.DportIn("ports"), nft.Accept())},
				{Exprs: nft.Stmts(nft.NFProto(unix.NFPROTO_IPV6), nft.SaddrIn(true, "src6"), nft.L4Proto(unix.IPPROTO_UDP), nft.DportIn("ports"), nft.Accept())},
				{Exprs: nft.Stmts(nft.LimitPerSecond(5, 10), nft.LogPrefix("harden-drop: "))},
				{Exprs: nft.Stmts(nft.Counter(), nft.Drop()), Comment: "default deny"},
			},
		}},
	}
}

func TestMergeRanges(t *testing.T) {
	b := nft.NewRangeBuilder(2)
	b.AddPorts(10, 20)
	b.AddPorts(15, 30)
	b.AddPorts(31, 31)
	b.AddPorts(40, 40)
	b.AddPorts(1, 2)
	got := b.Ranges()
	require.Len(t, got, 3)
	assert.Equal(t, []byte{0, 1}, got[0].From)
	assert.Equal(t, []byte{0, 2}, got[0].To)
	assert.Equal(t, []byte{0, 10}, got[1].From)
	assert.Equal(t, []byte{0, 31}, got[1].To)
	assert.Equal(t, []byte{0, 40}, got[2].From)

	// Touching across a byte boundary joins; a gap of one does not; the top of the key
	// space joins whatever overlaps it.
	b = nft.NewRangeBuilder(2)
	b.AddPorts(0x01ff, 0x01ff)
	b.AddPorts(0x0200, 0x0200)
	b.AddPorts(0x0202, 0x02ff)
	b.AddPorts(0xff00, 0xffff)
	b.AddPorts(0xfff0, 0xffff)
	assert.Equal(t, []nft.Range{
		{From: []byte{1, 0xff}, To: []byte{2, 0}},
		{From: []byte{2, 2}, To: []byte{2, 0xff}},
		{From: []byte{0xff, 0}, To: []byte{0xff, 0xff}},
	}, b.Ranges())
}

func TestRenderIsReadable(t *testing.T) {
	got := nft.Render(sample(0))
	for _, want := range []string{
		"table inet harden {",
		"\t\t\t10.0.0.0/8,\n", "\t\t\t192.168.7.0/24,\n", "\t\t\t255.255.255.0/24,\n",
		"\t\t\t8000-8200,\n", "\t\t\tfdaa:0:1::/48,\n",
		"type filter hook input priority 0; policy drop;",
		`ct state established,related accept comment "replies"`,
		`iifname "lo" accept`,
		"meta l4proto icmp icmp type @icmp_ok accept",
		"meta nfproto ipv4 ip saddr @src4 meta l4proto tcp th dport @ports accept",
		"meta nfproto ipv6 ip6 saddr @src6 meta l4proto udp th dport @ports accept",
		`limit rate 5/second burst 10 packets log prefix "harden-drop: "`,
		`counter drop comment "default deny"`,
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "10.1.0.0/16", "overlapping prefix should be merged")
}

// A two-byte interface comparison is a prefix match; the renderer must say so.
func TestRenderShowsInterfacePrefixMatch(t *testing.T) {
	r := &nft.Rule{Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("lo")},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}}
	assert.Equal(t, `iifname "lo*" accept`, nft.RenderRule(r))
}

// The kernel's read-back renders exactly like what was built, and nft itself accepts the
// rendered text: the plan's text is both true and nft syntax.
func TestReplaceReadBackRoundTrip(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hnft")
	c, err := nft.Open(ns.Name)
	require.NoError(t, err)
	defer c.Close()

	got, err := nft.Read(c, "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Nil(t, got, "fresh namespace has no table")

	want := sample(3)
	require.NoError(t, nft.Replace(c, want))
	got, err = nft.Read(c, "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Equal(t, nft.Render(want), nft.Render(got))

	// Replace again: still exactly one copy of every rule.
	require.NoError(t, nft.Replace(c, want))
	got, err = nft.Read(c, "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Equal(t, nft.Render(want), nft.Render(got))

	// nft -f accepts the rendered text and reads it back the same way.
	other := nfttest.NewNS(t, "hnft")
	f := filepath.Join(t.TempDir(), "rules.nft")
	require.NoError(t, os.WriteFile(f, []byte(nft.Render(want)), 0o600))
	other.Run("nft", "-f", f)
	c2, err := nft.Open(other.Name)
	require.NoError(t, err)
	defer c2.Close()
	viaNft, err := nft.Read(c2, "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	assert.Equal(t, nft.Render(want), nft.Render(viaNft))
}

// A batch the kernel refuses changes nothing: the previous table stays as it was.
func TestFailedBatchKeepsOldTable(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hnft")
	c, err := nft.Open(ns.Name)
	require.NoError(t, err)
	require.NoError(t, nft.Replace(c, sample(0)))
	c.Close()
	before := ns.Ruleset()

	bad := sample(5)
	in := bad.Chains[0]
	in.Rules = append(in.Rules, &nft.Rule{Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "no-such-chain"}}})
	c, err = nft.Open(ns.Name)
	require.NoError(t, err)
	defer c.Close()
	err = nft.Replace(c, bad)
	require.Error(t, err)
	assert.Equal(t, before, ns.Ruleset())
}

func TestLargeSetsInOneTransaction(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hnft")
	c, err := nft.Open(ns.Name)
	require.NoError(t, err)
	defer c.Close()
	want := sample(10000)
	require.NoError(t, nft.Replace(c, want))
	got, err := nft.Read(c, "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	_, n := got.Counts()
	_, wantN := want.Counts()
	require.Equal(t, wantN, n, fmt.Sprintf("elements read back"))
	require.Equal(t, nft.Render(want), nft.Render(got))

	// A wrapped google/nftables Conn reads set elements through GetSetElements instead of
	// Read's own dump: both must see the same table.
	fd, err := unix.Open(nft.NetNSPath(ns.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	raw, err := nftables.New(nftables.WithNetNSFd(fd))
	require.NoError(t, err)
	viaLib, err := nft.Read(nft.Wrap(raw), "harden", nftables.TableFamilyINet)
	require.NoError(t, err)
	require.Equal(t, nft.Render(want), nft.Render(viaLib))
}

// Equal is a shortcut for comparing rendered texts: whenever it says equal the texts are
// equal, and each kind of difference (element, set flag, rule, chain policy, table flag)
// makes it say no.
func TestEqualAgreesWithRender(t *testing.T) {
	assert.True(t, nft.Equal(nil, nil))
	assert.False(t, nft.Equal(nil, sample(1)))
	assert.False(t, nft.Equal(sample(1), nil))

	base := sample(50)
	same := sample(50)
	same.Sets[0], same.Sets[1] = same.Sets[1], same.Sets[0] // Render sorts sets by name
	require.True(t, nft.Equal(base, same))
	require.Equal(t, nft.Render(base), nft.Render(same))

	edits := map[string]func(rs *nft.Ruleset){
		"element": func(rs *nft.Ruleset) { rs.Sets[0].Elements[3].To = []byte{100, 64, 0, 7} },
		"missing element": func(rs *nft.Ruleset) {
			rs.Sets[0].Elements = rs.Sets[0].Elements[1:]
		},
		"interval flag": func(rs *nft.Ruleset) { rs.Sets[2].Interval = false },
		"key type":      func(rs *nft.Ruleset) { rs.Sets[3].KeyType = nftables.TypeICMP6Type },
		"rule":          func(rs *nft.Ruleset) { rs.Chains[0].Rules[1].Comment = "by hand" },
		"chain policy":  func(rs *nft.Ruleset) { rs.Chains[0].Policy = nftables.ChainPolicyAccept },
		"table flag":    func(rs *nft.Ruleset) { rs.Flags = unix.NFT_TABLE_F_DORMANT },
		"extra set": func(rs *nft.Ruleset) {
			rs.Sets = append(rs.Sets, &nft.Set{Name: "zz", KeyType: nftables.TypeInetService})
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			got := sample(50)
			edit(got)
			assert.False(t, nft.Equal(base, got))
			assert.NotEqual(t, nft.Render(base), nft.Render(got))
		})
	}
}
