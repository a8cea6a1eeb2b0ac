package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

type applyFlags struct {
	dryRun, detailed, record bool
	policy, output           string
	only, skip               []string
	root, netns, lock        string
	lockWait                 time.Duration
	freshclamFirstRetry      time.Duration // harden freshclam --first-retry
	// stepsUnlocked: the steps run without the run lock, which is taken only to save the
	// report. Only for harden freshclam's download (the freshclam step alone), which holds
	// its own lock and touches nothing another step does: a download takes minutes, and a
	// person's apply or dry-run must not wait for the CDN. A policy that does not load still
	// fails closed under the run lock.
	stepsUnlocked bool
}

func newApplyCmd(stdout, stderr io.Writer) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply [flags]",
		Short: "bring the machine to the policy (--dry-run: show what would change)",
		Long: `Runs the steps in their fixed order:
  ` + strings.Join(stepNames(), ", ") + `
Each step plans, applies exactly its plan, and is planned again: a step whose second plan is
not empty has failed. With --dry-run nothing changes: the plan is printed like a diff.

The policy is --policy FILE, else /etc/harden/policy.yaml, else the embedded default
(harden policy show). When it cannot be loaded, harden fails closed: it applies the embedded
default's firewall only and exits 1.

` + exitCodesHelp,
		Example: `  harden apply --dry-run                        # what would change, nothing changes
  harden apply --dry-run --detailed-exitcode    # exit 2 when something would change
  harden apply --only firewall,sshd --output json
  harden apply --skip packages,freshclam        # what harden.service runs at boot`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "text" && f.output != "json" {
				return usagef("--output %q: want text or json", f.output)
			}
			rep, err := apply(cmd.Context(), f, stderr)
			if err != nil {
				return fail(stderr, cmd, err)
			}
			if f.output == "json" {
				err = rep.WriteJSON(stdout)
			} else {
				err = rep.WriteText(stdout)
			}
			if err != nil {
				return fail(stderr, cmd, err)
			}
			return exitCode(rep.ExitCode(f.detailed))
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.BoolVar(&f.dryRun, "dry-run", false, "plan only: print what would change, change nothing")
	fl.StringVar(&f.policy, "policy", "", "policy `FILE` (default /etc/harden/policy.yaml if present, else the embedded default)")
	fl.StringSliceVar(&f.only, "only", nil, "run only these `STEP`s (comma-separated or repeated); the others are skipped")
	fl.StringSliceVar(&f.skip, "skip", nil, "leave these `STEP`s out (comma-separated or repeated)")
	fl.StringVarP(&f.output, "output", "o", "text", "`FORMAT` of the report on stdout: text (a plan to read) or json (one document)")
	fl.BoolVar(&f.detailed, "detailed-exitcode", false, "exit 2 when changes were made (dry-run: would be made)")
	fl.BoolVar(&f.record, "record", false, "with --dry-run: still write the journal records, the -dryrun report and raise a drift alert (the daily timer)")
	fl.StringVar(&f.root, "root", "/", "`DIR` prefixed to every file harden reads or writes (an image tree, tests); other than /, this machine's firewall (without --netns), audit rules and units are left alone")
	fl.StringVar(&f.netns, "netns", "", "network namespace (`NAME` under /run/netns, or a path) the firewall step works in")
	fl.StringVar(&f.lock, "lock", engine.DefaultLockPath, "run lock `FILE` (one run at a time; under --root unless given)")
	fl.DurationVar(&f.lockWait, "lock-wait", 10*time.Second, "how long to wait for another run to finish (`DURATION`, e.g. 30s)")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml")
	_ = cmd.MarkFlagDirname("root")
	_ = cmd.RegisterFlagCompletionFunc("only", completeSteps)
	_ = cmd.RegisterFlagCompletionFunc("skip", completeSteps)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("netns", completeNetns)
	return cmd
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
	takeLock := func() (*engine.Lock, error) {
		lock, err := engine.AcquireIn(ctx, lockRoot, lockName, !f.dryRun, f.lockWait)
		return lock, needsRoot(err)
	}
	unlocked := f.stepsUnlocked && polErr == nil
	if !unlocked {
		lock, err := takeLock()
		if err != nil {
			return nil, err
		}
		defer lock.Release()
	}

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
	runner := &engine.Runner{Steps: buildSteps(stepOptions{netns: f.netns, root: f.root, freshclamFirstRetry: f.freshclamFirstRetry}),
		Log: changelog.New(sink, runID), Stderr: stderr, PlanAhead: true}
	host, _ := os.Hostname()
	rep, err := runner.Run(ctx, env, engine.Options{
		DryRun: f.dryRun, Only: cleanList(f.only), Skip: cleanList(f.skip), FailClosed: polErr != nil, PolicyError: polErr,
		PolicyName: polName, Record: f.record, Version: version, Host: host,
	})
	if err != nil {
		return nil, err
	}
	if !f.dryRun || f.record {
		saveReport(root, pol, rep, unlocked, takeLock, stderr)
	}
	// The drift timer alerts on a broken policy too (through the default's sinks): a machine
	// that would fail closed at its next boot is off policy.
	if f.dryRun && f.record {
		raiseDrift(ctx, pol, f.root, rep, stderr)
	}
	return rep, nil
}

// saveReport writes the run's report and metrics; under the run lock, which a run whose
// steps ran without it (stepsUnlocked) takes now: the report merges the last one's steps, and
// two runs merging at once would lose one's.
func saveReport(root fsroot.Root, pol *policy.Policy, rep *engine.Report, unlocked bool, takeLock func() (*engine.Lock, error), stderr io.Writer) {
	if unlocked {
		lock, err := takeLock()
		if err != nil {
			fmt.Fprintf(stderr, "harden: report not saved: %v\n", err)
			return
		}
		defer lock.Release()
	}
	if err := engine.SaveReport(root, pol, rep); err != nil {
		fmt.Fprintf(stderr, "harden: %v\n", err)
	}
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

// cleanList drops blanks around and between --only's and --skip's items ("os, firewall", "os,,kernel").
func cleanList(items []string) []string {
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// needsRoot turns a permission error (the lock under /run, as a normal user) into what the
// user has to do: a dry-run reads root-only state (the kernel's audit rules and firewall,
// /etc/shadow) and takes the same lock as an apply, so it needs root too.
func needsRoot(err error) error {
	if os.Geteuid() != 0 && errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("needs root, also for --dry-run (it reads the kernel's firewall and audit state and takes the run lock); run it with sudo (%w)", err)
	}
	return err
}

// noArgs refuses positional arguments, naming the first.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (%s takes flags only)", args[0], cmd.CommandPath())
	}
	return nil
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
