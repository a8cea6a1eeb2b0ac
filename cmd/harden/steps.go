package main

import (
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/steps/accounts"
	"github.com/harden-dev/harden/steps/clamav"
	"github.com/harden-dev/harden/steps/kernel"
	osstep "github.com/harden-dev/harden/steps/os"
	"github.com/harden-dev/harden/steps/packages"
	"github.com/harden-dev/harden/steps/services"
	"github.com/harden-dev/harden/steps/sshd"
)

// stepOptions are the command-line settings steps' constructors need.
type stepOptions struct {
	netns string // --netns: the firewall step's network namespace
}

// buildSteps lists the steps in their fixed order: the firewall first, so the machine is
// closed before anything else runs; services last, so it can start what the others
// configured and run the restarts they queued.
func buildSteps(o stepOptions) []engine.Step {
	// One D-Bus connection for every step that talks to systemd, opened on first use so
	// `--only firewall` at early boot never touches D-Bus.
	sd := systemd.Shared(systemd.Options{})
	return []engine.Step{
		osstep.New(),
		kernel.New(kernel.Options{}),
		sshd.New(sshd.Options{Systemd: sd}),
		accounts.New(),
		packages.New(packages.Options{}),
		clamav.New(clamav.Options{}),
		services.New(sd),
	}
}
