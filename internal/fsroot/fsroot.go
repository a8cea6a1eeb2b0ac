// Package fsroot is the only way harden touches files: every path is absolute and resolved
// under a root prefix ("/" on a machine, a temporary directory in tests), writes are atomic
// (temp file, fsync, rename, fsync of the directory) and every file replaced or removed is
// first copied to the run's backup directory.
//
// It is a prefix, not a jail: symlinks are followed as the kernel follows them. (os.Root would
// jail, but it refuses absolute symlinks, which a real / is full of: /etc/localtime, masks.)
package fsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DefaultBackupDir holds copies of files harden replaced or removed, one folder per run.
const DefaultBackupDir = "/var/lib/harden/backup"

// Root resolves absolute paths under a prefix directory.
type Root struct {
	dir       string
	backupDir string // absolute path inside the root
}

// New returns a Root at dir ("/" on a real machine).
func New(dir string) Root {
	return Root{dir: filepath.Clean(dir), backupDir: filepath.Join(DefaultBackupDir, "unnamed")}
}

// WithBackupDir returns a copy whose backups go to dir (a path inside the root), so each run
// keeps its originals apart.
func (r Root) WithBackupDir(dir string) Root {
	r.backupDir = filepath.Clean(dir)
	return r
}

// Dir is the prefix directory.
func (r Root) Dir() string { return r.dir }

// BackupDir is where this run's backups go, as a path inside the root.
func (r Root) BackupDir() string { return r.backupDir }

// Path maps an absolute machine path to the host path under the root. Use it only to hand a
// path to an external tool (sshd -f, apt-get); read and write through the methods.
func (r Root) Path(name string) string {
	return filepath.Join(r.dir, filepath.Clean("/"+name))
}

func (r Root) check(name string) error {
	if !filepath.IsAbs(name) {
		return fmt.Errorf("fsroot: %q is not an absolute path", name)
	}
	return nil
}

// ReadFile reads a file.
func (r Root) ReadFile(name string) ([]byte, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	return os.ReadFile(r.Path(name))
}

// Open opens a file for reading, for a reader that streams a large file rather than hold
// it whole.
func (r Root) Open(name string) (*os.File, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	return os.Open(r.Path(name))
}

// ReadFileIfExists reads a file, returning nil and no error if it does not exist.
func (r Root) ReadFileIfExists(name string) ([]byte, bool, error) {
	b, err := r.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Stat follows symlinks; Lstat does not.
func (r Root) Stat(name string) (fs.FileInfo, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	return os.Stat(r.Path(name))
}

// Lstat does not follow a final symlink.
func (r Root) Lstat(name string) (fs.FileInfo, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	return os.Lstat(r.Path(name))
}

// Readlink returns the target of a symbolic link, as stored.
func (r Root) Readlink(name string) (string, error) {
	if err := r.check(name); err != nil {
		return "", err
	}
	return os.Readlink(r.Path(name))
}

// ReadDir lists a directory; a missing directory is empty.
func (r Root) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(r.Path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// Same reports whether name holds exactly data with mode perm, so a step can plan without
// writing.
func (r Root) Same(name string, data []byte, perm fs.FileMode) (bool, error) {
	cur, err := r.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fi, err := r.Stat(name)
	if err != nil {
		return false, err
	}
	return bytes.Equal(cur, data) && fi.Mode().Perm() == perm.Perm(), nil
}

// WriteFile replaces name with data atomically: readers see the old or the new file, never a
// part, and a crash leaves one of the two. An existing file is backed up first and keeps its
// owner. It reports false, writing nothing, when the file already holds data with perm.
func (r Root) WriteFile(name string, data []byte, perm fs.FileMode) (bool, error) {
	same, err := r.Same(name, data, perm)
	if err != nil || same {
		return false, err
	}
	host := r.Path(name)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return false, err
	}
	uid, gid := -1, -1
	if fi, err := os.Stat(host); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
		if _, err := r.Backup(name); err != nil {
			return false, err
		}
	}
	return true, writeAtomic(host, data, perm, uid, gid)
}

