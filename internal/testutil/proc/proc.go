// Package proc answers questions tests ask about processes.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Exited reports whether pid has exited: gone, or a zombie. A process killed with its
// parent is an orphan that whoever adopts it (PID 1, or a subreaper the test runs under)
// reaps when it gets to it, and until then kill(pid, 0) still finds it: PID 1 on the CI
// machines (not systemd) reaps late enough to fail a two-second wait.
func Exited(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// "pid (comm) state ...": the state follows the last ')', as comm may hold any byte.
	_, rest, ok := strings.Cut(string(stat[bytes.LastIndexByte(stat, ')')+1:]), " ")
	return ok && strings.HasPrefix(rest, "Z")
}
