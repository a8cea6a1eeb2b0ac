package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// newBootCmd is `harden boot [--policy FILE] -- COMMAND [ARG...]`, the entrypoint of a Fly
// Machine (no systemd): the command line only. Everything after the first argument (or after
// "--") is the app's own command line and reaches runBoot untouched: flags are not
// interspersed, so `harden boot app --port 80` passes --port to the app.
//
// Hidden until branch boot lands: runBoot (boot_run.go) is replaced there by the real
// supervisor, and Hidden goes with it.
func newBootCmd(stdout, stderr io.Writer) *cobra.Command {
	var opts bootOptions
	cmd := &cobra.Command{
		Use:   "boot [flags] -- COMMAND [ARG...]",
		Short: "entrypoint where there is no systemd: apply the policy, then run and supervise COMMAND",
		Long: `The image's entrypoint on a Fly Machine, where Fly's init is PID 1 and there is no systemd:
applies the policy (firewall first, fail closed), supervises what the policy enables, runs
COMMAND as its child, forwards signals, reaps orphans, and exits with COMMAND's status.`,
		Example: `  harden boot --policy /etc/harden/policy.yaml -- /app/server --port 8080`,
		Hidden:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("missing COMMAND (harden boot [--policy FILE] -- COMMAND [ARG...])")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Command = args
			return exitCode(runBoot(cmd.Context(), opts, stdout, stderr))
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&opts.Policy, "policy", "", "policy `FILE` (default /etc/harden/policy.yaml if present, else the embedded default)")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml")
	return cmd
}

// bootOptions is what the command line gives `harden boot`.
type bootOptions struct {
	Policy  string   // --policy
	Command []string // COMMAND [ARG...], exactly as given after the flags or "--"
}
