package sshd_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/steps/sshd"
)

// countingExec runs real programs and counts the OpenSSH probes among them.
type countingExec struct {
	mu     sync.Mutex
	probes int
}

func (c *countingExec) Run(ctx context.Context, cmd command.Cmd) (command.Result, error) {
	if a := strings.Join(cmd.Args, " "); strings.HasPrefix(a, "-Q ") || a == "-G -T -f /dev/null" {
		c.mu.Lock()
		c.probes++
		c.mu.Unlock()
	}
	return command.Exec{}.Run(ctx, cmd)
}

func (c *countingExec) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probes
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

	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	rec, found, err := env.Root.ReadFileIfExists(sshd.ProbeRecord)
	require.NoError(t, err)
	require.True(t, found, "apply records the answers")

	before := execs.count()
	again, err := sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, again.Changes)
	assert.Equal(t, before, execs.count(), "a converged plan with the record asks nothing")

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
