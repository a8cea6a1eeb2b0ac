package fsroot

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// hostile builds an image tree whose links all point out of it, at a directory of this
// host (outside) that holds a secret, a directory with a file, and nothing else. Every
// operation through those links must stay inside the tree: the host's files are never
// read into a plan, written, chmodded or removed.
type hostile struct {
	root    Root
	dir     string // the tree
	outside string // the "build host" files the links aim at
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	h := &hostile{dir: t.TempDir(), outside: t.TempDir()}
	h.root = New(h.dir).WithBackupDir("/var/lib/harden/backup/run1")
	must := func(err error) { t.Helper(); require.NoError(t, err) }
	must(os.WriteFile(filepath.Join(h.outside, "secret"), []byte("host secret\n"), 0o600))
	must(os.MkdirAll(filepath.Join(h.outside, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(h.outside, "dir", "file"), []byte("host file\n"), 0o644))
	must(os.MkdirAll(filepath.Join(h.dir, "etc", "systemd", "system"), 0o755))
	must(os.MkdirAll(filepath.Join(h.dir, "var", "lib"), 0o755))
	deep := strings.Repeat("../", 12)
	links := map[string]string{
		"etc/abs-secret": filepath.Join(h.outside, "secret"),                    // absolute, at a host file
		"etc/rel-secret": deep + strings.TrimPrefix(h.outside, "/") + "/secret", // climbs out with ..
		"etc/abs-dir":    filepath.Join(h.outside, "dir"),                       // absolute, at a host directory
		"etc/rel-dir":    deep + strings.TrimPrefix(h.outside, "/") + "/dir",
		"etc/dangling":   filepath.Join(h.outside, "created-by-harden"), // a file that does not exist yet
		"etc/os-release": "/usr/lib/os-release",                         // the usual, inside the tree
		"var/lib/harden": filepath.Join(h.outside, "dir"),               // state and backups aimed at the host
		"etc/systemd/system/multi-user.target.wants": filepath.Join(h.outside, "dir"),
		"etc/loop": "/etc/loop",
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(h.dir, name)))
	}
	must(os.MkdirAll(filepath.Join(h.dir, "usr", "lib"), 0o755))
	must(os.WriteFile(filepath.Join(h.dir, "usr", "lib", "os-release"), []byte("ID=image\n"), 0o644))
	return h
}

// digest hashes every path, mode, link target and content under dir.
func digest(t *testing.T, dir string) string {
	t.Helper()
	sum := sha256.New()
	var paths []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		sum.Write([]byte(p + "\x00" + fi.Mode().String() + "\x00"))
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			sum.Write([]byte(target))
		} else if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			sum.Write(b)
		}
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// bothResolvers runs f with the kernel's openat2 and with the user-space walk.
func bothResolvers(t *testing.T, f func(t *testing.T)) {
	t.Run("openat2", func(t *testing.T) {
		if !openat2Works() {
			t.Log("openat2 is not available on this kernel: only the user-space walk is used")
		}
		f(t)
	})
	t.Run("walk", func(t *testing.T) {
		forceWalk = true
		defer func() { forceWalk = false }()
		f(t)
	})
}

