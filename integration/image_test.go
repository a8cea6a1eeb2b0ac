//go:build integration

package integration

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestImageKeyStable(t *testing.T) {
	a, err := recipeKey("image", "ubuntu-26.04", "linux-image-x")
	require.NoError(t, err)
	b, err := recipeKey("image", "ubuntu-26.04", "linux-image-x")
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := recipeKey("image", "ubuntu-26.04", "linux-image-y")
	require.NoError(t, err)
	require.NotEqual(t, a, c, "the kernel package is part of the key")
	d, err := recipeKey("image", "debian-12", "linux-image-x")
	require.NoError(t, err)
	require.NotEqual(t, a, d, "each recipe has its own key")
	_, err = recipeKey("image", "rootfs", "linux-image-x")
	require.Error(t, err, "a directory without a recipe file is not a recipe")
}
