package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/harden-dev/harden/internal/policy"
)

// harden boot applies the same steps, in the same order, as harden apply; its own services
// step comes last.
func TestBootStepsAreApplysWithoutTheSystemdServicesStep(t *testing.T) {
	var names []string
	for _, s := range bootSteps() {
		names = append(names, s.Name())
	}
	assert.Equal(t, policy.StepNames[:len(policy.StepNames)-1], names)
	assert.Equal(t, "services", policy.StepNames[len(policy.StepNames)-1])
	// One list: apply's steps are boot's, then freshclam (harden boot runs it in the
	// background) and services.
	var apply []string
	for _, s := range buildSteps(stepOptions{root: "/"}) {
		apply = append(apply, s.Name())
	}
	assert.Equal(t, append(names, "freshclam", "services"), apply)
}
