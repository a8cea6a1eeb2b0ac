package firewall

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
)

// ufwTree is a root with ufw's state: testdata/ufw holds user.rules and user6.rules as the
// real ufw 0.36.2 wrote them (testdata/ufw/README.md lists the commands).
func ufwTree(t *testing.T, enabled, defaults string) *engine.Env {
	t.Helper()
	env := enginetest.Env(t, nil, nil)
	for _, f := range []string{"user.rules", "user6.rules"} {
		b, err := os.ReadFile(filepath.Join("testdata/ufw", f))
		require.NoError(t, err)
		enginetest.WriteFile(t, env, "/etc/ufw/"+f, string(b))
	}
	enginetest.WriteFile(t, env, ufwConf, "# /etc/ufw/ufw.conf\nENABLED="+enabled+"\nLOGLEVEL=low\n")
	enginetest.WriteFile(t, env, ufwDefaults, defaults)
	return env
}

const ubuntuUFWDefaults = `IPV6=yes
DEFAULT_INPUT_POLICY="DROP"
DEFAULT_OUTPUT_POLICY="ACCEPT"
DEFAULT_FORWARD_POLICY="DROP"
`

// Every kind of rule ufw writes, against the policy's allow rules: which ports ufw leaves
// open for every source the policy allows, and which it blocks.
func TestUFWBlockedPortsFromItsOwnRules(t *testing.T) {
	env := ufwTree(t, "yes", ubuntuUFWDefaults)
	p := mustPolicy(t, `
firewall:
  exposure: private
  private_networks: [10.0.0.0/8, "fdaa::/16"]
  allow:
    - {name: ssh, proto: tcp, port: 22, from: private, why: "ufw allows it"}
    - {name: alt-ssh, proto: tcp, port: 2222, from: private, why: "ufw limits it (still open)"}
    - {name: web, proto: tcp, port: 443, from: private, why: "ufw allows 80,443"}
    - {name: metrics, proto: tcp, port: 9090, from: private, why: "ufw allows it, with a comment"}
    - {name: app, proto: tcp, port: 8080, from: private, why: "ufw denies it"}
    - {name: db, proto: tcp, port: 5432, from: private, why: "ufw allows it from 10.0.0.0/8 only, IPv4 only"}
    - {name: node, proto: tcp, port: 9100, from: private, why: "ufw allows it on eth1 only"}
    - {name: wg, proto: udp, port: 51820, from: private, why: "ufw routes it, never lets it in"}
    - {name: smtp, proto: tcp, port: 25, from: private, why: "ufw rejects any/25"}
    - {name: range, proto: udp, ports: "60500-62000", from: private, why: "ufw allows 60000:61000"}
`)
	st, err := readUFW(env.Root, false)
	require.NoError(t, err)
	require.NotNil(t, st, "ENABLED=yes")
	f := ufwFinding(st, p.Firewall)
	require.NotNil(t, f)
	assert.Equal(t, "firewall.ufw-active", f.ID)
	assert.Equal(t, engine.Warning, f.Severity)
	for _, want := range []string{
		"tcp/8080 (app) on IPv4 and IPv6",
		"tcp/5432 (db) on IPv4 and IPv6",
		"tcp/9100 (node) on IPv4 and IPv6",
		"udp/51820 (wg) on IPv4 and IPv6",
		"tcp/25 (smtp) on IPv4 and IPv6",
		"udp/61001-62000 (range) on IPv4 and IPv6",
		"ENABLED=yes in /etc/ufw/ufw.conf",
		"default input policy DROP",
	} {
		assert.Contains(t, f.Message, want)
	}
	for _, open := range []string{"(ssh)", "(alt-ssh)", "(web)", "(metrics)"} {
		assert.NotContains(t, f.Message, open)
	}
}

func TestUFWPolicyAcceptBlocksOnlyItsDenies(t *testing.T) {
	env := ufwTree(t, "yes", "IPV6=no\nDEFAULT_INPUT_POLICY=\"ACCEPT\"\n")
	p := mustPolicy(t, `
firewall:
  allow:
    - {name: ssh, proto: tcp, port: 22, from: private, why: "x"}
    - {name: app, proto: tcp, port: 8080, from: private, why: "x"}
    - {name: other, proto: tcp, port: 7000, from: private, why: "x"}
`)
	st, err := readUFW(env.Root, false)
	require.NoError(t, err)
	f := ufwFinding(st, p.Firewall)
	require.NotNil(t, f)
	assert.Contains(t, f.Message, "tcp/8080 (app) on IPv4.")
	assert.NotContains(t, f.Message, "IPv6", "IPV6=no: ufw leaves IPv6 alone")
	assert.NotContains(t, f.Message, "(other)")
}

func TestUFWInactiveOrMaskedIsNoFinding(t *testing.T) {
	p := mustPolicy(t, "firewall:\n  allow: [{name: ssh, proto: tcp, port: 22, from: private, why: x}]\n")
	env := ufwTree(t, "no", ubuntuUFWDefaults)
	st, err := readUFW(env.Root, false)
	require.NoError(t, err)
	assert.Nil(t, ufwFinding(st, p.Firewall), "installed, not enabled (Ubuntu's default)")

	env = ufwTree(t, "yes", ubuntuUFWDefaults)
	require.NoError(t, os.MkdirAll(env.Root.Path("/etc/systemd/system"), 0o755))
	require.NoError(t, os.Symlink("/dev/null", env.Root.Path(ufwUnitMask)))
	st, err = readUFW(env.Root, false)
	require.NoError(t, err)
	assert.Nil(t, ufwFinding(st, p.Firewall), "ufw.service masked: ufw does not load at boot")

	st, err = readUFW(env.Root, true)
	require.NoError(t, err)
	f := ufwFinding(st, p.Firewall)
	require.NotNil(t, f, "but its chains are in the kernel now")
	assert.Contains(t, f.Message, "its chains are loaded")
	assert.NotContains(t, f.Message, "ENABLED=yes")
	assert.Equal(t, engine.Info, f.Severity, "ufw allows 22: nothing blocked")

	empty := enginetest.Env(t, nil, nil)
	st, err = readUFW(empty.Root, false)
	require.NoError(t, err)
	assert.Nil(t, st, "no ufw installed")
}

func TestUFWPorts(t *testing.T) {
	for in, want := range map[string][]portRange{
		"any": {{1, 65535}}, "22": {{22, 22}}, "80,443": {{80, 80}, {443, 443}},
		"60000:61000": {{60000, 61000}}, "22,8000:8100": {{22, 22}, {8000, 8100}},
	} {
		got, ok := parsePorts(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0", "http", "9:1", "70000"} {
		_, ok := parsePorts(bad)
		assert.False(t, ok, bad)
	}
}
