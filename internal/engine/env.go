package engine

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// Env carries every handle a step needs. Nothing in a step reaches for a global: tests build
// an Env over a temporary root, a fake clock, a fake command runner. Handles that only one
// step needs (an nftables connection in a network namespace, the audit netlink socket, the
// D-Bus client) are given to that step's constructor instead, so that `--only firewall` at
// early boot never touches D-Bus.
type Env struct {
	Policy *policy.Policy
	// Root prefixes every file path ("/" on a machine, a temp dir in tests).
	Root fsroot.Root
	// Now is the clock (image age, database age, sliding windows).
	Now func() time.Time
	// Getenv reads the process environment (FLY_PRIVATE_IP, FLY_VM_MEMORY_MB, ...).
	Getenv func(string) string
	// Exec runs the few external programs harden needs (sshd -t, apt-get, freshclam).
	Exec command.Runner
	// Log is for diagnostics (stderr; the journal under systemd). Changes and findings are
	// recorded by the runner through the change log, not here.
	Log *logrus.Entry
	// Progress shows long work (freshclam, package removal) on a terminal; it is quiet
	// elsewhere so the journal is not spammed.
	Progress Progress
	// Restarts collects unit restarts steps ask for; the services step runs them once.
	Restarts *RestartQueue
	RunID    string
	DryRun   bool
	// Steps are the names of the steps this run runs, in order (set by the Runner): a step
	// may leave work to a later one only when that one runs (see Runs).
	Steps []string
}

// Runs reports whether the step named runs in this run. Steps run in a fixed order, so a
// step asking about one after it (services) learns whether that one will still come.
func (e *Env) Runs(step string) bool { return slices.Contains(e.Steps, step) }

// Progress reports long-running work. Implementations must be cheap and safe to call often.
type Progress interface {
	Update(step, message string)
	Done(step string)
}

// NoProgress discards progress (non-terminal output, tests).
type NoProgress struct{}

func (NoProgress) Update(string, string) {}
func (NoProgress) Done(string)           {}

// RestartQueue is how a step asks for a unit to be restarted (clamd after its settings
// changed), or for systemd to reload (a generator it masked), without doing it itself: the
// services step restarts each unit once, after units are unmasked and enabled, and makes
// one daemon-reload for its own changes and every request (each is 12-15 s under TCG).
type RestartQueue struct {
	mu      sync.Mutex
	pending map[string][]string // unit -> reasons
	reloads []string            // reasons of the daemon-reloads asked for
}

// RequestReload asks for a daemon-reload before the run ends, with the reason for the
// change log. Only a step that knows the services step runs after it may ask (Env.Runs).
func (q *RestartQueue) RequestReload(reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reloads = append(q.reloads, reason)
}

// ReloadRequests are the reasons of the daemon-reloads asked for and not yet made.
func (q *RestartQueue) ReloadRequests() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.reloads...)
}

// ReloadDone clears the requests once systemd reloaded.
func (q *RestartQueue) ReloadDone() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reloads = nil
}

// Request queues a restart of unit, with the reason for the change log.
func (q *RestartQueue) Request(unit, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string][]string{}
	}
	q.pending[unit] = append(q.pending[unit], reason)
}

// Restart is one queued restart.
type Restart struct {
	Unit    string
	Reasons []string
}

// Pending lists queued restarts in unit order.
func (q *RestartQueue) Pending() []Restart {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Restart, 0, len(q.pending))
	for u, r := range q.pending {
		out = append(out, Restart{Unit: u, Reasons: append([]string(nil), r...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out
}

// Done removes a unit from the queue once restarted.
func (q *RestartQueue) Done(unit string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, unit)
}
