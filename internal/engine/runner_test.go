package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// counter is a fake step that wants a value to reach `want`, one change per missing unit.
type counter struct {
	name        string
	have, want  int
	stuck       bool // Apply "succeeds" but changes nothing: must fail convergence
	planErr     error
	panicApply  bool
	block       bool // Plan blocks until the context ends
	findings    []*engine.Finding
	applyCalled int
	order       *[]string
}

func (c *counter) Name() string { return c.name }

func (c *counter) Plan(ctx context.Context, _ *engine.Env) (*engine.Plan, error) {
	if c.order != nil {
		*c.order = append(*c.order, c.name)
	}
	if c.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if c.planErr != nil {
		return nil, c.planErr
	}
	p := &engine.Plan{Findings: c.findings}
	for i := c.have; i < c.want; i++ {
		p.Add(&engine.Change{Object: c.name + " value", Action: engine.ActionSet, Before: itoa(i), After: itoa(i + 1),
			Reason: "test.want", Do: func(context.Context) error {
				if !c.stuck {
					c.have++
				}
				return nil
			}})
	}
	return p, nil
}

func (c *counter) Apply(ctx context.Context, _ *engine.Env, p *engine.Plan) error {
	c.applyCalled++
	if c.panicApply {
		panic("boom")
	}
	return engine.ApplyChanges(ctx, p)
}

func itoa(i int) string { return string(rune('0' + i)) }

func run(t *testing.T, opts engine.Options, steps ...engine.Step) (*engine.Report, *changelog.Memory) {
	t.Helper()
	env := enginetest.Env(t, nil, nil)
	mem := &changelog.Memory{}
	r := &engine.Runner{Steps: steps, Log: changelog.New(mem, env.RunID)}
	rep, err := r.Run(context.Background(), env, opts)
	require.NoError(t, err)
	return rep, mem
}

func TestApplyConvergesAndLogsEveryChange(t *testing.T) {
	a := &counter{name: "a", want: 2}
	rep, mem := run(t, engine.Options{}, a)
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)
	assert.Equal(t, 2, a.have)
	assert.Equal(t, 2, rep.ChangeCount())
	assert.Len(t, mem.ByID(changelog.MsgChange), 2)
	assert.Len(t, mem.ByID(changelog.MsgRun), 1)
	assert.Equal(t, 0, rep.ExitCode(false))
	assert.Equal(t, 2, rep.ExitCode(true))

	rep, _ = run(t, engine.Options{}, a)
	assert.Equal(t, engine.StatusOK, rep.Steps[0].Status)
	assert.Equal(t, 0, rep.ExitCode(true))
}

func TestDryRunPlansOnlyAndRecordsNothing(t *testing.T) {
	a := &counter{name: "a", want: 1}
	rep, mem := run(t, engine.Options{DryRun: true}, a)
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
	assert.Zero(t, a.applyCalled)
	assert.Empty(t, mem.Entries)
	assert.Equal(t, 2, rep.ExitCode(true))
	assert.Equal(t, engine.StatusPending, rep.Status)

	// --record (the drift timer) keeps the journal records but still applies nothing.
	_, mem = run(t, engine.Options{DryRun: true, Record: true}, a)
	assert.Zero(t, a.applyCalled)
	assert.Empty(t, mem.ByID(changelog.MsgChange), "nothing was applied, so no change record")
	assert.Len(t, mem.ByID(changelog.MsgRun), 1)
}

func TestStepThatDoesNotConvergeFails(t *testing.T) {
	a := &counter{name: "a", want: 1, stuck: true}
	rep, mem := run(t, engine.Options{}, a)
	assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	assert.Contains(t, rep.Steps[0].Error, "did not converge")
	assert.Equal(t, 1, rep.ExitCode(true))
	assert.Len(t, mem.ByID(changelog.MsgStepFailed), 1)
}

