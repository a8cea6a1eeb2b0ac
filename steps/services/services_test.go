package services_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
	"github.com/harden-dev/harden/steps/services"
)

// fixture is a fake systemd with the Debian 12 server's units on a real
// private dbus-daemon, and the services step connected to it through
// go-systemd, as in production.
type fixture struct {
	fake *systemdtest.Fake
	env  *engine.Env
	step *services.Step
}

func newFixture(t *testing.T, p *policy.Policy) *fixture {
	t.Helper()
	return newFixtureUnits(t, p, systemdtest.DebianServer(t))
}

func newFixtureUnits(t *testing.T, p *policy.Policy, units []systemdtest.UnitSpec) *fixture {
	t.Helper()
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, units)
	open := systemd.Shared(systemd.Options{Address: bus.Address})
	t.Cleanup(func() {
		if m, err := open(context.Background()); err == nil {
			_ = m.Close()
		}
	})
	env := withSignatures(t, enginetest.Env(t, p, nil))
	fake.WriteUnitDirs(t, env.Root.Dir())
	return &fixture{fake: fake, env: env, step: services.New(open)}
}

// withSignatures puts ClamAV's main and daily databases where clamav-daemon.service's
// condition looks, as on a machine whose image ships them.
func withSignatures(t *testing.T, env *engine.Env) *engine.Env {
	t.Helper()
	enginetest.WriteFile(t, env, "/var/lib/clamav/main.cvd", "ClamAV-VDB:")
	enginetest.WriteFile(t, env, "/var/lib/clamav/daily.cld", "ClamAV-VDB:")
	return env
}

func (f *fixture) plan(t *testing.T) *engine.Plan {
	t.Helper()
	p, err := f.step.Plan(context.Background(), f.env)
	require.NoError(t, err)
	return p
}

func byAction(p *engine.Plan, action string) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Action == action {
			out = append(out, strings.TrimPrefix(c.Object, "unit "))
		}
	}
	sort.Strings(out)
	return out
}

func findingIDs(p *engine.Plan, id string) []string {
	var out []string
	for _, f := range p.Findings {
		if f.ID == id {
			out = append(out, strings.TrimPrefix(f.Object, "unit "))
		}
	}
	sort.Strings(out)
	return out
}

// maskedOnDebian are the units of the Debian fixture the default policy
// must mask: enabled (or enabled-runtime) unit files that are neither
// allowed (ssh, auditd, clamav with its socket) nor essential, and whose
// unit file is not itself in /etc. Listed by hand from the fixture, not
// computed by the code under test.
var maskedOnDebian = []string{
	"ModemManager.service",
	"apt-daily-upgrade.timer", "apt-daily.timer",
	"avahi-daemon.service", "avahi-daemon.socket",
	"cron.service",
	"cups.path", "cups.service", "cups.socket",
	"dpkg-db-backup.timer",
	"e2scrub_all.timer", "e2scrub_reap.service",
	"fstrim.timer", "logrotate.timer", "man-db.timer",
	"postgresql.service", "prometheus-alertmanager.service",
	"rpcbind.service", "rpcbind.socket",
	"rsyslog.service", "smartmontools.service",
	"unattended-upgrades.service",
	"uuidd.socket",
}

