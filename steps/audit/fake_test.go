package audit

import (
	"context"
	"fmt"
	"sort"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"golang.org/x/sys/unix"
)

// fakeKernel behaves like the kernel's audit rule lists and status for logic tests (the
// ordering of changes, the lock): duplicate adds fail with EEXIST, deleting a missing rule
// with ENOENT, and once enabled is 2 every change fails with EPERM. It records each call.
// The real kernel is tested in kernel_test.go.
type fakeKernel struct {
	status auditnl.Status
	rules  []*auditrule.Rule
	calls  []string
}

var _ Client = (*fakeKernel)(nil)

func (k *fakeKernel) GetStatus(context.Context) (*auditnl.Status, error) {
	s := k.status
	return &s, nil
}

func (k *fakeKernel) SetStatus(_ context.Context, u auditnl.StatusUpdate) error {
	if k.status.Enabled == auditnl.EnabledLocked {
		return &auditnl.Error{Op: "set", Errno: unix.EPERM}
	}
	set := func(name string, p *uint32, dst *uint32) {
		if p != nil {
			*dst = *p
			k.calls = append(k.calls, fmt.Sprintf("set %s %d", name, *p))
		}
	}
	set("failure", u.Failure, &k.status.Failure)
	set("rate_limit", u.RateLimit, &k.status.RateLimit)
	set("backlog_limit", u.BacklogLimit, &k.status.BacklogLimit)
	set("backlog_wait_time", u.BacklogWaitTime, &k.status.BacklogWaitTime)
	set("enabled", u.Enabled, &k.status.Enabled)
	return nil
}

func (k *fakeKernel) ListRules(context.Context) ([]*auditrule.Rule, error) {
	out := append([]*auditrule.Rule(nil), k.rules...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Filter < out[j].Filter })
	return out, nil
}

func (k *fakeKernel) find(r *auditrule.Rule) int {
	for i, have := range k.rules {
		if have.Equal(r) {
			return i
		}
	}
	return -1
}

func (k *fakeKernel) AddRule(_ context.Context, r *auditrule.Rule) error {
	if k.status.Enabled == auditnl.EnabledLocked {
		return &auditnl.Error{Op: "add rule", Errno: unix.EPERM}
	}
	if k.find(r) >= 0 {
		return &auditnl.Error{Op: "add rule", Errno: unix.EEXIST}
	}
	k.calls = append(k.calls, "add "+r.String())
	n := r.Normalize()
	if r.Prepend {
		k.rules = append([]*auditrule.Rule{n}, k.rules...)
	} else {
		k.rules = append(k.rules, n)
	}
	return nil
}

func (k *fakeKernel) DeleteRule(_ context.Context, r *auditrule.Rule) error {
	if k.status.Enabled == auditnl.EnabledLocked {
		return &auditnl.Error{Op: "delete rule", Errno: unix.EPERM}
	}
	i := k.find(r)
	if i < 0 {
		return &auditnl.Error{Op: "delete rule", Errno: unix.ENOENT}
	}
	k.calls = append(k.calls, "delete "+r.String())
	k.rules = append(k.rules[:i], k.rules[i+1:]...)
	return nil
}