func TestOneFailingStepDoesNotStopTheOthers(t *testing.T) {
	var order []string
	steps := []engine.Step{
		&counter{name: "a", want: 1, order: &order},
		&counter{name: "b", planErr: errors.New("cannot read"), order: &order},
		&counter{name: "c", want: 1, panicApply: true, order: &order},
		&counter{name: "d", want: 1, order: &order},
	}
	rep, _ := run(t, engine.Options{}, steps...)
	got := map[string]string{}
	for _, s := range rep.Steps {
		got[s.Name] = s.Status
	}
	assert.Equal(t, map[string]string{"a": "changed", "b": "failed", "c": "failed", "d": "changed"}, got)
	assert.Contains(t, rep.Steps[2].Error, "panic: boom")
	assert.Equal(t, []string{"a", "a", "b", "c", "d", "d"}, order, "fixed order, re-plan after apply")
	require.Error(t, rep.Err)
	assert.Contains(t, rep.Err.Error(), "b: plan: cannot read")
	assert.Equal(t, engine.StatusFailed, rep.Status)
}

func TestOnlySelectsAndRejectsUnknownSteps(t *testing.T) {
	a, b := &counter{name: "a", want: 1}, &counter{name: "b", want: 1}
	rep, _ := run(t, engine.Options{Only: []string{"b"}}, a, b)
	assert.Equal(t, engine.StatusSkipped, rep.Steps[0].Status)
	assert.Equal(t, engine.StatusChanged, rep.Steps[1].Status)
	assert.Zero(t, a.have)

	env := enginetest.Env(t, nil, nil)
	r := &engine.Runner{Steps: []engine.Step{a}, Log: changelog.New(&changelog.Memory{}, "x")}
	_, err := r.Run(context.Background(), env, engine.Options{Only: []string{"nope"}})
	require.ErrorContains(t, err, `unknown step "nope"`)
}

func TestFailClosedRunsOnlyTheFirewall(t *testing.T) {
	fw, other := &counter{name: engine.FailClosedStep, want: 1}, &counter{name: "sshd", want: 1}
	rep, mem := run(t, engine.Options{FailClosed: true, PolicyError: errors.New("policy.yaml:3:1: bad"), PolicyName: "policy.yaml",
		Only: []string{"sshd"}}, fw, other)
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status, "the firewall runs even when --only excludes it")
	assert.Equal(t, engine.StatusSkipped, rep.Steps[1].Status)
	assert.Zero(t, other.have)
	assert.Equal(t, 1, rep.ExitCode(true), "a bad policy is an error even though the firewall was applied")
	assert.Len(t, mem.ByID(changelog.MsgFailClosed), 1)
	assert.True(t, rep.FailClosed)
}

func TestFailOnSeverity(t *testing.T) {
	warn := &counter{name: "os", findings: []*engine.Finding{{ID: "os.image-too-old", Severity: engine.Warning, Message: "old"}}}
	rep, mem := run(t, engine.Options{}, warn)
	assert.Equal(t, 0, rep.ExitCode(true), "default fail_on is critical")
	assert.Len(t, mem.ByID(changelog.MsgFinding), 1)

	env := enginetest.Env(t, nil, nil)
	env.Policy.Run.FailOn = "warning"
	r := &engine.Runner{Steps: []engine.Step{warn}, Log: changelog.New(&changelog.Memory{}, "x")}
	rep, err := r.Run(context.Background(), env, engine.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.ExitCode(false))
}

func TestTimeoutAndCancellation(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	env.Policy.Run.Timeouts = map[string]policy.Duration{"slow": policy.Duration(50 * time.Millisecond)}
	slow, after := &counter{name: "slow", block: true}, &counter{name: "after", want: 1}
	r := &engine.Runner{Steps: []engine.Step{slow, after}, Log: changelog.New(&changelog.Memory{}, "x")}
	rep, err := r.Run(context.Background(), env, engine.Options{})
	require.NoError(t, err)
	assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	assert.Contains(t, rep.Steps[0].Error, "deadline exceeded")
	assert.Equal(t, engine.StatusChanged, rep.Steps[1].Status, "a step timeout does not stop the run")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	after.have = 0
	rep, err = r.Run(ctx, env, engine.Options{})
	require.NoError(t, err)
	assert.Equal(t, engine.StatusCancelled, rep.Steps[0].Status)
	assert.Equal(t, engine.StatusCancelled, rep.Steps[1].Status)
	assert.Zero(t, after.have)
	assert.Equal(t, 1, rep.ExitCode(false))
}

func TestApplyChangesStopsBetweenChangesWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	p := &engine.Plan{}
	for i := 0; i < 3; i++ {
		p.Add(&engine.Change{Object: "x", Action: "set", Do: func(context.Context) error { n++; cancel(); return nil }})
	}
	err := engine.ApplyChanges(ctx, p)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, n)
	assert.True(t, p.Changes[0].Applied)
	assert.False(t, p.Changes[1].Applied)
}

func TestReportJSONAndText(t *testing.T) {
	rep, _ := run(t, engine.Options{DryRun: true, PolicyName: "p.yaml", Version: "v1"},
		&counter{name: "a", want: 1, findings: []*engine.Finding{{ID: "a.x", Severity: engine.Info, Message: "note"}}},
		&counter{name: "b"})
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	for _, k := range []string{"run_id", "dry_run", "steps", "status", "policy", "version", "started"} {
		assert.Contains(t, doc, k)
	}
	steps := doc["steps"].([]any)
	b := steps[1].(map[string]any)
	assert.Equal(t, []any{}, b["changes"], "empty lists are [] not null")
	a := steps[0].(map[string]any)
	ch := a["changes"].([]any)[0].(map[string]any)
	assert.Equal(t, "a value", ch["object"])
	assert.Equal(t, "test.want", ch["reason"])

	buf.Reset()
	require.NoError(t, rep.WriteText(&buf))
	text := buf.String()
	assert.Contains(t, text, "~ set a value")
	assert.Contains(t, text, "0 -> 1")
	assert.Contains(t, text, "why: test.want")
	assert.Contains(t, text, "! info a.x: note")
	assert.Contains(t, text, "pending: 1 change(s) to apply")
}

func TestMetricsAndSavedReport(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	r := &engine.Runner{Steps: []engine.Step{&counter{name: "a", want: 1}}, Log: changelog.New(&changelog.Memory{}, "x")}
	rep, err := r.Run(context.Background(), env, engine.Options{DryRun: true})
	require.NoError(t, err)
	require.NoError(t, engine.SaveReport(env.Root, env.Policy, rep))

	prom, err := env.Root.ReadFile(strings.Replace(env.Policy.Run.Metrics, ".prom", "-dryrun.prom", 1))
	require.NoError(t, err)
	assert.Contains(t, string(prom), `harden_step_changes{dry_run="true",step="a"} 1`)
	assert.Contains(t, string(prom), `harden_step_status{dry_run="true",step="a",status="pending"} 1`)
	for _, line := range strings.Split(strings.TrimSpace(string(prom)), "\n") {
		if !strings.HasPrefix(line, "#") {
			assert.Regexp(t, `^harden_[a-z_]+\{[^}]*\} [0-9.e+-]+$`, line)
		}
	}
	js, err := env.Root.ReadFile(strings.Replace(env.Policy.Run.Report, ".json", "-dryrun.json", 1))
	require.NoError(t, err)
	assert.Contains(t, string(js), `"dry_run": true`)
	_, err = env.Root.Stat(env.Policy.Run.Report)
	assert.Error(t, err, "a dry-run never overwrites the last apply's report")
	fi, err := env.Root.Stat(strings.Replace(env.Policy.Run.Report, ".json", "-dryrun.json", 1))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "the report (it holds the audit diff) is not world-readable")

	// An older, world-readable report is tightened by the next save.
	require.NoError(t, env.Root.WriteState(env.Policy.Run.Report, []byte("{}"), 0o644))
	rep, err = r.Run(context.Background(), env, engine.Options{})
	require.NoError(t, err)
	require.NoError(t, engine.SaveReport(env.Root, env.Policy, rep))
	fi, err = env.Root.Stat(env.Policy.Run.Report)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

