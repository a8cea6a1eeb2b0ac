package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/steps/clamav"
)

func newFreshclamCmd(stdout, stderr io.Writer) *cobra.Command {
	var window, lockWait, firstRetry time.Duration
	var policyFile, root string
	cmd := &cobra.Command{
		Use:   "freshclam [flags]",
		Short: "update the ClamAV signatures, retrying within this boot (harden-freshclam.service)",
		Long: `What harden-freshclam.service runs once the network is up: the freshclam step, then the
services step (which starts clamd and clamonacc once there are signatures). After a failed update it waits out the step's back-off (--first-retry, doubling,
at most 1h) or the ClamAV CDN's cool-down, and tries again, for at most --for; between
attempts it holds no lock, and the download itself holds only its own
(/run/harden-freshclam/lock, one download at a time): the run lock is taken for the services
step and the report, so a person's apply or dry-run never waits for the CDN. SSH never waits
for it. SIGTERM stops it between attempts (an attempt runs to its end).

` + exitCodesHelp,
		Example: `  harden freshclam
  harden freshclam --for 10m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exitCode(freshclamLoop(cmd.Context(), applyFlags{policy: policyFile, root: root,
				output: "text", lock: engine.DefaultLockPath, lockWait: lockWait,
				freshclamFirstRetry: firstRetry}, window, stdout, stderr))
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&window, "for", time.Hour, "keep retrying a failed update for this long (`DURATION`)")
	fl.StringVar(&policyFile, "policy", "", "policy `FILE` (default /etc/harden/policy.yaml if present, else the embedded default)")
	fl.StringVar(&root, "root", "/", "`DIR` prefixed to every file harden reads or writes (tests)")
	fl.DurationVar(&lockWait, "lock-wait", 30*time.Minute, "how long to wait for another run (harden.service, package removal, another download) to finish (`DURATION`)")
	fl.DurationVar(&firstRetry, "first-retry", time.Minute, "wait after the first failed update, doubled after each further failure, at most 1h (`DURATION`)")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml")
	_ = cmd.MarkFlagDirname("root")
	return cmd
}

// freshclamLoop runs the freshclam and services steps until this boot's update succeeded,
// the next attempt would come after window, or ctx ends; it returns the exit code of the
// last run.
func freshclamLoop(ctx context.Context, f applyFlags, window time.Duration, stdout, stderr io.Writer) int {
	deadline := time.Now().Add(window)
	for {
		rep, err := freshclamOnce(ctx, f, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "harden freshclam: %v\n", err)
			return exitError
		}
		if rep == nil { // SIGTERM before this attempt began (often while another run downloaded)
			fmt.Fprintf(stderr, "harden freshclam: stopped before this boot's update\n")
			return exitOK
		}
		next, done, err := nextFreshclam(f.root, f.policy)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "harden freshclam: %v\n", err)
			return exitError
		case done, rep.FailClosed, ctx.Err() != nil:
			return rep.ExitCode(false)
		case next.After(deadline):
			fmt.Fprintf(stderr, "harden freshclam: next attempt at %s is after --for (%s): giving up for this boot\n",
				next.Format(time.RFC3339), window)
			return rep.ExitCode(false)
		}
		if floor := time.Now().Add(time.Second); next.Before(floor) {
			next = floor // never a busy loop, whatever the record says
		}
		fmt.Fprintf(stderr, "harden freshclam: retrying at %s\n", next.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return rep.ExitCode(false)
		case <-time.After(time.Until(next)):
		}
	}
}

// freshclamOnce is one attempt: the freshclam step without the run lock (the download holds
// its own), then the services step under it (it starts clamd and clamonacc once there are
// signatures). It returns the worse of the two reports; a policy that does not load fails
// closed in the first, and the second is not run.
func freshclamOnce(ctx context.Context, f applyFlags, stdout, stderr io.Writer) (*engine.Report, error) {
	if err := waitForDownload(ctx, f.root, f.lockWait, stderr); err != nil || ctx.Err() != nil {
		return nil, err
	}
	dl := f
	dl.only, dl.stepsUnlocked = []string{"freshclam"}, true
	rep, err := apply(ctx, dl, stderr)
	if err != nil {
		return nil, err
	}
	_ = rep.WriteText(stdout)
	if rep.FailClosed || ctx.Err() != nil {
		return rep, nil
	}
	svc := f
	svc.only = []string{"services"}
	rep2, err := apply(ctx, svc, stderr)
	if err != nil {
		return nil, err
	}
	_ = rep2.WriteText(stdout)
	if rep2.ExitCode(false) > rep.ExitCode(false) {
		return rep2, nil
	}
	return rep, nil
}

// waitForDownload waits, at most wait, while another run (a person's apply) downloads the
// signatures, so the plan after it sees that run's attempt and does not ask the CDN again.
// SIGTERM (ctx) ends the wait (the caller then stops). After wait it goes on: the freshclam
// step then leaves the running download alone and says so.
func waitForDownload(ctx context.Context, root string, wait time.Duration, stderr io.Writer) error {
	r := fsroot.New(root)
	deadline, said := time.Now().Add(wait), false
	for {
		who, held, err := engine.Held(ctx, r, clamav.DownloadLockPath)
		if err != nil || !held || time.Now().After(deadline) {
			return needsRoot(err)
		}
		if !said {
			if who != "" {
				who = " (" + who + ")"
			}
			fmt.Fprintf(stderr, "harden freshclam: waiting for another run's signature download%s\n", who)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// nextFreshclam reads the freshclam step's record: when the next attempt is due, or done.
func nextFreshclam(root, policyFile string) (time.Time, bool, error) {
	r := fsroot.New(root)
	pol, _, err := engine.LoadPolicy(r, policyFile)
	if err != nil {
		return time.Time{}, false, err
	}
	env := &engine.Env{Policy: pol, Root: r, Now: time.Now, Getenv: os.Getenv}
	return clamav.NextUpdate(env)
}