// WriteFileChecked is WriteFile with a check between staging and renaming: data is written
// to a temporary file next to name (a dot name that no `*.conf` glob matches), check gets
// that file's host path, and only when check returns nil is the file renamed into place. A
// run killed at any point leaves the old file in place, never an unchecked new one.
func (r Root) WriteFileChecked(name string, data []byte, perm fs.FileMode, check func(staged string) error) (bool, error) {
	same, err := r.Same(name, data, perm)
	if err != nil || same {
		return false, err
	}
	host := r.Path(name)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return false, err
	}
	uid, gid := -1, -1
	if fi, err := os.Stat(host); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
		if _, err := r.Backup(name); err != nil {
			return false, err
		}
	}
	return true, writeAtomicChecked(host, data, perm, uid, gid, check)
}

// WriteState writes harden's own state (reports, metrics, records of what it did) atomically
// and without a backup: these files are replaced every run, and backing them up would only
// fill the backup directory.
func (r Root) WriteState(name string, data []byte, perm fs.FileMode) error {
	if err := r.check(name); err != nil {
		return err
	}
	host := r.Path(name)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	return writeAtomic(host, data, perm, -1, -1)
}

// WriteReport writes a report that every run replaces (the last run's JSON report, the
// metrics textfile): atomically, so a reader sees the old or the new one, but without
// fsync. Durability buys nothing for a file the next run rewrites and the journal already
// holds what it says, while two fsyncs (file and directory) cost a journal commit each on
// every boot: milliseconds, and hundreds of them on a busy disk. After a crash the file
// holds the previous report, this one, or (on file systems that do not order data before
// the rename) nothing.
func (r Root) WriteReport(name string, data []byte, perm fs.FileMode) error {
	if err := r.check(name); err != nil {
		return err
	}
	host := r.Path(name)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	return replace(host, data, perm, -1, -1, nil, false)
}

func writeAtomic(host string, data []byte, perm fs.FileMode, uid, gid int) error {
	return replace(host, data, perm, uid, gid, nil, true)
}

func writeAtomicChecked(host string, data []byte, perm fs.FileMode, uid, gid int, check func(string) error) error {
	return replace(host, data, perm, uid, gid, check, true)
}

// replace writes data to a temporary file next to host, lets check judge it, and renames it
// over host; durable syncs the file before the rename and the directory after it.
func replace(host string, data []byte, perm fs.FileMode, uid, gid int, check func(string) error, durable bool) error {
	dir := filepath.Dir(host)
	tmp, err := os.CreateTemp(dir, ".harden-tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm.Perm()); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return err
		}
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if check != nil {
		if err := check(tmp.Name()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), host); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Backup copies name (if it exists) to the backup directory under the same path and returns
// the copy's path inside the root ("" if there was nothing to back up).
func (r Root) Backup(name string) (string, error) {
	if err := r.check(name); err != nil {
		return "", err
	}
	data, err := os.ReadFile(r.Path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(r.Path(name))
	if err != nil {
		return "", err
	}
	dst := filepath.Join(r.backupDir, name)
	host := r.Path(dst)
	if err := os.MkdirAll(filepath.Dir(host), 0o700); err != nil {
		return "", err
	}
	if err := writeAtomic(host, data, fi.Mode().Perm(), -1, -1); err != nil {
		return "", fmt.Errorf("backup of %s: %w", name, err)
	}
	return dst, nil
}

// Remove backs a file up and removes it. It reports false when there was nothing to remove.
func (r Root) Remove(name string) (bool, error) {
	if _, err := r.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if _, err := r.Backup(name); err != nil {
		return false, err
	}
	if err := os.Remove(r.Path(name)); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(r.Path(name)))
}

// Copy copies src to dst atomically (used to install files handed in, e.g. units).
func (r Root) Copy(src, dst string, perm fs.FileMode) (bool, error) {
	f, err := os.Open(r.Path(src))
	if err != nil {
		return false, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	return r.WriteFile(dst, data, perm)
}
