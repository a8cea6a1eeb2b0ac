package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A policy whose sshd nobody could reach through its own firewall is refused, naming the
// sshd field and the allow list, each with file:line:col.
func TestSSHUnreachableIsRefused(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"port moved, only 22 allowed", "version: 1\nsshd:\n  settings: {Port: \"2222\"}\n",
			[]string{"bad.yaml:3:20: sshd.settings.Port: sshd would listen on tcp/2222 (every address) but no rule of firewall.allow (embedded:policy.yaml:",
				"the next boot would cut SSH off"}},
		{"no allow rules at all", "version: 1\nfirewall:\n  allow: []\n",
			[]string{"bad.yaml:3:10: firewall.allow: no rule lets anyone reach sshd on tcp/22 (sshd.settings.Port: every address, sshd's default Port 22, embedded:policy.yaml:",
				"bad.yaml:3:10: firewall.allow: a private machine must keep tcp/22 open from the private networks",
				"firewall.close_private_ssh: true (embedded:policy.yaml:"}},
		{"udp is not ssh", "version: 1\nfirewall:\n  close_private_ssh: true\n  allow:\n    - {name: x, proto: udp, port: 22, from: private, why: w}\n",
			[]string{"firewall.allow: no rule lets anyone reach sshd on tcp/22"}},
		{"IPv4 listen address, IPv6-only private network", "version: 1\nsshd:\n  settings: {ListenAddress: \"10.0.0.5\"}\n",
			[]string{"bad.yaml:3:29: sshd.settings.ListenAddress: sshd would listen on tcp/22 (10.0.0.5) but no rule of firewall.allow"}},
		{"loopback only", "version: 1\nsshd:\n  settings: {ListenAddress: \"127.0.0.1:22\"}\n",
			[]string{"sshd.settings.ListenAddress: sshd would listen only on loopback"}},
		{"bad port", "version: 1\nsshd:\n  settings: {port: \"ssh\"}\n",
			[]string{"bad.yaml:3:20: sshd.settings.port: want one port 1-65535"}},
		{"host name listen address", "version: 1\nsshd:\n  settings: {ListenAddress: \"example.org\"}\n",
			[]string{"sshd.settings.ListenAddress: ListenAddress \"example.org\": want an IP address"}},
		{"private closes 22 implicitly", "version: 1\nsshd:\n  settings: {Port: \"2222\"}\nfirewall:\n  allow:\n    - {name: ssh, proto: tcp, port: 2222, from: private, why: w}\n",
			[]string{"bad.yaml:6:5: firewall.allow: a private machine must keep tcp/22 open from the private networks"}},
		{"22 from a slice of the private network", "version: 1\nfirewall:\n  private_networks: [fdaa::/16]\n  allow:\n    - {name: ssh, proto: tcp, port: 22, from: [fdaa:0:1::/48], why: w}\n",
			[]string{"firewall.allow: a private machine must keep tcp/22 open from the private networks"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("bad.yaml", []byte(c.src), nil)
			require.Error(t, err)
			assert.Nil(t, p)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSSHReachablePoliciesLoad(t *testing.T) {
	for name, src := range map[string]string{
		"default": "version: 1\n",
		"port moved and allowed": "version: 1\nsshd:\n  settings: {Port: \"2222\"}\nfirewall:\n  allow:\n" +
			"    - {name: ssh, proto: tcp, port: 22, from: private, why: fly ssh console}\n" +
			"    - {name: sshd, proto: tcp, ports: \"2200-2299\", from: private, why: OpenSSH}\n",
		"closed on purpose": "version: 1\nsshd:\n  settings: {Port: \"2222\"}\nfirewall:\n  close_private_ssh: true\n  allow:\n" +
			"    - {name: sshd, proto: tcp, port: 2222, from: [fdaa::/16], why: OpenSSH}\n",
		"IPv4 listen address reachable from an IPv4 private network": "version: 1\nsshd:\n  settings: {ListenAddress: \"10.0.0.5:22\"}\n" +
			"firewall:\n  private_networks: [10.0.0.0/8]\n",
		"public machine, ssh from the private network": "version: 1\nfirewall:\n  exposure: public\n  allow:\n" +
			"    - {name: ssh, proto: tcp, port: 22, from: private, why: fly ssh console}\n",
		"IPv6 listen address in brackets": "version: 1\nsshd:\n  settings: {ListenAddress: \"[fdaa::5]:22\"}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("ok.yaml", []byte(src), nil)
			require.NoError(t, err)
		})
	}
}

func TestSSHListeners(t *testing.T) {
	p, err := Parse("ok.yaml", []byte("version: 1\nsshd:\n  settings: {port: \"2222\", ListenAddress: \"[fdaa::5]\"}\nfirewall:\n  allow:\n"+
		"    - {name: ssh, proto: tcp, port: 22, from: private, why: w}\n    - {name: ssh2, proto: tcp, port: 2222, from: private, why: w}\n"), nil)
	require.NoError(t, err)
	ls, err := p.SSHListeners()
	require.NoError(t, err)
	require.Len(t, ls, 1)
	assert.Equal(t, "fdaa::5", ls[0].Addr.String())
	assert.Equal(t, 2222, ls[0].Port, "the address takes Port's port")
}
