package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Service is one supervised program across its restarts.
type Service struct {
	sup  *Supervisor
	spec Spec

	// Guarded by sup.mu.
	proc     *os.Process
	pid      int
	started  time.Time
	restarts int
	last     ExitStatus
	exited   chan ExitStatus // the reaper's report of the current run
	release  func()          // what the current run holds (Spec.Hold), released when it ends

	stopOnce sync.Once
	stopCh   chan struct{} // closed by Stop: no more restarts
	done     chan struct{} // closed when the service has ended for good
}

// Name is the service's name.
func (sv *Service) Name() string { return sv.spec.Name }

// Start starts a program and supervises it until it ends for good (by its Restart policy) or
// Stop. The first start happens before Start returns: its error (no such program, a failed
// Prepare or Hold) is returned and nothing is supervised.
func (s *Supervisor) Start(spec Spec) (*Service, error) {
	if spec.StopSignal == 0 {
		spec.StopSignal = syscall.SIGTERM
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = 5 * time.Second
	}
	sv := &Service{sup: s, spec: spec, stopCh: make(chan struct{}), done: make(chan struct{})}
	if err := sv.start(); err != nil {
		s.opts.Log(Event{Kind: EventStartFailed, Service: spec.Name, Err: err})
		return nil, err
	}
	go sv.run()
	return sv, nil
}

