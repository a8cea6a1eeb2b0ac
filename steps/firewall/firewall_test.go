package firewall_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/steps/firewall"
)

func labPolicy(t *testing.T, proxyIf string) *policy.Policy {
	t.Helper()
	doc := fmt.Sprintf(`version: 1
firewall:
  exposure: public
  private_networks: [auto]
  proxy_interface: %s
  ping: private
  log_drops: true
  allow:
    - {name: ssh, proto: tcp, port: 22, from: private, why: "ssh over 6PN"}
    - {name: web, proto: tcp, port: 8080, from: proxy, why: "fly-proxy"}
    - {name: dns, proto: udp, port: 5353, from: [%s/32, "%s"], why: "named sources"}
    - {name: admin, proto: tcp, ports: "9000-9001", from: [%s/32], why: "one admin host"}
`, proxyIf, cli4, cliOther6, cli4)
	p, err := policy.Parse("lab.yaml", []byte(doc), nil)
	require.NoError(t, err)
	return p
}

func labEnv(t *testing.T, p *policy.Policy) *engine.Env {
	return enginetest.Env(t, p, map[string]string{"FLY_PRIVATE_IP": flyPrivateIP})
}

// readTable is the kernel's harden table rendered, independent of handles and counters.
func readTable(t *testing.T, ns *nfttest.NS) string {
	c, err := nft.Open(ns.Name)
	require.NoError(t, err)
	defer c.Close()
	rs, err := nft.Read(c, firewall.TableName, firewall.Family)
	require.NoError(t, err)
	return nft.Render(rs)
}

func TestRealTrafficAcrossVeth(t *testing.T) {
	l := newLab(t)
	for _, port := range []string{"22", "8080", "9000", "9090"} {
		listenTCP(t, l.server, port)
	}
	echoUDP(t, l.server, "5353")
	listenTCP(t, l.client, "7000") // for a connection the server opens

	probes := []struct {
		name, kind, src, dst, port, want string
	}{
		{"ssh from own 6PN /48", "tcp", cliPriv, srv6, "22", "open"},
		{"ssh from another 6PN /48", "tcp", cliPriv2, srv6, "22", "dropped"},
		{"ssh over IPv4 (private has no IPv4)", "tcp", cli4, srv4, "22", "dropped"},
		{"proxy port over IPv4 on the proxy interface", "tcp", cli4b, srv4, "8080", "open"},
		{"proxy port over IPv6", "tcp", cliPriv, srv6, "8080", "dropped"},
		{"port range from its CIDR", "tcp", cli4, srv4, "9001", "refused"},
		{"port range from its CIDR, listener", "tcp", cli4, srv4, "9000", "open"},
		{"port range from another source", "tcp", cli4b, srv4, "9000", "dropped"},
		{"listening port not allowed", "tcp", cli4, srv4, "9090", "dropped"},
		{"listening port not allowed, IPv6 private", "tcp", cliPriv, srv6, "9090", "dropped"},
		{"udp from named IPv4", "udp", cli4, srv4, "5353", "open"},
		{"udp from other IPv4", "udp", cli4b, srv4, "5353", "dropped"},
		{"udp from named IPv6", "udp", cliOther6, srvOther6, "5353", "open"},
		{"udp from other IPv6", "udp", cliOther6b, srvOther6, "5353", "dropped"},
	}
	probe := func(kind, src, dst, port string) string {
		if kind == "udp" {
			return l.udp(src, dst, port)
		}
		return l.tcp(l.client, src, dst, port)
	}
	// Without the firewall every probe gets through: the drops below are the firewall's.
	for _, p := range probes {
		if p.want == "dropped" {
			require.NotEqual(t, "dropped", probe(p.kind, p.src, p.dst, p.port), "before firewall: %s", p.name)
		}
	}

	require.Equal(t, "open", l.ping(cliPriv2, srv6), "before firewall: ping from another /48")
	require.Equal(t, "open", l.ping(cli4, srv4), "before firewall: IPv4 ping")

	step := firewall.New(firewall.Options{NetNS: l.server.Name})
	enginetest.Converges(t, labEnv(t, labPolicy(t, l.srvIf)), step)
	// Forget the neighbours learnt before the firewall, so the IPv6 probes below need
	// neighbour discovery to pass the firewall.
	l.server.Run("ip", "-6", "neigh", "flush", "all")
	l.client.Run("ip", "-6", "neigh", "flush", "all")

	for _, p := range probes {
		assert.Equal(t, p.want, probe(p.kind, p.src, p.dst, p.port), p.name)
	}
	// ping: private (the policy's private networks are IPv6 only).
	assert.Equal(t, "open", l.ping(cliPriv, srv6), "ping from own /48")
	assert.Equal(t, "dropped", l.ping(cliPriv2, srv6), "ping from another /48")
	assert.Equal(t, "dropped", l.ping(cli4, srv4), "IPv4 ping")
	// Replies to connections the server opens come back (established,related).
	assert.Equal(t, "open", l.tcp(l.server, srv4, cli4, "7000"), "outbound IPv4")
	assert.Equal(t, "open", l.tcp(l.server, srv6, cliPriv2, "7000"), "outbound IPv6")
	// Drops are counted by the final rule.
	assert.Regexp(t, `counter packets [1-9][0-9]* bytes [0-9]+ drop comment "default deny"`,
		l.server.Run("nft", "list", "chain", "inet", "harden", "input"))
}

