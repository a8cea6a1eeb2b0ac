package engine

import (
	"time"

	"github.com/harden-dev/harden/internal/changelog"
)

// Report is one run's outcome: printed with --output json and written to run.report.
// Its JSON field names are a contract (dashboards and the drift timer read them).
type Report struct {
	RunID           string        `json:"run_id"`
	Version         string        `json:"version"`
	Host            string        `json:"host"`
	DryRun          bool          `json:"dry_run"`
	Started         time.Time     `json:"started"`
	DurationSeconds float64       `json:"duration_seconds"`
	Policy          string        `json:"policy"`
	PolicyError     string        `json:"policy_error,omitempty"`
	FailClosed      bool          `json:"fail_closed"`
	FailOn          string        `json:"fail_on"`
	Status          string        `json:"status"` // ok | changed | pending | failed
	Steps           []*StepReport `json:"steps"`
	// JournalErrors are the records the journal did not take (the run then failed).
	JournalErrors []string `json:"journal_errors,omitempty"`

	// Err joins every step error (nil when none); not part of the JSON, the steps carry them.
	Err error `json:"-"`
}

// StepReport is one step's part of the report.
type StepReport struct {
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	Changes         []*Change  `json:"changes"`
	Findings        []*Finding `json:"findings"`
	Error           string     `json:"error,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	// FromRun is set on a step the saved report carries over from an earlier run (this run
	// left the step out): that run's id.
	FromRun string `json:"from_run,omitempty"`
}

func newReport(env *Env, opts Options) *Report {
	r := &Report{
		RunID: env.RunID, Version: opts.Version, Host: opts.Host, DryRun: opts.DryRun,
		Started: env.Now(), Policy: opts.PolicyName, FailClosed: opts.FailClosed,
		FailOn: env.Policy.Run.FailOn, Steps: []*StepReport{},
	}
	if opts.PolicyError != nil {
		r.PolicyError = opts.PolicyError.Error()
	}
	return r
}

func (r *Report) finish(now time.Time, err error) {
	r.DurationSeconds = now.Sub(r.Started).Seconds()
	r.Err = err
	r.restatus()
}

// restatus sets Status from the steps.
func (r *Report) restatus() {
	switch {
	case r.Failed():
		r.Status = StatusFailed
	case r.ChangeCount() == 0:
		r.Status = StatusOK
	case r.DryRun:
		r.Status = StatusPending
	default:
		r.Status = StatusChanged
	}
}

// Failed reports whether the run failed: a bad policy (even though the default firewall was
// applied), a failed or cancelled step, or a finding at or above run.fail_on.
func (r *Report) Failed() bool {
	if r.FailClosed || r.PolicyError != "" || len(r.JournalErrors) > 0 {
		return true
	}
	for _, s := range r.Steps {
		if s.Status == StatusFailed || s.Status == StatusCancelled {
			return true
		}
		for _, f := range s.Findings {
			if f.Severity.AtLeast(r.FailOn) {
				return true
			}
		}
	}
	return false
}

// ChangeCount is the number of changes applied (or, in dry-run, planned).
func (r *Report) ChangeCount() int {
	n := 0
	for _, s := range r.Steps {
		for _, c := range s.Changes {
			if r.DryRun || c.Applied {
				n++
			}
		}
	}
	return n
}

// RefusedCount is the number of changes the machine refused.
func (r *Report) RefusedCount() int {
	n := 0
	for _, s := range r.Steps {
		for _, c := range s.Changes {
			if c.Refused != "" {
				n++
			}
		}
	}
	return n
}

// FindingCount counts findings by severity.
func (r *Report) FindingCount() map[Severity]int {
	n := map[Severity]int{}
	for _, s := range r.Steps {
		for _, f := range s.Findings {
			n[f.Severity]++
		}
	}
	return n
}

// ExitCode is the CLI contract: 0 ok and nothing changed; 1 failed (bad policy, a failed
// step, a finding at or above fail_on); with detailed, 2 when changes were made (or, in
// dry-run, would be made).
func (r *Report) ExitCode(detailed bool) int {
	switch {
	case r.Failed():
		return 1
	case detailed && r.ChangeCount() > 0:
		return 2
	}
	return 0
}

func (r *Report) summary() changelog.Summary {
	failed, findings := 0, 0
	for _, s := range r.Steps {
		if s.Status == StatusFailed || s.Status == StatusCancelled {
			failed++
		}
		findings += len(s.Findings)
	}
	return changelog.Summary{
		DryRun: r.DryRun, Status: r.Status, Policy: r.Policy, Changes: r.ChangeCount(),
		Refused: r.RefusedCount(), Findings: findings, Failed: failed, Version: r.Version,
		Duration: time.Duration(r.DurationSeconds * float64(time.Second)),
	}
}
