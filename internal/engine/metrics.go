package engine

import (
	"fmt"
	"io"
	"strings"
)

// WriteMetrics writes the report in node_exporter's textfile-collector format, so a fleet's
// Prometheus sees every machine's last run: per-step status, changes, findings, duration.
// Every series carries dry_run, so the apply file and the drift timer's dry-run file can sit
// in the same collector directory without duplicate series.
func (r *Report) WriteMetrics(w io.Writer) error {
	var b strings.Builder
	dr := fmt.Sprintf("dry_run=%q", fmt.Sprint(r.DryRun))
	gauge := func(name, text string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, text, name)
	}
	gauge("harden_last_run_timestamp_seconds", "Start of harden's last run (Unix time).")
	fmt.Fprintf(&b, "harden_last_run_timestamp_seconds{%s} %d\n", dr, r.Started.Unix())
	gauge("harden_last_run_success", "1 if the last run did not fail.")
	fmt.Fprintf(&b, "harden_last_run_success{%s} %d\n", dr, b2i(!r.Failed()))
	gauge("harden_last_run_duration_seconds", "Duration of the last run.")
	fmt.Fprintf(&b, "harden_last_run_duration_seconds{%s} %g\n", dr, r.DurationSeconds)
	gauge("harden_fail_closed", "1 if the policy did not load and the default firewall was applied.")
	fmt.Fprintf(&b, "harden_fail_closed{%s} %d\n", dr, b2i(r.FailClosed))
	gauge("harden_step_status", "1 for the step's status in the last run.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_status{%s,step=%q,status=%q} 1\n", dr, s.Name, s.Status)
	}
	gauge("harden_step_changes", "Changes applied (dry-run: planned) by the step.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_changes{%s,step=%q} %d\n", dr, s.Name, len(s.Changes))
	}
	gauge("harden_step_refused_changes", "Changes the machine refused (a sysctl the kernel keeps, a failed signature update).")
	for _, s := range r.Steps {
		n := 0
		for _, c := range s.Changes {
			if c.Refused != "" {
				n++
			}
		}
		fmt.Fprintf(&b, "harden_step_refused_changes{%s,step=%q} %d\n", dr, s.Name, n)
	}
	gauge("harden_journal_errors", "Journal records of the last run that could not be written.")
	fmt.Fprintf(&b, "harden_journal_errors{%s} %d\n", dr, len(r.JournalErrors))
	gauge("harden_step_findings", "Findings of the step by severity.")
	for _, s := range r.Steps {
		for _, sev := range []Severity{Info, Warning, Critical} {
			n := 0
			for _, f := range s.Findings {
				if f.Severity == sev {
					n++
				}
			}
			fmt.Fprintf(&b, "harden_step_findings{%s,step=%q,severity=%q} %d\n", dr, s.Name, sev, n)
		}
	}
	gauge("harden_step_duration_seconds", "Duration of the step.")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "harden_step_duration_seconds{%s,step=%q} %g\n", dr, s.Name, s.DurationSeconds)
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
