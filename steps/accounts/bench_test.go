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

// BenchmarkPlanStockDebian is the first plan on a fresh image (and every `harden apply
// --dry-run` on one): Debian's own pwquality.conf and login.defs, a dozen keys to set in each,
// a text diff of each file. It allocated ~1 MB a plan while kvconf copied every line of
// login.defs for every key it set.
func BenchmarkPlanStockDebian(b *testing.B) {
	env := newEnv(b, nil)
	s := New()
	for b.Loop() {
		p, err := s.Plan(context.Background(), env)
		require.NoError(b, err)
		require.NotEmpty(b, p.Changes)
	}
}
