package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/fsroot"
)

// DefaultLockPath is the lock that keeps runs one at a time (boot, timer, a person).
const DefaultLockPath = "/run/harden.lock"

// Lock is a held run lock; Release frees it. The kernel frees it too if harden dies.
type Lock struct {
	files []*os.File
	// said is the lock file whose holder line this run wrote (an apply's): emptied on
	// Release, so a run that waits on a later dry-run is not told of this one.
	said *os.File
}

// Acquire takes the run lock at path on this machine (see AcquireIn).
func Acquire(ctx context.Context, path string, exclusive bool, wait time.Duration) (*Lock, error) {
	return AcquireIn(ctx, fsroot.New("/"), path, exclusive, wait)
}

// AcquireIn takes the run lock name inside root: exclusive for an apply, shared for a
// dry-run (dry-runs may overlap each other but never see an apply half-way). It waits up to
// wait, then fails with an error that says another run holds it.
//
// A dry-run creates nothing, not even the lock file: where the file does not exist yet, it
// holds a shared lock on the file's directory for the whole run instead, and an apply takes
// that directory exclusively for the moment it creates and locks the file. Either way an
// apply and a dry-run exclude each other.
func AcquireIn(ctx context.Context, root fsroot.Root, name string, exclusive bool, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	dirName := path.Dir(path.Clean(name))
	if exclusive {
		if err := root.MkdirAll(dirName, 0o755); err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
	}
	dir, err := root.OpenFile(dirName, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, fs.ErrNotExist) && !exclusive {
		return &Lock{}, nil // no directory, so no run has ever held the lock here
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := flock(ctx, dir, how, deadline, name, wait); err != nil {
		dir.Close()
		return nil, err
	}
	flags := os.O_RDONLY
	if exclusive {
		flags = os.O_RDWR | os.O_CREATE
	}
	f, err := root.OpenFile(name, flags, 0o600)
	if errors.Is(err, fs.ErrNotExist) && !exclusive {
		return &Lock{files: []*os.File{dir}}, nil // the directory's shared lock stands for it
	}
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := flock(ctx, f, how, deadline, name, wait); err != nil {
		f.Close()
		dir.Close()
		return nil, err
	}
	dir.Close() // the file's lock holds from here
	if exclusive {
		// Who holds it, for the error of a run that gives up waiting (a person at a
		// terminal wants "harden freshclam, pid 812, for 40 s", not only "another run").
		// Best effort: the lock holds whether or not this is written.
		line := fmt.Sprintf("%s (pid %d) since %s\n", strings.Join(os.Args, " "), os.Getpid(), time.Now().Format(time.RFC3339))
		if f.Truncate(0) == nil {
			_, _ = f.WriteAt([]byte(line), 0)
		}
		return &Lock{files: []*os.File{f}, said: f}, nil
	}
	return &Lock{files: []*os.File{f}}, nil
}

// HeldError is the error of a lock another run held for longer than the wait.
type HeldError struct {
	Name   string
	Holder string // what the holder wrote into the lock file ("" when not known)
	Waited time.Duration
}

func (e *HeldError) Error() string {
	who := ""
	if e.Holder != "" {
		who = ": " + e.Holder
	}
	return fmt.Sprintf("another harden run holds %s%s (waited %s; --lock-wait waits longer)", e.Name, who, e.Waited)
}

// Held reports whether another process holds the lock name inside root exclusively, and
// who, without waiting and without creating anything (a dry-run's plan may ask).
func Held(ctx context.Context, root fsroot.Root, name string) (holder string, held bool, err error) {
	l, err := AcquireIn(ctx, root, name, false, 0)
	var he *HeldError
	if errors.As(err, &he) {
		return he.Holder, true, nil
	}
	if err != nil {
		return "", false, err
	}
	return "", false, l.Release()
}

// holder reads what the run holding the lock wrote into the lock file ("" when it is not
// known: a directory lock, an older harden, an unreadable file).
func holder(f *os.File) string {
	var b [512]byte
	n, _ := f.ReadAt(b[:], 0)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	return strings.TrimSpace(line)
}

// flock takes a lock on f, retrying until deadline or ctx ends.
func flock(ctx context.Context, f *os.File, how int, deadline time.Time, name string, wait time.Duration) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			return &HeldError{Name: name, Holder: holder(f), Waited: wait}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Release frees the lock.
func (l *Lock) Release() error {
	var errs []error
	if l.said != nil {
		_ = l.said.Truncate(0)
	}
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
