package main

import (
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/steps/accounts"
	"github.com/harden-dev/harden/steps/clamav"
	"github.com/harden-dev/harden/steps/firewall"
	"github.com/harden-dev/harden/steps/kernel"
	osstep "github.com/harden-dev/harden/steps/os"
	"github.com/harden-dev/harden/steps/packages"
)

// stepOptions are the command-line settings steps' constructors need.
type stepOptions struct {
	netns string // --netns: the firewall step's network namespace
}

// buildSteps lists the steps in their fixed order: the firewall first, so the machine is
// closed before anything else runs; services last, so it can start what the others
// configured and run the restarts they queued.
func buildSteps(o stepOptions) []engine.Step {
	return []engine.Step{
		osstep.New(),
		firewall.New(firewall.Options{NetNS: o.netns}),
		kernel.New(kernel.Options{}),
		accounts.New(),
		packages.New(packages.Options{}),
		clamav.New(clamav.Options{}),
	}
}
