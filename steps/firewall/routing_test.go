package firewall_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/steps/firewall"
)

// routed is three namespaces in a line, client - router - server, each pair joined by a veth
// pair, the router forwarding between two subnets: a machine with harden's firewall that
// routes, as Docker's bridge (published ports are DNAT then forward) or Tailscale's subnet
// router does.
type routed struct {
	client, router, server *nfttest.NS
}

const (
	routedClient = "10.97.1.2"
	routedServer = "10.97.2.2"
)

func newRouted(t *testing.T) *routed {
	nfttest.RequireRoot(t)
	r := &routed{client: nfttest.NewNS(t, "hfrc"), router: nfttest.NewNS(t, "hfrr"), server: nfttest.NewNS(t, "hfrs")}
	cIf, rIn := nfttest.Veth(t, r.client, r.router)
	rOut, sIf := nfttest.Veth(t, r.router, r.server)
	r.client.AddAddr(cIf, routedClient+"/24")
	r.router.AddAddr(rIn, "10.97.1.1/24")
	r.router.AddAddr(rOut, "10.97.2.1/24")
	r.server.AddAddr(sIf, routedServer+"/24")
	r.client.Run("ip", "route", "add", "10.97.2.0/24", "via", "10.97.1.1")
	r.server.Run("ip", "route", "add", "10.97.1.0/24", "via", "10.97.2.1")
	r.router.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	listenTCP(t, r.server, "8080")
	return r
}

// probe connects from the client to the server's port, through the router.
func (r *routed) probe() string {
	l := &lab{client: r.client}
	return l.tcp(r.client, routedClient, routedServer, "8080")
}

func forwardPolicy(t *testing.T, forward string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("routed.yaml", []byte("version: 1\nfirewall: {forward: "+forward+"}\n"), nil)
	require.NoError(t, err)
	return p
}

func findingIDs(rep *engine.Report) []string {
	var ids []string
	for _, f := range rep.Steps[0].Findings {
		ids = append(ids, f.ID)
	}
	return ids
}

// With the default policy a machine that routes keeps routing: harden's forward chain
// accepts (other tools' chains still filter their own traffic), and the input chain still
// closes the router itself.
func TestRoutingKeepsWorkingByDefault(t *testing.T) {
	r := newRouted(t)
	require.Equal(t, "open", r.probe(), "the topology routes before harden")
	listenTCP(t, r.router, "8080")
	rep := enginetest.Converges(t, enginetest.Env(t, nil, nil), firewall.New(firewall.Options{NetNS: r.router.Name}))
	assert.Equal(t, "open", r.probe(), "harden's default policy broke routing")
	assert.Equal(t, "dropped", (&lab{}).tcp(r.client, routedClient, "10.97.1.1", "8080"),
		"the router's own closed port stays closed")
	assert.Empty(t, findingIDs(rep))
}

// forward: drop stops routed traffic, and the plan says so: the machine routes
// (ip_forward = 1), and once something tried, how many packets the drop took.
func TestForwardDropIsAFindingWhenTheMachineRoutes(t *testing.T) {
	r := newRouted(t)
	env := enginetest.Env(t, forwardPolicy(t, "drop"), nil)
	step := firewall.New(firewall.Options{NetNS: r.router.Name})
	rep := enginetest.Converges(t, env, step)
	assert.Contains(t, findingIDs(rep), "firewall.forward-drop-routing")
	assert.Equal(t, "dropped", r.probe())

	plan, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Changes, "the counter's value is not a difference")
	var dropped string
	for _, f := range plan.Findings {
		if f.ID == "firewall.forward-dropped" {
			dropped = f.Message
		}
	}
	assert.Regexp(t, `^\d+ routed packet\(s\) dropped by the forward chain`, dropped)

	// Back to accept: routing works again, nothing to report.
	env.Policy = forwardPolicy(t, "accept")
	rep = enginetest.Converges(t, env, step)
	assert.Equal(t, "open", r.probe())
	assert.Empty(t, findingIDs(rep))
}
