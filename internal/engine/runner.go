package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Step statuses in reports.
const (
	StatusOK        = "ok"        // nothing to change
	StatusChanged   = "changed"   // changes applied and the second plan is empty
	StatusPending   = "pending"   // dry-run: changes would be made
	StatusFailed    = "failed"    // plan, apply or convergence failed
	StatusCancelled = "cancelled" // SIGINT/SIGTERM before or during the step
	StatusSkipped   = "skipped"   // not selected (--only), or fail-closed
)

// Options select what a run does.
type Options struct {
	DryRun bool
	// Only limits the run to these steps (names from Step.Name); empty means all.
	Only []string
	// Skip leaves these steps out (harden.service skips what SSH must not wait for: package
	// removal and the signature update have units of their own).
	Skip []string
	// FailClosed: the policy could not be loaded; env.Policy is the embedded default and only
	// the firewall step runs, so a broken policy never leaves a machine open.
	FailClosed  bool
	PolicyError error
	PolicyName  string
	// Record writes the change log even in dry-run (the drift timer records its findings).
	Record  bool
	Version string
	Host    string
}

// FailClosedStep is the step that still runs, with the embedded default, when the policy
// cannot be loaded.
const FailClosedStep = "firewall"

// Runner runs steps in their fixed order.
type Runner struct {
	Steps []Step
	// Log receives applied changes, findings, step failures and the summary. Use a
	// changelog.Discard sink for hand-run dry-runs.
	Log *changelog.Log
	// Stderr gets the records the journal refused (nil: only the report has them).
	Stderr io.Writer
	// PlanAhead makes the plans of all selected steps at once when the run starts (see
	// planAhead); without it each step plans when its turn comes.
	PlanAhead bool
}

// Run runs the selected steps and returns the report. Errors of individual steps are in the
// report (and in Report.Err); Run itself fails only when its input is unusable.
func (r *Runner) Run(ctx context.Context, env *Env, opts Options) (*Report, error) {
	if err := r.checkNames("--only", opts.Only); err != nil {
		return nil, err
	}
	if err := r.checkNames("--skip", opts.Skip); err != nil {
		return nil, err
	}
	rep := newReport(env, opts)
	env.Steps = nil
	for _, s := range r.Steps {
		if r.selected(s.Name(), opts) {
			env.Steps = append(env.Steps, s.Name())
		}
	}
	if opts.FailClosed {
		_ = r.Log.FailClosed(opts.PolicyName, opts.PolicyError)
	}
	var ahead map[string]*aheadPlan
	if r.PlanAhead {
		ahead = r.planAhead(ctx, env, opts)
		defer waitAhead(ahead)
	}
	var errs *multierror.Error
	changed := false // a step before this one applied (or tried to apply) a change
	for _, s := range r.Steps {
		sr := &StepReport{Name: s.Name(), Changes: []*Change{}, Findings: []*Finding{}}
		rep.Steps = append(rep.Steps, sr)
		switch {
		case !r.selected(s.Name(), opts):
			sr.Status = StatusSkipped
			continue
		case ctx.Err() != nil:
			sr.Status = StatusCancelled
			sr.Error = "not started: " + context.Cause(ctx).Error()
			errs = multierror.Append(errs, fmt.Errorf("%s: %s", sr.Name, sr.Error))
			continue
		}
		pre := ahead[s.Name()].usable(changed, opts.DryRun)
		if err := r.runStep(ctx, env, opts, s, sr, pre); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", sr.Name, err))
			_ = r.Log.StepFailed(sr.Name, err)
		} else if rec, ok := s.(Recorder); ok && !opts.DryRun {
			rec.Record(ctx, env)
		}
		changed = changed || (!opts.DryRun && len(sr.Changes) > 0)
		if !opts.DryRun || opts.Record {
			r.logStep(sr)
		}
	}
	rep.finish(env.Now(), errs.ErrorOrNil())
	if !opts.DryRun || opts.Record {
		// The summary's own write error is collected too; the status it carries cannot
		// include it, the report and stderr do.
		_ = r.Log.Run(rep.summary())
	}
	r.reportJournalErrors(rep)
	return rep, nil
}

// reportJournalErrors puts every record the journal did not take into the report (the run
// fails: a change that is not in the audit trail breaks "every change is logged") and on
// Stderr, where an operator or systemd sees it even when the journal is what is broken.
func (r *Runner) reportJournalErrors(rep *Report) {
	for _, err := range r.Log.Errors() {
		rep.JournalErrors = append(rep.JournalErrors, err.Error())
		if r.Stderr != nil {
			fmt.Fprintf(r.Stderr, "harden: journal record not written: %v\n", err)
		}
	}
	if len(rep.JournalErrors) > 0 {
		rep.Status = StatusFailed
	}
}

func (r *Runner) checkNames(flag string, list []string) error {
	for _, name := range list {
		if !slices.ContainsFunc(r.Steps, func(s Step) bool { return s.Name() == name }) {
			names := make([]string, len(r.Steps))
			for i, s := range r.Steps {
				names[i] = s.Name()
			}
			return fmt.Errorf("%s: unknown step %q (steps: %v)", flag, name, names)
		}
	}
	return nil
}