func TestPlanDebianServer(t *testing.T) {
	f := newFixture(t, nil)
	p := f.plan(t)

	assert.Equal(t, maskedOnDebian, byAction(p, engine.ActionMask))
	// clamonacc is disabled in the fixture: enabled then started; clamd is
	// enabled but inactive: started. ssh and auditd run already.
	assert.Equal(t, []string{"clamav-clamonacc.service"}, byAction(p, engine.ActionEnable))
	assert.Equal(t, []string{"clamav-clamonacc.service", "clamav-daemon.service"}, byAction(p, engine.ActionStart))
	assert.Empty(t, byAction(p, engine.ActionUnmask))
	assert.Empty(t, byAction(p, engine.ActionRestart))

	// Local units whose file lives in /etc cannot be masked: reported.
	assert.Equal(t, []string{"local-backup.service", "local-backup.timer"}, findingIDs(p, "services.cannot-mask"))
	// Masks harden did not make are reported, never touched.
	assert.Equal(t, []string{"cryptdisks-early.service", "cryptdisks.service", "fwupd-refresh.timer",
		"hwclock.service", "rc.service", "rcS.service", "x11-common.service"}, findingIDs(p, "services.foreign-mask"))
	// harden's own units are not installed in the fixture.
	assert.Equal(t, []string{"harden-audit.timer", "harden-firewall.service", "harden-freshclam.service", "harden-packages.service",
		"harden-watch.service", "harden.service"}, findingIDs(p, "services.unit-missing"))

	// Each mask says why, and a running unit is stopped with it.
	for _, c := range p.Changes {
		if c.Object == "unit cups.service" {
			assert.Equal(t, "enabled, active (running)", c.Before)
			assert.Equal(t, "masked, stopped", c.After)
			assert.Equal(t, "services.allow (not listed)", c.Reason)
		}
	}
	// Triggers go before the services they start.
	var order []string
	for _, c := range p.Changes {
		order = append(order, c.Object)
	}
	assert.Less(t, slices.Index(order, "unit cups.socket"), slices.Index(order, "unit cups.service"))
}

// Every unit file the plan masks was enabled; nothing static, generated,
// transient, alias, indirect or linked is ever touched, and the essential
// units stay even when the policy allows nothing at all.
func TestNeverMasksUnmanagedOrEssential(t *testing.T) {
	p := policy.Default()
	p.Services.Allow = nil
	p.Audit.Baseline, p.Audit.Rules, p.ClamAV.Enabled = false, nil, false
	f := newFixture(t, p)
	states := map[string]string{}
	for _, u := range f.fake.Units() {
		states[u.Name] = u.FileState
	}
	plan := f.plan(t)
	masked := byAction(plan, engine.ActionMask)
	for _, n := range masked {
		assert.Contains(t, []string{"enabled", "enabled-runtime"}, states[n], "%s masked in state %s", n, states[n])
	}
	// Now nothing is allowed: auditd goes too. sshd's and ClamAV's units are managed by
	// their own steps (internal/ownedunits): never masked as "not listed".
	assert.Contains(t, masked, "auditd.service")
	for _, n := range []string{"ssh.service", "clamav-daemon.service", "clamav-daemon.socket"} {
		require.Equal(t, "enabled", states[n], "fixture: %s should be enabled", n)
		assert.NotContains(t, masked, n)
	}
	for _, n := range []string{
		"getty@.service", "serial-getty@ttyS0.service", "systemd-timesyncd.service", "systemd-pstore.service",
		"networking.service", "cloud-init.service", "cloud-init-local.service", "cloud-config.service",
		"cloud-final.service", "cloud-init.target", "remote-fs.target", "console-setup.service", "keyboard-setup.service",
	} {
		require.Contains(t, []string{"enabled", "enabled-runtime"}, states[n], "fixture: %s should be enabled", n)
		assert.NotContains(t, masked, n, "essential unit masked")
	}
	for _, n := range []string{"myapp.service", "uuidd.service", "exim4.service", "run-r4e1b2c3d.service", "sshd.service", "-.mount"} {
		assert.NotContains(t, masked, n)
	}

	enginetest.Converges(t, f.env, f.step)
	assert.Equal(t, "linked", f.fake.FileState("myapp.service"))
	assert.Equal(t, "generated", f.fake.FileState("exim4.service"))
	_, active, _ := f.fake.State("exim4.service")
	assert.Equal(t, "active", active, "generated units are not stopped")
	assert.Equal(t, "enabled", f.fake.FileState("getty@.service"))
	_, active, _ = f.fake.State("systemd-journald.service")
	assert.Equal(t, "active", active)
}

func recorded(t *testing.T, env *engine.Env) []string {
	t.Helper()
	data, ok, err := env.Root.ReadFileIfExists(services.StatePath)
	require.NoError(t, err)
	if !ok {
		return nil
	}
	var rec struct{ Masked []string }
	require.NoError(t, json.Unmarshal(data, &rec))
	return rec.Masked
}