func TestLockIsExclusiveForApplyAndSharedForDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "harden.lock")
	ctx := context.Background()
	apply, err := engine.Acquire(ctx, path, true, time.Second)
	require.NoError(t, err)
	_, err = engine.Acquire(ctx, path, false, 100*time.Millisecond)
	require.ErrorContains(t, err, "another harden run holds")
	// The waiting run is told who holds it: the holder wrote its command line and pid.
	assert.ErrorContains(t, err, fmt.Sprintf("(pid %d) since ", os.Getpid()))
	assert.ErrorContains(t, err, "(waited 100ms; --lock-wait waits longer)")
	require.NoError(t, apply.Release())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Empty(t, b, "the holder's line goes with its lock: a run waiting on a later dry-run is not told of it")

	d1, err := engine.Acquire(ctx, path, false, time.Second)
	require.NoError(t, err)
	d2, err := engine.Acquire(ctx, path, false, time.Second)
	require.NoError(t, err, "dry-runs may overlap")
	_, err = engine.Acquire(ctx, path, true, 100*time.Millisecond)
	require.Error(t, err)
	require.NoError(t, d1.Release())
	require.NoError(t, d2.Release())
}

func TestRestartQueue(t *testing.T) {
	q := &engine.RestartQueue{}
	q.Request("clamav-daemon.service", "clamd.conf changed")
	q.Request("b.service", "x")
	q.Request("clamav-daemon.service", "OnAccessPrevention changed")
	p := q.Pending()
	require.Len(t, p, 2)
	assert.Equal(t, "b.service", p[0].Unit)
	assert.Equal(t, []string{"clamd.conf changed", "OnAccessPrevention changed"}, p[1].Reasons)
	q.Done("b.service")
	assert.Len(t, q.Pending(), 1)
}

// refuser plans one change the machine refuses and one it takes.
type refuser struct{ applied, tried bool }

