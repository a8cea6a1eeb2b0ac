package firewall

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/policy"
)

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

func mustPolicy(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte("version: 1\n"+yaml), nil)
	require.NoError(t, err)
	return p
}

func render(t *testing.T, p *policy.Policy, vars map[string]string) string {
	t.Helper()
	rs, _, err := Build(p.Firewall, env(vars))
	require.NoError(t, err)
	return nft.Render(rs)
}

func TestDefaultPolicyRuleset(t *testing.T) {
	got := render(t, policy.Default(), nil)
	for _, want := range []string{
		"type filter hook input priority 0; policy drop;",
		"ct state established,related accept comment \"harden ruleset sha256:",
		"ct state invalid counter drop",
		`iifname "lo" accept`,
		"meta l4proto ipv6-icmp icmpv6 type @icmpv6_ok accept",
		"meta l4proto icmp icmp type @icmp_ok accept",
		"meta nfproto ipv6 ip6 saddr @private6 meta l4proto ipv6-icmp icmpv6 type 128 accept comment \"ping\"",
		"meta nfproto ipv6 ip6 saddr @private6 meta l4proto tcp th dport @tcp_private_ports accept comment \"allow ssh\"",
		`limit rate 5/second burst 10 packets log prefix "harden-drop: "`,
		`counter drop comment "default deny"`,
		"type filter hook forward priority 0; policy accept;\n\t}", // routing keeps working
		"type filter hook output priority 0; policy accept;",
		"\t\t\tfdaa::/16,\n", // no FLY_PRIVATE_IP: the whole 6PN range
		"\t\t\t22,\n",
		"\t\t\t135,\n", // neighbour solicitation
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "private4", "the default private networks have no IPv4")
	assert.NotContains(t, got, "\t\t\t137,\n", "redirects stay closed")
}

func TestPrivateNetworksAuto(t *testing.T) {
	got, warn, err := PrivateNetworks([]string{"auto", "10.8.0.0/16"}, env(map[string]string{"FLY_PRIVATE_IP": "fdaa:0:1a2b:a7b:1f4:3c1b:4e20:2"}))
	require.NoError(t, err)
	assert.Empty(t, warn)
	assert.Equal(t, "[fdaa:0:1a2b::/48 10.8.0.0/16]", fmt.Sprint(got))

	got, warn, err = PrivateNetworks([]string{"auto"}, env(map[string]string{"FLY_PRIVATE_IP": "10.0.0.1"}))
	require.NoError(t, err)
	assert.Contains(t, warn, "FLY_PRIVATE_IP")
	assert.Equal(t, "[fdaa::/16]", fmt.Sprint(got), "a bad FLY_PRIVATE_IP falls back to the whole range, not to nothing")

	_, _, err = PrivateNetworks([]string{"10.0.0.1/8"}, env(nil))
	require.ErrorContains(t, err, "firewall.private_networks[0]")
}

// Without FLY_PRIVATE_IP (a systemd unit, a shell) auto takes the /48 of the machine's own
// 6PN address; FLY_PRIVATE_IP, when set, is the same address and wins.
func TestPrivateNetworksAutoFromInterfaces(t *testing.T) {
	own := []netip.Addr{netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("fe80::1"),
		netip.MustParseAddr("fdaa:0:1a2b:a7b:1f4:3c1b:4e20:2"), netip.MustParseAddr("::1")}
	resolve := func(m Machine) (string, string) {
		got, warn, err := ResolvePrivateNetworks([]string{"auto"}, m)
		require.NoError(t, err)
		return fmt.Sprint(got), warn
	}
	got, warn := resolve(Machine{Addrs: own})
	assert.Equal(t, "[fdaa:0:1a2b::/48]", got)
	assert.Empty(t, warn)

	boot, _ := resolve(Machine{Addrs: own, FlyPrivateIP: "fdaa:0:1a2b:a7b:1f4:3c1b:4e20:2"})
	assert.Equal(t, got, boot, "the entrypoint (FLY_PRIVATE_IP) and a shell (interfaces) agree")

	got, warn = resolve(Machine{Addrs: []netip.Addr{netip.MustParseAddr("10.0.2.15")}})
	assert.Equal(t, "[fdaa::/16]", got, "no 6PN address anywhere: the whole range")
	assert.Empty(t, warn)

	got, warn = resolve(Machine{Addrs: own, FlyPrivateIP: "garbage"})
	assert.Equal(t, "[fdaa:0:1a2b::/48]", got, "a bad FLY_PRIVATE_IP: the interface's address")
	assert.Contains(t, warn, "FLY_PRIVATE_IP")

	got, warn = resolve(Machine{Addrs: own, FlyPrivateIP: "fdaa:0:9::2"})
	assert.Equal(t, "[fdaa:0:9::/48]", got, "FLY_PRIVATE_IP wins")
	assert.Contains(t, warn, "builds another table", "but a disagreement is reported")

	two := append(own, netip.MustParseAddr("fdaa:0:1::5"), netip.MustParseAddr("fdaa:0:1a2b::9"))
	got, _ = resolve(Machine{Addrs: two})
	assert.Equal(t, "[fdaa:0:1::/48 fdaa:0:1a2b::/48]", got, "distinct /48s, sorted")

	a, _, err := BuildFor(policy.Default().Firewall, Machine{Addrs: own})
	require.NoError(t, err)
	b, _, err := Build(policy.Default().Firewall, env(map[string]string{"FLY_PRIVATE_IP": "fdaa:0:1a2b::77"}))
	require.NoError(t, err)
	assert.Equal(t, nft.Render(b), nft.Render(a), "same table, digest included")
}

