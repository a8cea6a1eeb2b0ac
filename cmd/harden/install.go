package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/internal/systemd"
)

// runInstall: `harden install [--root DIR] [--dry-run] [--no-dbus]`. On a live machine it
// enables the units over D-Bus and reloads systemd; with --root (an image tree being built)
// there is no systemd: it writes the enable symlinks itself.
func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("install", stderr)
	root := fs.String("root", "/", "install into this root (an image tree) instead of the machine")
	dryRun := fs.Bool("dry-run", false, "list what would change, change nothing")
	noDBus := fs.Bool("no-dbus", false, "enable by symlinks and do not reload systemd (a chroot with no systemd)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 1
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "harden install: unexpected arguments %q\n", pos)
		return 1
	}
	opts := install.Options{Root: fsroot.New(*root).WithBackupDir(backupDirFor("install")), DryRun: *dryRun}
	if *root == "/" && !*noDBus && !*dryRun {
		conn, err := systemd.Connect(ctx, systemd.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "harden install: %v (in an image tree use --root DIR; in a chroot --no-dbus)\n", err)
			return 1
		}
		defer conn.Close()
		opts.Systemd = conn
		opts.Tmpfiles = func(ctx context.Context, file string) error {
			_, err := command.Exec{}.Run(ctx, command.Cmd{Name: "systemd-tmpfiles", Args: []string{"--create", file}, Timeout: 30 * time.Second})
			return err
		}
	}
	changes, err := install.Run(ctx, opts)
	printChanges(stdout, changes, *dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "harden install: %v\n", err)
		return 1
	}
	return 0
}

func printChanges(w io.Writer, changes []install.Change, dryRun bool) {
	prefix := ""
	if dryRun {
		prefix = "would "
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s%s\n", prefix, c)
	}
	if len(changes) == 0 {
		fmt.Fprintln(w, "nothing to change")
	}
}
