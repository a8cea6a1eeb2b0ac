package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
	"github.com/harden-dev/harden/steps/services"
)

// bootFixture is the Debian server as the services step sees it at boot,
// inside harden.service's start job: harden.service is activating and
// ordered Before= ssh and clamav, harden-watch is After= it, ssh.service
// waits with a start job queued by the boot transaction. hardenStarting=false
// is the same machine with harden run by hand after boot. Jobs that would
// wait longer than 3 s fail the step, so a deadlock shows as a failure, not a
// hung test.
func bootFixture(t *testing.T, hardenStarting bool) *fixture {
	t.Helper()
	units := systemdtest.DebianServer(t)
	for i := range units {
		if units[i].Name == "ssh.service" {
			units[i].ActiveState, units[i].SubState, units[i].Job = "inactive", "dead", "start"
		}
	}
	harden := systemdtest.UnitSpec{Name: "harden.service", FileState: "enabled", LoadState: "loaded",
		ActiveState: "active", SubState: "exited",
		Before: []string{"ssh.service", "clamav-daemon.service", "clamav-clamonacc.service"}}
	if hardenStarting {
		harden.ActiveState, harden.SubState, harden.Job = "activating", "start", "start"
	}
	units = append(units, harden,
		systemdtest.UnitSpec{Name: "harden-firewall.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "exited"},
		systemdtest.UnitSpec{Name: "harden-watch.service", FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
			After: []string{"harden.service", "auditd.service"}},
		systemdtest.UnitSpec{Name: "harden-audit.timer", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "waiting"})

	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, units)
	open := systemd.Shared(systemd.Options{Address: bus.Address, JobTimeout: 3 * time.Second})
	t.Cleanup(func() {
		if m, err := open(context.Background()); err == nil {
			_ = m.Close()
		}
	})
	return &fixture{fake: fake, env: withSignatures(t, enginetest.Env(t, nil, nil)), step: services.New(open)}
}

func calls(f *fixture, method string) []string {
	var out []string
	for _, c := range f.fake.Mutations() {
		if c.Method == method {
			out = append(out, c.Args[0])
		}
	}
	return out
}

// A unit whose start job is already queued is on its way up: no start, no
// restart (it reads the new configuration when it starts), and a plan
// without changes for it, so the runner's re-plan converges.
func TestQueuedStartIsSatisfied(t *testing.T) {
	f := bootFixture(t, false)
	f.env.Restarts.Request("ssh.service", "sshd.settings")

	p := f.plan(t)
	assert.NotContains(t, byAction(p, engine.ActionStart), "ssh.service")
	assert.NotContains(t, byAction(p, engine.ActionRestart), "ssh.service")
	for _, fd := range p.Findings {
		assert.NotEqual(t, "unit ssh.service", fd.Object, "%s: %s", fd.ID, fd.Message)
	}

	enginetest.Converges(t, f.env, f.step)
	assert.NotContains(t, calls(f, "StartUnit"), "ssh.service")
	assert.Empty(t, calls(f, "RestartUnit"))
	load, active, _ := f.fake.State("ssh.service")
	assert.Equal(t, []string{"loaded", "inactive"}, []string{load, active}, "left to its queued job")
}

// At boot, starts of units ordered after harden.service cannot finish while
// the step runs: they are queued and not waited for, even when systemd holds
// the job forever, and the re-plan sees the queued job as satisfied.
func TestBootDoesNotWaitForUnitsOrderedAfterHarden(t *testing.T) {
	f := bootFixture(t, true)
	for _, u := range []string{"clamav-daemon.service", "clamav-clamonacc.service", "harden-watch.service"} {
		f.fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: u, JobHang: true})
	}
	f.env.Restarts.Request("clamav-daemon.service", "clamav.settings")

	p := f.plan(t)
	assert.Equal(t, []string{"clamav-clamonacc.service", "clamav-daemon.service", "harden-watch.service"},
		byAction(p, engine.ActionStart))
	for _, c := range p.Changes {
		if c.Action == engine.ActionStart {
			assert.Equal(t, "start queued (runs after harden.service)", c.After, c.Object)
		}
	}

	t0 := time.Now()
	rep := enginetest.Converges(t, f.env, f.step)
	assert.Less(t, time.Since(t0), 2*time.Second, "the step waited for jobs that wait for harden.service")
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)
	assert.ElementsMatch(t, []string{"clamav-clamonacc.service", "clamav-daemon.service", "harden-watch.service"},
		calls(f, "StartUnit"), "each started once: the re-plan saw the queued jobs")
	assert.Empty(t, calls(f, "RestartUnit"))
	assert.Empty(t, f.env.Restarts.Pending(), "the restart folded into the queued start")
	for _, u := range []string{"clamav-daemon.service", "harden-watch.service"} {
		_, active, _ := f.fake.State(u)
		assert.Equal(t, "inactive", active, "%s: held queued by the fake", u)
	}
}

// The same held job when harden.service is not starting (a run by hand):
// nothing waits for harden, so the step waits for the job, and a job that
// never finishes fails the step at the job timeout. This is what the boot
// case above avoids, and shows the fixture really holds the job.
func TestStartWaitsWhenHardenIsNotStarting(t *testing.T) {
	f := bootFixture(t, false)
	f.fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: "harden-watch.service", JobHang: true})
	p := f.plan(t)
	require.Contains(t, byAction(p, engine.ActionStart), "harden-watch.service")

	rep, _ := enginetest.Run(t, f.env, false, f.step)
	s := rep.Steps[0]
	assert.Equal(t, engine.StatusFailed, s.Status)
	assert.Contains(t, s.Error, "harden-watch.service")
}
