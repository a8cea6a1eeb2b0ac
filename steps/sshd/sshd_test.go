package sshd_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/steps/sshd"
)

const sshdBin = "/usr/sbin/sshd"

// newEnv is a temp root holding a Debian-like sshd_config whose Include and
// HostKey point into the root (sshd reads absolute paths), with a fresh host
// key. The real sshd binary checks it.
func newEnv(t *testing.T, mainConfig string) *engine.Env {
	t.Helper()
	need.File(t, sshdBin, "openssh-server")
	need.Root(t, "sshd -t/-T need the privilege separation directory")
	requirePrivsepDir(t)
	env := enginetest.Env(t, nil, nil)
	root := env.Root.Dir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/ssh/sshd_config.d"), 0o755))
	key := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput()
	require.NoError(t, err, string(out))
	cfg := strings.NewReplacer("ROOT", root).Replace(mainConfig)
	enginetest.WriteFile(t, env, sshd.MainConfig, cfg)
	return env
}

// requirePrivsepDir makes /run/sshd, in the private /run TestMain mounted (never the
// machine's), as systemd's RuntimeDirectory=sshd does while ssh.service runs.
func requirePrivsepDir(t testing.TB) {
	t.Helper()
	if os.Getenv(privateRunEnv) != "1" {
		need.Missing(t, "a private /run for sshd's privilege separation directory (TestMain runs the tests under unshare --mount as root)")
	}
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
}

// debianConfig is bookworm's sshd_config (comments dropped) under a root.
const debianConfig = `Include ROOT/etc/ssh/sshd_config.d/*.conf
HostKey ROOT/etc/ssh/ssh_host_ed25519_key
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
`

// effective asks the real sshd what it will use for a root login from
// outside, independent of the step's own check.
func effective(t *testing.T, env *engine.Env, user string) map[string]string {
	t.Helper()
	out, err := exec.Command(sshdBin, "-T", "-f", env.Root.Path(sshd.MainConfig),
		"-C", "user="+user+",host=x,addr=198.51.100.7").CombinedOutput()
	require.NoError(t, err, string(out))
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		m[k] = v
	}
	return m
}

func requirePolicyHolds(t *testing.T, env *engine.Env, user string) {
	t.Helper()
	e := effective(t, env, user)
	assert.Equal(t, "no", e["permitrootlogin"])
	assert.Equal(t, "no", e["passwordauthentication"])
	assert.Equal(t, "no", e["kbdinteractiveauthentication"])
	assert.Equal(t, "yes", e["pubkeyauthentication"])
	assert.Equal(t, "3", e["maxauthtries"])
}