const publicPolicy = `
firewall:
  exposure: public
  private_networks: [auto, 10.8.0.0/16]
  proxy_interface: eth0
  ping: %s
  log_drops: %v
  allow:
    - {name: web, proto: tcp, port: 8080, from: proxy, why: "app"}
    - {name: metrics, proto: tcp, port: 9091, from: proxy, why: "metrics"}
    - {name: ssh, proto: tcp, port: 22, from: private, why: "ssh"}
    - {name: dns, proto: udp, ports: "5353-5354", from: [10.1.0.0/16, "fd00::/8"], why: "dns"}
    - {name: dns2, proto: udp, ports: "5353-5354", from: [10.1.2.0/24, 192.168.0.1], why: "more dns"}
    - {name: game, proto: udp, port: 27015, from: public, why: "game"}
`

func TestAllowRulesAreGroupedIntoSets(t *testing.T) {
	got := render(t, mustPolicy(t, fmt.Sprintf(publicPolicy, "public", true)), map[string]string{"FLY_PRIVATE_IP": "fdaa:0:1::7"})
	for _, want := range []string{
		// both proxy ports share one set and one rule, IPv4 on the proxy interface only
		`meta nfproto ipv4 iifname "eth0" meta l4proto tcp th dport @tcp_proxy_ports accept comment "allow web,metrics"`,
		"\t\t\t8080,\n\t\t\t9091,\n",
		// private: one rule per family of the private networks
		"meta nfproto ipv4 ip saddr @private4 meta l4proto tcp th dport @tcp_private_ports accept",
		"meta nfproto ipv6 ip6 saddr @private6 meta l4proto tcp th dport @tcp_private_ports accept",
		"\t\t\tfdaa:0:1::/48,\n",
		// CIDR rules with the same ports share one source set (10.1.2.0/24 merged into 10.1.0.0/16)
		"meta nfproto ipv4 ip saddr @udp_p5353_5354_src4 meta l4proto udp th dport @udp_p5353_5354_ports accept comment \"allow dns,dns2\"",
		"meta nfproto ipv6 ip6 saddr @udp_p5353_5354_src6 meta l4proto udp th dport @udp_p5353_5354_ports accept",
		"\t\t\t10.1.0.0/16,\n\t\t\t192.168.0.1,\n",
		"\t\t\t5353-5354,\n",
		"meta l4proto udp th dport @udp_public_ports accept comment \"allow game\"",
		"meta l4proto icmp icmp type 8 accept comment \"ping\"",
		"meta l4proto ipv6-icmp icmpv6 type 128 accept comment \"ping\"",
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "10.1.2.0/24")
}

func TestPingAndDropLogFollowPolicy(t *testing.T) {
	none := render(t, mustPolicy(t, fmt.Sprintf(publicPolicy, "none", false)), nil)
	assert.NotContains(t, none, "type 8 ")
	assert.NotContains(t, none, "type 128 ")
	assert.NotContains(t, none, "log prefix")
	assert.Contains(t, none, `counter drop comment "default deny"`, "drops are counted even when not logged")

	private := render(t, mustPolicy(t, fmt.Sprintf(publicPolicy, "private", true)), nil)
	assert.Contains(t, private, "meta nfproto ipv4 ip saddr @private4 meta l4proto icmp icmp type 8 accept")
	assert.Contains(t, private, "meta nfproto ipv6 ip6 saddr @private6 meta l4proto ipv6-icmp icmpv6 type 128 accept")
}

func TestDigestFollowsPolicy(t *testing.T) {
	p := policy.Default()
	a, _, err := Build(p.Firewall, env(nil))
	require.NoError(t, err)
	b, _, err := Build(p.Firewall, env(nil))
	require.NoError(t, err)
	require.NotEmpty(t, digestOf(a))
	assert.Equal(t, digestOf(a), digestOf(b), "same policy, same digest")
	c, _, err := Build(p.Firewall, env(map[string]string{"FLY_PRIVATE_IP": "fdaa:0:1::7"}))
	require.NoError(t, err)
	assert.NotEqual(t, digestOf(a), digestOf(c))
}

func TestDescribe(t *testing.T) {
	rs, _, err := Build(policy.Default().Firewall, env(nil))
	require.NoError(t, err)
	d := digestOf(rs)
	assert.Equal(t, "absent", describe(nil, d))
	assert.Contains(t, describe(rs, d), "hand-edited")
	assert.Contains(t, describe(rs, "other"), "(sha256:"+d+")")
}

func TestLargeDiffIsLinear(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&a, "\t\t\t10.0.%d.%d,\n", i/256, i%256)
		if i != 500 {
			fmt.Fprintf(&b, "\t\t\t10.0.%d.%d,\n", i/256, i%256)
		}
	}
	b.WriteString("\t\taccept\n")
	got := diff(a.String(), b.String())
	assert.Equal(t, "- \t\t\t10.0.1.244,\n+ \t\taccept\n", got)
}
