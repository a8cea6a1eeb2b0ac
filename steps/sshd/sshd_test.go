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
	"github.com/harden-dev/harden/steps/services"
	"github.com/harden-dev/harden/steps/sshd"
)

const sshdBin = "/usr/sbin/sshd"

// newEnv is a temp root holding a Debian-like sshd_config, with the machine's
// paths (/etc/ssh/...) as a real machine or image has them, and a fresh host
// key. The real sshd binary checks it (through the step's view of the root).
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
	enginetest.WriteFile(t, env, sshd.MainConfig, mainConfig)
	// An operator account with a key: root login off leaves a way in.
	enginetest.WriteFile(t, env, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n")
	enginetest.WriteFile(t, env, "/home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHarden admin@laptop\n")
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
const debianConfig = `Include /etc/ssh/sshd_config.d/*.conf
HostKey /etc/ssh/ssh_host_ed25519_key
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
`

// effective asks the real sshd what it will use for a root login from
// outside, independent of the step's own check: the main config's /etc/ssh
// paths are pointed into the root by a plain text replacement.
func effective(t *testing.T, env *engine.Env, user string) map[string]string {
	t.Helper()
	data, err := env.Root.ReadFile(sshd.MainConfig)
	require.NoError(t, err)
	cfg := filepath.Join(t.TempDir(), "sshd_config")
	rooted := strings.ReplaceAll(string(data), " /etc/ssh/", " "+env.Root.Path("/etc/ssh")+"/")
	require.NoError(t, os.WriteFile(cfg, []byte(rooted), 0o600))
	out, err := exec.Command(sshdBin, "-T", "-f", cfg,
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
	assert.Contains(t, string(data), "\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitEmptyPasswords no\nPubkeyAuthentication yes\nMaxAuthTries 3\n")
	requirePolicyHolds(t, env, "root")
	requirePolicyHolds(t, env, "admin")
	assert.Empty(t, s.Findings, "the proof after apply found: %v", ids(s.Findings))

	// The session baseline, as the real sshd reads it (Debian's X11Forwarding yes loses).
	e := effective(t, env, "admin")
	for k, v := range map[string]string{"x11forwarding": "no", "allowtcpforwarding": "no", "allowagentforwarding": "no",
		"allowstreamlocalforwarding": "no", "permittunnel": "no", "gatewayports": "no", "loglevel": "VERBOSE",
		"logingracetime": "30", "maxsessions": "10", "maxstartups": "10:30:60", "clientaliveinterval": "300",
		"clientalivecountmax": "3", "permitemptypasswords": "no", "hostbasedauthentication": "no", "permituserenvironment": "no"} {
		assert.Equal(t, v, e[k], k)
	}
}

// The crypto lines name only what this OpenSSH supports (ssh -Q) and nothing ssh-audit
// fails: no NIST curves, no SHA-1, no CBC, encrypt-then-MAC only. The real sshd takes them.
func TestCryptoBaselineFromInstalledOpenSSH(t *testing.T) {
	env := newEnv(t, debianConfig)
	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	e := effective(t, env, "admin")
	for kw, q := range map[string]string{"kexalgorithms": "kex", "ciphers": "cipher", "macs": "mac", "hostkeyalgorithms": "HostKeyAlgorithms"} {
		out, err := exec.Command("ssh", "-Q", q).Output()
		require.NoError(t, err)
		supported := strings.Fields(string(out))
		require.NotEmpty(t, e[kw], kw)
		for _, a := range strings.Split(e[kw], ",") {
			assert.Contains(t, supported, a, "%s: %s is not supported by this OpenSSH", kw, a)
			for _, weak := range []string{"nistp", "sha1", "cbc", "umac-64", "ssh-rsa", "ssh-dss", "group14", "group-exchange"} {
				assert.NotContains(t, a, weak, kw)
			}
		}
	}
	assert.True(t, strings.HasPrefix(e["kexalgorithms"], "sntrup761x25519-sha512"), "post-quantum first on OpenSSH 9.2: %s", e["kexalgorithms"])
	assert.Contains(t, e["hostkeyalgorithms"], "ssh-ed25519")
	assert.Contains(t, e["hostkeyalgorithms"], "rsa-sha2-512")
}

// Judged from outside: ssh-audit reports no failure for any algorithm the drop-in names
// (bookworm's ssh-audit 2.5.0 does not know ML-KEM yet: it lists it as unknown, not failed).
func TestCryptoBaselinePassesSSHAudit(t *testing.T) {
	need.Tool(t, "ssh-audit")
	env := newEnv(t, debianConfig)
	enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	e := effective(t, env, "admin")
	var algs []string
	for _, kw := range []string{"kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"} {
		algs = append(algs, e[kw])
	}
	// Exit status 3 means "some algorithm unknown" (ML-KEM, sntrup without @openssh.com).
	out, _ := exec.Command("ssh-audit", "-n", "--lookup="+strings.Join(algs, ",")).CombinedOutput()
	assert.NotContains(t, string(out), "[fail]", string(out))
	assert.Contains(t, string(out), "(kex) curve25519-sha256", "ssh-audit judged the list")

	// And it does fail what Debian's defaults offer, so the check can fail.
	out, _ = exec.Command("ssh-audit", "-n", "--lookup=ecdh-sha2-nistp256,ecdsa-sha2-nistp256,hmac-sha1").CombinedOutput()
	assert.Contains(t, string(out), "[fail]")
}

// An OpenSSH 10 that supports ML-KEM gets it first; the plan shows it (dry-run: this host's
// sshd 9.2 could not load it).
func TestCryptoTakesMLKEMWhenSupported(t *testing.T) {
	env := newEnv(t, debianConfig)
	fake := filepath.Join(t.TempDir(), "ssh")
	require.NoError(t, os.WriteFile(fake, []byte(`#!/bin/sh
case "$2" in
kex) printf '%s
' diffie-hellman-group14-sha1 ecdh-sha2-nistp256 curve25519-sha256 sntrup761x25519-sha512 sntrup761x25519-sha512@openssh.com mlkem768x25519-sha256 ;;
cipher) printf '%s
' aes128-ctr aes256-gcm@openssh.com chacha20-poly1305@openssh.com ;;
mac) printf '%s
' hmac-sha1 hmac-sha2-256-etm@openssh.com ;;
*) printf '%s
' ssh-ed25519 ecdsa-sha2-nistp256 ssh-rsa rsa-sha2-512 rsa-sha2-256 ;;
esac
`), 0o755))
	p, err := sshd.New(sshd.Options{SSH: fake}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotEmpty(t, p.Changes)
	assert.Contains(t, p.Changes[0].Diff, "+ KexAlgorithms mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256\n")
	assert.Contains(t, p.Changes[0].Diff, "+ HostKeyAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256\n")
}

// A dry-run creates nothing anywhere: not in the root, and not sshd's privilege separation
// directory in /run (this test's private /run), which sshd -t needs and apply makes.
func TestDryRunChangesNothing(t *testing.T) {
	env := newEnv(t, debianConfig)
	require.NoError(t, os.RemoveAll("/run/sshd"))
	digest := func() string {
		return enginetest.TreeDigest(t, env.Root.Dir()) + enginetest.TreeDigest(t, "/run")
	}
	rep := enginetest.DryRunChangesNothing(t, env, sshd.New(sshd.Options{}), digest)
	var objects []string
	for _, c := range rep.Steps[0].Changes {
		objects = append(objects, c.Action+" "+c.Object)
	}
	assert.Equal(t, []string{"create /run/sshd", "create " + sshd.DropIn}, objects)
	_, err := os.Stat("/run/sshd")
	assert.True(t, os.IsNotExist(err), "dry-run made /run/sshd")

	rep = enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	assert.Len(t, rep.Steps[0].Changes, 2)
	fi, err := os.Stat("/run/sshd")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	requirePolicyHolds(t, env, "root")
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
	env := newEnv(t, "PasswordAuthentication yes\nHostKey /etc/ssh/ssh_host_ed25519_key\nUsePAM yes\n")
	step := sshd.New(sshd.Options{})
	p, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, p.Changes, 2)
	assert.Equal(t, sshd.MainConfig, p.Changes[1].Object)
	assert.Contains(t, p.Changes[1].Diff, "+ Include /etc/ssh/sshd_config.d/*.conf", "the machine's path, never the root's")

	enginetest.Converges(t, env, step)
	requirePolicyHolds(t, env, "root")
	data, err := env.Root.ReadFile(sshd.MainConfig)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), "# Added by harden"), string(data))
	assert.Contains(t, string(data), "PasswordAuthentication yes\n", "the admin's line stays, it just no longer wins")

	// Moved, not duplicated, when it was further down.
	env2 := newEnv(t, "PasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\n")
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
	assert.Contains(t, s.Error, "not put in place")
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
	// Banner is an extra keyword; UseDNS and StrictModes replace nothing / a baseline line.
	env.Policy.SSHD.Settings = map[string]string{"Banner": "/etc/issue.net", "UseDNS": "no", "StrictModes": "no"}
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{}))
	assert.Empty(t, rep.Steps[0].Findings)
	e := effective(t, env, "root")
	assert.Equal(t, "/etc/issue.net", e["banner"])
	assert.Equal(t, "no", e["usedns"])
	assert.Equal(t, "no", e["strictmodes"], "an explicit setting replaces the baseline line")
	data, err := env.Root.ReadFile(sshd.DropIn)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(data), "StrictModes"))
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
	assert.Equal(t, []string{"ReloadOrTryRestartUnit(ssh.service, replace)"}, reloads, "once, not on the second run")
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

