//go:build integration

package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// A change to one recipe changes its key only; a change to a common file changes both.
func TestImageKeyPerRecipe(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"build.sh", "debian-12/recipe", "debian-12/packages.txt", "ubuntu-26.04/recipe", "ubuntu-26.04/packages.txt"} {
		b, err := os.ReadFile(filepath.Join("image", f))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	key := func(recipe string) string {
		k, err := recipeKey(dir, recipe, "linux-image-x")
		require.NoError(t, err)
		return k
	}
	deb, ubu := key("debian-12"), key("ubuntu-26.04")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ubuntu-26.04/packages.txt"), []byte("systemd\nvim\n"), 0o644))
	require.Equal(t, deb, key("debian-12"), "the Ubuntu recipe is not part of Debian's key")
	require.NotEqual(t, ubu, key("ubuntu-26.04"))
	ubu = key("ubuntu-26.04")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "build.sh"), []byte("#!/bin/sh\n"), 0o644))
	require.NotEqual(t, deb, key("debian-12"), "a common file is part of every key")
	require.NotEqual(t, ubu, key("ubuntu-26.04"))
}

// The recipes let mmdebstrap choose the package archive for a suite: no archive URL in them.
func TestRecipesNameNoArchive(t *testing.T) {
	url := regexp.MustCompile(`https?://`)
	err := filepath.WalkDir("image", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, l := range strings.Split(string(b), "\n") {
			if url.MatchString(l) {
				t.Errorf("%s:%d names an archive: %s", p, i+1, l)
			}
		}
		return nil
	})
	require.NoError(t, err)
}

// TestImages builds (or finds) every image and checks what the recipes promise: mmdebstrap
// chose the archives itself, the suite's -updates and -security among them.
func TestImages(t *testing.T) {
	for _, img := range images {
		t.Run(img.Recipe, func(t *testing.T) {
			im := testImage(t, img.Recipe)
			for _, f := range []string{im.Root, im.Kernel, im.Initrd} {
				require.FileExists(t, f)
			}
			b, err := os.ReadFile(filepath.Join(im.Dir, "sources.list"))
			require.NoError(t, err)
			sources := string(b)
			suite := recipeValue(t, img.Recipe, "SUITE")
			for _, s := range []string{" " + suite + " ", " " + suite + "-updates ", " " + suite + "-security "} {
				require.Contains(t, sources, s, "mmdebstrap adds the suite's archives itself")
			}
			t.Logf("%s archives, as mmdebstrap chose them:\n%s", img.Recipe, sources)
		})
	}
}

// recipeValue reads NAME=value from image/<recipe>/recipe.
func recipeValue(t *testing.T, recipe, name string) string {
	b, err := os.ReadFile(filepath.Join("image", recipe, "recipe"))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("image/%s/recipe has no %s", recipe, name)
	return ""
}
