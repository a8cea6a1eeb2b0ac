package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/assets"
)

func newRulesCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "prometheus-rules",
		Short: "print the Prometheus alerting rules for harden's metrics",
		Long: `Prints the Prometheus alerting rules for a fleet (assets/monitoring/harden.rules.yml): last
run failed, fell back to the default firewall, drift found by the daily dry-run, no run for
over a day, a step failing on many machines at once, harden watch down, its spool growing, or
alerts refused by a sink. harden install also writes them to ` + RulesPath + ` where
node_exporter's textfile directory exists.`,
		Example: `  harden prometheus-rules > /etc/prometheus/rules/harden.rules.yml && promtool check rules /etc/prometheus/rules/harden.rules.yml`,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := stdout.Write(assets.PrometheusRules)
			return err
		},
	}
}
