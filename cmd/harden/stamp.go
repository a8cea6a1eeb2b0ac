package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/steps/clamav"
)

func newStampCmd(stdout, stderr io.Writer) *cobra.Command {
	var root, id string
	cmd := &cobra.Command{
		Use:   "stamp [flags]",
		Short: "stamp an image build; remove what must not be baked into an image",
		Long: `Run as the last step of an image build: writes /etc/harden/image-build (BUILD_TIME, and
IMAGE_ID with --image-id), which the os step judges the image's age by, and removes files
that every machine made from the image must not share (freshclam.dat: a UUID and the build
machine's CDN cool-down), without a backup.`,
		Example: `  harden stamp --root /mnt/image --image-id "$(git rev-parse --short HEAD)"`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := fsroot.New(root).WithBackupDir(backupDirFor("stamp"))
			changes, err := install.Stamp(r, time.Now(), id)
			if err == nil {
				// freshclam.dat and harden's freshclam record go without a backup: a backup
				// would be baked in too.
				var removed []string
				removed, err = clamav.StampCleanup(r)
				for _, p := range removed {
					changes = append(changes, install.Change{Object: p, Action: "remove"})
				}
			}
			printChanges(stdout, changes, false, err == nil)
			if err != nil {
				return fail(stderr, cmd, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "/", "the image tree (`DIR`) to stamp")
	cmd.Flags().StringVar(&id, "image-id", "", "image identifier to record (IMAGE_ID=)")
	_ = cmd.MarkFlagDirname("root")
	return cmd
}

// backupDirFor keeps each command's backups apart, like apply's per-run directories.
func backupDirFor(cmd string) string {
	return fmt.Sprintf("%s/%s-%s", fsroot.DefaultBackupDir, cmd, time.Now().UTC().Format("20060102T150405Z"))
}
