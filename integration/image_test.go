//go:build integration

package integration

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestImageKeyStable(t *testing.T) {
	a, err := recipeKey("image", "linux-image-x")
	require.NoError(t, err)
	b, err := recipeKey("image", "linux-image-x")
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := recipeKey("image", "linux-image-y")
	require.NoError(t, err)
	require.NotEqual(t, a, c, "the kernel package is part of the key")
}

func TestImageBuilds(t *testing.T) {
	img, err := EnsureImage("image", t.Logf)
	require.NoError(t, err)
	require.FileExists(t, img.Root)
	require.FileExists(t, img.Kernel)
	require.FileExists(t, img.Initrd)
}
