// Package fsroot is the only way harden touches files: every path is absolute and resolved
// inside a root directory ("/" on a machine, an image tree or a temporary directory
// otherwise), writes are atomic (temp file, fsync, rename, fsync of the directory) and every
// file replaced or removed is first copied to the run's backup directory.
//
// The root is a jail, not a prefix: symlinks in the tree are followed as the machine will
// follow them when it boots from that tree, an absolute link to /run/... pointing into the
// tree's /run, never the build host's (see resolve.go). So `harden apply --root IMG` cannot
// read the build host's files into a plan, nor write or remove them. (os.Root would also
// jail, but it refuses absolute symlinks, which a real / is full of: /etc/localtime, masks.)
package fsroot

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultBackupDir holds copies of files harden replaced or removed, one folder per run.
const DefaultBackupDir = "/var/lib/harden/backup"

// Root resolves absolute machine paths inside a root directory.
type Root struct {
	dir       string
	backupDir string // absolute path inside the root
	// uid and gid own the files harden owns (WriteOwned): root's when harden runs as root.
	uid, gid int
}

// New returns a Root at dir ("/" on a real machine).
func New(dir string) Root {
	uid, gid := 0, 0
	if os.Geteuid() != 0 {
		// Unprivileged (a developer's test run): files can only be the caller's.
		uid, gid = os.Geteuid(), os.Getegid()
	}
	return Root{dir: filepath.Clean(dir), backupDir: path.Join(DefaultBackupDir, "unnamed"), uid: uid, gid: gid}
}

// WithBackupDir returns a copy whose backups go to dir (a path inside the root), so each run
// keeps its originals apart.
func (r Root) WithBackupDir(dir string) Root {
	r.backupDir = path.Clean(dir)
	return r
}

// Dir is the root directory.
func (r Root) Dir() string { return r.dir }

// BackupDir is where this run's backups go, as a path inside the root.
func (r Root) BackupDir() string { return r.backupDir }

// Owner is the uid and gid WriteOwned gives files (0, 0 when harden runs as root).
func (r Root) Owner() (uid, gid int) { return r.uid, r.gid }

// Path joins the root and a machine path, without resolving anything: for messages, and
// for tools that take the root itself (dpkg --root). A tool that takes a file's path gets
// HostPath instead.
func (r Root) Path(name string) string {
	return filepath.Join(r.dir, filepath.Clean("/"+name))
}

// HostPath resolves name inside the root and returns where it really is on this host, for
// the external programs that take a path (freshclam --datadir). A link in the tree is
// followed inside the tree, so the program is never pointed at the build host's files.
// The name must exist.
func (r Root) HostPath(name string) (string, error) {
	f, err := r.open("resolve", name, unix.O_PATH, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r.Path(name), err)
	}
	return p, nil
}

func (r Root) check(name string) error {
	if !path.IsAbs(name) {
		return fmt.Errorf("fsroot: %q is not an absolute path", name)
	}
	return nil
}

// rootFD opens the root directory for one lookup. Opening it per call keeps Root a plain
// value (no descriptor to close) and follows a root directory that was replaced.
func (r Root) rootFD() (int, error) {
	return unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// open resolves name inside the root and opens it with flags.
func (r Root) open(op, name string, flags int, mode uint32) (*os.File, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	rfd, err := r.rootFD()
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: r.dir, Err: err}
	}
	defer unix.Close(rfd)
	fd, err := openIn(rfd, name, flags, mode)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: r.Path(name), Err: err}
	}
	return os.NewFile(uintptr(fd), r.Path(name)), nil
}