// Ubuntu starts sshd from ssh.socket; sshd-socket-generator turns Port and ListenAddress
// into the socket's ListenStream=. A Port change is a daemon-reload (the generator runs) and
// a restart of ssh.socket; ssh.service, not running, is left alone (try-reload-or-restart).
func TestSocketActivatedPortChange(t *testing.T) {
	env := newEnv(t, debianConfig)
	env.Policy.SSHD.Settings = map[string]string{"Port": "2222"}
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, []systemdtest.UnitSpec{
		{Name: "ssh.service", FileState: "disabled", LoadState: "loaded", ActiveState: "inactive", SubState: "dead"},
		{Name: "ssh.socket", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "listening"},
	})
	rep := enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: systemd.Shared(systemd.Options{Address: bus.Address})}))
	var actions []string
	for _, c := range rep.Steps[0].Changes {
		actions = append(actions, c.Action+" "+c.Object)
	}
	assert.Equal(t, []string{"create " + sshd.DropIn, "reload systemd manager (daemon-reload)", "restart unit ssh.socket", "reload unit ssh.service"}, actions)
	var calls []string
	for _, c := range fake.Mutations() {
		calls = append(calls, c.String())
	}
	assert.Equal(t, []string{"Reload()", "RestartUnit(ssh.socket, replace)", "ReloadOrTryRestartUnit(ssh.service, replace)"}, calls)
	_, active, _ := fake.State("ssh.service")
	assert.Equal(t, "inactive", active, "a reload never starts a socket-activated sshd")
	_, active, _ = fake.State("ssh.socket")
	assert.Equal(t, "active", active)
	assert.Equal(t, "2222", effective(t, env, "root")["port"])

	// A change that does not move the listener only reloads.
	env.Policy.SSHD.MaxAuthTries = 2
	before := len(fake.Mutations())
	enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: systemd.Shared(systemd.Options{Address: bus.Address})}))
	calls = nil
	for _, c := range fake.Mutations()[before:] {
		calls = append(calls, c.String())
	}
	assert.Equal(t, []string{"ReloadOrTryRestartUnit(ssh.service, replace)"}, calls)
}

