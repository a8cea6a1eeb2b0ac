package fsroot

import (
	"errors"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Every path is resolved by the kernel as if the root directory were "/": openat2(2) with
// RESOLVE_IN_ROOT. An absolute symlink in an image tree (/etc/resolv.conf ->
// /run/systemd/resolve/stub-resolv.conf) then points into the tree, as it will when the
// image boots, and ".." never climbs above the root. Path prefixing (filepath.Join(root,
// name)) would follow such a link on the build host and write there.
//
// openat2 exists since Linux 5.6; where it does not (an older kernel, a seccomp filter that
// refuses it) walk does the same resolution in user space, one component at a time with
// O_NOFOLLOW, so a link is only ever followed by this code, relative to the root.
// golang.org/x/sys/unix already has everything needed; a library (filepath-securejoin)
// would add a dependency for the same two functions.

// resolveFlags: resolve inside the root; magic links (/proc/self/fd/N) are never followed,
// since they could name a file outside it.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// maxSymlinks is the kernel's limit on links followed in one lookup (MAXSYMLINKS).
const maxSymlinks = 40

// forceWalk makes every lookup use walk, so tests prove both ways behave the same.
var forceWalk = false

var openat2Works = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// openIn opens name (a path inside the root) relative to rootfd, following symlinks as
// if rootfd were "/". O_NOFOLLOW in flags applies to the last component only, as in
// open(2). mode is used only with O_CREAT.
func openIn(rootfd int, name string, flags int, mode uint32) (int, error) {
	rel := relName(name)
	if flags&unix.O_CREAT == 0 {
		mode = 0
	}
	if !forceWalk && openat2Works() {
		how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: resolveFlags}
		for i := 0; ; i++ {
			fd, err := unix.Openat2(rootfd, rel, how)
			// EAGAIN: a rename raced with a ".." lookup; the kernel asks for a retry.
			if err == unix.EAGAIN && i < 32 {
				continue
			}
			return fd, err
		}
	}
	return walk(rootfd, rel, flags, mode, nil)
}

// relName turns an absolute machine path into a path relative to the root ("." for "/").
func relName(name string) string {
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// walk resolves rel under rootfd in user space. The stack holds a descriptor per directory
// entered, so ".." goes back to the directory it came from and stops at the root, whatever
// the tree's links say. verify, when set, is shown every directory entered (by its path
// inside the root and its fstat) and can refuse it.
func walk(rootfd int, rel string, flags int, mode uint32, verify func(dir string, st *unix.Stat_t) error) (int, error) {
	stack := []int{rootfd}
	names := []string{"/"}
	defer func() {
		for _, fd := range stack[1:] {
			unix.Close(fd)
		}
	}()
	todo := strings.Split(rel, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		last := len(todo) == 0
		cur := stack[len(stack)-1]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				unix.Close(stack[len(stack)-1])
				stack, names = stack[:len(stack)-1], names[:len(names)-1]
			}
			continue
		}
		fd, err := unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && last && flags&unix.O_CREAT != 0 {
			// Created in the directory reached so far, which is inside the root.
			return unix.Openat(cur, c, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		}
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
		if isLink && (!last || flags&unix.O_NOFOLLOW == 0) {
			if last && flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
				unix.Close(fd)
				return -1, unix.EEXIST
			}
			target, err := readlinkFD(fd)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if links++; links > maxSymlinks {
				return -1, unix.ELOOP
			}
			if strings.HasPrefix(target, "/") {
				for _, d := range stack[1:] {
					unix.Close(d)
				}
				stack, names = stack[:1], names[:1]
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if !last {
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				unix.Close(fd)
				return -1, unix.ENOTDIR
			}
			dir := path.Join(names[len(names)-1], c)
			if verify != nil {
				if err := verify(dir, &st); err != nil {
					unix.Close(fd)
					return -1, err
				}
			}
			stack, names = append(stack, fd), append(names, dir)
			continue
		}
		unix.Close(fd)
		// The entry is not a link to follow: open it with the caller's flags. O_NOFOLLOW
		// keeps a link swapped in since the look from being followed on the host.
		return unix.Openat(cur, c, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	}
	// The path ended on a directory reached by "." or ".." (or is the root itself).
	return unix.Openat(stack[len(stack)-1], ".", flags|unix.O_CLOEXEC, mode)
}

// readlinkFD reads the target of a symlink opened with O_PATH|O_NOFOLLOW.
func readlinkFD(fd int) (string, error) { return readlinkAt(fd, "") }

// errBadName is returned for a path whose last component cannot be created or removed
// ("/", or a path ending in "..").
var errBadName = errors.New("not a file name")
