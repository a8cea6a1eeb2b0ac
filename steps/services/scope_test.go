package services

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

// Every way a unit file becomes enabled or masked puts its name (or, for an alias, its
// target's) in a directory scope reads; what scope leaves out cannot be enabled or masked.
func TestScopeFindsEveryLinkThatEnablesOrMasks(t *testing.T) {
	dir := t.TempDir()
	link := func(target, name string) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
	}
	link("/lib/systemd/system/cron.service", "/etc/systemd/system/multi-user.target.wants/cron.service")
	link("/lib/systemd/system/openvpn@.service", "/etc/systemd/system/multi-user.target.wants/openvpn@office.service")
	link("/lib/systemd/system/getty@.service", "/etc/systemd/system/getty.target.wants/getty@tty1.service") // essential
	link("/lib/systemd/system/ssh.service", "/etc/systemd/system/sshd.service")                             // alias: enables ssh.service
	link("/dev/null", "/etc/systemd/system/cups.service")                                                   // mask
	link("/dev/null", "/run/systemd/system/avahi-daemon.service")                                           // runtime mask
	link("/lib/systemd/system/rpcbind.socket", "/run/systemd/system/sockets.target.wants/rpcbind.socket")
	link("/lib/systemd/system/foo.service", "/etc/systemd/system/bar.target.upholds/foo.service")
	link("/lib/systemd/system/x.service", "/run/systemd/generator/local-fs.target.requires/x.service")
	link("/lib/systemd/system/systemd-timesyncd.service", "/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service") // essential: never masked
	link("/dev/null", "/etc/systemd/system/systemd-resolved.service")                                                           // a mask of an essential unit is still seen
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "/etc/systemd/system/cron.service.d"), 0o755))                            // drop-ins
	require.NoError(t, os.WriteFile(filepath.Join(dir, "/etc/systemd/system/local.service"), []byte("[Unit]\n"), 0o644))

	recs := &records{set: map[string]bool{"old-mask.service": true}}
	allow := map[string]want{"clamav-daemon.service": {}}
	got, err := scope(fsroot.New(dir), allow, recs, []engine.Restart{{Unit: "nginx.service"}})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"avahi-daemon.service", "clamav-daemon.service", "cron.service", "cups.service", "foo.service",
		"local.service", "nginx.service", "old-mask.service", "openvpn@.service", "openvpn@office.service",
		"rpcbind.socket", "ssh.service", "sshd.service", "systemd-resolved.service", "x.service",
	}, got)
	assert.NotContains(t, got, "cron.service.d", "drop-in directories are not units")
	assert.NotContains(t, got, "null", "a mask's target is /dev/null, not a unit")
}