// generatorFixture is a machine with systemd-ssh-generator installed and its two sockets
// listening beside a running ssh.service (plus extra units), on a fake systemd behind a
// private dbus-daemon.
func generatorFixture(t *testing.T, extra ...systemdtest.UnitSpec) (*engine.Env, *systemdtest.Fake, systemd.Opener) {
	t.Helper()
	env := newEnv(t, debianConfig)
	enginetest.WriteFile(t, env, "/usr/lib/systemd/system-generators/systemd-ssh-generator", "#!/bin/sh\n")
	bus := systemdtest.StartBus(t)
	fake := systemdtest.NewFake(t, bus, append([]systemdtest.UnitSpec{
		{Name: "ssh.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "running"},
		{Name: "sshd-vsock.socket", FileState: "generated", LoadState: "loaded", ActiveState: "active", SubState: "listening"},
		{Name: "sshd-unix-local.socket", FileState: "generated", LoadState: "loaded", ActiveState: "active", SubState: "listening"},
	}, extra...))
	return env, fake, systemd.Shared(systemd.Options{Address: bus.Address})
}

// systemd-ssh-generator's AF_VSOCK and AF_UNIX listeners bypass nftables: by default the
// generator is masked (an empty file in /etc/systemd/system-generators, which survives
// reboot and works in an image), systemd re-runs its generators and the sockets still
// listening are stopped. The plan says so. With the policy key the mask goes again.
func TestGeneratorSocketsShut(t *testing.T) {
	env, fake, sd := generatorFixture(t)
	p, err := sshd.New(sshd.Options{Systemd: sd}).Plan(context.Background(), env)
	require.NoError(t, err)
	var actions []string
	for _, c := range p.Changes {
		actions = append(actions, c.Action+" "+c.Object+" ("+c.Reason+")")
	}
	assert.Equal(t, []string{
		"create " + sshd.DropIn + " (sshd)",
		"create /etc/systemd/system-generators/systemd-ssh-generator (sshd.systemd_ssh_generator)",
		"reload systemd manager (daemon-reload) (sshd.systemd_ssh_generator (re-run generators without systemd-ssh-generator))",
		"stop unit sshd-unix-local.socket (sshd.systemd_ssh_generator)",
		"stop unit sshd-vsock.socket (sshd.systemd_ssh_generator)",
		"reload unit ssh.service (sshd)",
	}, actions)

	enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: sd}))
	fi, err := env.Root.Lstat("/etc/systemd/system-generators/systemd-ssh-generator")
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular() && fi.Size() == 0, "an empty file masks a generator")
	for _, u := range []string{"sshd-vsock.socket", "sshd-unix-local.socket"} {
		_, active, _ := fake.State(u)
		assert.Equal(t, "inactive", active, u)
	}
	assert.Equal(t, 1, fake.Reloads())

	// Allowed: harden's mask goes, the generator runs at the next daemon-reload or boot.
	env.Policy.SSHD.SystemdSSHGenerator = true
	enginetest.Converges(t, env, sshd.New(sshd.Options{Systemd: sd}))
	_, err = env.Root.Lstat("/etc/systemd/system-generators/systemd-ssh-generator")
	assert.True(t, os.IsNotExist(err))
	assert.Equal(t, 2, fake.Reloads())

	// No generator installed (systemd < 256, Debian 12): nothing to mask.
	env2 := newEnv(t, debianConfig)
	rep := enginetest.Converges(t, env2, sshd.New(sshd.Options{}))
	for _, c := range rep.Steps[0].Changes {
		assert.NotContains(t, c.Object, "system-generators")
	}
}

