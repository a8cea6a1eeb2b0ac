package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

type applyFlags struct {
	dryRun, detailed, record   bool
	policy, only, skip, output string
	root, netns, lock          string
	lockWait                   time.Duration
	freshclamFirstRetry        time.Duration // harden freshclam --first-retry
}

func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f applyFlags
	fs := newFlagSet("apply", stderr)
	fs.BoolVar(&f.dryRun, "dry-run", false, "plan only: show what would change, change nothing")
	fs.StringVar(&f.policy, "policy", "", "policy file (default /etc/harden/policy.yaml, else the embedded default)")
	fs.StringVar(&f.only, "only", "", "comma-separated steps to run (others are skipped)")
	fs.StringVar(&f.skip, "skip", "", "comma-separated steps to leave out")
	fs.StringVar(&f.output, "output", "text", "text | json")
	fs.BoolVar(&f.detailed, "detailed-exitcode", false, "exit 2 when changes were made (dry-run: would be)")
	fs.BoolVar(&f.record, "record", false, "dry-run: still write the journal records and the -dryrun report (drift timer)")
	fs.StringVar(&f.root, "root", "/", "prefix for every file harden reads or writes (tests, offline images); other than /, this machine's firewall (without --netns), audit rules and units are left alone")
	fs.StringVar(&f.netns, "netns", "", "network namespace (name under /run/netns or a path) for the firewall step")
	fs.StringVar(&f.lock, "lock", engine.DefaultLockPath, "run lock (one run at a time)")
	fs.DurationVar(&f.lockWait, "lock-wait", 10*time.Second, "how long to wait for another run to finish")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 1
	}
	if len(pos) > 0 || (f.output != "text" && f.output != "json") {
		fmt.Fprintf(stderr, "harden apply: unexpected arguments %q or bad --output %q\n", pos, f.output)
		return 1
	}
	rep, err := apply(ctx, f, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "harden apply: %v\n", err)
		return 1
	}
	if f.output == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "harden apply: %v\n", err)
		return 1
	}
	return rep.ExitCode(f.detailed)
}

// apply loads the policy (falling back to fail-closed), takes the lock, runs the steps and
// saves the report.
func apply(ctx context.Context, f applyFlags, stderr io.Writer) (*engine.Report, error) {
	runID := newRunID()
	root := fsroot.New(f.root).WithBackupDir(filepath.Join(fsroot.DefaultBackupDir, runID))
	pol, polName, polErr := engine.LoadPolicy(root, f.policy)
	if polErr != nil {
		fmt.Fprintf(stderr, "harden: policy %s not loaded: %v\nharden: failing closed: applying the embedded default firewall only\n", polName, polErr)
	}
	lockRoot, lockName := lockPath(root, f.lock)
	lock, err := engine.AcquireIn(ctx, lockRoot, lockName, !f.dryRun, f.lockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	logger := logrus.New()
	logger.SetOutput(stderr)
	env := &engine.Env{
		Policy: pol, Root: root, Now: time.Now, Getenv: os.Getenv, Exec: command.Exec{},
		Log: logrus.NewEntry(logger), Progress: newProgress(stderr), Restarts: &engine.RestartQueue{},
		RunID: runID, DryRun: f.dryRun,
	}
	var sink changelog.Sink = changelog.Discard{}
	if !f.dryRun || f.record {
		sink = changelog.Auto(stderr)
	}
	runner := &engine.Runner{Steps: buildSteps(stepOptions{netns: f.netns, root: f.root, freshclamFirstRetry: f.freshclamFirstRetry}), Log: changelog.New(sink, runID), Stderr: stderr}
	host, _ := os.Hostname()
	rep, err := runner.Run(ctx, env, engine.Options{
		DryRun: f.dryRun, Only: splitList(f.only), Skip: splitList(f.skip), FailClosed: polErr != nil, PolicyError: polErr,
		PolicyName: polName, Record: f.record, Version: version, Host: host,
	})
	if err != nil {
		return nil, err
	}
	if !f.dryRun || f.record {
		if err := engine.SaveReport(root, pol, rep); err != nil {
			fmt.Fprintf(stderr, "harden: %v\n", err)
		}
	}
	// The drift timer alerts on a broken policy too (through the default's sinks): a machine
	// that would fail closed at its next boot is off policy.
	if f.dryRun && f.record {
		raiseDrift(ctx, pol, f.root, rep, stderr)
	}
	return rep, nil
}

// lockPath puts the default lock inside --root, so tests with a temp root never share the
// machine's lock; an explicit --lock is a path on this machine, used as given.
func lockPath(root fsroot.Root, flagValue string) (fsroot.Root, string) {
	if flagValue == engine.DefaultLockPath {
		return root, engine.DefaultLockPath
	}
	abs, err := filepath.Abs(flagValue)
	if err != nil {
		abs = flagValue
	}
	return fsroot.New("/"), abs
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// newRunID is a 128-bit random id in the journal's style (32 hex digits).
func newRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newProgress shows progress on a terminal and nothing elsewhere (the journal).
func newProgress(w io.Writer) engine.Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &ttyProgress{w: w}
	}
	return engine.NoProgress{}
}
