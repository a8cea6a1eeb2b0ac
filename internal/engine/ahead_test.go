package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
)

// probe is a fake step for plans made ahead. Its plan reads a value that other steps may
// change (reads), may wait at a barrier until every step has started planning, counts its
// plans and fails if two of them overlap.
type probe struct {
	name     string
	reads    func() int // what the plan finds; its finding's message says it
	want     int        // a plan with reads() != want has one change (setting it to want)
	set      func(int)
	barrier  *sync.WaitGroup // Done then Wait: passes only if all plans run at once
	slow     time.Duration   // each plan takes this long
	failOnce error           // the first plan fails with it
	plans    atomic.Int32
	inFlight atomic.Int32
	overlap  atomic.Bool
}

func (p *probe) Name() string { return p.name }

func (p *probe) Plan(ctx context.Context, _ *engine.Env) (*engine.Plan, error) {
	n := p.plans.Add(1)
	if p.inFlight.Add(1) > 1 {
		p.overlap.Store(true)
	}
	defer p.inFlight.Add(-1)
	if p.barrier != nil && n == 1 {
		p.barrier.Done()
		done := make(chan struct{})
		go func() { p.barrier.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	time.Sleep(p.slow)
	if p.failOnce != nil && n == 1 {
		return nil, p.failOnce
	}
	plan := &engine.Plan{}
	v := 0
	if p.reads != nil {
		v = p.reads()
	}
	plan.Find(&engine.Finding{ID: p.name + ".read", Severity: engine.Info, Object: p.name, Message: itoa(v)})
	if p.set != nil && v != p.want {
		plan.Add(&engine.Change{Object: p.name, Action: engine.ActionSet, Before: itoa(v), After: itoa(p.want),
			Do: func(context.Context) error { p.set(p.want); return nil }})
	}
	return plan, nil
}

func (p *probe) Apply(ctx context.Context, _ *engine.Env, plan *engine.Plan) error {
	return engine.ApplyChanges(ctx, plan)
}

func runAhead(t *testing.T, opts engine.Options, steps ...engine.Step) *engine.Report {
	t.Helper()
	env := enginetest.Env(t, nil, nil)
	env.Policy.Run.StepTimeout = policy.Duration(5 * time.Second)
	r := &engine.Runner{Steps: steps, Log: changelog.New(&changelog.Memory{}, env.RunID), PlanAhead: true}
	rep, err := r.Run(context.Background(), env, opts)
	require.NoError(t, err)
	return rep
}

func TestPlanAheadPlansEveryStepAtOnce(t *testing.T) {
	// Each plan waits until all three have started: planned one after another, the first
	// would wait out its timeout.
	steps := []*probe{{name: "a"}, {name: "b"}, {name: "c"}}
	reset := func() []engine.Step {
		barrier := &sync.WaitGroup{}
		barrier.Add(len(steps))
		out := []engine.Step{}
		for _, s := range steps {
			s.barrier = barrier
			s.plans.Store(0)
			out = append(out, s)
		}
		return out
	}
	for _, opts := range []engine.Options{{DryRun: true}, {}} {
		rep := runAhead(t, opts, reset()...)
		require.NoError(t, rep.Err)
		for _, s := range steps {
			assert.EqualValues(t, 1, s.plans.Load(), "%s: a converged step plans once (dry-run %v)", s.name, opts.DryRun)
		}
	}

	// The control: without PlanAhead the same steps cannot meet at the barrier.
	env := enginetest.Env(t, nil, nil)
	env.Policy.Run.StepTimeout = policy.Duration(100 * time.Millisecond)
	rep, err := (&engine.Runner{Steps: reset(), Log: changelog.New(&changelog.Memory{}, env.RunID)}).Run(context.Background(), env, engine.Options{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status, "in turn, the first plan waits for the others forever")
}

func TestPlanAheadIsMadeAgainAfterAnEarlierStepChangedTheMachine(t *testing.T) {
	var value atomic.Int32
	a := &probe{name: "a", reads: func() int { return int(value.Load()) }, want: 1, set: func(v int) { value.Store(int32(v)) }}
	b := &probe{name: "b", reads: func() int { return int(value.Load()) }, slow: 20 * time.Millisecond}
	rep := runAhead(t, engine.Options{}, a, b)
	require.NoError(t, rep.Err)
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)
	require.Len(t, rep.Steps[1].Findings, 1)
	assert.Equal(t, "1", rep.Steps[1].Findings[0].Message, "b reports the machine after a's change, not the one it read ahead")
	assert.EqualValues(t, 2, b.plans.Load(), "b planned ahead, then again in turn")
	assert.False(t, b.overlap.Load(), "b's plans never overlap: its turn waits for the plan made ahead")

	// A dry-run changes nothing, so every plan made ahead is the plan.
	value.Store(0)
	a.plans.Store(0)
	b.plans.Store(0)
	rep = runAhead(t, engine.Options{DryRun: true}, a, b)
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
	assert.Equal(t, "0", rep.Steps[1].Findings[0].Message)
	assert.EqualValues(t, 1, a.plans.Load())
	assert.EqualValues(t, 1, b.plans.Load())
}

func TestPlanAheadWithChangesIsMadeAgainBeforeItsApply(t *testing.T) {
	var value atomic.Int32
	a := &probe{name: "a", reads: func() int { return int(value.Load()) }, want: 1, set: func(v int) { value.Store(int32(v)) }}
	rep := runAhead(t, engine.Options{}, a)
	require.NoError(t, rep.Err)
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)
	assert.EqualValues(t, 3, a.plans.Load(), "ahead, again before the apply, and the verifying plan")
}

func TestPlanAheadThatFailedIsMadeAgainInTurn(t *testing.T) {
	a := &probe{name: "a", failOnce: errors.New("D-Bus busy")}
	rep := runAhead(t, engine.Options{DryRun: true}, a)
	require.NoError(t, rep.Err)
	assert.Equal(t, engine.StatusOK, rep.Steps[0].Status)
	assert.EqualValues(t, 2, a.plans.Load())

	// A plan that ran out of its step's time is not waited for twice.
	env := enginetest.Env(t, nil, nil)
	env.Policy.Run.Timeouts = map[string]policy.Duration{"slow": policy.Duration(50 * time.Millisecond)}
	var plans []string
	slow := &counter{name: "slow", block: true, order: &plans}
	r := &engine.Runner{Steps: []engine.Step{slow}, Log: changelog.New(&changelog.Memory{}, env.RunID), PlanAhead: true}
	rep, err := r.Run(context.Background(), env, engine.Options{})
	require.NoError(t, err)
	assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	assert.Contains(t, rep.Steps[0].Error, "deadline exceeded")
	assert.Equal(t, []string{"slow"}, plans)
}