// In a run with the services step after it (harden.service, a first boot), the generator's
// daemon-reload is left to that step, whose one reload serves its own masks too: the plan
// says so, systemd reloads once, and the sockets are stopped all the same.
func TestGeneratorReloadLeftToServicesStep(t *testing.T) {
	env, fake, sd := generatorFixture(t,
		systemdtest.UnitSpec{Name: "cups.service", FileState: "enabled", LoadState: "loaded", ActiveState: "active", SubState: "running"})
	fake.WriteUnitDirs(t, env.Root.Dir())
	steps := func() []engine.Step { return []engine.Step{sshd.New(sshd.Options{Systemd: sd}), services.New(sd)} }

	rep, _ := enginetest.Run(t, env, false, steps()...)
	for _, s := range rep.Steps {
		require.NotEqual(t, engine.StatusFailed, s.Status, "%s: %s", s.Name, s.Error)
	}
	var sshdActions, servicesReloads []string
	for _, c := range rep.Steps[0].Changes {
		sshdActions = append(sshdActions, c.Action+" "+c.Object)
	}
	for _, c := range rep.Steps[1].Changes {
		if c.Action == engine.ActionReload {
			servicesReloads = append(servicesReloads, c.Object+" ("+c.Reason+")")
		}
	}
	assert.Contains(t, sshdActions, "queue systemd manager (daemon-reload)")
	assert.NotContains(t, sshdActions, "reload systemd manager (daemon-reload)")
	assert.Equal(t, []string{"systemd manager (daemon-reload) (sshd.systemd_ssh_generator (re-run generators without systemd-ssh-generator))"}, servicesReloads)
	assert.Equal(t, "masked", fake.FileState("cups.service"), "the services step's own mask, in the same reload")
	assert.Equal(t, 1, fake.Reloads(), "one daemon-reload for both steps")
	for _, u := range []string{"sshd-vsock.socket", "sshd-unix-local.socket"} {
		_, active, _ := fake.State(u)
		assert.Equal(t, "inactive", active, u)
	}

	rep, _ = enginetest.Run(t, env, false, steps()...)
	assert.Zero(t, rep.ChangeCount(), "converged")
	assert.Equal(t, 1, fake.Reloads())
}