func TestApplyConverges(t *testing.T) {
	f := newFixture(t, nil)
	rep := enginetest.Converges(t, f.env, f.step)
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)

	for _, n := range maskedOnDebian {
		assert.Equal(t, "masked", f.fake.FileState(n), n)
		load, active, _ := f.fake.State(n)
		assert.NotEqual(t, "active", active, "%s still running", n)
		if load != "" {
			assert.Equal(t, "masked", load, "%s: daemon-reload after masking", n)
		}
	}
	assert.Equal(t, maskedOnDebian, recorded(t, f.env))
	for _, n := range []string{"ssh.service", "auditd.service", "clamav-daemon.service", "clamav-clamonacc.service"} {
		_, active, _ := f.fake.State(n)
		assert.Equal(t, "active", active, n)
	}
	assert.Equal(t, "enabled", f.fake.FileState("clamav-clamonacc.service"))
	// Foreign masks untouched.
	assert.Equal(t, "masked", f.fake.FileState("hwclock.service"))
	assert.NotContains(t, recorded(t, f.env), "hwclock.service")
	// One reload for the whole run: enabling and starting the wanted units (they come first
	// in the plan) waits for none, the masks are reloaded once at the end. Under QEMU a
	// reload is 12-15 s, and a first boot used to pay one per enabled unit.
	assert.Equal(t, 1, f.fake.Reloads())
}

// systemd works a unit file's state out by loading it and scanning every .wants directory,
// so the plan asks only about the units in its scope: those the unit directories could enable
// or mask, the allowed ones, the units other steps own (sshd's nine names across Debian and
// Ubuntu 26.04, auditd's, ClamAV's, harden's own) with the socket, timer and path units that
// could start them, and harden's own masks. On the Debian server fixture that is 177 names of
// 269 unit files, and no call lists every unit file or every loaded unit.
func TestPlanAsksSystemdOnlyAboutItsScope(t *testing.T) {
	f := newFixture(t, nil)
	enginetest.Converges(t, f.env, f.step)
	var listed []string
	for _, c := range f.fake.Calls() {
		switch c.Method {
		case "ListUnitFiles", "ListUnits":
			t.Errorf("%s lists everything", c)
		case "ListUnitFilesByPatterns", "ListUnitsByPatterns":
			require.Len(t, c.Args, 2)
			require.NotEmpty(t, c.Args[1], "%s without patterns lists everything", c.Method)
			listed = strings.Split(c.Args[1], ",")
		}
	}
	files := 0
	for _, u := range f.fake.Units() {
		if u.FileState != "" {
			files++
		}
	}
	require.NotEmpty(t, listed)
	assert.Less(t, len(listed), files*3/4, "asked about %d names of %d unit files: %v", len(listed), files, listed)
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, nil)
	state := func() string {
		return enginetest.TreeDigest(t, f.env.Root.Dir()) + fmt.Sprint(f.fake.Units())
	}
	rep := enginetest.DryRunChangesNothing(t, f.env, f.step, state)
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
	assert.NotEmpty(t, rep.Steps[0].Changes)
	assert.Empty(t, f.fake.Mutations(), "dry-run sent state-changing calls to systemd")
}

