package kernel

import (
	"context"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// BenchmarkPlanConverged is the boot-time cost on a machine already hardened: every key read
// and compared, every file compared, nothing to do.
func BenchmarkPlanConverged(b *testing.B) {
	env := newEnv(b, nil)
	enginetest.Converges(b, env, New(Options{}))
	s := New(Options{})
	for b.Loop() {
		p, err := s.Plan(context.Background(), env)
		require.NoError(b, err)
		require.Empty(b, p.Changes)
	}
}

// BenchmarkPlanHostProcSys plans against this machine's real /proc/sys. Plan only reads, so
// this is safe on any machine; it is the number to compare with the reference below.
func BenchmarkPlanHostProcSys(b *testing.B) {
	env := enginetest.Env(b, nil, nil)
	s := New(Options{ProcSys: "/proc/sys"})
	for b.Loop() {
		_, err := s.Plan(context.Background(), env)
		require.NoError(b, err)
	}
}

// BenchmarkReferenceSysctlRead is what a shell-based tool pays just to read the same keys:
// one `sysctl -n` with every resolved name (write and read-back would cost as much again).
func BenchmarkReferenceSysctlRead(b *testing.B) {
	need.Tool(b, "sysctl")
	env := enginetest.Env(b, nil, nil)
	targets, err := resolve(procSys{root: fsroot.New("/"), dir: "/proc/sys"}, desired(env.Policy), nil)
	require.NoError(b, err)
	args := []string{"-n"}
	for _, t := range targets {
		if exists(t.Path) {
			args = append(args, t.Name)
		}
	}
	for b.Loop() {
		require.NoError(b, exec.Command("sysctl", args...).Run())
	}
}
