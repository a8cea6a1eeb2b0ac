package systemd_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
)

// env is a private bus with the Debian server fixture on a fake systemd and
// a real go-systemd client connected to it.
type env struct {
	fake  *systemdtest.Fake
	m     *systemd.Conn
	specs []systemdtest.UnitSpec
}

func newEnv(t *testing.T, opts systemd.Options) *env {
	t.Helper()
	bus := systemdtest.StartBus(t)
	specs := systemdtest.DebianServer(t)
	fake := systemdtest.NewFake(t, bus, specs)
	opts.Address = bus.Address
	m, err := systemd.Connect(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return &env{fake: fake, m: m, specs: specs}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pick returns the first fixture unit matching cond, failing the test when
// the fixture has none (so a thinner fixture cannot make a test vacuous).
func (e *env) pick(t *testing.T, what string, cond func(systemdtest.UnitSpec) bool) systemdtest.UnitSpec {
	t.Helper()
	for _, s := range e.specs {
		if cond(s) {
			return s
		}
	}
	t.Fatalf("fixture has no %s unit", what)
	return systemdtest.UnitSpec{}
}

func TestConnectNoBus(t *testing.T) {
	dir := t.TempDir()
	_, err := systemd.Connect(context.Background(), systemd.Options{Address: "unix:path=" + filepath.Join(dir, "nobus")})
	require.Error(t, err)
	assert.ErrorIs(t, err, systemd.ErrNoSystemd)
	assert.Contains(t, err.Error(), "no system bus")
}

func TestConnectBusWithoutSystemd(t *testing.T) {
	bus := systemdtest.StartBus(t)
	_, err := systemd.Connect(context.Background(), systemd.Options{Address: bus.Address})
	require.Error(t, err)
	assert.ErrorIs(t, err, systemd.ErrNoSystemd)
	assert.Contains(t, err.Error(), "org.freedesktop.systemd1")
}

func TestListUnitFilesMatchesFixture(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	files, err := e.m.ListUnitFiles(ctxT(t))
	require.NoError(t, err)

	want := map[string]string{}
	for _, s := range e.specs {
		if s.FileState != "" {
			want[s.Name] = s.FileState
		}
	}
	got := map[string]string{}
	for _, f := range files {
		assert.Equal(t, f.Name, filepath.Base(f.Path), "name comes from the path")
		got[f.Name] = string(f.State)
	}
	assert.Equal(t, want, got)

	// The fixture must exercise every state the services step reasons about.
	seen := map[systemd.FileState]bool{}
	for _, f := range files {
		seen[f.State] = true
	}
	for _, st := range []systemd.FileState{systemd.Enabled, systemd.Disabled, systemd.Static, systemd.Masked,
		systemd.Generated, systemd.Transient, systemd.Alias, systemd.Indirect, systemd.Linked, systemd.EnabledRuntime} {
		assert.True(t, seen[st], "fixture lacks a unit file in state %s", st)
	}
}

func TestListUnitFilesByPattern(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	files, err := e.m.ListUnitFiles(ctxT(t), "*.socket", "ssh*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		ok1, _ := filepath.Match("*.socket", f.Name)
		ok2, _ := filepath.Match("ssh*", f.Name)
		assert.True(t, ok1 || ok2, f.Name)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name)
	}
	assert.Contains(t, names, "ssh.service")
}

func TestListUnits(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	units, err := e.m.ListUnits(ctxT(t))
	require.NoError(t, err)
	loaded := 0
	for _, s := range e.specs {
		if s.LoadState != "" {
			loaded++
		}
	}
	assert.Len(t, units, loaded)

	running := e.pick(t, "running service", func(s systemdtest.UnitSpec) bool { return s.SubState == "running" })
	byName, err := e.m.ListUnits(ctxT(t), running.Name, "no-such-thing.service")
	require.NoError(t, err)
	require.Len(t, byName, 2)
	assert.Equal(t, running.Name, byName[0].Name)
	assert.True(t, byName[0].Active())
	assert.Equal(t, "running", byName[0].SubState)
	assert.Equal(t, "not-found", byName[1].LoadState)
	assert.False(t, byName[1].Exists())
	assert.False(t, byName[1].Active())
}

// ListLoadedUnits filters by name without loading anything: an unknown name is left out,
// not reported as not-found.
func TestListLoadedUnits(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	running := e.pick(t, "running service", func(s systemdtest.UnitSpec) bool { return s.SubState == "running" })
	units, err := e.m.ListLoadedUnits(ctxT(t), running.Name, "no-such-thing.service")
	require.NoError(t, err)
	require.Len(t, units, 1)
	assert.Equal(t, running.Name, units[0].Name)
	assert.True(t, units[0].Active())

	sockets, err := e.m.ListLoadedUnits(ctxT(t), "*.socket")
	require.NoError(t, err)
	require.NotEmpty(t, sockets)
	for _, u := range sockets {
		assert.True(t, strings.HasSuffix(u.Name, ".socket"), u.Name)
	}
	all, err := e.m.ListLoadedUnits(ctxT(t))
	require.NoError(t, err)
	everything, err := e.m.ListUnits(ctxT(t))
	require.NoError(t, err)
	assert.Len(t, all, len(everything), "no pattern: every loaded unit")
}

func TestMaskReloadUnmask(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	ctx := ctxT(t)
	u := e.pick(t, "enabled running service in /lib", func(s systemdtest.UnitSpec) bool {
		return s.FileState == "enabled" && s.SubState == "running" && filepath.Dir(s.Path) == "/lib/systemd/system"
	})

	ch, err := e.m.Mask(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, []systemd.FileChange{{Type: "symlink", Filename: "/etc/systemd/system/" + u.Name, Destination: "/dev/null"}}, ch)
	assert.Equal(t, "masked", e.fake.FileState(u.Name))

	files, err := e.m.ListUnitFiles(ctx, u.Name)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, systemd.Masked, files[0].State)
	assert.Equal(t, "/etc/systemd/system/"+u.Name, files[0].Path)

	// Masking again changes nothing; masking neither stops nor reloads.
	ch, err = e.m.Mask(ctx, u.Name)
	require.NoError(t, err)
	assert.Empty(t, ch)
	_, active, _ := e.fake.State(u.Name)
	assert.Equal(t, "active", active)
	assert.Zero(t, e.fake.Reloads())

	require.NoError(t, e.m.DaemonReload(ctx))
	assert.Equal(t, 1, e.fake.Reloads())
	st, err := e.m.ListUnits(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, "masked", st[0].LoadState)

	// A masked unit cannot be started: the error names the unit and the
	// D-Bus error.
	_, err = e.m.Stop(ctx, u.Name)
	require.NoError(t, err)
	_, err = e.m.Start(ctx, u.Name)
	var se *systemd.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.systemd1.UnitMasked", se.DBusName)
	assert.Equal(t, []string{u.Name}, se.Units)
	assert.Contains(t, err.Error(), "start "+u.Name+": org.freedesktop.systemd1.UnitMasked: Unit "+u.Name+" is masked.")

	ch, err = e.m.Unmask(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, []systemd.FileChange{{Type: "unlink", Filename: "/etc/systemd/system/" + u.Name}}, ch)
	assert.Equal(t, "enabled", e.fake.FileState(u.Name), "unmask uncovers the enablement underneath")
}

