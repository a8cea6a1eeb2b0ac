package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/steps/clamav"
)

// runFreshclam: `harden freshclam [--for DURATION] [--policy FILE] [--root DIR]`, what
// harden-freshclam.service runs once the network is up. It runs the freshclam step (and the
// services step, which starts clamd and clamonacc once there are signatures) like `harden
// apply --only freshclam,services`; after a failed update it waits out the step's back-off
// (1 min, doubling) or the CDN's cool-down and tries again, for at most --for. Between
// attempts it holds no lock. SIGTERM stops it between attempts (an attempt runs to its end).
func runFreshclam(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("freshclam", stderr)
	window := fs.Duration("for", time.Hour, "keep retrying a failed update for this long")
	policyFile := fs.String("policy", "", "policy file (default /etc/harden/policy.yaml, else the embedded default)")
	root := fs.String("root", "/", "prefix for every file (tests)")
	lockWait := fs.Duration("lock-wait", 30*time.Minute, "how long to wait for another run (harden.service, package removal) to finish")
	firstRetry := fs.Duration("first-retry", time.Minute, "wait after the first failed update (doubled after each further failure, at most 1h)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 1
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "harden freshclam: unexpected arguments %q\n", pos)
		return 1
	}
	f := applyFlags{policy: *policyFile, root: *root, only: "freshclam,services", output: "text",
		lock: engine.DefaultLockPath, lockWait: *lockWait, freshclamFirstRetry: *firstRetry}
	deadline := time.Now().Add(*window)
	for {
		rep, err := apply(ctx, f, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "harden freshclam: %v\n", err)
			return 1
		}
		_ = rep.WriteText(stdout)
		next, done, err := nextFreshclam(*root, *policyFile)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "harden freshclam: %v\n", err)
			return 1
		case done, rep.FailClosed, ctx.Err() != nil:
			return rep.ExitCode(false)
		case next.After(deadline):
			fmt.Fprintf(stderr, "harden freshclam: next attempt at %s is after --for (%s): giving up for this boot\n",
				next.Format(time.RFC3339), window.String())
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
