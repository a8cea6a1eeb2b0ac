package command

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/testutil/proc"
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

// At its deadline a program gets SIGTERM and time to finish what it is doing (dpkg writing
// its status file), not SIGKILL in the middle of it.
func TestDeadlineSendsSIGTERMAndWaitsForTheGrace(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "cleaned-up")
	script := "trap 'sleep 0.3; echo done > " + marker + "; exit 143' TERM; echo started; sleep 30 & wait"
	res, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", script},
		Timeout: 200 * time.Millisecond, Grace: 5 * time.Second})
	require.Error(t, err)
	assert.True(t, IsTimeout(err), err.Error())
	assert.Contains(t, err.Error(), "stopped (SIGTERM)")
	b, rerr := os.ReadFile(marker)
	require.NoError(t, rerr, "the program's TERM handler ran to its end")
	assert.Equal(t, "done\n", string(b))
	assert.Equal(t, 143, res.ExitCode)
	assert.Less(t, res.Duration, 4*time.Second, "it did not wait for the whole grace once the group was gone")
}

// A program that ignores SIGTERM, and its children, are killed when the grace ends.
func TestProgramIgnoringSIGTERMIsKilledAfterTheGrace(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	start := time.Now()
	_, err := Exec{}.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c",
		"trap '' TERM; sh -c 'trap \"\" TERM; echo $$ > " + pidFile + "; sleep 30' & wait; wait"},
		Timeout: 300 * time.Millisecond, Grace: 500 * time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "killed (SIGKILL) 500ms after SIGTERM")
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 800*time.Millisecond, "the grace was given")
	assert.Less(t, elapsed, 5*time.Second)
	b, rerr := os.ReadFile(pidFile)
	require.NoError(t, rerr)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	require.Eventually(t, func() bool { return proc.Exited(pid) }, 2*time.Second, 20*time.Millisecond,
		"the grandchild is gone too")
}

func TestOutputIsCapped(t *testing.T) {
	res, err := Exec{}.Run(context.Background(), Cmd{Name: "head", Args: []string{"-c", "3000000", "/dev/zero"}})
	require.NoError(t, err)
	assert.Less(t, len(res.Stdout), maxOutput+100)
	assert.Contains(t, string(res.Stdout[maxOutput:]), "bytes dropped")
}
