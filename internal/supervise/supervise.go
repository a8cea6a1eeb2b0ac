// Package supervise runs programs as children of this process and keeps them running: what
// init or systemd would do where neither is ours to use (`harden boot` on a Fly Machine,
// whose PID 1 is Fly's own init). It starts each program in its own process group, restarts
// the ones that should keep running with a growing back-off, stops them in a given order
// within a bound, and reaps every child, orphans included.
//
// Reaping: the Supervisor makes this process a child subreaper (PR_SET_CHILD_SUBREAPER), so
// orphans of the supervised programs are re-parented here instead of to PID 1, and it collects
// every child that exits with wait4(-1). Because it waits for any child, nothing else in the
// process may start children and wait for them (os/exec) while a Supervisor runs: such work
// must be a supervised program itself. Only one Supervisor may run at a time.
//
// The exit status of a supervised program is never lost to the orphan reaper: a pid is
// registered under the same lock the reaper holds while it waits, so the reaper sees every
// pid it reaps either as a supervised program or as an orphan, never half-registered.
package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Restart says when a program that exited is started again.
type Restart int

const (
	// Never: the program runs once (the app: its exit is the machine's exit).
	Never Restart = iota
	// OnFailure: again only when it failed (one-shot work such as a signature update).
	OnFailure
	// Always: a daemon; whatever its exit, it is started again after the back-off.
	Always
)

func (r Restart) String() string {
	switch r {
	case OnFailure:
		return "on-failure"
	case Always:
		return "always"
	}
	return "never"
}

// Spec is one program.
type Spec struct {
	Name string
	Path string   // absolute path of the program
	Args []string // arguments after the program name
	// Env is the whole environment; nil inherits this process's.
	Env []string
	Dir string
	// Stdin is the program's standard input; nil is /dev/null.
	Stdin *os.File
	// Stdout and Stderr receive the program's output. An *os.File is handed to the program
	// as is; any other writer gets the output one whole line per Write (so a writer can turn
	// each line into a record). nil: this process's own.
	Stdout, Stderr io.Writer
	Restart        Restart
	// StopSignal asks the program to stop (default SIGTERM).
	StopSignal syscall.Signal
	// StopTimeout is how long Stop waits after StopSignal before it kills the program's
	// process group (default 5s).
	StopTimeout time.Duration
	// Prepare runs before every start (runtime directories, ...); an error is a failed start.
	Prepare func() error
	// Hold runs before every start, after Prepare, and takes what the run must hold while
	// it runs (a lock another program honours); release is called when that run has ended,
	// or at once when the start fails. An error is a failed start.
	Hold func() (release func(), err error)
	// RunTimeout bounds one run (0: none): past it the program is stopped as by Stop, and
	// the run counts as failed (OnFailure starts it again after the back-off).
	RunTimeout time.Duration
	// Backoff replaces the Supervisor's back-off for this program (zero: the Supervisor's).
	Backoff Backoff
}

// Backoff is the delay between restarts: Min after the first exit, doubled after each quick
// exit up to Max, and back to Min once a run lasted ResetAfter.
type Backoff struct {
	Min, Max, ResetAfter time.Duration
}

// DefaultBackoff: 1s, 2s, 4s, ... 1m; a run of a minute or more starts over.
var DefaultBackoff = Backoff{Min: time.Second, Max: time.Minute, ResetAfter: time.Minute}

func (b Backoff) next(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= b.ResetAfter {
		return b.Min
	}
	return min(prev*2, b.Max)
}

// ExitStatus is how a program ended.
type ExitStatus struct {
	Code   int            // exit code, when it exited
	Signal syscall.Signal // the signal that killed it, or 0
}

// ExitCode is the status a shell would report: the code, or 128+n when killed by signal n.
func (s ExitStatus) ExitCode() int {
	if s.Signal != 0 {
		return 128 + int(s.Signal)
	}
	return s.Code
}

// Success reports a clean exit (code 0).
func (s ExitStatus) Success() bool { return s.Signal == 0 && s.Code == 0 }

func (s ExitStatus) String() string {
	if s.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%s)", int(s.Signal), unix.SignalName(s.Signal))
	}
	return fmt.Sprintf("exit %d", s.Code)
}

