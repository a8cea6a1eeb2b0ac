package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
)

// runWatch is `harden watch`: the alert daemon (harden-watch.service).
func runWatch(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("watch", stderr)
	policyPath := fs.String("policy", "", "policy file (default "+policy.DefaultPath+" if present, else the embedded default)")
	lockPath := fs.String("lock", watch.DefaultLockPath, "held while the watch runs")
	record := fs.String("record", "", "also append every audit record to FILE in audit.log format (capturing test fixtures)")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		if err == nil {
			fmt.Fprintf(stderr, "harden watch: unexpected argument %q\n", pos[0])
		}
		return 1
	}
	p, err := loadWatchPolicy(*policyPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg := watch.Config{Policy: p, Journal: changelog.Auto(stderr), LockPath: *lockPath,
		Log: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }}
	if *record != "" {
		f, err := os.OpenFile(*record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, "harden watch:", err)
			return 1
		}
		defer f.Close()
		cfg.Record = f
	}
	err = watch.Watch(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "harden watch:", err)
		return 1
	}
	return 0
}

// loadWatchPolicy loads the policy for watch and alert: the named file, else the machine's,
// else the embedded default (alerts still go to the journal on a machine without a policy).
func loadWatchPolicy(path string) (*policy.Policy, error) {
	if path != "" {
		return policy.LoadFile(path, policy.CheckOwner)
	}
	if _, err := os.Stat(policy.DefaultPath); err != nil {
		return policy.Default(), nil
	}
	return policy.LoadFile(policy.DefaultPath, policy.CheckOwner)
}