func TestLinksOutOfTheTreeNeverReachTheHost(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		h := newHostile(t)
		before := digest(t, h.outside)
		r := h.root

		// Reads: nothing of the host's leaks into what a plan would see.
		for _, name := range []string{"/etc/abs-secret", "/etc/rel-secret", "/etc/abs-dir/file", "/etc/rel-dir/file",
			"/../../" + strings.TrimPrefix(h.outside, "/") + "/secret"} {
			b, err := r.ReadFile(name)
			assert.ErrorIs(t, err, fs.ErrNotExist, "%s read %q", name, b)
			_, err = r.Stat(name)
			assert.ErrorIs(t, err, fs.ErrNotExist, name)
		}
		b, err := r.ReadFile("/etc/os-release")
		require.NoError(t, err)
		assert.Equal(t, "ID=image\n", string(b), "an absolute link inside the tree means the tree's file")
		entries, err := r.ReadDir("/etc/abs-dir")
		require.NoError(t, err)
		assert.Empty(t, entries, "the host directory's listing is not the tree's")
		_, err = r.ReadFile("/etc/loop")
		assert.ErrorIs(t, err, unix.ELOOP)

		// Writes through a linked directory land inside the tree.
		wrote, err := r.WriteFile("/etc/abs-dir/file", []byte("harden\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, wrote)
		got, err := os.ReadFile(filepath.Join(h.dir, h.outside, "dir", "file"))
		require.NoError(t, err)
		assert.Equal(t, "harden\n", string(got))
		_, err = r.WriteOwned("/etc/rel-dir/owned", []byte("x\n"), 0o640)
		require.NoError(t, err)
		require.NoError(t, r.WriteState("/var/lib/harden/last-run.json", []byte("{}"), 0o600))
		_, err = os.Stat(filepath.Join(h.dir, h.outside, "dir", "last-run.json"))
		assert.NoError(t, err, "state under a linked /var/lib/harden stays in the tree")

		// A dangling link to the host is replaced, never written through.
		_, err = r.WriteFile("/etc/dangling", []byte("conf\n"), 0o644)
		require.NoError(t, err)
		fi, err := os.Lstat(filepath.Join(h.dir, "etc", "dangling"))
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular())

		// A file replaced over a link is backed up inside the tree (the backup dir is itself
		// behind a link to the host).
		_, err = r.WriteFile("/etc/os-release", []byte("ID=harden\n"), 0o644)
		require.NoError(t, err)
		bk, err := r.ReadFile("/var/lib/harden/backup/run1/etc/os-release")
		require.NoError(t, err)
		assert.Equal(t, "ID=image\n", string(bk))

		// Remove, chmod, chown, mkdir, symlink, open with O_CREAT: all inside.
		_, err = r.Remove("/etc/abs-dir/file")
		require.NoError(t, err)
		removed, err := r.Remove("/etc/rel-secret")
		require.NoError(t, err)
		assert.True(t, removed, "the link itself is removed")
		assert.ErrorIs(t, r.Chmod("/etc/abs-secret", 0o777), fs.ErrNotExist)
		assert.ErrorIs(t, r.Chown("/etc/abs-secret", 1, 1), fs.ErrNotExist)
		require.NoError(t, r.MkdirAll("/etc/abs-dir/sub/deeper", 0o755))
		require.NoError(t, r.Symlink("/etc/systemd/system/harden.service", "/etc/systemd/system/multi-user.target.wants/harden.service"))
		target, err := r.Readlink("/etc/systemd/system/multi-user.target.wants/harden.service")
		require.NoError(t, err)
		assert.Equal(t, "/etc/systemd/system/harden.service", target)
		f, err := r.OpenFile("/etc/abs-dir/harden.lock", os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		f.Close()
		hp, err := r.HostPath("/etc/abs-dir")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(hp, h.dir+"/"), "the host path a tool gets is in the tree: %s", hp)
		assert.Error(t, r.WriteExisting("/etc/abs-secret", []byte("0\n")))

		assert.Equal(t, before, digest(t, h.outside), "a file outside the tree was touched")
	})
}

func TestWriteOwnedTakesFilesBack(t *testing.T) {
	bothResolvers(t, func(t *testing.T) {
		r := New(t.TempDir())
		uid, gid := r.Owner()
		wrote, err := r.WriteOwned("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, wrote)
		same, err := r.SameOwned("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, same)
		if os.Geteuid() != 0 {
			return // only root can give a file away
		}
		require.NoError(t, os.Chown(r.Path("/etc/sysctl.d/99-zz-harden.conf"), 1000, 1000))
		d, err := r.Check("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.False(t, d.Same())
		assert.Equal(t, "owner 1000:1000", d.String())
		same, err = r.Same("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, same, "Same (files harden edits but does not own) ignores the owner")
		wrote, err = r.WriteOwned("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, wrote)
		d, err = r.Check("/etc/sysctl.d/99-zz-harden.conf", []byte("a = 1\n"), 0o644)
		require.NoError(t, err)
		assert.True(t, d.Same(), d.String())
		assert.Equal(t, uid, d.UID)
		assert.Equal(t, gid, d.GID)
	})
}
