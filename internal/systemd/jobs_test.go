package systemd_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
)

// bootUnits is the state at boot while harden.service runs: its start job is
// running, ssh.service waits in the boot transaction with a queued start job,
// harden-watch is ordered after harden.service from its own side.
func bootUnits() []systemdtest.UnitSpec {
	return []systemdtest.UnitSpec{
		{Name: "harden.service", FileState: "enabled", LoadState: "loaded", ActiveState: "activating", SubState: "start",
			Job: "start", Before: []string{"ssh.service", "clamav-daemon.service"}},
		{Name: "ssh.service", FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead", Job: "start"},
		{Name: "clamav-daemon.service", FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
		{Name: "harden-watch.service", FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
			After: []string{"harden.service", "auditd.service"}},
		{Name: "auditd.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "running"},
	}
}

func connectUnits(t *testing.T, units []systemdtest.UnitSpec) (*systemdtest.Fake, *systemd.Conn) {
	t.Helper()
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, units)
	m, err := systemd.Connect(context.Background(), systemd.Options{Address: bus.Address, JobTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return fake, m
}

func unitsByName(t *testing.T, m systemd.Manager, names ...string) map[string]systemd.Unit {
	t.Helper()
	us, err := m.ListUnits(ctxT(t), names...)
	require.NoError(t, err)
	out := map[string]systemd.Unit{}
	for _, u := range us {
		out[u.Name] = u
	}
	return out
}

func TestListUnitsCarriesQueuedJob(t *testing.T) {
	_, m := connectUnits(t, bootUnits())
	for _, byNames := range []bool{false, true} {
		var units map[string]systemd.Unit
		if byNames {
			units = unitsByName(t, m, "ssh.service", "harden.service", "clamav-daemon.service")
		} else {
			units = unitsByName(t, m)
		}
		ssh := units["ssh.service"]
		assert.Equal(t, "start", ssh.Job.Type)
		assert.NotZero(t, ssh.Job.ID)
		assert.False(t, ssh.Active())
		assert.True(t, ssh.Starting(), "inactive with a queued start job")
		assert.True(t, units["harden.service"].Starting())
		clamd := units["clamav-daemon.service"]
		assert.Equal(t, systemd.Job{}, clamd.Job)
		assert.False(t, clamd.Starting())
	}
}

// EnqueueStart returns as soon as systemd accepted the job, even when the job
// never finishes; the job is then listed with the unit. A start asked for a
// unit whose start is already queued merges into that job.
func TestEnqueueStartDoesNotWait(t *testing.T) {
	fake, m := connectUnits(t, bootUnits())
	fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: "clamav-daemon.service", JobHang: true})

	t0 := time.Now()
	job, err := m.EnqueueStart(ctxT(t), "clamav-daemon.service")
	require.NoError(t, err)
	assert.Less(t, time.Since(t0), time.Second)
	assert.Equal(t, "start", job.Type)
	clamd := unitsByName(t, m, "clamav-daemon.service")["clamav-daemon.service"]
	assert.Equal(t, job, clamd.Job)
	assert.True(t, clamd.Starting())

	queued := unitsByName(t, m, "ssh.service")["ssh.service"].Job
	merged, err := m.EnqueueStart(ctxT(t), "ssh.service")
	require.NoError(t, err)
	assert.Equal(t, queued, merged, "merged into the queued job")

	// The waiting Start on a held job ends at the job timeout, with an
	// error naming the unit: the deadlock the services step must avoid.
	fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: "harden-watch.service", JobHang: true})
	_, err = m.Start(ctxT(t), "harden-watch.service")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "harden-watch.service")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// OrderedAfter reads the Unit's Before property over D-Bus, which lists both
// "harden.service Before=X" and "X After=harden.service".
func TestOrderedAfter(t *testing.T) {
	_, m := connectUnits(t, bootUnits())
	after, err := m.OrderedAfter(ctxT(t), "harden.service")
	require.NoError(t, err)
	assert.Equal(t, []string{"clamav-daemon.service", "harden-watch.service", "ssh.service"}, after)

	after, err = m.OrderedAfter(ctxT(t), "auditd.service")
	require.NoError(t, err)
	assert.Equal(t, []string{"harden-watch.service"}, after)

	after, err = m.OrderedAfter(ctxT(t), "ssh.service")
	require.NoError(t, err)
	assert.Empty(t, after)
}