// The embedded default policy (private, auto) on a machine whose FLY_PRIVATE_IP is not in
// the environment: the /48 comes from the namespace's own fdaa:: address, so Fly's SSH server
// (`fly ssh console`, tcp/22 on the 6PN address) stays reachable from the organisation's
// network and from nowhere else; and a run with FLY_PRIVATE_IP (the entrypoint) finds the
// same table, nothing to change.
func TestDefaultPolicyKeepsFlySSHConsoleWithoutFlyPrivateIP(t *testing.T) {
	l := newLab(t)
	listenTCP(t, l.server, "22")
	listenTCP(t, l.server, "8080")
	require.Equal(t, "open", l.tcp(l.client, cliPriv2, srv6, "22"), "before the firewall")
	require.Equal(t, "open", l.tcp(l.client, cli4, srv4, "22"), "before the firewall")
	step := firewall.New(firewall.Options{NetNS: l.server.Name})
	shell := enginetest.Env(t, nil, nil) // no FLY_PRIVATE_IP
	rep := enginetest.Converges(t, shell, step)
	require.NotContains(t, fmt.Sprint(rep.Steps[0].Findings), "FLY_PRIVATE_IP")
	assert.Contains(t, readTable(t, l.server), "\t\t\tfdaa:0:1::/48,\n",
		"the /48 of the namespace's fdaa:0:1::1, not all of fdaa::/16")

	assert.Equal(t, "open", l.tcp(l.client, cliPriv, srv6, "22"), "fly ssh console from the org's /48")
	assert.Equal(t, "dropped", l.tcp(l.client, cliPriv2, srv6, "22"), "another organisation's /48")
	assert.Equal(t, "dropped", l.tcp(l.client, cli4, srv4, "22"), "IPv4 (fly-proxy's side)")
	assert.Equal(t, "dropped", l.tcp(l.client, cliPriv, srv6, "8080"), "a port the default does not open")

	boot := enginetest.Env(t, nil, map[string]string{"FLY_PRIVATE_IP": flyPrivateIP})
	rep, _ = enginetest.Run(t, boot, true, step)
	assert.Zero(t, rep.ChangeCount(), "the entrypoint's run (FLY_PRIVATE_IP) builds the same table")
}

