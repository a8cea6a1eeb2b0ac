package engine

import (
	"context"
	"errors"
	"time"
)

// aheadPlan is one step's plan made when the run started, beside the other steps' plans.
//
// Why: a plan only reads (the Step contract), and most of a converged run is waiting on
// reads that are not harden's CPU: OpenSSH's process starts for the sshd step, systemd's
// D-Bus answers for the services step, the kernel's netlink dumps. In turn they add up; at
// once they overlap. Measured: a dry-run of a managed machine's steps 39 -> 34 ms on a
// two-core VM, for ~9% more CPU; under TCG at boot, where both vCPUs are busy anyway, no
// clear gain.
//
// Steps still apply one at a time and in their fixed order. A plan made ahead stands for the
// plan the step would make at its turn only while no step before it changed the machine:
// then the machine it read is the machine the step meets. See usable.
type aheadPlan struct {
	done chan struct{}
	plan *Plan
	err  error
	took time.Duration // how long the plan took
}

// planAhead starts the plan of every selected step, each in its own goroutine under its
// own step timeout, and returns them by step name.
func (r *Runner) planAhead(ctx context.Context, env *Env, opts Options) map[string]*aheadPlan {
	ahead := map[string]*aheadPlan{}
	for _, s := range r.Steps {
		if !r.selected(s.Name(), opts) {
			continue
		}
		a := &aheadPlan{done: make(chan struct{})}
		ahead[s.Name()] = a
		go func() {
			defer close(a.done)
			ctx, cancel := stepContext(ctx, env, s.Name())
			defer cancel()
			start := env.Now()
			a.plan, a.err = safePlan(ctx, env, s)
			a.took = env.Now().Sub(start)
		}()
	}
	return ahead
}

// usable waits for the plan made ahead and returns it if it may stand for the plan the
// step would make now, else nil (the step plans again, in turn). Waiting first also means
// that a step never plans twice at once. A plan made ahead is usable when:
//   - no step before this one applied a change (changed is false): the machine is as read;
//   - it did not fail, or failed on the step's own deadline (planning again would only wait
//     as long again); any other failure may be the company it was made in, so it is retried;
//   - in an apply, it is empty: a plan with changes is made again right before its apply,
//     so what a change does is decided on the machine it changes, and its Do closures
//     never hold a context that ended with the goroutine that made it.
func (a *aheadPlan) usable(changed, dryRun bool) *aheadPlan {
	if a == nil {
		return nil
	}
	<-a.done
	switch {
	case changed:
		return nil
	case a.err != nil:
		if errors.Is(a.err, context.DeadlineExceeded) {
			return a
		}
		return nil
	case !dryRun && !a.plan.Empty():
		return nil
	}
	return a
}

// result is the plan made ahead; nil, nil for no plan.
func (a *aheadPlan) result() (*Plan, error) {
	if a == nil {
		return nil, nil
	}
	return a.plan, a.err
}

// waitAhead waits for every plan made ahead, used or not, so that none still reads the
// machine (or the Env) after the run ended.
func waitAhead(ahead map[string]*aheadPlan) {
	for _, a := range ahead {
		<-a.done
	}
}
