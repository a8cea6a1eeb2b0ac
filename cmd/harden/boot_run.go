package main

import (
	"context"
	"io"

	"github.com/harden-dev/harden/internal/boot"
	"github.com/harden-dev/harden/internal/engine"
)

// runBoot is where `harden boot` does its work (internal/boot); it returns the process exit
// code: COMMAND's status, or harden boot's own (1 fail closed, 126/127 COMMAND not runnable).
func runBoot(ctx context.Context, opts bootOptions, _, stderr io.Writer) int {
	return boot.Run(ctx, boot.Config{App: opts.Command, PolicyPath: opts.Policy, Steps: bootSteps(),
		Version: version, Records: stderr})
}

// bootSteps are buildSteps for a machine without systemd (see stepOptions.boot).
func bootSteps() []engine.Step { return buildSteps(stepOptions{root: "/", boot: true}) }
