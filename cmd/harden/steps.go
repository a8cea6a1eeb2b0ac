package main

import (
	"context"
	"fmt"

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
}

// buildSteps lists the steps in their fixed order: the firewall first, so the machine is
// closed before anything else runs; services last, so it can start what the others
// configured and run the restarts they queued.
func buildSteps(o stepOptions) []engine.Step {
	// One D-Bus connection for every step that talks to systemd, opened on first use so
	// `--only firewall` at early boot never touches D-Bus.
	sd := systemd.Shared(systemd.Options{})
	offline := o.root != "" && o.root != "/"
	if offline {
		// Files go to the tree; this machine's units must not be masked or reloaded for it.
		sd = func(context.Context) (systemd.Manager, error) {
			return nil, fmt.Errorf("%w: root is %s, units of this machine are not managed", systemd.ErrNoSystemd, o.root)
		}
	}
	return []engine.Step{
		osstep.New(),
		firewall.New(firewall.Options{NetNS: o.netns, Offline: offline && o.netns == ""}),
		kernel.New(kernel.Options{}),
		sshd.New(sshd.Options{Systemd: sd, Offline: offline}),
		accounts.New(),
		auditstep.New(nil), // the kernel's audit socket, opened on first use
		packages.New(packages.Options{}),
		clamav.New(clamav.Options{}),
		services.New(sd),
	}
}
