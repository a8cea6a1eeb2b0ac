// Package hostaudit is the guard every test that changes the host's kernel
// audit state must take. The host is shared: `go test ./...` runs packages
// in parallel processes, and a developer's machine has its own rules.
//
// Lock serializes those tests across processes with a flock, skips when the
// test cannot or must not touch the audit state (not root, no audit
// netlink, rules locked until reboot), and snapshots the rules and status
// so that t.Cleanup puts them back exactly, even when the test fails.
package hostaudit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/testutil/need"
	"golang.org/x/sys/unix"
)

// LockPath is the cross-process lock file.
const LockPath = "/run/lock/harden-hostaudit.lock"

// lockWait bounds how long a test waits for another package's audit tests.
const lockWait = 10 * time.Minute

// Snapshot is the host's audit state before the test.
type Snapshot struct {
	Status *auditnl.Status
	Rules  [][]byte
}

// Lock takes the host audit lock for the rest of the test and returns a
// connection that cannot lock the host (no enabled 2, no failure panic).
// The host's rules and status are restored at cleanup.
func Lock(t testing.TB) *auditnl.Conn {
	t.Helper()
	need.Root(t, "hostaudit: CAP_AUDIT_CONTROL to change the host's audit rules")
	unlock := flock(t)
	conn, err := auditnl.Dial(auditnl.Options{})
	if err != nil {
		unlock()
		need.Missing(t, "hostaudit: the kernel's audit netlink socket: %v", err)
	}
	ctx := context.Background()
	snap, err := Take(ctx, conn)
	if err != nil {
		conn.Close()
		unlock()
		need.Missing(t, "hostaudit: a readable audit state: %v", err)
	}
	if snap.Status.Enabled == auditnl.EnabledLocked {
		conn.Close()
		unlock()
		need.Missing(t, "hostaudit: unlocked audit rules (the host has enabled 2 until reboot)")
	}
	if snap.Status.Failure == auditnl.FailurePanic {
		conn.Close()
		unlock()
		need.Missing(t, "hostaudit: a host audit failure mode other than panic (not touching it)")
	}
	t.Cleanup(func() {
		defer unlock()
		defer conn.Close()
		if err := Restore(ctx, conn, snap); err != nil {
			t.Errorf("hostaudit: restoring the host's audit state: %v", err)
		}
	})
	return conn
}

func flock(t testing.TB) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(LockPath), 0o755); err != nil {
		t.Fatalf("hostaudit: %v", err)
	}
	f, err := os.OpenFile(LockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("hostaudit: %v", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("hostaudit: lock %s: %v", LockPath, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
}

// Take reads the audit status and rules.
func Take(ctx context.Context, c *auditnl.Conn) (*Snapshot, error) {
	st, err := c.GetStatus(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := c.ListRulesRaw(ctx)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Status: st, Rules: rules}, nil
}

// Restore deletes every rule, re-adds the snapshot's rules in the kernel's
// listed order (which rebuilds each list in the same order) and sets the
// status values back, enabled last. It then checks the result.
func Restore(ctx context.Context, c *auditnl.Conn, s *Snapshot) error {
	if err := c.DeleteAllRules(ctx); err != nil {
		return err
	}
	for _, r := range s.Rules {
		if err := c.AddRuleRaw(ctx, r); err != nil {
			return err
		}
	}
	st := s.Status
	if err := c.SetStatus(ctx, auditnl.StatusUpdate{
		Failure:         &st.Failure,
		RateLimit:       &st.RateLimit,
		BacklogLimit:    &st.BacklogLimit,
		BacklogWaitTime: &st.BacklogWaitTime,
		Enabled:         &st.Enabled,
	}); err != nil {
		return err
	}
	now, err := Take(ctx, c)
	if err != nil {
		return err
	}
	if len(now.Rules) != len(s.Rules) {
		return errors.New("rule count differs after restore")
	}
	for i := range now.Rules {
		if !bytes.Equal(now.Rules[i], s.Rules[i]) {
			return errors.New("rules differ after restore")
		}
	}
	if now.Status.Enabled != st.Enabled || now.Status.Failure != st.Failure ||
		now.Status.BacklogLimit != st.BacklogLimit || now.Status.RateLimit != st.RateLimit ||
		now.Status.BacklogWaitTime != st.BacklogWaitTime {
		return errors.New("status differs after restore")
	}
	return nil
}
