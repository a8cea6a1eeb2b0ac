package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/harden-dev/harden/internal/policy"
	"io"
	"io/fs"
	"os"

	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
)

// runAlert is `harden alert virus`, run by clamd's VirusEvent with CLAM_VIRUSEVENT_FILENAME
// and CLAM_VIRUSEVENT_VIRUSNAME in its environment. Exit 0 once the alert is spooled: it is
// then safe whatever happens to the delivery.
func runAlert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("alert", stderr)
	policyPath := fs.String("policy", "", "policy file (default: the machine's, else the embedded default)")
	lockPath := fs.String("lock", watch.DefaultLockPath, "the running watch's lock")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 1
	}
	if len(pos) != 1 || pos[0] != "virus" {
		fmt.Fprintln(stderr, "usage: harden alert virus   (reads CLAM_VIRUSEVENT_FILENAME and CLAM_VIRUSEVENT_VIRUSNAME)")
		return 1
	}
	p, err := loadAlertPolicy(*policyPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res, err := watch.Virus(ctx, watch.Config{Policy: p, Journal: changelog.Auto(stderr), LockPath: *lockPath})
	if err != nil {
		fmt.Fprintln(stderr, "harden alert:", err)
		return 1
	}
	how := "the running watch delivers it"
	if res.Direct {
		how = "delivered directly (no watch running)"
		if res.DirectErr != nil {
			how += "; not everywhere yet, the next watch retries: " + res.DirectErr.Error()
		}
	}
	fmt.Fprintf(stdout, "alert %s spooled (%s); %s\n", res.Alert.ID, res.Spooled, how)
	return 0
}

// loadAlertPolicy is loadWatchPolicy for clamd's VirusEvent, which runs as the clamav user:
// the policy is root's (often 0600) and it may not read it. Then the embedded default tells
// where the spool's inbox is, and the watch (as root, with the real policy) delivers the
// alert from there to every sink.
func loadAlertPolicy(path string) (*policy.Policy, error) {
	name := path
	if name == "" {
		name = policy.DefaultPath
	}
	if f, err := os.Open(name); errors.Is(err, fs.ErrPermission) {
		return policy.Default(), nil
	} else if err == nil {
		f.Close()
	}
	return loadWatchPolicy(path)
}
