package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockPath is the lock that keeps runs one at a time (boot, timer, a person).
const DefaultLockPath = "/run/harden.lock"

// Lock is a held run lock; Release frees it. The kernel frees it too if harden dies.
type Lock struct{ f *os.File }

// Acquire takes the run lock: exclusive for an apply, shared for a dry-run (dry-runs may
// overlap each other but never see an apply half-way). It waits up to wait, then fails
// with an error that says another run holds it.
func Acquire(ctx context.Context, path string, exclusive bool, wait time.Duration) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another harden run holds %s (waited %s)", path, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Release frees the lock.
func (l *Lock) Release() error { return l.f.Close() }
