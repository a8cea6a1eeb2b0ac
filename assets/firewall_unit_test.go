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
