package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/stretchr/testify/require"
)

// benchRules are 500 distinct rules of the two common shapes: file watches and syscall
// rules with conditions.
func benchRules() []string {
	var out []string
	for i := range 250 {
		out = append(out, fmt.Sprintf("-a always,exit -F path=/etc/harden-bench-%d -F perm=wa -F key=bench", i))
		out = append(out, fmt.Sprintf("-a always,exit -F arch=b64 -S openat,openat2 -F exit=-EACCES -F auid=%d -F key=bench", 1000+i))
	}
	return out
}

// BenchmarkLoad500 loads the same 500 rules into an empty kernel three ways: the audit step
// (plan, apply and the runner's re-plan, as at boot), our netlink client alone, and
// `auditctl -R` of the same file. bench/audit.sh prints the ratios.
func BenchmarkLoad500(b *testing.B) {
	need.Tool(b, "auditctl")
	conn := hostaudit.Lock(b)
	ctx := context.Background()
	lines := benchRules()
	file := filepath.Join(b.TempDir(), "bench.rules")
	require.NoError(b, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	parser := &auditrule.Parser{}
	var rules []*auditrule.Rule
	for _, l := range lines {
		r, err := parser.ParseRule(l)
		require.NoError(b, err)
		rules = append(rules, r)
	}
	loaded := func(b *testing.B) {
		b.StopTimer()
		raw, err := conn.ListRulesRaw(ctx)
		require.NoError(b, err)
		require.Len(b, raw, 500)
		require.NoError(b, conn.DeleteAllRules(ctx))
		b.StartTimer()
	}
	require.NoError(b, conn.DeleteAllRules(ctx))

	b.Run("harden-step", func(b *testing.B) {
		p := testPolicy(false, lines...)
		p.Audit.Baseline = false
		env := enginetest.Env(b, p, nil)
		env.Log.Logger.SetLevel(0) // quiet: the runner logs every change
		for b.Loop() {
			s := New(conn)
			plan, err := s.Plan(ctx, env)
			require.NoError(b, err)
			require.NoError(b, s.Apply(ctx, env, plan))
			again, err := s.Plan(ctx, env)
			require.NoError(b, err)
			require.Empty(b, again.Changes)
			loaded(b)
			b.StopTimer()
			require.NoError(b, os.RemoveAll(env.Root.Path("/etc")))
			b.StartTimer()
		}
	})
	b.Run("harden-client", func(b *testing.B) {
		for b.Loop() {
			require.NoError(b, conn.AddRules(ctx, rules))
			loaded(b)
		}
	})
	b.Run("auditctl-R", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command("auditctl", "-R", file).CombinedOutput()
			require.NoError(b, err, "%s", out)
			loaded(b)
		}
	})
}