func (r *Runner) selected(name string, opts Options) bool {
	if opts.FailClosed {
		return name == FailClosedStep
	}
	if slices.Contains(opts.Skip, name) {
		return false
	}
	return len(opts.Only) == 0 || slices.Contains(opts.Only, name)
}

// runStep plans, applies and re-plans one step under its own timeout. pre is the step's plan
// made ahead, when it may stand for the plan the step would make now (aheadPlan.usable).
func (r *Runner) runStep(ctx context.Context, env *Env, opts Options, s Step, sr *StepReport, pre *aheadPlan) (err error) {
	start := env.Now()
	defer func() { sr.DurationSeconds = env.Now().Sub(start).Seconds() }()
	if pre != nil {
		// The step's time is its plan's, made while the steps before it ran.
		start = start.Add(-pre.took)
	}
	ctx, cancel := stepContext(ctx, env, s.Name())
	defer cancel()
	defer func() {
		if err != nil {
			sr.Error = err.Error()
			sr.Status = StatusFailed
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				sr.Status = StatusCancelled
			}
		}
	}()

	plan, err := pre.result()
	if pre == nil {
		plan, err = safePlan(ctx, env, s)
	}
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	boundDiffs(plan)
	sr.Changes, sr.Findings = nonNil(plan)
	if plan.Empty() {
		sr.Status = StatusOK
		return nil
	}
	if opts.DryRun {
		sr.Status = StatusPending
		return nil
	}
	if err := safeApply(ctx, env, s, plan); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	markApplied(plan)
	return r.verify(ctx, env, s, sr, plan)
}

// verify plans again after Apply: anything left means the step did not do what it planned.
// The step changed the machine if it applied anything; a plan whose every change was
// refused leaves it as it was ("ok"), and the re-plan's findings say why.
func (r *Runner) verify(ctx context.Context, env *Env, s Step, sr *StepReport, applied *Plan) error {
	again, err := safePlan(ctx, env, s)
	if err != nil {
		return fmt.Errorf("plan after apply: %w", err)
	}
	_, sr.Findings = nonNil(again)
	if !again.Empty() {
		return fmt.Errorf("did not converge: %d change(s) still planned after apply, first: %s",
			len(again.Changes), again.Changes[0])
	}
	sr.Status = StatusOK
	for _, c := range applied.Changes {
		if c.Applied {
			sr.Status = StatusChanged
		}
	}
	return nil
}

// markApplied marks the changes a whole-plan Apply made (those without Do): Apply returned
// nil, so all of them were made, unless the step marked one refused.
func markApplied(p *Plan) {
	for _, c := range p.Changes {
		if c.Do == nil && c.Refused == "" {
			c.Applied = true
		}
	}
}

// stepContext bounds one step's work by its timeout, which the step can read back
// (StepTimeout).
func stepContext(ctx context.Context, env *Env, name string) (context.Context, context.CancelFunc) {
	timeout := stepTimeout(env, name)
	return context.WithTimeout(withStepTimeout(ctx, timeout), timeout)
}

func stepTimeout(env *Env, name string) time.Duration {
	if d, ok := env.Policy.Run.Timeouts[name]; ok && d > 0 {
		return time.Duration(d)
	}
	if d := time.Duration(env.Policy.Run.StepTimeout); d > 0 {
		return d
	}
	return 2 * time.Minute
}

// safePlan and safeApply turn a step's panic into that step's error: one broken step must
// not stop the firewall or the others from being applied.
func safePlan(ctx context.Context, env *Env, s Step) (p *Plan, err error) {
	defer recoverInto(&err)
	p, err = s.Plan(ctx, env)
	if err == nil && p == nil {
		p = &Plan{}
	}
	return p, err
}

func safeApply(ctx context.Context, env *Env, s Step, p *Plan) (err error) {
	defer recoverInto(&err)
	return s.Apply(ctx, env, p)
}

func recoverInto(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
	}
}

// MaxDiffLines bounds a change's Diff in reports, plans and the journal of a unit that
// prints them: a table of 10,000 allow entries is created at every boot, and its whole
// text in every boot's journal helps nobody. What is left out is counted (textdiff.Bound).
const MaxDiffLines = 200

func boundDiffs(p *Plan) {
	for _, c := range p.Changes {
		c.Diff = textdiff.Bound(c.Diff, MaxDiffLines)
	}
}

func nonNil(p *Plan) ([]*Change, []*Finding) {
	c, f := p.Changes, p.Findings
	if c == nil {
		c = []*Change{}
	}
	if f == nil {
		f = []*Finding{}
	}
	return c, f
}

// logStep records what a step changed, what the machine refused and what the step found,
// for audit. A change is recorded as applied only if it was.
func (r *Runner) logStep(sr *StepReport) {
	for _, c := range sr.Changes {
		rec := changelog.Change{Step: sr.Name, Object: c.Object, Action: c.Action,
			Before: c.Before, After: c.After, Reason: c.Reason}
		switch {
		case c.Applied:
			_ = r.Log.Change(rec)
		case c.Refused != "":
			_ = r.Log.Refused(rec, c.Refused)
		}
	}
	for _, f := range sr.Findings {
		_ = r.Log.Finding(changelog.Finding{Step: sr.Name, ID: f.ID, Severity: string(f.Severity),
			Object: f.Object, Message: f.Message, Reason: f.Reason})
	}
}
