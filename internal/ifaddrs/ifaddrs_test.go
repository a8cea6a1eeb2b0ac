package ifaddrs

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/nft/nfttest"
)

// The addresses `ip` put on a namespace's interfaces are what List reads back.
func TestListReadsANamespacesAddresses(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hifa")
	dev, _ := nfttest.Veth(t, ns, nfttest.NewNS(t, "hifb"))
	ns.AddAddr(dev, "10.7.0.5/24")
	ns.AddAddr(dev, "fdaa:0:1:a7b:1::2/64")
	got, err := List(ns.Name)
	require.NoError(t, err)
	var prefixes []string
	for _, a := range got {
		prefixes = append(prefixes, a.Prefix.String())
	}
	assert.Contains(t, prefixes, "10.7.0.5/24")
	assert.Contains(t, prefixes, "fdaa:0:1:a7b:1::2/64")
	assert.Contains(t, prefixes, "127.0.0.1/8")
	for _, a := range got {
		if a.Prefix.Addr() == netip.MustParseAddr("fdaa:0:1:a7b:1::2") {
			assert.Zero(t, a.Scope, "a ULA is of global scope")
			assert.NotZero(t, a.Index)
		}
	}
	_, err = List("/nonexistent/netns")
	assert.Error(t, err)
}
