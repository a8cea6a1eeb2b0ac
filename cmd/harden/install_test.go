package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInstallAndStampCommands(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	// No binary in the tree: refused, nothing written.
	require.Equal(t, 1, run(context.Background(), []string{"install", "--root", dir}, &out, &errb))
	assert.Contains(t, errb.String(), "/usr/local/sbin/harden is not an executable file")

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "usr/local/sbin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "usr/local/sbin/harden"), []byte("#!/bin/sh\n"), 0o755))
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"install", "--root", dir, "--dry-run"}, &out, &errb))
	assert.Contains(t, out.String(), "would create /etc/systemd/system/harden.service")
	assert.NoFileExists(t, filepath.Join(dir, "etc/systemd/system/harden.service"))

	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"install", "--root", dir}, &out, &errb))
	assert.Contains(t, out.String(), "link /etc/systemd/system/sysinit.target.wants/harden-firewall.service")
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"install", "--root", dir}, &out, &errb))
	assert.Equal(t, "nothing to change\n", out.String())

	// What must not be baked into an image: freshclam's UUID and CDN cool-down, and no
	// backup of it either (a backup would be baked in just the same).
	dat := filepath.Join(dir, "var/lib/clamav/freshclam.dat")
	require.NoError(t, os.MkdirAll(filepath.Dir(dat), 0o755))
	require.NoError(t, os.WriteFile(dat, []byte("uuid and cool-down"), 0o644))
	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"stamp", "--root", dir, "--image-id", "img-1"}, &out, &errb))
	b, err := os.ReadFile(filepath.Join(dir, "etc/harden/image-build"))
	require.NoError(t, err)
	assert.Regexp(t, `^BUILD_TIME=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\nIMAGE_ID=img-1\n$`, string(b))
	assert.Contains(t, out.String(), "remove /var/lib/clamav/freshclam.dat")
	assert.NoFileExists(t, dat)
	backups, _ := filepath.Glob(filepath.Join(dir, "var/lib/harden/backup/*/var/lib/clamav/freshclam.dat"))
	assert.Empty(t, backups)
	require.Equal(t, 2, run(context.Background(), []string{"stamp", "extra"}, &out, &errb), "a usage error")
}