func TestMaskRefusesFileInEtc(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	u := e.pick(t, "unit file in /etc", func(s systemdtest.UnitSpec) bool {
		return s.FileState != "masked" && s.Path == "/etc/systemd/system/"+s.Name
	})
	_, err := e.m.Mask(ctxT(t), u.Name)
	var se *systemd.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.systemd1.UnitExists", se.DBusName)
	assert.Contains(t, err.Error(), "mask "+u.Name)
	assert.Equal(t, u.FileState, e.fake.FileState(u.Name), "nothing changed")
}

func TestEnableAndStart(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	ctx := ctxT(t)
	u := e.pick(t, "disabled inactive service", func(s systemdtest.UnitSpec) bool {
		return s.FileState == "disabled" && filepath.Ext(s.Name) == ".service" && s.ActiveState != "active"
	})
	ch, err := e.m.Enable(ctx, u.Name)
	require.NoError(t, err)
	require.Len(t, ch, 1)
	assert.Equal(t, "symlink", ch[0].Type)
	assert.Equal(t, "/etc/systemd/system/multi-user.target.wants/"+u.Name, ch[0].Filename)
	assert.Equal(t, "enabled", e.fake.FileState(u.Name))

	ch, err = e.m.Enable(ctx, u.Name)
	require.NoError(t, err)
	assert.Empty(t, ch, "enabling twice changes nothing")

	res, err := e.m.Start(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, systemd.JobDone, res)
	st, err := e.m.ListUnits(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, "active", st[0].ActiveState)
	assert.Equal(t, "running", st[0].SubState)

	for _, op := range []func(context.Context, string) (systemd.JobResult, error){e.m.Restart, e.m.ReloadOrRestart, e.m.TryReloadOrRestart, e.m.Stop} {
		res, err := op(ctx, u.Name)
		require.NoError(t, err)
		assert.Equal(t, systemd.JobDone, res)
	}
	_, active, sub := e.fake.State(u.Name)
	assert.Equal(t, "inactive/dead", active+"/"+sub)
	// try-reload-or-restart leaves a stopped unit stopped.
	res, err = e.m.TryReloadOrRestart(ctx, u.Name)
	require.NoError(t, err)
	assert.Equal(t, systemd.JobDone, res)
	_, active, _ = e.fake.State(u.Name)
	assert.Equal(t, "inactive", active)
	var methods []string
	for _, c := range e.fake.Mutations() {
		methods = append(methods, c.Method)
	}
	assert.Equal(t, []string{"EnableUnitFiles", "EnableUnitFiles", "StartUnit", "RestartUnit", "ReloadOrRestartUnit", "ReloadOrTryRestartUnit", "StopUnit", "ReloadOrTryRestartUnit"}, methods)
}

