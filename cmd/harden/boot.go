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

// runBoot is `harden boot [--policy FILE] -- COMMAND [ARG...]`, the entrypoint of an image
// whose PID 1 is not systemd (Fly Machines). The work is in internal/boot.
func runBoot(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := newFlagSet("boot", stderr)
	policyPath := fs.String("policy", "", "policy file (default /etc/harden/policy.yaml, else the embedded default)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: harden boot [--policy FILE] -- COMMAND [ARG...]")
		fs.PrintDefaults()
	}
	// Flags end at "--" or at the app's name: everything after is the app's.
	if err := fs.Parse(args); err != nil {
		return boot.ExitUsage
	}
	return boot.Run(ctx, boot.Config{App: fs.Args(), PolicyPath: *policyPath, Steps: bootSteps(),
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
		clamav.New(clamav.Options{UpdateElsewhere: true}),
	}
}
