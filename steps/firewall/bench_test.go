package firewall_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/steps/firewall"
)

var benchSizes = []int{10, 1000, 10000}

func bigPolicy(b *testing.B, n int) *policy.Policy {
	p, err := policy.Parse("big.yaml", []byte(BigPolicy(n)), nil)
	require.NoError(b, err)
	return p
}

// BenchmarkBuildBatch measures turning a policy into the netlink batch (ruleset build and
// message marshalling) against a fake netlink socket that acknowledges everything.
func BenchmarkBuildBatch(b *testing.B) {
	for _, n := range benchSizes {
		p := bigPolicy(b, n)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ack := func(req []netlink.Message) ([]netlink.Message, error) {
				out := make([]netlink.Message, 0, len(req))
				for _, m := range req {
					if m.Header.Flags&netlink.Acknowledge != 0 {
						out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: make([]byte, 4)})
					}
				}
				return out, nil
			}
			for b.Loop() {
				rs, _, err := firewall.Build(p.Firewall, func(string) string { return "" })
				require.NoError(b, err)
				c, err := nftables.New(nftables.WithTestDial(ack))
				require.NoError(b, err)
				require.NoError(b, nft.Replace(nft.Wrap(c), rs))
			}
		})
	}
}

// BenchmarkApply times loading the ruleset of n allow entries into a namespace with no
// table: harden's step (plan, one transaction, verifying plan) and its transaction alone,
// against `nft -f` of the same ruleset as an atomic replace (what nft itself would do).
// bench/firewall.sh prints the ratios.
func BenchmarkApply(b *testing.B) {
	nfttest.RequireRoot(b)
	nsenter := need.Tool(b, "nsenter")
	for _, n := range benchSizes {
		p := bigPolicy(b, n)
		ns := nfttest.NewNS(b, "hfwb")
		deleteTable := func() {
			b.StopTimer()
			_, _ = ns.Try("nft", "delete", "table", "inet", "harden")
			b.StartTimer()
		}
		step := firewall.New(firewall.Options{NetNS: ns.Name})
		b.Run(fmt.Sprintf("entries=%d/harden-step", n), func(b *testing.B) {
			env := enginetest.Env(b, p, nil)
			for b.Loop() {
				deleteTable()
				rep, _ := enginetest.Run(b, env, false, step)
				require.Equal(b, engine.StatusChanged, rep.Steps[0].Status)
			}
		})
		rs, _, err := firewall.Build(p.Firewall, func(string) string { return "" })
		require.NoError(b, err)
		b.Run(fmt.Sprintf("entries=%d/harden-transaction", n), func(b *testing.B) {
			for b.Loop() {
				deleteTable()
				c, err := nft.Open(ns.Name)
				require.NoError(b, err)
				require.NoError(b, nft.Replace(c, rs))
				c.Close()
			}
		})
		file := filepath.Join(b.TempDir(), "ruleset.nft")
		text := "table inet harden\ndelete table inet harden\n" + nft.Render(rs)
		require.NoError(b, os.WriteFile(file, []byte(text), 0o600))
		b.Run(fmt.Sprintf("entries=%d/nft-f", n), func(b *testing.B) {
			for b.Loop() {
				deleteTable()
				out, err := exec.Command(nsenter, "--net=/run/netns/"+ns.Name, "nft", "-f", file).CombinedOutput()
				require.NoError(b, err, string(out))
			}
		})
	}
}

// BenchmarkPlanConverged10k is what every boot of a converged machine pays in this step
// once the policy is parsed: build the wanted table, read the kernel's back, compare. It
// was ~125 ms (most of it decoding the set element dump and rendering both tables to
// compare them); a regression to that shows here.
func BenchmarkPlanConverged10k(b *testing.B) {
	nfttest.RequireRoot(b)
	p := bigPolicy(b, 10000)
	ns := nfttest.NewNS(b, "hfwb")
	env := enginetest.Env(b, p, nil)
	enginetest.Converges(b, env, firewall.New(firewall.Options{NetNS: ns.Name}))
	for b.Loop() {
		step := firewall.New(firewall.Options{NetNS: ns.Name}) // nothing cached: as at boot
		plan, err := step.Plan(b.Context(), env)
		require.NoError(b, err)
		require.Empty(b, plan.Changes)
	}
}
