package firewall_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/steps/firewall"
)

// ufwRoot copies the installed ufw's configuration and scripts into a scratch tree, which
// `ufw --rootdir --datadir` then uses instead of the machine's (ufw's own test suite runs it
// this way). Its sysctl file is left out: ufw would apply it with sysctl -p, and some of
// those keys are not per network namespace.
func ufwRoot(t *testing.T, dir string) {
	t.Helper()
	need.Tool(t, "ufw", "iptables")
	for _, src := range []string{"/etc/ufw", "/usr/lib/ufw", "/usr/share/ufw"} {
		need.File(t, src, "ufw's package files")
		dst := filepath.Join(dir, strings.Replace(src, "/usr/lib/", "/lib/", 1))
		require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			out := filepath.Join(dst, strings.TrimPrefix(p, src))
			if d.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, _ := d.Info()
			return os.WriteFile(out, b, info.Mode().Perm())
		}))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etc/default"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/default/ufw"),
		[]byte("IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\n"+
			"DEFAULT_APPLICATION_POLICY=\"SKIP\"\nMANAGE_BUILTINS=no\nIPT_SYSCTL=\nIPT_MODULES=\"\"\n"), 0o644))
}

func ufw(t *testing.T, ns *nfttest.NS, dir string, args ...string) {
	t.Helper()
	out, err := ns.Try(append([]string{"ufw", "--rootdir=" + dir, "--datadir=" + dir}, args...)...)
	require.NoError(t, err, "ufw %v: %s", args, out)
}

// The real ufw, enabled in the lab's server namespace next to harden's table: harden allows
// tcp/22 and tcp/8080, ufw only tcp/22. Packets show the second veto (8080 is dropped
// although the policy allows it) and the plan says so, naming 8080; with ufw.service masked
// the finding still comes, from ufw's chains in the kernel; `ufw disable` ends both.
func TestUFWNextToHardenIsReported(t *testing.T) {
	l := newLab(t)
	listenTCP(t, l.server, "22")
	listenTCP(t, l.server, "8080")
	p, err := policy.Parse("ufw.yaml", []byte(`version: 1
firewall:
  exposure: private
  private_networks: [10.99.0.0/24]
  allow:
    - {name: ssh, proto: tcp, port: 22, from: private, why: "ssh"}
    - {name: app, proto: tcp, port: 8080, from: private, why: "the app"}
`), nil)
	require.NoError(t, err)
	env := enginetest.Env(t, p, nil)
	ufwRoot(t, env.Root.Dir())
	step := firewall.New(firewall.Options{NetNS: l.server.Name})
	enginetest.Converges(t, env, step)
	assert.Equal(t, "open", l.tcp(l.client, cli4, srv4, "8080"), "harden alone lets 8080 in")

	ufw(t, l.server, env.Root.Dir(), "allow", "22/tcp")
	ufw(t, l.server, env.Root.Dir(), "--force", "enable")
	assert.Equal(t, "open", l.tcp(l.client, cli4, srv4, "22"))
	assert.Equal(t, "dropped", l.tcp(l.client, cli4, srv4, "8080"), "ufw's veto")

	f := ufwFindingOf(t, env, step)
	require.NotNil(t, f)
	assert.Equal(t, engine.Warning, f.Severity)
	assert.Contains(t, f.Message, "tcp/8080 (app) on IPv4 and IPv6")
	assert.NotContains(t, f.Message, "(ssh)")
	assert.Contains(t, f.Message, "its chains are loaded, ENABLED=yes")

	// Masked: the file says yes, the unit will not load it; the kernel still has it now.
	require.NoError(t, os.MkdirAll(env.Root.Path("/etc/systemd/system"), 0o755))
	require.NoError(t, os.Symlink("/dev/null", env.Root.Path("/etc/systemd/system/ufw.service")))
	f = ufwFindingOf(t, env, step)
	require.NotNil(t, f)
	assert.Contains(t, f.Message, "ufw is active (its chains are loaded)")

	ufw(t, l.server, env.Root.Dir(), "disable")
	assert.Nil(t, ufwFindingOf(t, env, step))
	assert.Equal(t, "open", l.tcp(l.client, cli4, srv4, "8080"))
}

func ufwFindingOf(t *testing.T, env *engine.Env, step *firewall.Step) *engine.Finding {
	t.Helper()
	p, err := step.Plan(t.Context(), env)
	require.NoError(t, err)
	require.Empty(t, p.Changes, "harden's table is left as it is")
	for _, f := range p.Findings {
		if f.ID == "firewall.ufw-active" {
			return f
		}
	}
	return nil
}
