package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/policy"
)

// raiseDrift turns the daily drift check (harden-audit.timer: a recorded dry-run) into an
// alert when the machine is off policy: something changed it since boot, or a step fails.
// The "regular audits" of rules, services and packages the policy asks for are this alert.
func raiseDrift(ctx context.Context, p *policy.Policy, root string, rep *engine.Report, stderr io.Writer) {
	changes := rep.ChangeCount()
	if changes == 0 && !rep.Failed() {
		return
	}
	var steps []string
	for _, s := range rep.Steps {
		if len(s.Changes) > 0 || s.Status == engine.StatusFailed || s.Status == engine.StatusCancelled || failsOn(s, rep.FailOn) {
			steps = append(steps, s.Name)
		}
	}
	sort.Strings(steps)
	now := time.Now()
	summary := fmt.Sprintf("drift: %d change(s) pending, status %s, steps: %s", changes, rep.Status, strings.Join(steps, ", "))
	if rep.PolicyError != "" {
		summary += "; policy not loaded: " + rep.PolicyError
	}
	a := alert.New(alert.KindDrift, alert.Warning, now, now, summary, map[string]string{
		"changes": strconv.Itoa(changes), "steps": strings.Join(steps, ","), "status": rep.Status, "run_id": rep.RunID,
	})
	if _, err := watch.Raise(ctx, watch.Config{Policy: p, Root: root, Journal: changelog.Auto(stderr)}, a); err != nil {
		fmt.Fprintf(stderr, "harden: drift alert: %v\n", err)
	}
}

// failsOn reports whether a step has a finding at or above run.fail_on.
func failsOn(s *engine.StepReport, failOn string) bool {
	for _, f := range s.Findings {
		if f.Severity.AtLeast(failOn) {
			return true
		}
	}
	return false
}
