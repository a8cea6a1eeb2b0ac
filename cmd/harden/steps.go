package main

import (
	"context"
	"fmt"
	"time"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/steps/accounts"
	auditstep "github.com/harden-dev/harden/steps/audit"
	"github.com/harden-dev/harden/steps/clamav"
	"github.com/harden-dev/harden/steps/firewall"
	"github.com/harden-dev/harden/steps/kernel"
	osstep "github.com/harden-dev/harden/steps/os"
	"github.com/harden-dev/harden/steps/packages"
	"github.com/harden-dev/harden/steps/services"
	"github.com/harden-dev/harden/steps/sshd"
)

// stepOptions are the command-line settings steps' constructors need.
type stepOptions struct {
	netns string // --netns: the firewall step's network namespace
	root  string // --root: "/" is this machine; anything else is a tree (an image, a test)
	// freshclamFirstRetry is the freshclam step's first back-off (0: its default, 1 min).
	freshclamFirstRetry time.Duration
	// boot: the steps of `harden boot`, where there is no systemd. sshd is started after its
	// step by harden boot, never reloaded over D-Bus; freshclam runs in the background so the
	// app never waits for the network; and harden boot brings its own services step.
	boot bool
}

// buildSteps lists the steps in their fixed order: the firewall first, so the machine is
// closed before anything else runs; freshclam after clamav's settings and before services,
// so a run that fetched the first signatures starts clamd; services last, so it can start
// what the others configured and run the restarts they queued.
func buildSteps(o stepOptions) []engine.Step {
	// One D-Bus connection for every step that talks to systemd, opened on first use so
	// `--only firewall` at early boot never touches D-Bus.
	sd := systemd.Shared(systemd.Options{})
	offline := o.root != "" && o.root != "/"
	switch {
	case offline:
		// Files go to the tree; this machine's units must not be masked or reloaded for it.
		sd = func(context.Context) (systemd.Manager, error) {
			// No path here: the message goes into the tree's report, which knows no build host.
			return nil, fmt.Errorf("%w: harden works on a tree (--root), units of this machine are not managed", systemd.ErrNoSystemd)
		}
	case o.boot:
		sd = func(context.Context) (systemd.Manager, error) {
			return nil, fmt.Errorf("%w: harden boot starts sshd itself, after this step", systemd.ErrNoSystemd)
		}
	}
	steps := []engine.Step{
		osstep.New(),
		firewall.New(firewall.Options{NetNS: o.netns, Offline: offline && o.netns == ""}),
		kernel.New(kernel.Options{}),
		sshd.New(sshd.Options{Systemd: sd, Offline: offline}),
		accounts.New(),
		auditstep.New(nil), // the kernel's audit socket, opened on first use
		packages.New(packages.Options{}),
		clamav.New(clamav.Options{Offline: offline}), // never runs freshclam: the next step does
	}
	if o.boot {
		return steps
	}
	return append(steps,
		clamav.NewFreshclam(clamav.Options{FirstRetry: o.freshclamFirstRetry}), // its own unit at boot: it needs the network
		services.New(sd),
	)
}
