package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/steps/clamav"
)

// runStamp: `harden stamp [--root DIR] [--image-id ID]`, run as the last step of an image
// build: records the build time (the os step's image-age check) and removes files that must
// not be shared by every machine made from the image (its identity: SSH host keys,
// machine-id, random seed; ClamAV's freshclam.dat).
func runStamp(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("stamp", stderr)
	root := fs.String("root", "/", "the image tree to stamp")
	id := fs.String("image-id", "", "image identifier to record (IMAGE_ID=)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 1
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "harden stamp: unexpected arguments %q\n", pos)
		return 1
	}
	r := fsroot.New(*root).WithBackupDir(backupDirFor("stamp"))
	changes, err := install.Stamp(r, time.Now(), *id)
	if err == nil {
		// Host keys, machine-id, random seed: every clone makes its own at first boot.
		var idChanges []install.Change
		idChanges, err = install.StampIdentity(r)
		changes = append(changes, idChanges...)
	}
	if err == nil {
		// freshclam.dat (a UUID every VM would share, and the build machine's CDN cool-down)
		// and harden's freshclam record go, without a backup: a backup would be baked in too.
		var removed []string
		removed, err = clamav.StampCleanup(r)
		for _, p := range removed {
			changes = append(changes, install.Change{Object: p, Action: "remove"})
		}
	}
	printChanges(stdout, changes, false)
	if err != nil {
		fmt.Fprintf(stderr, "harden stamp: %v\n", err)
		return 1
	}
	return 0
}

// backupDirFor keeps each command's backups apart, like apply's per-run directories.
func backupDirFor(cmd string) string {
	return fmt.Sprintf("%s/%s-%s", fsroot.DefaultBackupDir, cmd, time.Now().UTC().Format("20060102T150405Z"))
}