func TestIdempotentAndLeavesOtherTablesAlone(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hfw")
	ns.Run("nft", "add table ip other; add chain ip other c { type filter hook input priority 10; policy accept; }; add rule ip other c tcp dport 1234 counter accept")
	otherBefore := ns.Run("nft", "-j", "list", "table", "ip", "other")
	env := enginetest.Env(t, nil, nil) // the embedded default policy (also the fail-closed one)
	step := firewall.New(firewall.Options{NetNS: ns.Name})

	enginetest.Converges(t, env, step)
	handle := tableHandle(t, ns)
	rep, _ := enginetest.Run(t, env, false, step)
	assert.Zero(t, rep.ChangeCount())
	assert.Equal(t, handle, tableHandle(t, ns), "a converged apply sends no transaction")
	assert.Equal(t, otherBefore, ns.Run("nft", "-j", "list", "table", "ip", "other"))
}

func tableHandle(t *testing.T, ns *nfttest.NS) string {
	out := ns.Run("nft", "-a", "list", "table", "inet", "harden")
	first, _, _ := strings.Cut(out, "\n")
	require.Contains(t, first, "# handle")
	return first
}

func TestDryRunShowsFullRulesetAndChangesNothing(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hfw")
	env := enginetest.Env(t, nil, nil)
	step := firewall.New(firewall.Options{NetNS: ns.Name})
	rep := enginetest.DryRunChangesNothing(t, env, step, ns.Ruleset)
	require.Len(t, rep.Steps[0].Changes, 1)
	c := rep.Steps[0].Changes[0]
	assert.Equal(t, engine.ActionCreate, c.Action)
	assert.Equal(t, "absent", c.Before)
	assert.Contains(t, c.Diff, "+ table inet harden {")
	assert.Contains(t, c.Diff, `+ 		iifname "lo" accept`)
	assert.Contains(t, c.Diff, "policy drop;")
}

func TestHandEditAndDeletionAreRepaired(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hfw")
	env := enginetest.Env(t, nil, nil)
	step := firewall.New(firewall.Options{NetNS: ns.Name})
	enginetest.Converges(t, env, step)
	good := readTable(t, ns)

	// Someone opens everything by hand.
	ns.Run("nft", "insert rule inet harden input position 0 accept")
	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, plan.Changes, 1)
	assert.Contains(t, plan.Changes[0].Before, "hand-edited")
	assert.Contains(t, plan.Changes[0].Diff, "- \t\taccept\n")
	enginetest.DryRunChangesNothing(t, env, step, ns.Ruleset)
	enginetest.Converges(t, env, step)
	assert.Equal(t, good, readTable(t, ns))

	// A hand edit of a set (the private networks) is a difference too.
	ns.Run("nft", "add element inet harden private6 { 2001:db8::/32 }")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, plan.Changes, 1)
	assert.Contains(t, plan.Changes[0].Diff, "- \t\t\t2001:db8::/32,")
	enginetest.Converges(t, env, step)
	assert.Equal(t, good, readTable(t, ns))

	// A dormant table is in the kernel but filters nothing.
	ns.Run("nft", "add table inet harden { flags dormant; }")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, plan.Changes, 1)
	assert.Contains(t, plan.Changes[0].Diff, "- \tflags dormant")
	enginetest.Converges(t, env, step)
	assert.Equal(t, good, readTable(t, ns))

	// The table is deleted: plan create, apply restores it.
	ns.Run("nft", "delete table inet harden")
	plan, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, plan.Changes, 1)
	assert.Equal(t, engine.ActionCreate, plan.Changes[0].Action)
	enginetest.Converges(t, env, step)
	assert.Equal(t, good, readTable(t, ns))
}

// 10,000 allow entries (sources of one port) apply in one transaction and converge.
func TestTenThousandEntries(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hfw")
	p, err := policy.Parse("big.yaml", []byte(BigPolicy(10000)), nil)
	require.NoError(t, err)
	env := enginetest.Env(t, p, nil)
	enginetest.Converges(t, env, firewall.New(firewall.Options{NetNS: ns.Name}))
	set := ns.Run("nft", "list", "set", "inet", "harden", "tcp_p443_src4")
	assert.Equal(t, 10000, strings.Count(set, "100."), "all sources loaded")
}