// start forks one run. The pid is registered before the reaper can look for it.
func (sv *Service) start() (err error) {
	sp := sv.spec
	if sp.Prepare != nil {
		if err := sp.Prepare(); err != nil {
			return fmt.Errorf("%s: prepare: %w", sp.Name, err)
		}
	}
	release := func() {}
	if sp.Hold != nil {
		rel, err := sp.Hold()
		if err != nil {
			return fmt.Errorf("%s: %w", sp.Name, err)
		}
		release = rel
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	stdin, err := openStdin(sp.Stdin)
	if err != nil {
		return err
	}
	defer closeUnless(stdin, sp.Stdin)
	stdout, outPipe, err := outputFile(sp.Name, sp.Stdout, os.Stdout)
	if err != nil {
		return err
	}
	defer closeUnless(stdout, sp.Stdout)
	stderr, errPipe, err := outputFile(sp.Name, sp.Stderr, os.Stderr)
	if err != nil {
		closeReader(outPipe)
		return err
	}
	defer closeUnless(stderr, sp.Stderr)
	attr := &os.ProcAttr{
		Dir: sp.Dir, Env: sp.Env, Files: []*os.File{stdin, stdout, stderr},
		// Its own process group: a stop that times out kills what it started too.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	}
	argv := append([]string{sp.Path}, sp.Args...)

	s := sv.sup
	s.mu.Lock()
	if sv.stopped() {
		s.mu.Unlock()
		closeReader(outPipe)
		closeReader(errPipe)
		return errStopped
	}
	proc, err := os.StartProcess(sp.Path, argv, attr)
	if err != nil {
		s.mu.Unlock()
		closeReader(outPipe)
		closeReader(errPipe)
		return fmt.Errorf("%s: %w", sp.Name, err)
	}
	sv.proc, sv.pid, sv.started = proc, proc.Pid, time.Now()
	sv.release = release
	sv.exited = make(chan ExitStatus, 1)
	s.byPID[proc.Pid] = sv
	pid, restarts := proc.Pid, sv.restarts
	s.mu.Unlock()

	copyLines(outPipe, sp.Stdout)
	copyLines(errPipe, sp.Stderr)
	s.opts.Log(Event{Kind: EventStart, Service: sp.Name, PID: pid, Restarts: restarts})
	return nil
}

// reaped is called by the reaper, with sup.mu held, when the current run's process exited.
func (sv *Service) reaped(st ExitStatus) {
	sv.last = st
	if sv.proc != nil {
		_ = sv.proc.Release() // closes the pidfd; the process is gone
	}
	sv.proc, sv.pid = nil, 0
	sv.exited <- st
}

// run waits for each run to end and starts the next one as the Restart policy says.
func (sv *Service) run() {
	defer close(sv.done)
	var delay time.Duration
	for {
		sv.sup.mu.Lock()
		exited, started, pid := sv.exited, sv.started, sv.pid
		sv.sup.mu.Unlock()
		st := sv.waitExit(exited, pid)
		sv.sup.mu.Lock()
		release := sv.release
		sv.release = nil
		sv.sup.mu.Unlock()
		if release != nil {
			release()
		}
		ran := time.Since(started)
		sv.sup.opts.Log(Event{Kind: EventExit, Service: sv.spec.Name, PID: pid, Status: st, Ran: ran, Restarts: sv.restartCount()})
		for {
			if sv.stopped() || !sv.wantsRestart(st) {
				return
			}
			delay = sv.backoff().next(delay, ran)
			sv.sup.opts.Log(Event{Kind: EventRestart, Service: sv.spec.Name, Delay: delay, Restarts: sv.restartCount() + 1})
			select {
			case <-sv.stopCh:
				return
			case <-time.After(delay):
			}
			sv.sup.mu.Lock()
			sv.restarts++
			sv.sup.mu.Unlock()
			err := sv.start()
			if err == nil {
				break
			}
			if errors.Is(err, errStopped) {
				return
			}
			sv.sup.opts.Log(Event{Kind: EventStartFailed, Service: sv.spec.Name, Err: err, Restarts: sv.restartCount()})
			ran = 0 // a start that failed is a quick exit: the back-off grows
		}
	}
}

func (sv *Service) backoff() Backoff {
	if sv.spec.Backoff != (Backoff{}) {
		return sv.spec.Backoff
	}
	return sv.sup.opts.Backoff
}

// waitExit waits for the current run's exit; past RunTimeout it stops the run first.
func (sv *Service) waitExit(exited chan ExitStatus, pid int) ExitStatus {
	if sv.spec.RunTimeout <= 0 {
		return <-exited
	}
	t := time.NewTimer(sv.spec.RunTimeout)
	defer t.Stop()
	select {
	case st := <-exited:
		return st
	case <-t.C:
	}
	sv.sup.opts.Log(Event{Kind: EventTimeout, Service: sv.spec.Name, PID: pid, Signal: sv.spec.StopSignal,
		Err: fmt.Errorf("ran longer than %s", sv.spec.RunTimeout)})
	_ = sv.Signal(sv.spec.StopSignal)
	grace := time.NewTimer(sv.spec.StopTimeout)
	defer grace.Stop()
	select {
	case st := <-exited:
		return st
	case <-grace.C:
	}
	if sv.killGroup() {
		sv.sup.opts.Log(Event{Kind: EventKill, Service: sv.spec.Name, PID: pid, Signal: syscall.SIGKILL})
	}
	return <-exited
}

func (sv *Service) wantsRestart(st ExitStatus) bool {
	switch sv.spec.Restart {
	case Always:
		return true
	case OnFailure:
		return !st.Success()
	}
	return false
}

func (sv *Service) stopped() bool {
	select {
	case <-sv.stopCh:
		return true
	default:
		return false
	}
}

func (sv *Service) restartCount() int {
	sv.sup.mu.Lock()
	defer sv.sup.mu.Unlock()
	return sv.restarts
}

// PID is the running process's pid, or 0 between runs and after the end.
func (sv *Service) PID() int {
	sv.sup.mu.Lock()
	defer sv.sup.mu.Unlock()
	return sv.pid
}

// Restarts counts starts after the first.
func (sv *Service) Restarts() int { return sv.restartCount() }

// Done is closed when the service has ended for good.
func (sv *Service) Done() <-chan struct{} { return sv.done }

// Status is how the last run ended (valid once Done is closed, or between runs).
func (sv *Service) Status() ExitStatus {
	sv.sup.mu.Lock()
	defer sv.sup.mu.Unlock()
	return sv.last
}

// errStopped: Stop came between a restart's back-off and its fork.
var errStopped = errors.New("stopped")

// ErrNotRunning is returned by Signal between runs and after the end.
var ErrNotRunning = errors.New("not running")

// Signal sends sig to the running process (not its group). Through the process's pidfd, so a
// pid reused after an exit is never hit.
func (sv *Service) Signal(sig syscall.Signal) error {
	sv.sup.mu.Lock()
	defer sv.sup.mu.Unlock()
	if sv.proc == nil {
		return ErrNotRunning
	}
	return sv.proc.Signal(sig)
}

// killGroup SIGKILLs the running process's group. Under sup.mu the leader is not reaped yet,
// so its pid (the group id) cannot have been reused.
func (sv *Service) killGroup() bool {
	sv.sup.mu.Lock()
	defer sv.sup.mu.Unlock()
	if sv.pid == 0 {
		return false
	}
	_ = syscall.Kill(-sv.pid, syscall.SIGKILL)
	return true
}

// Stop ends the service: no more restarts; a running process gets StopSignal and, if it has
// not exited within StopTimeout (or before ctx ends, whichever is first), its process group
// gets SIGKILL. It returns how the last run ended.
func (sv *Service) Stop(ctx context.Context) ExitStatus {
	sv.stopOnce.Do(func() { close(sv.stopCh) })
	pid := sv.PID()
	if pid != 0 && sv.Signal(sv.spec.StopSignal) == nil {
		sv.sup.opts.Log(Event{Kind: EventStop, Service: sv.spec.Name, PID: pid, Signal: sv.spec.StopSignal})
	}
	t := time.NewTimer(sv.spec.StopTimeout)
	defer t.Stop()
	select {
	case <-sv.done:
		return sv.Status()
	case <-t.C:
	case <-ctx.Done():
	}
	if sv.killGroup() {
		sv.sup.opts.Log(Event{Kind: EventKill, Service: sv.spec.Name, PID: pid, Signal: syscall.SIGKILL})
	}
	// SIGKILL cannot be ignored; the wait is only for the reaper to see it.
	select {
	case <-sv.done:
	case <-time.After(2 * time.Second):
	}
	return sv.Status()
}

// StopAll stops services one after the other in the order given, all within ctx: each gets
// its own StopTimeout, cut short by ctx's deadline, after which every remaining one is killed
// at once.
func StopAll(ctx context.Context, services ...*Service) {
	for _, sv := range services {
		if sv != nil {
			sv.Stop(ctx)
		}
	}
}

func openStdin(f *os.File) (*os.File, error) {
	if f != nil {
		return f, nil
	}
	return os.Open(os.DevNull)
}

// outputFile returns the file the program writes to, and the read end of a pipe when the
// writer is not a file (nil otherwise).
func outputFile(name string, w io.Writer, def *os.File) (*os.File, *os.File, error) {
	if w == nil {
		return def, nil, nil
	}
	if f, ok := w.(*os.File); ok {
		return f, nil, nil
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: output pipe: %w", name, err)
	}
	return pw, r, nil
}

// closeUnless closes f when it is ours (a pipe end or /dev/null), not a file the caller gave.
func closeUnless(f *os.File, given any) {
	if f == os.Stdout || f == os.Stderr || f == os.Stdin {
		return
	}
	if g, ok := given.(*os.File); ok && g == f {
		return
	}
	_ = f.Close()
}

func closeReader(r *os.File) {
	if r != nil {
		_ = r.Close()
	}
}

// maxLine splits longer lines, so one runaway line cannot grow memory without bound.
const maxLine = 64 << 10

// copyLines hands the program's output to w one line per Write, until every writer of the
// pipe (the program and anything that inherited it) has closed it.
func copyLines(r *os.File, w io.Writer) {
	if r == nil {
		return
	}
	go func() {
		defer r.Close()
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				if line[len(line)-1] != '\n' {
					line = append(line[:len(line):len(line)], '\n')
				}
				_, _ = w.Write(line)
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
}