// A unit harden masked is unmasked, enabled and started once the policy
// allows it; a unit someone else masked is not, even when allowed.
func TestLaterAllowUnmasksOwnMaskOnly(t *testing.T) {
	f := newFixture(t, nil)
	enginetest.Converges(t, f.env, f.step)
	require.Equal(t, "masked", f.fake.FileState("cron.service"))

	f.env.Policy.Services.Allow = append(f.env.Policy.Services.Allow,
		policy.ServiceRule{Name: "cron.service", Why: "batch jobs", Ensure: "running"},
		policy.ServiceRule{Name: "hwclock.service", Why: "clock", Ensure: "running"})
	p := f.plan(t)
	assert.Equal(t, []string{"cron.service"}, byAction(p, engine.ActionUnmask))
	assert.Equal(t, []string{"cron.service"}, byAction(p, engine.ActionEnable))
	assert.Equal(t, []string{"cron.service"}, byAction(p, engine.ActionStart))
	assert.Equal(t, []string{"hwclock.service"}, findingIDs(p, "services.allowed-but-masked"))
	for _, c := range p.Changes {
		if c.Object == "unit cron.service" {
			assert.Equal(t, "services.allow[1]", c.Reason)
		}
	}

	rep := enginetest.Converges(t, f.env, f.step)
	assert.Len(t, rep.Steps[0].Changes, 3)
	assert.Equal(t, "enabled", f.fake.FileState("cron.service"))
	_, active, _ := f.fake.State("cron.service")
	assert.Equal(t, "active", active)
	assert.NotContains(t, recorded(t, f.env), "cron.service")
	assert.Equal(t, "masked", f.fake.FileState("hwclock.service"))
}