func (r *refuser) Name() string { return "kernel" }
func (r *refuser) Plan(context.Context, *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	if !r.tried {
		p.Add(&engine.Change{Object: "sysctl kernel.x", Action: engine.ActionSet, Before: "0", After: "1", Reason: "r",
			Do: func(context.Context) error {
				r.tried = true
				return engine.Refuse("write refused: %s", "operation not permitted")
			}})
	}
	if !r.applied {
		p.Add(&engine.Change{Object: "sysctl kernel.y", Action: engine.ActionSet, Before: "0", After: "1", Reason: "r",
			Do: func(context.Context) error { r.applied = true; return nil }})
	}
	return p, nil
}
func (r *refuser) Apply(ctx context.Context, _ *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

// A change the machine refused is its own record, never "change applied"; the run goes on.
func TestRefusedChangeIsRecordedAsRefused(t *testing.T) {
	rep, mem := run(t, engine.Options{}, &refuser{})
	sr := rep.Steps[0]
	require.Equal(t, engine.StatusChanged, sr.Status, sr.Error)
	assert.False(t, sr.Changes[0].Applied)
	assert.Equal(t, "write refused: operation not permitted", sr.Changes[0].Refused)
	assert.True(t, sr.Changes[1].Applied)
	changes := mem.ByID(changelog.MsgChange)
	require.Len(t, changes, 1)
	assert.Equal(t, "sysctl kernel.y", changes[0].Fields["HARDEN_OBJECT"])
	refused := mem.ByID(changelog.MsgRefused)
	require.Len(t, refused, 1)
	assert.Equal(t, "sysctl kernel.x", refused[0].Fields["HARDEN_OBJECT"])
	assert.Equal(t, "write refused: operation not permitted", refused[0].Fields["HARDEN_REFUSAL"])
	assert.Equal(t, 1, rep.ChangeCount())
	assert.Equal(t, "1", mem.ByID(changelog.MsgRun)[0].Fields["HARDEN_REFUSED"])

	var buf bytes.Buffer
	require.NoError(t, rep.WriteText(&buf))
	assert.Contains(t, buf.String(), "x set sysctl kernel.x")
	assert.Contains(t, buf.String(), "refused: write refused: operation not permitted")
	buf.Reset()
	require.NoError(t, rep.WriteMetrics(&buf))
	assert.Contains(t, buf.String(), `harden_step_refused_changes{dry_run="false",step="kernel"} 1`)
}

// failingSink is a journal that takes nothing.
type failingSink struct{}

func (failingSink) Send(changelog.Entry) error {
	return errors.New("journal socket: connection refused")
}

// A record the journal did not take is not dropped: it reaches stderr and the report, and the
// run fails (a change missing from the audit trail).
func TestJournalErrorsReachStderrAndTheReport(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	var stderr bytes.Buffer
	r := &engine.Runner{Steps: []engine.Step{&counter{name: "a", want: 1}}, Log: changelog.New(failingSink{}, env.RunID), Stderr: &stderr}
	rep, err := r.Run(context.Background(), env, engine.Options{})
	require.NoError(t, err)
	require.Len(t, rep.JournalErrors, 2, "the change and the summary")
	assert.Contains(t, rep.JournalErrors[0], "a: set a value")
	assert.Contains(t, rep.JournalErrors[0], "journal socket: connection refused")
	assert.Contains(t, stderr.String(), "harden: journal record not written: a: set a value")
	assert.Equal(t, engine.StatusFailed, rep.Status)
	assert.Equal(t, 1, rep.ExitCode(false))
	var buf bytes.Buffer
	require.NoError(t, rep.WriteJSON(&buf))
	assert.Contains(t, buf.String(), `"journal_errors"`)
}

// A change runs to its end under its own deadline, not the run's: a signal during a change
// lets it finish, and stops the run before the next one.
func TestSignalDuringAChangeLetsItFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var finished []int
	p := &engine.Plan{}
	for i := 0; i < 2; i++ {
		p.Add(&engine.Change{Object: "x", Action: "set", Do: func(cctx context.Context) error {
			cancel() // SIGTERM arrives while the change runs
			select {
			case <-cctx.Done():
				return cctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			finished = append(finished, i)
			return nil
		}})
	}
	err := engine.ApplyChanges(ctx, p)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, []int{0}, finished, "the first change finished, the second never started")
	assert.True(t, p.Changes[0].Applied)

	// Its own deadline still holds.
	c := &engine.Change{Object: "y", Action: "set", Timeout: 50 * time.Millisecond,
		Do: func(cctx context.Context) error { <-cctx.Done(); return cctx.Err() }}
	require.ErrorIs(t, engine.RunChange(context.Background(), c), context.DeadlineExceeded)
}

