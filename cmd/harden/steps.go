package main

import (
	"github.com/harden-dev/harden/internal/engine"
	osstep "github.com/harden-dev/harden/steps/os"
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
	}
}
