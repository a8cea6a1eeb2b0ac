package main

import (
	"context"
	"fmt"
	"io"

	"github.com/harden-dev/harden/internal/boot"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/steps/accounts"
	auditstep "github.com/harden-dev/harden/steps/audit"
	"github.com/harden-dev/harden/steps/clamav"
	"github.com/harden-dev/harden/steps/firewall"
	"github.com/harden-dev/harden/steps/kernel"
	osstep "github.com/harden-dev/harden/steps/os"
	"github.com/harden-dev/harden/steps/packages"
	"github.com/harden-dev/harden/steps/sshd"
)

// runBoot is where `harden boot` does its work (internal/boot); it returns the process exit
// code: COMMAND's status, or harden boot's own (1 fail closed, 126/127 COMMAND not runnable).
func runBoot(ctx context.Context, opts bootOptions, _, stderr io.Writer) int {
	return boot.Run(ctx, boot.Config{App: opts.Command, PolicyPath: opts.Policy, Steps: bootSteps(),
		Version: version, Records: stderr})
}

// bootSteps are buildSteps without systemd: sshd is started after its step by harden boot,
// never reloaded over D-Bus; freshclam runs in the background so the app never waits for
// the network; and harden boot brings its own services step.
func bootSteps() []engine.Step {
	noSystemd := func(context.Context) (systemd.Manager, error) {
		return nil, fmt.Errorf("%w: harden boot starts sshd itself, after this step", systemd.ErrNoSystemd)
	}
	return []engine.Step{
		osstep.New(),
		firewall.New(firewall.Options{}),
		kernel.New(kernel.Options{}),
		sshd.New(sshd.Options{Systemd: noSystemd}),
		accounts.New(),
		auditstep.New(nil),
		packages.New(packages.Options{}),
		clamav.New(clamav.Options{}), // the clamav step never runs freshclam: harden boot runs it in the background
	}
}
