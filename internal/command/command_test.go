package command

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCapturesOutputAndExitCode(t *testing.T) {
	res, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}})
	require.Error(t, err)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, "out\n", string(res.Stdout))
	assert.Contains(t, err.Error(), "sh -c echo out; echo err >&2; exit 3: exit status 3: err")
}

func TestDeadlineKillsTheWholeProcessGroup(t *testing.T) {
	start := time.Now()
	// The grandchild holds stdout open: without the group kill and WaitDelay, Run would
	// wait for it.
	_, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "sleep 30 & sleep 30"}, Timeout: 300 * time.Millisecond})
	require.Error(t, err)
	assert.True(t, IsTimeout(err), err.Error())
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestOutputIsCapped(t *testing.T) {
	res, err := Exec{}.Run(context.Background(), Cmd{Name: "head", Args: []string{"-c", "3000000", "/dev/zero"}})
	require.NoError(t, err)
	assert.Less(t, len(res.Stdout), maxOutput+100)
	assert.Contains(t, string(res.Stdout[maxOutput:]), "bytes dropped")
}
