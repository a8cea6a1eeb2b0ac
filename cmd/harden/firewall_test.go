package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// The firewall through the CLI, always in a test namespace (--netns), never this machine's.
func TestFirewallApplyCLI(t *testing.T) {
	need.Root(t, "network namespaces and nftables")
	need.Tool(t, "ip", "nft")
	ns := fmt.Sprintf("harden-cmdfw-%d", os.Getpid())
	out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ruleset := func() string {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset").Output()
		require.NoError(t, err)
		return string(out)
	}
	root := machine(t)
	args := func(extra ...string) []string {
		return append([]string{"apply", "--root", root, "--only", "firewall", "--netns", ns, "--detailed-exitcode"}, extra...)
	}

	// No table yet: the dry-run shows the whole ruleset it would create and changes nothing.
	empty := ruleset()
	code, plan, errs := harden(t, args("--dry-run")...)
	assert.Equal(t, 2, code, errs)
	assert.Contains(t, plan, "table inet harden {")
	assert.Contains(t, plan, `iifname "lo" accept`)
	assert.Equal(t, empty, ruleset())

	code, _, errs = harden(t, args()...)
	assert.Equal(t, 2, code, errs)
	code, _, errs = harden(t, args()...)
	assert.Equal(t, 0, code, "second apply changes nothing: %s", errs)

	// Deleted by hand: the dry-run says so (exit 2) without touching the kernel; apply restores.
	_, err = exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "harden").CombinedOutput()
	require.NoError(t, err)
	code, _, _ = harden(t, args("--dry-run")...)
	assert.Equal(t, 2, code)
	assert.Equal(t, empty, ruleset())
	code, _, _ = harden(t, args()...)
	assert.Equal(t, 2, code)
	code, _, _ = harden(t, args()...)
	assert.Equal(t, 0, code)
}
