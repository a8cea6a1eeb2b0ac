package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// An image tree as a package install leaves it: real host keys from ssh-keygen -A, a
// machine-id, D-Bus's copy, a random seed. Stamping leaves none of them, keeps the rest of
// /etc/ssh, and a second stamp changes nothing.
func TestStampIdentityLeavesNoHostKeysOrMachineID(t *testing.T) {
	keygen := need.Tool(t, "ssh-keygen")
	dir := t.TempDir()
	write := func(p, data string, mode os.FileMode) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(data), mode))
	}
	write("/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n", 0o644)
	write("/etc/ssh/ssh_config", "Host *\n", 0o644)
	write("/etc/ssh/moduli", "# moduli\n", 0o644)
	out, err := exec.Command(keygen, "-A", "-f", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	write("/etc/ssh/ssh_host_ed25519_key-cert.pub", "ssh-ed25519-cert-v01@openssh.com AAAA\n", 0o644)
	write(MachineID, "0123456789abcdef0123456789abcdef\n", 0o444)
	write(DBusMachineID, "0123456789abcdef0123456789abcdef\n", 0o644)
	write(RandomSeed, "seed", 0o600)
	keys, err := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(keys), 4, "ssh-keygen -A made keys: %v", keys)

	changes, err := StampIdentity(fsroot.New(dir))
	require.NoError(t, err)
	keys, _ = filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	assert.Empty(t, keys)
	for _, kept := range []string{"sshd_config", "ssh_config", "moduli"} {
		assert.FileExists(t, filepath.Join(dir, "etc/ssh", kept))
	}
	fi, err := os.Stat(filepath.Join(dir, MachineID))
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "machine-id emptied: a new one at boot, not a first boot")
	assert.Equal(t, os.FileMode(0o444), fi.Mode().Perm())
	assert.NoFileExists(t, filepath.Join(dir, DBusMachineID))
	assert.NoFileExists(t, filepath.Join(dir, RandomSeed))
	var objs []string
	for _, c := range changes {
		objs = append(objs, c.String())
	}
	assert.Contains(t, objs, "remove /etc/ssh/ssh_host_ed25519_key")
	assert.Contains(t, objs, "remove /etc/ssh/ssh_host_ed25519_key-cert.pub")
	assert.Contains(t, objs, "empty /etc/machine-id")

	again, err := StampIdentity(fsroot.New(dir))
	require.NoError(t, err)
	assert.Empty(t, again)

	// No ID to remove: "uninitialized" (first-boot semantics chosen by the builder) and a
	// tree without the file (a partial tree) stay as they are.
	require.NoError(t, os.WriteFile(filepath.Join(dir, MachineID), []byte("uninitialized\n"), 0o444))
	again, err = StampIdentity(fsroot.New(dir))
	require.NoError(t, err)
	assert.Empty(t, again)
	partial := t.TempDir()
	again, err = StampIdentity(fsroot.New(partial))
	require.NoError(t, err)
	assert.Empty(t, again)
	assert.NoFileExists(t, filepath.Join(partial, MachineID))
}

// D-Bus's machine-id as a link to /etc/machine-id (Debian's and Ubuntu's packages make it
// so) is left alone; a machine-id that is a link is replaced by an empty file, never
// written through.
func TestStampIdentityLinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-machine-id")
	require.NoError(t, os.WriteFile(outside, []byte("builder's id\n"), 0o444))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "var/lib/dbus"), 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, MachineID)))
	require.NoError(t, os.Symlink("/etc/machine-id", filepath.Join(dir, DBusMachineID)))

	_, err := StampIdentity(fsroot.New(dir))
	require.NoError(t, err)
	b, err := os.ReadFile(outside)
	require.NoError(t, err)
	assert.Equal(t, "builder's id\n", string(b), "the link's target is untouched")
	fi, err := os.Lstat(filepath.Join(dir, MachineID))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Zero(t, fi.Size())
	target, err := os.Readlink(filepath.Join(dir, DBusMachineID))
	require.NoError(t, err)
	assert.Equal(t, "/etc/machine-id", target)
}
