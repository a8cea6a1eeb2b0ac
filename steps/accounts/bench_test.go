package accounts

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine/enginetest"
)

// BenchmarkPlanConverged is the boot-time cost on a hardened machine: both files parsed and
// compared, the PAM stack, dpkg status and account databases read. The dpkg status is this
// machine's real one when readable (a few MB on a full system), so the scan cost is real.
func BenchmarkPlanConverged(b *testing.B) {
	env := newEnv(b, nil)
	if st, err := os.ReadFile(DpkgStatusFile); err == nil {
		enginetest.WriteFile(b, env, DpkgStatusFile, string(st))
	}
	enginetest.Converges(b, env, New())
	s := New()
	for b.Loop() {
		p, err := s.Plan(context.Background(), env)
		require.NoError(b, err)
		require.Empty(b, p.Changes)
	}
}
