package sshd_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/steps/sshd"
)

// countingExec runs real programs and counts the OpenSSH probes among them, and the other
// `sshd -T` runs (the effective values, the drop-in alone).
type countingExec struct {
	mu      sync.Mutex
	probes  int
	answers int
}

func (c *countingExec) Run(ctx context.Context, cmd command.Cmd) (command.Result, error) {
	a := strings.Join(cmd.Args, " ")
	c.mu.Lock()
	switch {
	case strings.HasPrefix(a, "-Q ") || a == "-G -T -f /dev/null":
		c.probes++
	case strings.HasPrefix(a, "-T "):
		c.answers++
	}
	c.mu.Unlock()
	return command.Exec{}.Run(ctx, cmd)
}

func (c *countingExec) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probes
}

func (c *countingExec) answerRuns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers
}

// The first apply asks OpenSSH what it supports and records the answers for these binaries;
// a later run (a new process: a new step) plans from the record without asking, the same
// plan. A record made for other binaries is not trusted. A dry-run never writes it.
func TestProbesRecordedForTheseBinaries(t *testing.T) {
	env := newEnv(t, debianConfig)
	execs := &countingExec{}
	env.Exec = execs

	dry, err := sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotEmpty(t, dry.Changes)
	asked := execs.count()
	require.Equal(t, 5, asked, "four ssh -Q and one sshd -G")
	_, found, err := env.Root.ReadFileIfExists(sshd.ProbeRecord)
	require.NoError(t, err)
	require.False(t, found, "a plan never writes the record")
	enginetest.DryRunChangesNothing(t, env, sshd.New(sshd.Options{}), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	_, found, err = env.Root.ReadFileIfExists(sshd.ProbeRecord)
	require.NoError(t, err)
	require.False(t, found, "nor does a dry-run (engine.Recorder is not called)")

	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	rec, found, err := env.Root.ReadFileIfExists(sshd.ProbeRecord)
	require.NoError(t, err)
	require.True(t, found, "apply records the answers")

	require.Positive(t, execs.answerRuns(), "the apply's re-plan proved the result")
	before, answers := execs.count(), execs.answerRuns()
	again, err := sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, again.Changes)
	assert.Empty(t, again.Findings)
	assert.Equal(t, before, execs.count(), "a converged plan with the record asks nothing")
	assert.Equal(t, answers, execs.answerRuns(), "and runs no sshd -T: the same bytes got the same answer")

	// Another drop-in (a policy change): both questions are new, asked once each by the
	// apply's re-plan, and the record keeps only what the last run used.
	env.Policy.SSHD.LoginGraceTime = policy.Duration(45 * time.Second)
	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	assert.Equal(t, answers+2, execs.answerRuns(), "the effective values and the drop-in alone, once")
	rec, _, err = env.Root.ReadFileIfExists(sshd.ProbeRecord)
	require.NoError(t, err)
	var kept struct {
		Answers map[string]map[string]string `json:"answers"`
	}
	require.NoError(t, json.Unmarshal(rec, &kept))
	require.Len(t, kept.Answers, 2)
	for _, ans := range kept.Answers {
		assert.Equal(t, "45", ans["logingracetime"], "sshd's own normal form, in both")
	}

	// A file harden does not own changes: sshd is asked again, and sees the override.
	answers = execs.answerRuns()
	enginetest.WriteFile(t, env, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "Match User root\n  PasswordAuthentication yes\n")
	changed, err := sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Equal(t, answers+1, execs.answerRuns(), "the effective values only: the drop-in is the same")
	assert.Contains(t, ids(changed.Findings), "sshd.setting-overridden")

	// Group membership decides `Match Group`: a changed /etc/group asks again too. (A run
	// that is not a dry-run records the answers for this configuration first, and a plan
	// after it asks nothing: the control.)
	enginetest.Run(t, env, false, sshd.New(sshd.Options{}))
	answers = execs.answerRuns()
	_, err = sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.Equal(t, answers, execs.answerRuns(), "recorded by the converged run")
	group, _, err := env.Root.ReadFileIfExists("/etc/group")
	require.NoError(t, err)
	enginetest.WriteFile(t, env, "/etc/group", string(group)+"harden-test:x:4242:root\n")
	_, err = sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Equal(t, answers+1, execs.answerRuns())

	// The same record for another sshd (a package upgrade): asked again.
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec, &m))
	m["sshd"].(map[string]any)["size"] = 1
	other, err := json.Marshal(m)
	require.NoError(t, err)
	enginetest.WriteFile(t, env, sshd.ProbeRecord, string(other))
	before = execs.count()
	_, err = sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Equal(t, before+5, execs.count(), "a record for other binaries is not used")
}