// parent opens the directory that holds name (resolved inside the root, readable so it can
// be fsynced) and returns it with name's last component.
func (r Root) parent(op, name string) (*os.File, string, error) {
	if err := r.check(name); err != nil {
		return nil, "", err
	}
	clean := path.Clean(name)
	base := path.Base(clean)
	if base == "/" || base == ".." || base == "." {
		return nil, "", &fs.PathError{Op: op, Path: r.Path(name), Err: errBadName}
	}
	d, err := r.open(op, path.Dir(clean), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	return d, base, err
}

// Open opens a file for reading.
func (r Root) Open(name string) (*os.File, error) {
	return r.open("open", name, unix.O_RDONLY, 0)
}

// OpenFile opens a file with open(2) flags (O_CREAT creates it inside the root). For files
// harden keeps open (the run lock); content goes through WriteFile and WriteState.
func (r Root) OpenFile(name string, flags int, perm fs.FileMode) (*os.File, error) {
	return r.open("open", name, flags, uint32(perm.Perm()))
}

// ReadFile reads a file.
func (r Root) ReadFile(name string) ([]byte, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ReadFileIfExists reads a file, returning nil and no error if it does not exist.
func (r Root) ReadFileIfExists(name string) ([]byte, bool, error) {
	b, err := r.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Stat follows symlinks (inside the root); Lstat does not follow a final symlink.
func (r Root) Stat(name string) (fs.FileInfo, error) {
	return r.stat("stat", name, unix.O_PATH)
}

// Lstat does not follow a final symlink.
func (r Root) Lstat(name string) (fs.FileInfo, error) {
	return r.stat("lstat", name, unix.O_PATH|unix.O_NOFOLLOW)
}

func (r Root) stat(op, name string, flags int) (fs.FileInfo, error) {
	f, err := r.open(op, name, flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadDir lists a directory; a missing directory is empty.
func (r Root) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := r.open("open", name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	// os's entries would lstat by host path in Info(); these look inside the root.
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = dirEntry{DirEntry: e, root: r, name: path.Join(name, e.Name())}
	}
	sortEntries(out)
	return out, nil
}

type dirEntry struct {
	fs.DirEntry
	root Root
	name string
}

func (e dirEntry) Info() (fs.FileInfo, error) { return e.root.Lstat(e.name) }

// Drift is how a file differs from what harden wants there.
type Drift struct {
	Exists  bool
	Content bool        // the content differs
	Mode    fs.FileMode // the file's permission bits (when it exists)
	UID     int         // the file's owner (when it exists)
	GID     int
	// ModeDiffers and OwnerDiffers compare with the wanted mode and Root.Owner.
	ModeDiffers, OwnerDiffers bool
}

// Same reports whether nothing differs.
func (d Drift) Same() bool {
	return d.Exists && !d.Content && !d.ModeDiffers && !d.OwnerDiffers
}

// String says what differs, for a change's Before ("owner 1000:1000", "mode 0666").
func (d Drift) String() string {
	if !d.Exists {
		return "absent"
	}
	var parts []string
	if d.Content {
		parts = append(parts, "content differs")
	}
	if d.ModeDiffers {
		parts = append(parts, fmt.Sprintf("mode %04o", d.Mode.Perm()))
	}
	if d.OwnerDiffers {
		parts = append(parts, fmt.Sprintf("owner %d:%d", d.UID, d.GID))
	}
	if len(parts) == 0 {
		return "as wanted"
	}
	return joinComma(parts)
}

// Check compares name with data, perm and Root.Owner. It reads one descriptor, so the mode,
// owner and content it reports are of the same file.
func (r Root) Check(name string, data []byte, perm fs.FileMode) (Drift, error) {
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Drift{}, nil
	}
	if err != nil {
		return Drift{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Drift{}, err
	}
	d := Drift{Exists: true, Mode: fi.Mode().Perm()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		d.UID, d.GID = int(st.Uid), int(st.Gid)
	}
	d.ModeDiffers = d.Mode != perm.Perm()
	d.OwnerDiffers = d.UID != r.uid || d.GID != r.gid
	if !fi.Mode().IsRegular() {
		d.Content = true
		return d, nil
	}
	cur, err := io.ReadAll(f)
	if err != nil {
		return Drift{}, err
	}
	d.Content = !bytes.Equal(cur, data)
	return d, nil
}

// Same reports whether name holds exactly data with mode perm, so a step can plan without
// writing. The owner is not compared (see SameOwned).
func (r Root) Same(name string, data []byte, perm fs.FileMode) (bool, error) {
	d, err := r.Check(name, data, perm)
	return d.Exists && !d.Content && !d.ModeDiffers, err
}

// SameOwned is Same for a file harden owns: the owner must be Root.Owner too.
func (r Root) SameOwned(name string, data []byte, perm fs.FileMode) (bool, error) {
	d, err := r.Check(name, data, perm)
	return d.Same(), err
}

// WriteFile replaces name with data atomically: readers see the old or the new file, never a
// part, and a crash leaves one of the two. An existing file is backed up first and keeps its
// owner (a file of the system's that harden edits). It reports false, writing nothing, when
// the file already holds data with perm.
func (r Root) WriteFile(name string, data []byte, perm fs.FileMode) (bool, error) {
	same, err := r.Same(name, data, perm)
	if err != nil || same {
		return false, err
	}
	uid, gid := -1, -1
	if fi, err := r.Stat(name); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	return true, r.replace(name, data, perm, uid, gid, true)
}

// WriteOwned replaces a file harden owns (its rules.d file, sysctl.d file, drop-ins,
// units): like WriteFile, but the file is always Root.Owner's (root:root), so a file someone
// else came to own is taken back. It reports false when content, mode and owner are right.
func (r Root) WriteOwned(name string, data []byte, perm fs.FileMode) (bool, error) {
	same, err := r.SameOwned(name, data, perm)
	if err != nil || same {
		return false, err
	}
	return true, r.replace(name, data, perm, r.uid, r.gid, true)
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
	uid, gid := -1, -1
	if fi, err := r.Stat(name); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	return true, r.replaceChecked(name, data, perm, uid, gid, true, check, true)
}

// WriteState writes harden's own state (reports, metrics, records of what it did) atomically
// and without a backup: these files are replaced every run, and backing them up would only
// fill the backup directory.
func (r Root) WriteState(name string, data []byte, perm fs.FileMode) error {
	if err := r.check(name); err != nil {
		return err
	}
	return r.replace(name, data, perm, -1, -1, false)
}

// WriteReport writes a report that every run replaces (the last run's JSON report, the
// metrics textfile) like WriteState, but without fsync. Durability buys nothing for a file
// the next run rewrites and the journal already holds what it says, while two fsyncs (file
// and directory) cost a journal commit each on every boot: milliseconds, and hundreds of
// them on a busy disk. After a crash the file holds the previous report, this one, or (on
// file systems that do not order data before the rename) nothing.
func (r Root) WriteReport(name string, data []byte, perm fs.FileMode) error {
	if err := r.check(name); err != nil {
		return err
	}
	return r.replaceChecked(name, data, perm, -1, -1, false, nil, false)
}

// WriteExisting writes data into an existing file in place, creating nothing: for kernel
// files (/proc/sys) that cannot be replaced by a rename.
func (r Root) WriteExisting(name string, data []byte) error {
	f, err := r.open("open", name, unix.O_WRONLY|unix.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replace writes name atomically, with a backup of the old file when backup is set.
func (r Root) replace(name string, data []byte, perm fs.FileMode, uid, gid int, backup bool) error {
	return r.replaceChecked(name, data, perm, uid, gid, backup, nil, true)
}

// replaceChecked is replace with check (when not nil) run on the staged file's host path
// before the rename; durable fsyncs the file before the rename and the directory after it.
func (r Root) replaceChecked(name string, data []byte, perm fs.FileMode, uid, gid int, backup bool, check func(string) error, durable bool) error {
	if err := r.MkdirAll(path.Dir(path.Clean(name)), 0o755); err != nil {
		return err
	}
	if backup {
		if _, err := r.Backup(name); err != nil {
			return err
		}
	}
	dir, base, err := r.parent("write", name)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := writeAtomicAt(dir, base, data, perm, uid, gid, check, durable); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) || check != nil {
			return err // the check's own error, as it said it
		}
		return &fs.PathError{Op: "write", Path: r.Path(name), Err: err}
	}
	return nil
}

// writeAtomicAt writes base in the directory dir: a temporary file next to it, fsynced when
// durable, renamed over it, and the directory fsynced when durable. Every call names dir by
// descriptor, so nothing is looked up by path again.
func writeAtomicAt(dir *os.File, base string, data []byte, perm fs.FileMode, uid, gid int, check func(string) error, durable bool) error {
	dfd := int(dir.Fd())
	tmp := ".harden-tmp-" + randomSuffix()
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	done := false
	defer func() {
		if !done {
			f.Close()
			unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm.Perm()); err != nil {
		return err
	}
	if uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		done = true
		return err
	}
	done = true
	if check != nil {
		// The check (sshd -t) runs a program on the staged file: it gets the directory's
		// real place on this host, resolved from the descriptor, not a path looked up again.
		hostDir, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", dfd))
		if err == nil {
			err = check(filepath.Join(hostDir, tmp))
		}
		if err != nil {
			unix.Unlinkat(dfd, tmp, 0)
			return err
		}
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	if !durable {
		return nil
	}
	return dir.Sync()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MkdirAll creates a directory and its missing parents inside the root, with perm for those
// it creates.
func (r Root) MkdirAll(name string, perm fs.FileMode) error {
	if err := r.check(name); err != nil {
		return err
	}
	rfd, err := r.rootFD()
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: r.dir, Err: err}
	}
	defer unix.Close(rfd)
	if err := mkdirAllIn(rfd, path.Clean(name), uint32(perm.Perm()), 0); err != nil {
		return &fs.PathError{Op: "mkdir", Path: r.Path(name), Err: err}
	}
	return nil
}

// mkdirAllIn creates name and its parents. A dangling link on the way (an image's /var/run
// -> /run before /run exists) gets its target created, inside the root.
func mkdirAllIn(rfd int, name string, perm uint32, links int) error {
	fd, err := openIn(rfd, name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == nil {
		unix.Close(fd)
		return nil
	}
	if err != unix.ENOENT || name == "/" {
		return err
	}
	parent := path.Dir(name)
	if err := mkdirAllIn(rfd, parent, perm, links); err != nil {
		return err
	}
	pfd, err := openIn(rfd, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	err = unix.Mkdirat(pfd, path.Base(name), perm)
	if err != unix.EEXIST {
		return err
	}
	// Made by someone else meanwhile, or a link: it must lead to a directory.
	fd, err = openIn(rfd, name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == nil {
		unix.Close(fd)
		return nil
	}
	target, lerr := readlinkAt(pfd, path.Base(name))
	if err != unix.ENOENT || lerr != nil {
		return err
	}
	if links++; links > maxSymlinks {
		return unix.ELOOP
	}
	if !path.IsAbs(target) {
		target = parent + "/" + target
	}
	return mkdirAllIn(rfd, path.Clean("/"+target), perm, links)
}

func readlinkAt(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Chmod sets a file's or directory's permission bits (following links inside the root).
func (r Root) Chmod(name string, mode fs.FileMode) error {
	f, err := r.open("chmod", name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(mode.Perm())
}

// Chown sets a file's or directory's owner (following links inside the root).
func (r Root) Chown(name string, uid, gid int) error {
	f, err := r.open("chown", name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chown(uid, gid)
}

// Readlink returns the target of the symlink name, as written in it.
func (r Root) Readlink(name string) (string, error) {
	dir, base, err := r.parent("readlink", name)
	if err != nil {
		return "", err
	}
	defer dir.Close()
	target, err := readlinkAt(int(dir.Fd()), base)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: r.Path(name), Err: err}
	}
	return target, nil
}

// Symlink makes name a symlink to target, replacing what is there atomically (a temporary
// link renamed over it). The target is written as given: it is resolved when used, inside
// the root by harden and from the machine's / once the tree boots.
func (r Root) Symlink(target, name string) error {
	if err := r.check(name); err != nil {
		return err
	}
	if err := r.MkdirAll(path.Dir(path.Clean(name)), 0o755); err != nil {
		return err
	}
	dir, base, err := r.parent("symlink", name)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	tmp := ".harden-tmp-" + randomSuffix()
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return &fs.PathError{Op: "symlink", Path: r.Path(name), Err: err}
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "symlink", Path: r.Path(name), Err: err}
	}
	return dir.Sync()
}

// Backup copies name (if it exists) to the backup directory under the same path and returns
// the copy's path inside the root ("" if there was nothing to back up).
func (r Root) Backup(name string) (string, error) {
	f, err := r.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	dst := path.Join(r.backupDir, name)
	if err := r.MkdirAll(path.Dir(dst), 0o700); err != nil {
		return "", err
	}
	if err := r.replace(dst, data, fi.Mode().Perm(), -1, -1, false); err != nil {
		return "", fmt.Errorf("backup of %s: %w", name, err)
	}
	return dst, nil
}

// Remove backs a file up and removes it. It reports false when there was nothing to remove.
// A symlink is removed itself, never what it points to.
func (r Root) Remove(name string) (bool, error) {
	return r.remove(name, true)
}

// RemoveNoBackup removes a file without keeping a copy: for what must not stay in an image
// (a backup would be baked in just the same).
func (r Root) RemoveNoBackup(name string) (bool, error) {
	return r.remove(name, false)
}

func (r Root) remove(name string, backup bool) (bool, error) {
	if _, err := r.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if backup {
		if _, err := r.Backup(name); err != nil {
			return false, err
		}
	}
	dir, base, err := r.parent("remove", name)
	if err != nil {
		return false, err
	}
	defer dir.Close()
	err = unix.Unlinkat(int(dir.Fd()), base, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(int(dir.Fd()), base, unix.AT_REMOVEDIR)
	}
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, &fs.PathError{Op: "remove", Path: r.Path(name), Err: err}
	}
	return true, dir.Sync()
}

// Copy copies src to dst atomically (used to install files handed in, e.g. units).
func (r Root) Copy(src, dst string, perm fs.FileMode) (bool, error) {
	data, err := r.ReadFile(src)
	if err != nil {
		return false, err
	}
	return r.WriteFile(dst, data, perm)
}

// sortEntries orders entries by name, as os.ReadDir does.
func sortEntries(e []fs.DirEntry) {
	slices.SortFunc(e, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}

func joinComma(parts []string) string { return strings.Join(parts, ", ") }

// OpenVerified opens name for reading for a caller that must trust who could have written
// it (the policy: whoever can write it can open the firewall). The lookup is walked one
// directory at a time and verify sees every directory it passes through, the root itself
// first, by its path inside the root and its fstat, so a directory anyone could swap is
// caught even when a link leads through it. The file itself is opened with O_NOFOLLOW (a
// link there is refused): the caller checks the descriptor it gets (fstat) and reads from
// it, so what it checked is what it reads.
func (r Root) OpenVerified(name string, verify func(dir string, fi fs.FileInfo) error) (*os.File, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	rfd, err := r.rootFD()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: r.dir, Err: err}
	}
	defer unix.Close(rfd)
	var st unix.Stat_t
	if err := unix.Fstat(rfd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: r.dir, Err: err}
	}
	if err := verify(r.dir, statInfo{name: path.Base(r.dir), st: &st}); err != nil {
		return nil, err
	}
	check := func(dir string, st *unix.Stat_t) error {
		if err := verify(r.Path(dir), statInfo{name: path.Base(dir), st: st}); err != nil {
			return refusal{err}
		}
		return nil
	}
	fd, err := walk(rfd, relName(name), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0, check)
	if err != nil {
		if r, ok := err.(refusal); ok {
			return nil, r.err
		}
		if err == unix.ELOOP {
			err = errors.New("is a symlink: refused (the file itself must be named)")
		}
		return nil, &fs.PathError{Op: "open", Path: r.Path(name), Err: err}
	}
	return os.NewFile(uintptr(fd), r.Path(name)), nil
}

// refusal carries verify's own error through walk.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }

// statInfo is a fs.FileInfo over a unix.Stat_t, for OpenVerified's callback.
type statInfo struct {
	name string
	st   *unix.Stat_t
}

func (s statInfo) Name() string { return s.name }
func (s statInfo) Size() int64  { return s.st.Size }
func (s statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	}
	if s.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
func (s statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s statInfo) IsDir() bool        { return s.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Sys returns a *syscall.Stat_t, as os's FileInfo does.
func (s statInfo) Sys() any {
	return &syscall.Stat_t{Dev: s.st.Dev, Ino: s.st.Ino, Mode: s.st.Mode, Uid: s.st.Uid, Gid: s.st.Gid, Size: s.st.Size}
}
