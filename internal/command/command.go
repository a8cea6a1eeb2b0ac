// Package command runs the few external programs harden needs (sshd -T/-t, apt-get,
// freshclam) with a deadline, a bounded capture of their output, and errors that say what
// ran and what it printed. Steps take a Runner from their Env so tests can substitute one.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Cmd is one program invocation.
type Cmd struct {
	Name    string
	Args    []string
	Env     []string      // nil: inherit; otherwise the whole environment
	Stdin   []byte        // optional input
	Timeout time.Duration // 0: only the context bounds it
	// Grace is how long the program has to finish after SIGTERM before its process group
	// is killed (0: DefaultGrace).
	Grace time.Duration
}

// DefaultGrace is the time a program gets between SIGTERM and SIGKILL: long enough for
// dpkg or freshclam to finish writing what they hold and leave their state consistent.
const DefaultGrace = 10 * time.Second

func (c Cmd) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Result is what the program did.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
	Duration       time.Duration
}

// Runner runs commands.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// maxOutput bounds what we keep of a program's output: apt-get can print megabytes.
const maxOutput = 1 << 20

// Exec runs real programs.
type Exec struct{}

// Run starts the program in its own process group (a terminal's Ctrl-C reaches harden,
// not the program in the middle of its work). When ctx ends or the timeout passes, the group
// gets SIGTERM and Grace to finish; whatever of it is left then is killed with SIGKILL, so a
// hung child (freshclam's helpers, dpkg's maintainer scripts) cannot outlive it. A non-zero
// exit is an *ExitError carrying the output.
func (Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	cmd := exec.Command(c.Name, c.Args...)
	cmd.Env = c.Env
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // do not wait forever for grandchildren holding our pipes
	start := time.Now()
	res := Result{ExitCode: -1}
	if err := ctx.Err(); err != nil {
		return res, &ExitError{Cmd: c, Result: res, Err: fmt.Errorf("not started: %w", err)}
	}
	if err := cmd.Start(); err != nil {
		return res, &ExitError{Cmd: c, Result: res, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	stopped := ""
	select {
	case err = <-done:
	case <-ctx.Done():
		stopped, err = stop(cmd.Process.Pid, done, grace)
	}
	res = Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if stopped != "" {
		return res, &ExitError{Cmd: c, Result: res, Err: fmt.Errorf("%s after %s: %w", stopped, res.Duration.Round(time.Millisecond), ctx.Err())}
	}
	if err != nil {
		return res, &ExitError{Cmd: c, Result: res, Err: err}
	}
	return res, nil
}

// stop asks the process group pid leads to stop (SIGTERM) and waits for the leader (the
// program harden ran) for at most grace, then kills what is left of the group (SIGKILL):
// the leader when it did not stop in time, stragglers it left behind either way (they had
// the same SIGTERM and the same time). It returns how the program was stopped and Wait's
// error.
func stop(pid int, done <-chan error, grace time.Duration) (string, error) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-done:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return "stopped (SIGTERM)", err
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return fmt.Sprintf("killed (SIGKILL) %s after SIGTERM", grace), <-done
	}
}

// ExitError is a program that failed, with its output.
type ExitError struct {
	Cmd    Cmd
	Result Result
	Err    error
}

func (e *ExitError) Error() string {
	out := strings.TrimSpace(string(e.Result.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(e.Result.Stdout))
	}
	if len(out) > 600 {
		out = "..." + out[len(out)-600:]
	}
	if out != "" {
		return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, out)
	}
	return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
}

func (e *ExitError) Unwrap() error { return e.Err }

// IsTimeout reports whether err is a command killed at its deadline.
func IsTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}

// capped is a buffer that keeps the first maxOutput bytes and counts the rest.
type capped struct {
	buf     bytes.Buffer
	dropped int
}

func (c *capped) Write(p []byte) (int, error) {
	room := maxOutput - c.buf.Len()
	if room < len(p) {
		c.dropped += len(p) - max(room, 0)
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return c.buf.Write(p)
}

func (c *capped) Bytes() []byte {
	if c.dropped > 0 {
		return append(c.buf.Bytes(), fmt.Sprintf("\n[... %d bytes dropped]\n", c.dropped)...)
	}
	return c.buf.Bytes()
}