// A dry-run creates no lock file; where there is none, it holds the directory, and an apply
// still waits for it (and it for an apply).
func TestDryRunLockCreatesNothing(t *testing.T) {
	root := fsroot.New(t.TempDir())
	require.NoError(t, root.MkdirAll("/run", 0o755))
	ctx := context.Background()
	dry, err := engine.AcquireIn(ctx, root, engine.DefaultLockPath, false, time.Second)
	require.NoError(t, err)
	_, err = root.Lstat(engine.DefaultLockPath)
	require.ErrorIs(t, err, fs.ErrNotExist, "a dry-run created the lock file")
	_, err = engine.AcquireIn(ctx, root, engine.DefaultLockPath, true, 100*time.Millisecond)
	require.ErrorContains(t, err, "another harden run holds", "an apply must wait for the dry-run")
	dry2, err := engine.AcquireIn(ctx, root, engine.DefaultLockPath, false, 100*time.Millisecond)
	require.NoError(t, err, "dry-runs overlap")
	require.NoError(t, dry.Release())
	require.NoError(t, dry2.Release())

	apply, err := engine.AcquireIn(ctx, root, engine.DefaultLockPath, true, time.Second)
	require.NoError(t, err)
	_, err = engine.AcquireIn(ctx, root, engine.DefaultLockPath, false, 100*time.Millisecond)
	require.ErrorContains(t, err, "another harden run holds", "a dry-run waits for the apply")
	require.NoError(t, apply.Release())

	// In a tree without even /run, a dry-run needs no lock and makes no directory.
	bare := fsroot.New(t.TempDir())
	l, err := engine.AcquireIn(ctx, bare, engine.DefaultLockPath, false, time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Release())
	_, err = bare.Lstat("/run")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// At boot three units run parts of the steps (harden.service, harden-packages.service,
// harden-freshclam.service): the saved report and metrics keep every step's last result,
// each marked with the run it comes from, not only the last unit's steps as "skipped".
func TestSavedReportKeepsTheStepsARunLeftOut(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	a, b := &counter{name: "a", want: 1}, &counter{name: "b", want: 1}
	r := &engine.Runner{Steps: []engine.Step{a, b}, Log: changelog.New(&changelog.Memory{}, "x")}
	first, err := r.Run(context.Background(), env, engine.Options{Skip: []string{"b"}})
	require.NoError(t, err)
	require.NoError(t, engine.SaveReport(env.Root, env.Policy, first))

	env.RunID = "fedcba9876543210fedcba9876543210"
	second, err := r.Run(context.Background(), env, engine.Options{Only: []string{"b"}})
	require.NoError(t, err)
	require.NoError(t, engine.SaveReport(env.Root, env.Policy, second))
	assert.Equal(t, engine.StatusSkipped, second.Steps[0].Status, "the run's own report is untouched")

	var saved engine.Report
	data, err := env.Root.ReadFile(env.Policy.Run.Report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &saved))
	assert.Equal(t, second.RunID, saved.RunID)
	require.Len(t, saved.Steps, 2)
	assert.Equal(t, engine.StatusChanged, saved.Steps[0].Status, "a's result from the first run")
	assert.Equal(t, first.RunID, saved.Steps[0].FromRun)
	assert.Equal(t, engine.StatusChanged, saved.Steps[1].Status)
	assert.Empty(t, saved.Steps[1].FromRun)
	prom, err := env.Root.ReadFile(env.Policy.Run.Metrics)
	require.NoError(t, err)
	assert.Contains(t, string(prom), `harden_step_status{dry_run="false",step="a",status="changed"} 1`)

	// A fail-closed run carries nothing over: its steps did not run because of the policy.
	third, err := r.Run(context.Background(), env, engine.Options{FailClosed: true, PolicyError: errors.New("bad"), PolicyName: "p"})
	require.NoError(t, err)
	require.NoError(t, engine.SaveReport(env.Root, env.Policy, third))
	data, err = env.Root.ReadFile(env.Policy.Run.Report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &saved))
	assert.Equal(t, engine.StatusSkipped, saved.Steps[0].Status)
}

// recording is a counter that keeps a cache between runs (engine.Recorder).
type recording struct {
	counter
	records int
}

func (r *recording) Record(context.Context, *engine.Env) { r.records++ }

// A step's cache is written after every run that is not a dry-run, converged or applied,
// and never after a failed one: Plan stays read-only, a dry-run writes nothing.
func TestRecorderCalledAfterRunsThatAreNotDryRuns(t *testing.T) {
	s := &recording{counter: counter{name: "a", want: 1}}
	run(t, engine.Options{DryRun: true}, s)
	assert.Zero(t, s.records, "dry-run")
	run(t, engine.Options{DryRun: true, Record: true}, s)
	assert.Zero(t, s.records, "dry-run that records findings")
	run(t, engine.Options{}, s)
	assert.Equal(t, 1, s.records, "applied")
	run(t, engine.Options{}, s)
	assert.Equal(t, 2, s.records, "converged")
	s.planErr = errors.New("broken")
	run(t, engine.Options{}, s)
	assert.Equal(t, 2, s.records, "failed")
}