func TestEnableMaskedAndMissing(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	masked := e.pick(t, "masked", func(s systemdtest.UnitSpec) bool { return s.FileState == "masked" })
	_, err := e.m.Enable(ctxT(t), masked.Name)
	var se *systemd.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.systemd1.UnitMasked", se.DBusName)

	_, err = e.m.Start(ctxT(t), "no-such-unit.service")
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.systemd1.NoSuchUnit", se.DBusName)
	assert.Contains(t, err.Error(), "no-such-unit.service")
}

func TestJobFailure(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	u := e.pick(t, "disabled service", func(s systemdtest.UnitSpec) bool {
		return s.FileState == "disabled" && filepath.Ext(s.Name) == ".service"
	})
	e.fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: u.Name, JobResult: "failed"})
	res, err := e.m.Start(ctxT(t), u.Name)
	assert.Equal(t, systemd.JobFailed, res)
	var je *systemd.JobError
	require.ErrorAs(t, err, &je)
	assert.Equal(t, u.Name, je.Unit)
	assert.Equal(t, "start", je.Op)
	assert.Contains(t, err.Error(), "start "+u.Name)
	assert.Contains(t, err.Error(), `"failed"`)
	_, active, _ := e.fake.State(u.Name)
	assert.Equal(t, "failed", active)

	e.fake.Inject(systemdtest.Fault{Method: "RestartUnit", Unit: u.Name, JobResult: "dependency"})
	res, err = e.m.Restart(ctxT(t), u.Name)
	assert.Equal(t, systemd.JobDependency, res)
	require.ErrorAs(t, err, &je)
}