func ids(fs []*engine.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func critical(fs []*engine.Finding) []*engine.Finding {
	var out []*engine.Finding
	for _, f := range fs {
		if f.Severity == engine.Critical {
			out = append(out, f)
		}
	}
	return out
}

func TestWritesDropInAndProves(t *testing.T) {
	env := newEnv(t, debianConfig)
	// Before: Debian's defaults let root in with a key and allow passwords.
	before := effective(t, env, "root")
	require.Equal(t, "yes", before["passwordauthentication"])

	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	s := rep.Steps[0]
	require.Len(t, s.Changes, 1)
	assert.Equal(t, sshd.DropIn, s.Changes[0].Object)
	assert.Equal(t, engine.ActionCreate, s.Changes[0].Action)
	assert.Contains(t, s.Changes[0].Diff, "+ PasswordAuthentication no")

	data, err := env.Root.ReadFile(sshd.DropIn)
	require.NoError(t, err)
	assert.Contains(t, string(data), "\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nMaxAuthTries 3\n")
	requirePolicyHolds(t, env, "root")
	requirePolicyHolds(t, env, "admin")
	assert.Empty(t, critical(s.Findings), "the proof after apply found: %v", ids(s.Findings))
}

func TestDryRunChangesNothing(t *testing.T) {
	env := newEnv(t, debianConfig)
	rep := enginetest.DryRunChangesNothing(t, env, sshd.New(sshd.Options{}),
		func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	assert.Len(t, rep.Steps[0].Changes, 1)
}

// cloud-init writes 50-cloud-init.conf with PasswordAuthentication yes: it
// sorts after 00-harden.conf, and sshd keeps the first value.
func TestCloudInitDropInDoesNotWin(t *testing.T) {
	env := newEnv(t, debianConfig)
	enginetest.WriteFile(t, env, "/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\nPermitRootLogin yes\n")
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	requirePolicyHolds(t, env, "root")
	assert.Empty(t, critical(rep.Steps[0].Findings), "%v", ids(rep.Steps[0].Findings))
}

// A Match block applies after all global settings: the drop-in's first
// value does not protect against it. The step proves it with sshd -T and
// names the file.
func TestMatchBlockCaught(t *testing.T) {
	env := newEnv(t, debianConfig)
	enginetest.WriteFile(t, env, "/etc/ssh/sshd_config.d/50-cloud-init.conf",
		"Match User root\n  PasswordAuthentication yes\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n")
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	fs := rep.Steps[0].Findings
	var overridden, matches []*engine.Finding
	for _, f := range fs {
		switch f.ID {
		case "sshd.setting-overridden":
			overridden = append(overridden, f)
		case "sshd.match-overrides":
			matches = append(matches, f)
		}
	}
	require.Len(t, overridden, 1, "%v", ids(fs))
	assert.Equal(t, engine.Critical, overridden[0].Severity)
	assert.Contains(t, overridden[0].Message, "PasswordAuthentication yes")
	assert.Contains(t, overridden[0].Object, "/etc/ssh/sshd_config.d/50-cloud-init.conf:2 (Match User root)")
	// Both Match blocks are reported, including the one the root probe
	// does not match.
	require.Len(t, matches, 2)
	assert.Contains(t, matches[1].Message, "Match Address 10.0.0.0/8 in /etc/ssh/sshd_config.d/50-cloud-init.conf:4 sets PermitRootLogin yes")
	assert.Equal(t, engine.Critical, matches[1].Severity)
	// And it is real: sshd gives root a password prompt.
	assert.Equal(t, "yes", effective(t, env, "root")["passwordauthentication"])
}

// Without the Include at the top, a setting read before the drop-ins wins:
// the step moves the Include first.
func TestMissingIncludeFixed(t *testing.T) {
	env := newEnv(t, "PasswordAuthentication yes\nHostKey ROOT/etc/ssh/ssh_host_ed25519_key\nUsePAM yes\n")
	step := sshd.New(sshd.Options{})
	p, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, p.Changes, 2)
	assert.Equal(t, sshd.MainConfig, p.Changes[1].Object)
	assert.Contains(t, p.Changes[1].Diff, "+ Include "+env.Root.Path("/etc/ssh/sshd_config.d")+"/*.conf")

	enginetest.Converges(t, env, step)
	requirePolicyHolds(t, env, "root")
	data, err := env.Root.ReadFile(sshd.MainConfig)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), "# Added by harden"), string(data))
	assert.Contains(t, string(data), "PasswordAuthentication yes\n", "the admin's line stays, it just no longer wins")

	// Moved, not duplicated, when it was further down.
	env2 := newEnv(t, "PasswordAuthentication yes\nInclude ROOT/etc/ssh/sshd_config.d/*.conf\nHostKey ROOT/etc/ssh/ssh_host_ed25519_key\n")
	enginetest.Converges(t, env2, step)
	data, err = env2.Root.ReadFile(sshd.MainConfig)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(data), "Include "))
	requirePolicyHolds(t, env2, "root")
}