// With root login off and no other account able to log in with a key, the plan warns
// before the reload; an AuthorizedKeysCommand or a key silences it.
func TestNoLoginKeyWarned(t *testing.T) {
	env := newEnv(t, debianConfig)
	_, err := env.Root.Remove("/home/admin/.ssh/authorized_keys")
	require.NoError(t, err)
	p, err := sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.Contains(t, ids(p.Findings), "sshd.no-login-key")
	for _, f := range p.Findings {
		if f.ID == "sshd.no-login-key" {
			assert.Equal(t, engine.Warning, f.Severity)
			assert.Contains(t, f.Message, "admin")
		}
	}
	enginetest.WriteFile(t, env, "/etc/ssh/sshd_config.d/60-keys.conf", "AuthorizedKeysCommand /usr/bin/fetch-keys %u\nAuthorizedKeysCommandUser nobody\n")
	p, err = sshd.New(sshd.Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.NotContains(t, ids(p.Findings), "sshd.no-login-key")

	env2 := newEnv(t, debianConfig)
	enginetest.WriteFile(t, env2, "/home/admin/.ssh/authorized_keys", "# no keys yet\n")
	p, err = sshd.New(sshd.Options{}).Plan(context.Background(), env2)
	require.NoError(t, err)
	assert.Contains(t, ids(p.Findings), "sshd.no-login-key", "a file of comments lets nobody in")
}

// apply --root on an image tree: the files written say /etc/ssh/..., never the builder's
// path to the tree, no host key is made in the image, and the check still runs with the
// real sshd (a throwaway key, paths pointed into the root in a staged copy).
func TestImageTreeGetsMachinePaths(t *testing.T) {
	env := newEnv(t, "Include "+"IMG/etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n")
	// An image written by an older harden: the builder's path in the Include.
	enginetest.WriteFile(t, env, sshd.MainConfig, "Include "+env.Root.Dir()+"/etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n")
	for _, k := range []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub"} {
		_, err := env.Root.Remove(k)
		require.NoError(t, err)
	}
	step := sshd.New(sshd.Options{Offline: true})
	rep := enginetest.Converges(t, env, step)
	assert.Contains(t, ids(rep.Steps[0].Findings), "sshd.crypto-at-boot")
	main, err := env.Root.ReadFile(sshd.MainConfig)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(main), "# Added by harden: drop-ins first, so sshd_config.d/00-harden.conf wins.\nInclude /etc/ssh/sshd_config.d/*.conf\n"), string(main))
	assert.Equal(t, 1, strings.Count(string(main), "Include "))
	filepath.WalkDir(env.Root.Path("/etc"), func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.NotContains(t, string(data), env.Root.Dir(), "%s holds the builder's path", p)
		}
		return nil
	})
	keys, err := filepath.Glob(env.Root.Path("/etc/ssh/ssh_host_*"))
	require.NoError(t, err)
	assert.Empty(t, keys, "an image must not carry host keys")
	requirePolicyHolds(t, env, "root")

	// A live machine without host keys gets them (ssh-keygen -A), planned.
	env2 := newEnv(t, debianConfig)
	_, err = env2.Root.Remove("/etc/ssh/ssh_host_ed25519_key")
	require.NoError(t, err)
	rep = enginetest.Converges(t, env2, sshd.New(sshd.Options{}))
	assert.Equal(t, "/etc/ssh/ssh_host_*_key", rep.Steps[0].Changes[0].Object)
	_, err = env2.Root.Stat("/etc/ssh/ssh_host_ed25519_key")
	require.NoError(t, err)
}

// The drop-in is checked while staged: a setting sshd rejects never reaches
// 00-harden.conf, and the staged file is gone.
func TestRejectedDropInNeverInPlace(t *testing.T) {
	env := newEnv(t, debianConfig)
	env.Policy.SSHD.Settings = map[string]string{"Bogus": "x"}
	rep, _ := enginetest.Run(t, env, false, sshd.New(sshd.Options{}))
	require.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	entries, err := env.Root.ReadDir(sshd.DropInDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "neither the drop-in nor a staged copy is left")
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
	enginetest.WriteFile(b, env, sshd.MainConfig, debianConfig)
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