func statusOf(ws unix.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// EventKind names what happened.
type EventKind string

const (
	EventStart       EventKind = "start"        // a program was started
	EventStartFailed EventKind = "start-failed" // it could not be started
	EventExit        EventKind = "exit"         // it exited
	EventRestart     EventKind = "restart"      // it will be started again after Delay
	EventStop        EventKind = "stop"         // Stop asked it to stop (Signal sent)
	EventKill        EventKind = "kill"         // it did not stop in time: its group was killed
	EventTimeout     EventKind = "timeout"      // it ran longer than its RunTimeout: it is being stopped
	EventOrphan      EventKind = "orphan"       // an orphaned process was reaped
)

// Event is one thing the Supervisor did or saw; Options.Log gets every one.
type Event struct {
	Kind     EventKind
	Service  string // "" for an orphan
	PID      int
	Status   ExitStatus    // exit, orphan
	Ran      time.Duration // exit: how long this run lasted
	Delay    time.Duration // restart: the back-off before the next start
	Restarts int           // starts after the first
	Signal   syscall.Signal
	Err      error // start-failed
}

// Options configure a Supervisor.
type Options struct {
	Log     func(Event) // nil: events are dropped
	Backoff Backoff     // zero: DefaultBackoff
	// NoSubreaper leaves the subreaper flag alone (tests of reaping without it).
	NoSubreaper bool
}

// Supervisor owns the children of this process.
type Supervisor struct {
	opts Options

	// mu guards byPID and every Service's process fields. The reaper holds it across its
	// wait4 call and Start holds it across the fork, which is what keeps a supervised pid
	// from being taken for an orphan (see the package comment).
	mu    sync.Mutex
	byPID map[int]*Service

	sigchld chan os.Signal
	quit    chan struct{}
	reaped  chan struct{}
}

// active makes sure only one Supervisor waits for children at a time.
var active atomic.Bool

// ErrActive is returned by New while another Supervisor runs in this process.
var ErrActive = errors.New("supervise: another Supervisor is running in this process")

// New makes this process a child subreaper and starts reaping. Close stops reaping.
func New(o Options) (*Supervisor, error) {
	if !active.CompareAndSwap(false, true) {
		return nil, ErrActive
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if o.Log == nil {
		o.Log = func(Event) {}
	}
	if !o.NoSubreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			active.Store(false)
			return nil, fmt.Errorf("supervise: PR_SET_CHILD_SUBREAPER: %w", err)
		}
	}
	s := &Supervisor{
		opts:    o,
		byPID:   map[int]*Service{},
		sigchld: make(chan os.Signal, 1),
		quit:    make(chan struct{}),
		reaped:  make(chan struct{}),
	}
	signal.Notify(s.sigchld, syscall.SIGCHLD)
	go s.reapLoop()
	// Children that exited before we listened (orphans re-parented earlier) are collected
	// by the first pass.
	s.sigchld <- syscall.SIGCHLD
	return s, nil
}

// Close stops reaping. Supervised programs are not stopped: call Stop first.
func (s *Supervisor) Close() {
	signal.Stop(s.sigchld)
	close(s.quit)
	<-s.reaped
	active.Store(false)
}

func (s *Supervisor) reapLoop() {
	defer close(s.reaped)
	for {
		select {
		case <-s.quit:
			return
		case <-s.sigchld:
			s.reapAll()
		}
	}
}

// reapAll collects every child that has exited, one wait4 per lock hold so that Start and
// Signal are never held up for long.
func (s *Supervisor) reapAll() {
	for {
		s.mu.Lock()
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			s.mu.Unlock()
			continue
		}
		if err != nil || pid <= 0 {
			s.mu.Unlock()
			return // ECHILD: no children; 0: none has exited
		}
		st := statusOf(ws)
		sv := s.byPID[pid]
		if sv != nil {
			delete(s.byPID, pid)
			sv.reaped(st)
		}
		s.mu.Unlock()
		if sv == nil {
			s.opts.Log(Event{Kind: EventOrphan, PID: pid, Status: st})
		}
	}
}
