package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
)

func newWatchCmd(stderr io.Writer) *cobra.Command {
	var policyPath, lockPath, record string
	cmd := &cobra.Command{
		Use:   "watch [flags]",
		Short: "alert daemon: audit events to alerts, delivered from a durable spool",
		Long: `Reads the kernel's audit multicast group (next to auditd, never instead of it) and raises
alerts: failed SSH authentications above alerts.ssh_failures.threshold, privilege escalation,
critical file changes, lost audit records, and ClamAV detections handed in by
"harden alert virus". Every alert is spooled under alerts.spool.dir before delivery, then
delivered at least once to every sink (journal, webhook, Alertmanager). An alert a sink refuses
for good (HTTP 4xx) goes to the spool's deadletter/ directory and raises a delivery-refused
alert on the other sinks. Writes harden-watch.prom next to run.metrics for node_exporter.
Runs as harden-watch.service; stops cleanly on SIGTERM.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadWatchPolicy(policyPath)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(exitError)
			}
			cfg := watch.Config{Policy: p, Journal: changelog.Auto(stderr), LockPath: lockPath,
				Log: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }}
			if record != "" {
				f, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return fail(stderr, cmd, err)
				}
				defer f.Close()
				cfg.Record = f
			}
			if err := watch.Watch(cmd.Context(), cfg); err != nil {
				return fail(stderr, cmd, err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&policyPath, "policy", "", "policy `FILE` (default "+policy.DefaultPath+" if present, else the embedded default)")
	fl.StringVar(&lockPath, "lock", watch.DefaultLockPath, "lock `FILE` held while the watch runs (harden alert virus looks at it)")
	fl.StringVar(&record, "record", "", "also append every audit record to `FILE` in audit.log format (capturing test fixtures)")
	_ = cmd.MarkFlagFilename("policy", "yaml", "yml")
	return cmd
}

// loadWatchPolicy loads the policy for watch and alert: the named file, else the machine's,
// else the embedded default (alerts still go to the journal on a machine without a policy).
func loadWatchPolicy(path string) (*policy.Policy, error) {
	if path != "" {
		return policy.LoadFile(path, policy.CheckOwner)
	}
	if _, err := os.Stat(policy.DefaultPath); err != nil {
		return policy.Default(), nil
	}
	return policy.LoadFile(policy.DefaultPath, policy.CheckOwner)
}
