package proc

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExited(t *testing.T) {
	assert.False(t, Exited(os.Getpid()), "this test is running")
	c := exec.Command("sleep", "30")
	require.NoError(t, c.Start())
	assert.False(t, Exited(c.Process.Pid), "a sleeping child")
	require.NoError(t, syscall.Kill(c.Process.Pid, syscall.SIGKILL))
	// Killed and not reaped: a zombie until Wait.
	assert.Eventually(t, func() bool { return Exited(c.Process.Pid) }, 5*time.Second, 10*time.Millisecond, "a zombie has exited")
	_ = c.Wait()
	assert.True(t, Exited(c.Process.Pid), "a reaped child")
}
