// Package engine runs harden's steps: the Step contract, the plan of changes and findings a
// step produces, and the runner that orders steps, applies their plans, proves convergence by
// planning again, and reports.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Step is one area of the machine harden owns (firewall, audit, sshd, ...).
//
// Plan must be read-only: it observes the machine, compares it with env.Policy and lists the
// changes that would bring it there. Apply makes exactly those changes and nothing else. After
// Apply the runner calls Plan again; a step whose second plan still has changes has failed,
// which is how idempotence is enforced on every boot, not only in tests.
type Step interface {
	Name() string
	Plan(ctx context.Context, env *Env) (*Plan, error)
	Apply(ctx context.Context, env *Env, p *Plan) error
}

// Recorder is a step that keeps what is slow to observe and only changes with the machine's
// software (what an installed program answers to a probe) between runs. The runner calls
// Record once the step's run has ended without error, converged or applied, and never in a
// dry-run: Plan stays read-only and a dry-run writes nothing, yet a converged boot still
// records what it had to ask. Record is a cache write: it cannot fail the run.
type Recorder interface {
	Record(ctx context.Context, env *Env)
}

// Plan is what a step found: changes it can make and findings it cannot fix.
type Plan struct {
	Changes  []*Change  `json:"changes"`
	Findings []*Finding `json:"findings"`
}

// Add appends changes to the plan.
func (p *Plan) Add(c ...*Change) { p.Changes = append(p.Changes, c...) }

// Find appends a finding to the plan.
func (p *Plan) Find(f *Finding) { p.Findings = append(p.Findings, f) }

// Empty reports whether the plan has nothing to change (findings do not count: they are
// what a step cannot change).
func (p *Plan) Empty() bool { return p == nil || len(p.Changes) == 0 }

// Actions a Change may name. Steps may use others when none fits; these keep reports uniform.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionDelete  = "delete"
	ActionSet     = "set"
	ActionMask    = "mask"
	ActionUnmask  = "unmask"
	ActionEnable  = "enable"
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionReload  = "reload"
	ActionRemove  = "remove"
	// ActionQueue leaves the change to a later step of the same run (a daemon-reload the
	// services step makes together with its own).
	ActionQueue = "queue"
)

// Change is one planned change to one object.
type Change struct {
	// Object names what changes the way an operator would search for it:
	// "nft table inet harden", "/etc/ssh/sshd_config.d/00-harden.conf", "unit cups.service".
	Object string `json:"object"`
	Action string `json:"action"`
	// Before and After are short, one-line states ("yes" -> "no", "enabled" -> "masked").
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Diff is an optional multi-line unified-style difference for people (files, rulesets),
	// at most MaxDiffLines lines in reports (the runner bounds it).
	Diff string `json:"diff,omitempty"`
	// Reason names the policy field (or built-in rule) that asks for the change.
	Reason string `json:"reason"`
	// Applied is set by the runner once Do returned without error.
	Applied bool `json:"applied"`
	// Refused says why the machine refused the change (a sysctl the kernel keeps, a
	// signature update freshclam could not make): it was tried and did not happen, and is
	// recorded as such, never as applied. Set when Do returns a *Refusal.
	Refused string `json:"refused,omitempty"`
	// Do makes the change. Steps that apply a whole plan at once (one netlink transaction)
	// may leave Do nil and do the work in Apply.
	Do func(ctx context.Context) error `json:"-"`
	// Timeout bounds Do (0: the step's timeout). Do runs to its end under it, whatever
	// happens to the run meanwhile (SIGTERM): see ChangeContext.
	Timeout time.Duration `json:"-"`
}

// Refusal is the error Do returns when the machine refused the change: the run goes on,
// the change is recorded as refused, and the step's next plan reports why.
type Refusal struct{ Why string }

func (r *Refusal) Error() string { return "refused: " + r.Why }

// Refuse returns a *Refusal.
func Refuse(format string, args ...any) error {
	return &Refusal{Why: fmt.Sprintf(format, args...)}
}

func (c *Change) String() string {
	s := fmt.Sprintf("%s %s", c.Action, c.Object)
	if c.Before != "" || c.After != "" {
		s += fmt.Sprintf(": %s -> %s", orNone(c.Before), orNone(c.After))
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Severity of a finding. The policy's run.fail_on turns findings at or above a severity into
// a failed run.
type Severity string

const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 3
	case Warning:
		return 2
	case Info:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as min ("none" or "" is never reached).
func (s Severity) AtLeast(min string) bool {
	m := Severity(min).rank()
	return m > 0 && s.rank() >= m
}

// Finding is something a step sees but does not (or cannot yet) fix.
type Finding struct {
	// ID is stable and dotted, step first: "os.image-too-old", "packages.unapproved".
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Object   string   `json:"object,omitempty"`
	Message  string   `json:"message"`
	// Reason names the policy field the finding is judged against.
	Reason string `json:"reason,omitempty"`
}

// ApplyChanges runs each change's Do in order and marks it applied (or refused). It stops at
// the first error, and between changes when ctx is cancelled (SIGTERM at shutdown) or the
// step's time is up: a change is never interrupted half-way by the runner, only not started.
func ApplyChanges(ctx context.Context, p *Plan) error {
	for _, c := range p.Changes {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cancelled before %s: %w", c, err)
		}
		if c.Do == nil {
			return fmt.Errorf("change %q has no Do function (step bug)", c)
		}
		if err := RunChange(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	return nil
}

// RunChange runs one change's Do under ChangeContext and records the outcome: Applied when
// Do returned nil, Refused when it returned a *Refusal (not an error of the step).
func RunChange(ctx context.Context, c *Change) error {
	cctx, cancel := ChangeContext(ctx, c.Timeout)
	defer cancel()
	err := c.Do(cctx)
	var r *Refusal
	switch {
	case errors.As(err, &r):
		c.Refused = r.Why
		return nil
	case err != nil:
		return err
	}
	c.Applied = true
	return nil
}

// DefaultChangeTimeout bounds a change when neither it nor its step says otherwise.
const DefaultChangeTimeout = 2 * time.Minute

type stepTimeoutKey struct{}

// ChangeContext is the context one change runs under: the run's values but not its
// cancellation, so a signal or the step's timeout never stops a change in the middle (a
// dpkg --purge killed half-way leaves a half-removed package), and its own deadline:
// timeout, or the step's timeout when 0. Steps that apply a whole plan themselves use it
// for each unit of work; ApplyChanges uses it for every Do.
func ChangeContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = DefaultChangeTimeout
		if d, ok := ctx.Value(stepTimeoutKey{}).(time.Duration); ok && d > 0 {
			timeout = d
		}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// withStepTimeout records the step's timeout for ChangeContext.
func withStepTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, stepTimeoutKey{}, d)
}
