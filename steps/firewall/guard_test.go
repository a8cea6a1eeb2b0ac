package firewall

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGuardRefusesTheHostNamespace(t *testing.T) {
	on := func(string) string { return "1" }
	off := func(string) string { return "" }
	require.NoError(t, refuseHostNetNS(off, ""), "without the guard nothing is refused (a real machine)")
	err := refuseHostNetNS(on, "")
	require.ErrorContains(t, err, "refusing to change the firewall of this machine's own network namespace")
	require.Error(t, refuseHostNetNS(on, "/proc/self/ns/net"))
	require.ErrorContains(t, refuseHostNetNS(on, "/nonexistent/ns"), "cannot be checked")
}
