package nft_test

import (
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/nft/nfttest"
)

// BenchmarkRead measures reading back a table with 10,000 set elements (every plan does it).
func BenchmarkRead(b *testing.B) {
	nfttest.RequireRoot(b)
	ns := nfttest.NewNS(b, "hnftb")
	c, err := nft.Open(ns.Name)
	require.NoError(b, err)
	defer c.Close()
	require.NoError(b, nft.Replace(c, sample(10000)))
	for b.Loop() {
		rs, err := nft.Read(c, "harden", nftables.TableFamilyINet)
		require.NoError(b, err)
		require.NotNil(b, rs)
	}
}
