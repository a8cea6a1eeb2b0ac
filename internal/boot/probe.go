package boot

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/nft"
)

// Kernel features harden depends on. A Fly Machine runs Fly's kernel, whose configuration
// is not documented (nf_tables was reported missing in 2024 and present in 2026): each is
// probed at boot, and a missing one is a finding that says what it turns off.
const (
	FeatureNFTables = "nf_tables"
	FeatureAudit    = "audit"
	FeatureFanotify = "fanotify"
)

// Feature is the outcome of one probe.
type Feature struct {
	Name string
	Err  error // nil: available
	// Disables says what harden cannot do without it.
	Disables string
}

// OK reports whether the feature is available.
func (f Feature) OK() bool { return f.Err == nil }

// Features are the probes' outcomes by name.
type Features map[string]Feature

// Has reports whether the named feature is available; a feature not probed counts as there.
func (fs Features) Has(name string) bool {
	f, ok := fs[name]
	return !ok || f.OK()
}

// Probe tries each feature the way harden will use it: an nftables netlink request, an
// audit status request, a fanotify group like clamonacc's. It never fails: a probe's error
// is the feature's absence, and the reason is kept for the finding.
func Probe(ctx context.Context) Features {
	out := Features{}
	for _, f := range []Feature{
		{Name: FeatureNFTables, Err: probeNFTables(),
			Disables: "the firewall cannot be applied: harden boot fails closed and does not start the app"},
		{Name: FeatureAudit, Err: probeAudit(ctx),
			Disables: "no audit rules, no auditd, and harden watch raises no alerts on SSH failures, privilege escalation or critical files"},
		{Name: FeatureFanotify, Err: probeFanotify(),
			Disables: "no on-access scanning: clamonacc is not started (clamd still scans on request)"},
	} {
		out[f.Name] = f
	}
	return out
}

func probeNFTables() error {
	c, err := nft.Open("")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ListTables(); err != nil {
		return fmt.Errorf("listing nftables tables: %w", err)
	}
	return nil
}

func probeAudit(ctx context.Context) error {
	c, err := auditnl.Dial(auditnl.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = c.GetStatus(ctx)
	return err
}

// probeFanotify opens a notification group of the class clamonacc uses (permission events
// need FAN_CLASS_CONTENT) and closes it at once.
func probeFanotify() error {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_LARGEFILE)
	if err != nil {
		return fmt.Errorf("fanotify_init: %w", err)
	}
	return unix.Close(fd)
}
