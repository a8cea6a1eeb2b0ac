package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people, like a diff: each change with its before and
// after and the policy field that asks for it, then findings, then one summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := "apply"
	if r.DryRun {
		mode = "apply --dry-run"
	}
	fmt.Fprintf(&b, "harden %s  policy %s  run %s\n", mode, r.Policy, r.RunID)
	if r.PolicyError != "" {
		fmt.Fprintf(&b, "\n!! policy not loaded: %s\n", r.PolicyError)
		if r.FailClosed {
			fmt.Fprintf(&b, "!! failing closed: only the embedded default firewall is applied\n")
		}
	}
	for _, s := range r.Steps {
		if s.Status == StatusSkipped {
			continue
		}
		writeStep(&b, s, r.DryRun, r.FailOn)
	}
	b.WriteString("\n" + r.summaryLine() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStep(b *strings.Builder, s *StepReport, dryRun bool, failOn string) {
	fmt.Fprintf(b, "\n%s: %s\n", s.Name, stepHeadline(s, failOn))
	for _, c := range s.Changes {
		mark := "~"
		switch c.Action {
		case ActionCreate, ActionEnable, ActionStart, ActionUnmask:
			mark = "+"
		case ActionDelete, ActionRemove, ActionMask, ActionStop:
			mark = "-"
		}
		if !dryRun && !c.Applied {
			mark = "x" // planned but not applied (the step failed before it)
		}
		fmt.Fprintf(b, "  %s %s %s\n", mark, c.Action, c.Object)
		if c.Before != "" || c.After != "" {
			fmt.Fprintf(b, "      %s -> %s\n", orNone(c.Before), orNone(c.After))
		}
		if c.Reason != "" {
			fmt.Fprintf(b, "      why: %s\n", c.Reason)
		}
		for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
			if line != "" {
				fmt.Fprintf(b, "      %s\n", line)
			}
		}
	}
	for _, f := range s.Findings {
		fmt.Fprintf(b, "  ! %s %s: %s", f.Severity, f.ID, f.Message)
		if f.Reason != "" {
			fmt.Fprintf(b, " [%s]", f.Reason)
		}
		b.WriteString("\n")
	}
	if s.Error != "" {
		fmt.Fprintf(b, "  error: %s\n", s.Error)
	}
}

// stepHeadline is a step's status for people. "ok" only ever means nothing to change and
// nothing found: a step that changes nothing but reports a finding at run.fail_on is off
// policy, and the headline says so next to the finding (the JSON status stays "ok": the
// step itself did not fail).
func stepHeadline(s *StepReport, failOn string) string {
	if len(s.Findings) == 0 {
		return s.Status
	}
	failing := 0
	for _, f := range s.Findings {
		if f.Severity.AtLeast(failOn) {
			failing++
		}
	}
	head := s.Status
	if s.Status == StatusOK {
		head = "nothing to change"
	}
	if failing > 0 {
		return fmt.Sprintf("%s, but off policy: %d finding(s) at or above run.fail_on (%s)", head, failing, failOn)
	}
	return fmt.Sprintf("%s; %d finding(s) below run.fail_on", head, len(s.Findings))
}

func (r *Report) summaryLine() string {
	verb := "applied"
	if r.DryRun {
		verb = "to apply"
	}
	counts := r.FindingCount()
	sev := make([]string, 0, len(counts))
	for s, n := range counts {
		sev = append(sev, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(sev)
	failed, failing := 0, 0
	for _, s := range r.Steps {
		if s.Status == StatusFailed || s.Status == StatusCancelled {
			failed++
		}
		for _, f := range s.Findings {
			if f.Severity.AtLeast(r.FailOn) {
				failing++
			}
		}
	}
	// The headline names what made the run fail: a step, the policy, or (a run that went
	// fine but found the machine off policy) only findings.
	head := r.Status
	switch {
	case r.Status != StatusFailed:
	case r.PolicyError != "":
		head = "failed: policy not loaded"
	case failed > 0:
		head = fmt.Sprintf("failed: %d step(s) failed", failed)
	default:
		head = fmt.Sprintf("off policy: %d finding(s) at or above run.fail_on (%s)", failing, r.FailOn)
	}
	sep := ": "
	if strings.Contains(head, ":") {
		sep = "; "
	}
	line := fmt.Sprintf("%s%s%d change(s) %s, findings: ", head, sep, r.ChangeCount(), verb)
	if len(sev) == 0 {
		line += "none"
	} else {
		line += strings.Join(sev, ", ")
	}
	return line
}
