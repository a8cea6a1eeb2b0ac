package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/internal/systemd"
)

// Where harden install puts the harden(8) page and, on a machine with node_exporter's
// textfile directory, the Prometheus rules for a fleet's Prometheus to load.
const (
	ManPagePath = "/usr/local/share/man/man8/harden.8"
	// bash-completion loads completions on demand from here (XDG_DATA_DIRS includes
	// /usr/local/share).
	BashCompletionPath = "/usr/local/share/bash-completion/completions/harden"
	RulesPath          = "/usr/local/share/harden/prometheus/harden.rules.yml"
	TextfileDirPath    = "/var/lib/prometheus/node-exporter"
)

func newInstallCmd(stdout, stderr io.Writer) *cobra.Command {
	var root string
	var dryRun, noDBus bool
	cmd := &cobra.Command{
		Use:   "install [flags]",
		Short: "write and enable harden's boot units, its man page and monitoring rules",
		Long: `Writes harden's systemd units (harden-firewall.service, harden.service, harden-watch.service,
harden-audit.service and .timer) to /etc/systemd/system, /etc/tmpfiles.d/harden.conf, the
harden(8) page (` + ManPagePath + `), the bash completion
(` + BashCompletionPath + `), and, where node_exporter's textfile directory
(` + TextfileDirPath + `) exists, the Prometheus alerting rules
(` + RulesPath + `). On a live machine it enables the units over D-Bus and reloads
systemd; with --root DIR (an image tree being built) it writes the enable symlinks itself.
Idempotent: a second run prints "nothing to change". The binary must already be at
/usr/local/sbin/harden (under --root).`,
		Example: `  harden install
  harden install --root /mnt/image --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := fsroot.New(root).WithBackupDir(backupDirFor("install"))
			opts := install.Options{Root: r, DryRun: dryRun, Files: installFiles(cmd.Root(), r)}
			if root == "/" && !noDBus && !dryRun {
				conn, err := systemd.Connect(cmd.Context(), systemd.Options{})
				if err != nil {
					return fail(stderr, cmd, fmt.Errorf("%w (in an image tree use --root DIR; in a chroot --no-dbus)", err))
				}
				defer conn.Close()
				opts.Systemd = conn
				opts.Tmpfiles = func(ctx context.Context, file string) error {
					_, err := command.Exec{}.Run(ctx, command.Cmd{Name: "systemd-tmpfiles", Args: []string{"--create", file}, Timeout: 30 * time.Second})
					return err
				}
			}
			changes, err := install.Run(cmd.Context(), opts)
			printChanges(stdout, changes, dryRun, err == nil)
			if err != nil {
				return fail(stderr, cmd, err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&root, "root", "/", "install into `DIR` (an image tree) instead of this machine")
	fl.BoolVar(&dryRun, "dry-run", false, "list what would change, change nothing")
	fl.BoolVar(&noDBus, "no-dbus", false, "enable by symlinks and do not reload systemd (a chroot with no systemd)")
	_ = cmd.MarkFlagDirname("root")
	return cmd
}

// installFiles are the files besides the units: the man page and bash completion always, the Prometheus rules
// where node_exporter's textfile collector is set up (that machine is in a fleet's
// Prometheus; elsewhere `harden prometheus-rules` prints them).
func installFiles(root *cobra.Command, r fsroot.Root) []install.File {
	var bash bytes.Buffer
	_ = root.GenBashCompletionV2(&bash, true)
	files := []install.File{{Path: ManPagePath, Data: manPage(root)}, {Path: BashCompletionPath, Data: bash.Bytes()}}
	if fi, err := r.Stat(TextfileDirPath); err == nil && fi.IsDir() {
		files = append(files, install.File{Path: RulesPath, Data: assets.PrometheusRules})
	}
	return files
}

// printChanges lists what a command changed. "nothing to change" is said only of a command
// that succeeded: after a failure the error says what happened.
func printChanges(w io.Writer, changes []install.Change, dryRun, ok bool) {
	prefix := ""
	if dryRun {
		prefix = "would "
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s%s\n", prefix, c)
	}
	if len(changes) == 0 && ok {
		fmt.Fprintln(w, "nothing to change")
	}
}
