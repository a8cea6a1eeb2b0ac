package engine

import (
	"fmt"
	"io"
	"strings"
)

// WriteMetrics writes the report in node_exporter's textfile-collector format, so a fleet's
// Prometheus sees every machine's last run: per-step status, changes, findings, duration.
func (r *Report) WriteMetrics(w io.Writer) error {
	var b strings.Builder
	help := func(name, typ, text string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ)
	}
	help("harden_last_run_timestamp_seconds", "gauge", "Start of harden's last run (Unix time).")
	fmt.Fprintf(&b, "harden_last_run_timestamp_seconds{dry_run=\"%t\"} %d\n", r.DryRun, r.Started.Unix())
	help("harden_last_run_success", "gauge", "1 if the last run did not fail.")
	fmt.Fprintf(&b, "harden_last_run_success{dry_run=\"%t\"} %d\n", r.DryRun, b2i(!r.Failed()))
	help("harden_last_run_duration_seconds", "gauge", "Duration of the last run.")
	fmt.Fprintf(&b, "harden_last_run_duration_seconds{dry_run=\"%t\"} %g\n", r.DryRun, r.DurationSeconds)
	help("harden_fail_closed", "gauge", "1 if the policy did not load and the default firewall was applied.")
	fmt.Fprintf(&b, "harden_fail_closed %d\n", b2i(r.FailClosed))
	help("harden_step_status", "gauge", "1 for the step's status in the last run.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_status{step=%q,status=%q} 1\n", s.Name, s.Status)
	}
	help("harden_step_changes", "gauge", "Changes applied (dry-run: planned) by the step.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_changes{step=%q} %d\n", s.Name, len(s.Changes))
	}
	help("harden_step_findings", "gauge", "Findings of the step by severity.")
	for _, s := range r.Steps {
		for _, sev := range []Severity{Info, Warning, Critical} {
			n := 0
			for _, f := range s.Findings {
				if f.Severity == sev {
					n++
				}
			}
			fmt.Fprintf(&b, "harden_step_findings{step=%q,severity=%q} %d\n", s.Name, sev, n)
		}
	}
	help("harden_step_duration_seconds", "gauge", "Duration of the step.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_duration_seconds{step=%q} %g\n", s.Name, s.DurationSeconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