// A setting sshd rejects is never left in place: the old drop-in comes back.
func TestInvalidSettingRolledBack(t *testing.T) {
	env := newEnv(t, debianConfig)
	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	good, err := env.Root.ReadFile(sshd.DropIn)
	require.NoError(t, err)

	env.Policy.SSHD.Settings = map[string]string{"Bogus": "x"}
	rep, _ := enginetest.Run(t, env, false, sshd.New(sshd.Options{}))
	s := rep.Steps[0]
	assert.Equal(t, engine.StatusFailed, s.Status)
	assert.Contains(t, s.Error, "Bogus")
	assert.Contains(t, s.Error, "old file restored")
	now, err := env.Root.ReadFile(sshd.DropIn)
	require.NoError(t, err)
	assert.Equal(t, string(good), string(now))
	requirePolicyHolds(t, env, "root")

	// With no drop-in before, the rejected one is removed.
	env2 := newEnv(t, debianConfig)
	env2.Policy.SSHD.Settings = map[string]string{"Bogus": "x"}
	rep, _ = enginetest.Run(t, env2, false, sshd.New(sshd.Options{}))
	assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	_, ok, err := env2.Root.ReadFileIfExists(sshd.DropIn)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestExtraSettingsProven(t *testing.T) {
	env := newEnv(t, debianConfig)
	env.Policy.SSHD.Settings = map[string]string{"LoginGraceTime": "30s", "X11Forwarding": "no"}
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	assert.Empty(t, rep.Steps[0].Findings)
	e := effective(t, env, "root")
	assert.Equal(t, "30", e["logingracetime"])
	assert.Equal(t, "no", e["x11forwarding"])
}

func TestNotInstalled(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	rep, _ := enginetest.Run(t, env, false, sshd.New(sshd.Options{}))
	s := rep.Steps[0]
	assert.Equal(t, engine.StatusOK, s.Status)
	assert.Equal(t, []string{"sshd.not-installed"}, ids(s.Findings))

	env = newEnv(t, debianConfig)
	rep, _ = enginetest.Run(t, env, false, sshd.New(sshd.Options{Binary: "/nonexistent/sshd"}))
	assert.Equal(t, []string{"sshd.not-installed"}, ids(rep.Steps[0].Findings))
}

// sshd is reloaded over D-Bus (a real dbus-daemon, fake systemd) only when
// the configuration changed and the unit runs.
func TestReloadOverDBus(t *testing.T) {
	env := newEnv(t, debianConfig)
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, []systemdtest.UnitSpec{
		{Name: "ssh.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "running"},
		{Name: "ssh.socket", FileState: "disabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
	})
	step := sshd.New(sshd.Options{Systemd: systemd.Shared(systemd.Options{Address: bus.Address})})
	rep := enginetest.Converges(t, env, step)
	var actions []string
	for _, c := range rep.Steps[0].Changes {
		actions = append(actions, c.Action+" "+c.Object)
	}
	assert.Equal(t, []string{"create " + sshd.DropIn, "reload unit ssh.service"}, actions)
	var reloads []string
	for _, c := range fake.Mutations() {
		reloads = append(reloads, c.String())
	}
	assert.Equal(t, []string{"ReloadOrRestartUnit(ssh.service, replace)"}, reloads, "once, not on the second run")
}

func TestNoReloadWhenStoppedOrNoSystemd(t *testing.T) {
	env := newEnv(t, debianConfig)
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, []systemdtest.UnitSpec{
		{Name: "ssh.service", FileState: "enabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
	})
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: systemd.Shared(systemd.Options{Address: bus.Address})}))
	assert.Len(t, rep.Steps[0].Changes, 1)
	assert.Empty(t, fake.Mutations())

	env = newEnv(t, debianConfig)
	none := systemd.Shared(systemd.Options{Address: "unix:path=" + filepath.Join(t.TempDir(), "none")})
	step := sshd.New(sshd.Options{Systemd: none})
	p, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Len(t, p.Changes, 1, "the file is still written")
	assert.Equal(t, []string{"sshd.not-reloaded"}, ids(p.Findings))
	enginetest.Converges(t, env, step)
	requirePolicyHolds(t, env, "root")
}

// Ubuntu starts sshd from ssh.socket: Port in sshd_config is then ignored.
func TestSocketActivationWarned(t *testing.T) {
	env := newEnv(t, debianConfig)
	env.Policy.SSHD.Settings = map[string]string{"Port": "2222"}
	bus := systemdtest.StartBus(t)
	systemdtest.NewFake(t, bus, []systemdtest.UnitSpec{
		{Name: "ssh.service", FileState: "disabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
		{Name: "ssh.socket", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "listening"},
	})
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: systemd.Shared(systemd.Options{Address: bus.Address})}))
	assert.Contains(t, ids(rep.Steps[0].Findings), "sshd.socket-activated")
}

// BenchmarkPlanConverged is a boot with nothing to change: read two files,
// run `sshd -T` twice (the proof) and compare.
func BenchmarkPlanConverged(b *testing.B) {
	need.File(b, sshdBin, "openssh-server")
	need.Root(b, "sshd -t/-T")
	env := enginetest.Env(b, nil, nil)
	root := env.Root.Dir()
	require.NoError(b, os.MkdirAll(filepath.Join(root, "etc/ssh/sshd_config.d"), 0o755))
	key := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput()
	require.NoError(b, err, string(out))
	enginetest.WriteFile(b, env, sshd.MainConfig, strings.NewReplacer("ROOT", root).Replace(debianConfig))
	step := sshd.New(sshd.Options{})
	enginetest.Run(b, env, false, step)
	b.ResetTimer()
	for range b.N {
		p, err := step.Plan(context.Background(), env)
		if err != nil || len(p.Changes) != 0 {
			b.Fatalf("plan: %v, %d changes", err, len(p.Changes))
		}
	}
}