// asker records, at plan time, whether a step named "later" runs in this run.
type asker struct {
	counter
	sawLater []bool
}

func (a *asker) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	a.sawLater = append(a.sawLater, env.Runs("later"))
	return a.counter.Plan(ctx, env)
}

// Env.Runs tells a step which steps this run runs (--only, --skip, fail-closed), so it
// leaves work to a later one only when that one comes.
func TestEnvRunsNamesTheSelectedSteps(t *testing.T) {
	a := &asker{counter: counter{name: "a"}}
	later := &counter{name: "later"}
	run(t, engine.Options{}, a, later)
	run(t, engine.Options{Only: []string{"a"}}, a, later)
	run(t, engine.Options{Skip: []string{"later"}}, a, later)
	run(t, engine.Options{DryRun: true}, a, later)
	assert.Equal(t, []bool{true, false, false, true}, a.sawLater)
}

// Held says whether another run holds a lock, and who, without waiting and without creating
// anything; a run that holds it shared (a dry-run) does not count.
func TestHeldAsksWithoutWaitingOrCreating(t *testing.T) {
	root := fsroot.New(t.TempDir())
	ctx := context.Background()
	const name = "/run/x/lock"
	who, held, err := engine.Held(ctx, root, name)
	require.NoError(t, err)
	assert.False(t, held)
	assert.Empty(t, who)
	_, err = root.Lstat("/run")
	require.ErrorIs(t, err, fs.ErrNotExist, "asking created a directory")

	l, err := engine.AcquireIn(ctx, root, name, true, 0)
	require.NoError(t, err)
	start := time.Now()
	who, held, err = engine.Held(ctx, root, name)
	require.NoError(t, err)
	assert.True(t, held)
	assert.Contains(t, who, fmt.Sprintf("(pid %d)", os.Getpid()))
	assert.Less(t, time.Since(start), time.Second)
	require.NoError(t, l.Release())

	shared, err := engine.AcquireIn(ctx, root, name, false, 0)
	require.NoError(t, err)
	_, held, err = engine.Held(ctx, root, name)
	require.NoError(t, err)
	assert.False(t, held, "a shared holder is not a download")
	require.NoError(t, shared.Release())
}

// bigDiff plans one change whose diff has n added lines.
type bigDiff struct{ n int }

func (bigDiff) Name() string { return "big" }
func (b bigDiff) Plan(context.Context, *engine.Env) (*engine.Plan, error) {
	var d strings.Builder
	for i := range b.n {
		fmt.Fprintf(&d, "+ element %d\n", i)
	}
	return &engine.Plan{Changes: []*engine.Change{{Object: "table", Action: engine.ActionCreate, Diff: d.String()}}}, nil
}
func (bigDiff) Apply(context.Context, *engine.Env, *engine.Plan) error { return nil }

func TestReportsBoundDiffs(t *testing.T) {
	rep, _ := run(t, engine.Options{DryRun: true}, bigDiff{n: 10_000})
	lines := strings.Split(strings.TrimSuffix(rep.Steps[0].Changes[0].Diff, "\n"), "\n")
	require.Len(t, lines, engine.MaxDiffLines+1)
	assert.Equal(t, "+ element 199", lines[engine.MaxDiffLines-1])
	assert.Equal(t, "  ... 9800 more lines not shown (9800 added, 0 removed)", lines[engine.MaxDiffLines])

	rep, _ = run(t, engine.Options{DryRun: true}, bigDiff{n: engine.MaxDiffLines})
	assert.Equal(t, engine.MaxDiffLines, strings.Count(rep.Steps[0].Changes[0].Diff, "\n"), "a diff within the bound is whole")
}
