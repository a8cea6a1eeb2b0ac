package assets

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The firewall unit must run before the network exists and must not wait for anything a
// fresh boot may not have yet (D-Bus, the network itself).
func TestFirewallUnitRunsBeforeTheNetwork(t *testing.T) {
	b, err := Units.ReadFile("units/harden-firewall.service")
	require.NoError(t, err)
	unit := string(b)
	for _, want := range []string{
		"DefaultDependencies=no\n", "Before=network-pre.target\n", "Wants=network-pre.target\n",
		"ExecStart=/usr/local/sbin/harden apply --only firewall\n", "Type=oneshot\n",
	} {
		assert.Contains(t, unit, want)
	}
	for _, line := range strings.Split(unit, "\n") {
		if strings.HasPrefix(line, "After=") || strings.HasPrefix(line, "Requires=") {
			assert.NotContains(t, line, "network", "the firewall must not wait for the network")
			assert.NotContains(t, line, "dbus", "the firewall must not wait for D-Bus")
		}
	}
}

// harden.service runs after auditd 4's rule loader and after a first boot's host-key
// generator, and before sshd: see the comments in the unit.
func TestHardenUnitOrder(t *testing.T) {
	b, err := Units.ReadFile("units/harden.service")
	require.NoError(t, err)
	after, before := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		for prefix, set := range map[string]map[string]bool{"After=": after, "Before=": before} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				for _, u := range strings.Fields(v) {
					set[u] = true
				}
			}
		}
	}
	for _, u := range []string{"audit-rules.service", "auditd.service", "sshd-keygen.service", "harden-firewall.service"} {
		assert.True(t, after[u], "After=%s", u)
	}
	assert.True(t, before["ssh.service"], "Before=ssh.service")
	for u := range after {
		assert.False(t, before[u], "%s both before and after", u)
	}
}