// A unit harden masked on an earlier boot that runs anyway (the stop failed,
// someone started it before the reload) is stopped; the same state on a
// mask someone else made is only reported.
func TestOwnMaskedUnitRunningIsStopped(t *testing.T) {
	running := func(name string) systemdtest.UnitSpec {
		return systemdtest.UnitSpec{Name: name, FileState: "masked", LoadState: "loaded", ActiveState: "active", SubState: "running"}
	}
	f := newFixtureUnits(t, nil, []systemdtest.UnitSpec{running("cups.service"), running("avahi-daemon.service"),
		{Name: "ssh.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "running"}})
	enginetest.WriteFile(t, f.env, services.StatePath, `{"masked": ["cups.service"]}`)

	p := f.plan(t)
	assert.Equal(t, []string{"cups.service"}, byAction(p, engine.ActionStop))
	assert.Empty(t, byAction(p, engine.ActionMask))
	assert.Equal(t, []string{"avahi-daemon.service"}, findingIDs(p, "services.foreign-mask"))

	enginetest.Converges(t, f.env, f.step)
	_, active, _ := f.fake.State("cups.service")
	assert.Equal(t, "inactive", active)
	_, active, _ = f.fake.State("avahi-daemon.service")
	assert.Equal(t, "active", active, "foreign mask: left alone")
	assert.Equal(t, []string{"cups.service"}, recorded(t, f.env))
}

func TestRestartQueueDrainedOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.env.Restarts.Request("ssh.service", "sshd.settings")
	f.env.Restarts.Request("ssh.service", "sshd.max_auth_tries")
	f.env.Restarts.Request("clamav-daemon.service", "clamav.on_access_paths") // started anyway: no restart
	f.env.Restarts.Request("cups.service", "someone")                         // masked: no restart
	f.env.Restarts.Request("nftables.service", "firewall")                    // inactive: no restart

	p := f.plan(t)
	assert.Equal(t, []string{"ssh.service"}, byAction(p, engine.ActionRestart))
	for _, c := range p.Changes {
		if c.Action == engine.ActionRestart {
			assert.Equal(t, "sshd.settings; sshd.max_auth_tries", c.Reason)
		}
	}
	assert.Equal(t, []string{"nftables.service"}, findingIDs(p, "services.restart-skipped"))

	enginetest.Converges(t, f.env, f.step)
	restarts := 0
	for _, c := range f.fake.Mutations() {
		if c.Method == "RestartUnit" {
			restarts++
			assert.Equal(t, "ssh.service", c.Args[0])
		}
	}
	assert.Equal(t, 1, restarts)
	var pending []string
	for _, r := range f.env.Restarts.Pending() {
		pending = append(pending, r.Unit)
	}
	assert.Equal(t, []string{"nftables.service"}, pending, "only the skipped one is left")
	// The restart was the last thing systemd was asked to do.
	muts := f.fake.Mutations()
	assert.Equal(t, "RestartUnit", muts[len(muts)-1].Method)
}

func TestNoSystemd(t *testing.T) {
	open := systemd.Shared(systemd.Options{Address: "unix:path=" + filepath.Join(t.TempDir(), "none")})
	env := enginetest.Env(t, nil, nil)
	env.Restarts.Request("ssh.service", "sshd.settings")
	rep, _ := enginetest.Run(t, env, false, services.New(open))
	s := rep.Steps[0]
	assert.Equal(t, engine.StatusOK, s.Status, s.Error)
	assert.Empty(t, s.Changes)
	require.Len(t, s.Findings, 1)
	assert.Equal(t, "services.no-systemd", s.Findings[0].ID)
	assert.Contains(t, s.Findings[0].Message, "no systemd: units not managed")
	assert.Contains(t, s.Findings[0].Message, "1 queued restart(s) not run")
}

func TestJobFailureFailsStep(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.Inject(systemdtest.Fault{Method: "StartUnit", Unit: "clamav-daemon.service", JobResult: "failed"})
	rep, _ := enginetest.Run(t, f.env, false, f.step)
	s := rep.Steps[0]
	assert.Equal(t, engine.StatusFailed, s.Status)
	assert.Contains(t, s.Error, "clamav-daemon.service")
	assert.Contains(t, s.Error, `"failed"`)
}

// BenchmarkPlanConverged is the cost of a boot with nothing to change: the unit directories
// read for the plan's scope, two D-Bus calls over a real bus for the unit files and units in
// it (of ~270 on the Debian server), and the comparison.
func BenchmarkPlanConverged(b *testing.B) {
	bus := systemdtest.StartBus(b)
	fake := systemdtest.NewFake(b, bus, systemdtest.DebianServer(b))
	open := systemd.Shared(systemd.Options{Address: bus.Address})
	env := enginetest.Env(b, nil, nil)
	fake.WriteUnitDirs(b, env.Root.Dir())
	step := services.New(open)
	enginetest.Run(b, env, false, step)
	b.ResetTimer()
	for range b.N {
		p, err := step.Plan(context.Background(), env)
		if err != nil || len(p.Changes) != 0 {
			b.Fatalf("plan: %v, %d changes", err, len(p.Changes))
		}
	}
}

// Units another step manages (internal/ownedunits) are never masked as "not listed", even
// when the policy's services.allow leaves them out: masking audit-rules.service leaves auditd
// 4 without rules, masking sshd-keygen.service leaves an image without host keys. One an
// older harden masked is unmasked; a mask someone else made stays.
func TestUnitsOwnedByOtherStepsAreNeverMasked(t *testing.T) {
	enabled := func(name string) systemdtest.UnitSpec {
		return systemdtest.UnitSpec{Name: name, FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"}
	}
	masked := func(name string) systemdtest.UnitSpec {
		return systemdtest.UnitSpec{Name: name, FileState: "masked", LoadState: "masked", ActiveState: "inactive", SubState: "dead"}
	}
	p := policy.Default()
	p.Services.Allow = nil // nothing listed: only built-in and owned units survive
	p.ClamAV.Enabled = false
	f := newFixtureUnits(t, p, []systemdtest.UnitSpec{
		enabled("sshd-keygen.service"), enabled("ssh.socket"), enabled("clamav-freshclam.service"),
		enabled("sshd-unix-local.socket"),
		masked("audit-rules.service"), // masked by an older harden (recorded below)
		masked("sshd-vsock.socket"),   // masked by someone else: left alone, no finding
		enabled("cups.service"),       // the control: not listed, not owned
	})
	enginetest.WriteFile(t, f.env, services.StatePath, `{"masked": ["audit-rules.service"]}`)

	plan := f.plan(t)
	assert.Equal(t, []string{"cups.service"}, byAction(plan, engine.ActionMask))
	assert.Equal(t, []string{"audit-rules.service"}, byAction(plan, engine.ActionUnmask))
	assert.Empty(t, findingIDs(plan, "services.foreign-mask"), "an owned unit's mask is its step's business")
	for _, c := range plan.Changes {
		if c.Action == engine.ActionUnmask {
			assert.Equal(t, "managed by the audit step", c.Reason)
		}
	}

	enginetest.Converges(t, f.env, f.step)
	for _, u := range []string{"sshd-keygen.service", "ssh.socket", "clamav-freshclam.service", "sshd-unix-local.socket"} {
		assert.Equal(t, "enabled", f.fake.FileState(u), u)
	}
	assert.NotEqual(t, "masked", f.fake.FileState("audit-rules.service"))
	assert.Equal(t, "masked", f.fake.FileState("sshd-vsock.socket"))
	assert.Equal(t, []string{"cups.service"}, recorded(t, f.env))
}

// maskedOnUbuntu are the units of the Ubuntu 26.04 fixture the default policy masks: the
// enabled timers and services a server does not need, ufw.service among them (the firewall
// step owns the firewall). Listed by hand from the fixture, and what harden masked in the
// VM (integration TestBaked on ubuntu-26.04).
var maskedOnUbuntu = []string{
	"dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
	"logrotate.timer", "motd-news.timer", "ufw.service",
}

// The embedded default allowlist on an Ubuntu 26.04 server: the units a server does not
// need are masked; the ones other steps manage (ssh.socket and sshd-keygen.service: sshd;
// audit-rules.service: audit; ClamAV's), cloud-init's, networking (netplan, networkd) and
// AppArmor stay; ssh.service and clamonacc are enabled as the policy asks.
func TestPlanUbuntuServer(t *testing.T) {
	f := newFixtureUnits(t, nil, systemdtest.UbuntuServer(t))
	p := f.plan(t)
	assert.Equal(t, maskedOnUbuntu, byAction(p, engine.ActionMask))
	assert.Equal(t, []string{"clamav-clamonacc.service", "ssh.service"}, byAction(p, engine.ActionEnable))
	masked := byAction(p, engine.ActionMask)
	for _, u := range []string{
		"ssh.socket", "sshd-keygen.service", "audit-rules.service", "auditd.service",
		"clamav-daemon.service", "clamav-daemon.socket", "cloud-init-main.service", "cloud-init-local.service",
		"cloud-init-network.service", "cloud-config.service", "cloud-final.service", "cloud-init-hotplugd.socket",
		"netplan-configure.service", "systemd-networkd.service", "apparmor.service", "getty@.service",
	} {
		st := f.fake.FileState(u)
		require.NotEmpty(t, st, "fixture: %s", u)
		assert.NotContains(t, masked, u)
	}
	enginetest.Converges(t, f.env, f.step)
	assert.Equal(t, maskedOnUbuntu, recorded(t, f.env))
}

// debianClamd is Debian bookworm's clamav-daemon.service (clamav-daemon 1.4), as installed.
const debianClamd = `[Unit]
Description=Clam AntiVirus userspace daemon
Documentation=man:clamd(8) man:clamd.conf(5) https://docs.clamav.net/
Requires=clamav-daemon.socket
# Check for database existence
ConditionPathExistsGlob=/var/lib/clamav/main.{c[vl]d,inc}
ConditionPathExistsGlob=/var/lib/clamav/daily.{c[vl]d,inc}

[Service]
ExecStart=/usr/sbin/clamd --foreground=true
`

// Without ClamAV signatures systemd skips clamd (its unit's condition), and clamonacc would
// wait for clamd's socket until its start times out. Neither is enabled, started or masked;
// the services step adds no finding of its own (the clamav step says it once); the plan
// converges. With the signatures, or with the condition cleared by a drop-in (as the
// integration image does for its test signatures), both are started.
func TestClamAVHeldWithoutSignatures(t *testing.T) {
	f := newFixture(t, nil)
	enginetest.WriteFile(t, f.env, "/lib/systemd/system/clamav-daemon.service", debianClamd)
	for _, db := range []string{"/var/lib/clamav/main.cvd", "/var/lib/clamav/daily.cld"} {
		_, err := f.env.Root.Remove(db)
		require.NoError(t, err)
	}
	p := f.plan(t)
	assert.Empty(t, byAction(p, engine.ActionEnable))
	assert.Empty(t, byAction(p, engine.ActionStart))
	for _, c := range p.Changes {
		assert.NotContains(t, c.Object, "clamav-daemon", c.String())
		assert.NotContains(t, c.Object, "clamav-clamonacc", c.String())
	}
	for _, fd := range p.Findings {
		assert.NotContains(t, fd.Object, "clamav", "services says nothing more about ClamAV: %s %s", fd.ID, fd.Message)
	}
	rep := enginetest.Converges(t, f.env, f.step)
	require.NotEqual(t, engine.StatusFailed, rep.Steps[0].Status)
	for _, c := range f.fake.Mutations() {
		assert.NotContains(t, c.String(), "clamav", "no start, enable or mask of a ClamAV unit")
	}

	// Only main: still held (both conditions must hold). main.inc (a directory) counts.
	enginetest.WriteFile(t, f.env, "/var/lib/clamav/main.inc/main.info", "x")
	assert.Empty(t, byAction(f.plan(t), engine.ActionStart))
	enginetest.WriteFile(t, f.env, "/var/lib/clamav/daily.cvd", "ClamAV-VDB:")
	p = f.plan(t)
	assert.Equal(t, []string{"clamav-clamonacc.service"}, byAction(p, engine.ActionEnable))
	assert.Equal(t, []string{"clamav-clamonacc.service", "clamav-daemon.service"}, byAction(p, engine.ActionStart))

	// No signatures, but the condition cleared in /etc: systemd starts clamd, so does harden.
	require.NoError(t, os.RemoveAll(f.env.Root.Path("/var/lib/clamav")))
	assert.Empty(t, byAction(f.plan(t), engine.ActionStart))
	enginetest.WriteFile(t, f.env, "/etc/systemd/system/clamav-daemon.service.d/test.conf", "[Unit]\nConditionPathExistsGlob=\n")
	assert.Equal(t, []string{"clamav-clamonacc.service", "clamav-daemon.service"}, byAction(f.plan(t), engine.ActionStart))
}

// requester is a step that asks for a daemon-reload the way the sshd step does after it
// masked systemd-ssh-generator: through the queue, for the services step to make.
type requester struct{ asked bool }

func (*requester) Name() string { return "sshd" }

func (r *requester) Plan(context.Context, *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	if !r.asked {
		p.Add(&engine.Change{Object: "systemd manager (daemon-reload)", Action: engine.ActionQueue, Reason: "test.generator",
			Do: func(context.Context) error { r.asked = true; return nil }})
	}
	return p, nil
}

func (r *requester) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	if err := engine.ApplyChanges(ctx, p); err != nil {
		return err
	}
	env.Restarts.RequestReload("test.generator")
	return nil
}

// Another step's reload request is the last change of the services plan, and the one
// daemon-reload it makes also serves its own masks: a first boot pays one reload, not two.
// With nothing of its own to change the step still reloads, once; the run after reloads
// nothing.
func TestReloadRequestsShareTheStepsReload(t *testing.T) {
	for _, converged := range []bool{false, true} {
		t.Run(fmt.Sprintf("services-converged=%v", converged), func(t *testing.T) {
			f := newFixture(t, nil)
			if converged {
				enginetest.Converges(t, f.env, f.step)
			}
			before := f.fake.Reloads()
			rep, _ := enginetest.Run(t, f.env, false, &requester{}, f.step)
			require.Equal(t, engine.StatusChanged, rep.Steps[1].Status, "%s", rep.Steps[1].Error)
			changes := rep.Steps[1].Changes
			last := changes[len(changes)-1]
			assert.Equal(t, "reload systemd manager (daemon-reload)", last.Action+" "+last.Object)
			assert.Equal(t, "test.generator", last.Reason)
			assert.True(t, last.Applied)
			assert.Equal(t, before+1, f.fake.Reloads(), "one reload for the request and the step's own changes")
			assert.Empty(t, f.env.Restarts.ReloadRequests(), "the request is done")

			rep, _ = enginetest.Run(t, f.env, false, &requester{asked: true}, f.step)
			assert.Zero(t, rep.ChangeCount())
			assert.Equal(t, before+1, f.fake.Reloads())
		})
	}
}
