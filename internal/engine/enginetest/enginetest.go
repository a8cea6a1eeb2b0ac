// Package enginetest builds test environments for steps and checks the properties every
// step must have: dry-run changes nothing, apply converges, and a second apply plans nothing.
package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// Now is the fixed clock of test environments.
var Now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Env returns an Env over a fresh temporary root (backups under its
// /var/lib/harden/backup/test), a fixed clock, an environment from vars, and real exec.
// p nil means the embedded default policy.
func Env(t testing.TB, p *policy.Policy, vars map[string]string) *engine.Env {
	t.Helper()
	if p == nil {
		p = policy.Default()
	}
	logger := logrus.New()
	logger.SetOutput(testWriter{t})
	return &engine.Env{
		Policy:   p,
		Root:     fsroot.New(t.TempDir()).WithBackupDir("/var/lib/harden/backup/test"),
		Now:      func() time.Time { return Now },
		Getenv:   func(k string) string { return vars[k] },
		Exec:     command.Exec{},
		Log:      logrus.NewEntry(logger),
		Progress: engine.NoProgress{},
		Restarts: &engine.RestartQueue{},
		RunID:    "0123456789abcdef0123456789abcdef",
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// Run runs steps through the real runner and returns the report and the change log.
func Run(t testing.TB, env *engine.Env, dryRun bool, steps ...engine.Step) (*engine.Report, *changelog.Memory) {
	t.Helper()
	mem := &changelog.Memory{}
	// PlanAhead as harden apply runs them, so every step's tests go through the plans made
	// ahead too (a dry-run's plan and a converged run's plan are the ones made ahead).
	r := &engine.Runner{Steps: steps, Log: changelog.New(mem, env.RunID), PlanAhead: true}
	env.DryRun = dryRun
	rep, err := r.Run(context.Background(), env, engine.Options{DryRun: dryRun, PolicyName: "test"})
	require.NoError(t, err)
	return rep, mem
}

// Converges applies step twice through the runner: the first apply must succeed (the runner
// already re-plans and fails a step that does not converge), the second must plan nothing.
// It returns the first report.
func Converges(t testing.TB, env *engine.Env, step engine.Step) *engine.Report {
	t.Helper()
	first, _ := Run(t, env, false, step)
	requireNoStepError(t, first)
	second, _ := Run(t, env, false, step)
	requireNoStepError(t, second)
	require.Zero(t, second.ChangeCount(), "second apply planned changes: %+v", second.Steps[0].Changes)
	require.Equal(t, engine.StatusOK, second.Steps[0].Status)
	return first
}

// DryRunChangesNothing runs step in dry-run and requires that the digest returned by state
// (a file tree, a ruleset dump, ...) is the same before and after. It returns the report.
func DryRunChangesNothing(t testing.TB, env *engine.Env, step engine.Step, state func() string) *engine.Report {
	t.Helper()
	before := state()
	rep, mem := Run(t, env, true, step)
	requireNoStepError(t, rep)
	require.Equal(t, before, state(), "dry-run changed the machine")
	require.Empty(t, mem.Entries, "dry-run wrote to the change log")
	for _, c := range rep.Steps[0].Changes {
		require.False(t, c.Applied, "dry-run applied %s", c)
	}
	return rep
}

func requireNoStepError(t testing.TB, rep *engine.Report) {
	t.Helper()
	for _, s := range rep.Steps {
		require.NotEqual(t, engine.StatusFailed, s.Status, "step %s failed: %s", s.Name, s.Error)
	}
}

// TreeDigest hashes every path, mode, link target and content under dir, for "did anything
// change" checks.
func TreeDigest(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00" + fi.Mode().String() + "\x00"))
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			h.Write([]byte(target))
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteFile writes a fixture file under the env's root, creating directories.
func WriteFile(t testing.TB, env *engine.Env, name, content string) {
	t.Helper()
	p := env.Root.Path(name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}