func TestJobTimeoutDoesNotWedgeConnection(t *testing.T) {
	e := newEnv(t, systemd.Options{JobTimeout: 200 * time.Millisecond})
	ctx := ctxT(t)
	u := e.pick(t, "running service", func(s systemdtest.UnitSpec) bool { return s.SubState == "running" })

	// The result arrives after we stopped waiting: go-systemd then writes
	// it to our abandoned channel, which must not block its dispatcher.
	e.fake.Inject(systemdtest.Fault{Method: "RestartUnit", Unit: u.Name, JobDelay: 600 * time.Millisecond})
	start := time.Now()
	_, err := e.m.Restart(ctx, u.Name)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "restart "+u.Name)
	assert.Contains(t, err.Error(), "waiting for job")
	assert.Less(t, time.Since(start), 2*time.Second)

	time.Sleep(800 * time.Millisecond) // let the late JobRemoved arrive
	e.fake.ClearFaults()
	for range 3 {
		res, err := e.m.Restart(ctx, u.Name)
		require.NoError(t, err)
		assert.Equal(t, systemd.JobDone, res)
	}

	e.fake.Inject(systemdtest.Fault{Method: "StopUnit", Unit: u.Name, JobHang: true})
	_, err = e.m.Stop(ctx, u.Name)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCallHangTimesOut(t *testing.T) {
	e := newEnv(t, systemd.Options{CallTimeout: 200 * time.Millisecond})
	e.fake.Inject(systemdtest.Fault{Method: "ListUnitFilesByPatterns", Hang: true})
	start := time.Now()
	_, err := e.m.ListUnitFiles(ctxT(t))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "list unit files")
	assert.Less(t, time.Since(start), 2*time.Second)

	// The caller's own context is honoured too.
	e.fake.Inject(systemdtest.Fault{Method: "MaskUnitFiles", Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = e.m.Mask(ctx, "cups.service")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDBusErrorNamed(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	u := e.pick(t, "enabled service", func(s systemdtest.UnitSpec) bool {
		return s.FileState == "enabled" && filepath.Ext(s.Name) == ".service"
	})
	e.fake.Inject(systemdtest.Fault{Method: "MaskUnitFiles", Unit: u.Name,
		Err: dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Access denied"})})
	_, err := e.m.Mask(ctxT(t), u.Name)
	var se *systemd.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.DBus.Error.AccessDenied", se.DBusName)
	assert.Equal(t, "systemd: mask "+u.Name+": org.freedesktop.DBus.Error.AccessDenied: Access denied", err.Error())
	assert.False(t, errors.Is(err, systemd.ErrNoSystemd))
	assert.Equal(t, u.FileState, e.fake.FileState(u.Name))
}

func TestSystemdGoesAway(t *testing.T) {
	e := newEnv(t, systemd.Options{})
	e.fake.Close()
	_, err := e.m.ListUnits(ctxT(t))
	require.Error(t, err)
	assert.ErrorIs(t, err, systemd.ErrNoSystemd)
	var se *systemd.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "org.freedesktop.DBus.Error.ServiceUnknown", se.DBusName)
}

func TestFileStateManaged(t *testing.T) {
	never := []systemd.FileState{systemd.Static, systemd.Generated, systemd.Transient, systemd.Alias,
		systemd.Indirect, systemd.Linked, systemd.LinkedRuntime, systemd.Bad}
	for _, s := range never {
		assert.False(t, s.Managed(), s)
	}
	for _, s := range []systemd.FileState{systemd.Enabled, systemd.EnabledRuntime, systemd.Disabled, systemd.Masked} {
		assert.True(t, s.Managed(), s)
	}
	assert.True(t, slices.ContainsFunc([]systemd.FileState{systemd.Masked, systemd.MaskedRuntime}, systemd.FileState.IsMasked))
}
