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
}

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

// Run starts the program in its own process group and kills the whole group at the
// deadline, so a hung child (freshclam's helpers, dpkg's maintainer scripts) cannot outlive
// it. A non-zero exit is an *ExitError carrying the output.
func (Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = c.Env
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second // do not wait forever for grandchildren holding our pipes
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		return res, &ExitError{Cmd: c, Result: res, Err: fmt.Errorf("killed after %s: %w", res.Duration.Round(time.Millisecond), ctx.Err())}
	}
	if err != nil {
		return res, &ExitError{Cmd: c, Result: res, Err: err}
	}
	return res, nil
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
