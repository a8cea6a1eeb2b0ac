package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
)

func newAlertCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alert COMMAND",
		Short: "raise an alert from outside the watch",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE(stderr),
	}
	var policyPath, lockPath string
	virus := &cobra.Command{
		Use:   "virus [flags]",
		Short: "raise a virus alert (ClamAV's VirusEvent)",
		Long: `Run by clamd's VirusEvent, with CLAM_VIRUSEVENT_FILENAME and CLAM_VIRUSEVENT_VIRUSNAME in its
environment. The alert is spooled first (as clamd's user, into the spool's inbox), so exit 0
means it is safe whatever happens to the delivery: the running watch delivers it, or, with no
watch running, harden delivers it directly.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadAlertPolicy(policyPath)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(exitError)
			}
			res, err := watch.Virus(cmd.Context(), watch.Config{Policy: p, Journal: changelog.Auto(stderr), LockPath: lockPath})
			if err != nil {
				return fail(stderr, cmd.Parent(), err)
			}
			how := "the running watch delivers it"
			if res.Direct {
				how = "delivered directly (no watch running)"
				if res.DirectErr != nil {
					how += "; not everywhere yet, the next watch retries: " + res.DirectErr.Error()
				}
			}
			fmt.Fprintf(stdout, "alert %s spooled (%s); %s\n", res.Alert.ID, res.Spooled, how)
			return nil
		},
	}
	virus.Flags().StringVar(&policyPath, "policy", "", "policy `FILE` (default: the machine's, else the embedded default)")
	virus.Flags().StringVar(&lockPath, "lock", watch.DefaultLockPath, "the running watch's lock `FILE`")
	_ = virus.MarkFlagFilename("policy", "yaml", "yml")
	cmd.AddCommand(virus)
	return cmd
}

// loadAlertPolicy is loadWatchPolicy for clamd's VirusEvent, which runs as the clamav user:
// the policy is root's (often 0600) and it may not read it. Then the embedded default tells
// where the spool's inbox is, and the watch (as root, with the real policy) delivers the
// alert from there to every sink.
func loadAlertPolicy(path string) (*policy.Policy, error) {
	name := path
	if name == "" {
		name = policy.DefaultPath
	}
	if f, err := os.Open(name); errors.Is(err, fs.ErrPermission) {
		return policy.Default(), nil
	} else if err == nil {
		f.Close()
	}
	return loadWatchPolicy(path)
}
