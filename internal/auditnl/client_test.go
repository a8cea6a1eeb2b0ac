package auditnl_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, line string) *auditrule.Rule {
	t.Helper()
	r, err := (&auditrule.Parser{}).ParseRule(line)
	require.NoError(t, err)
	return r
}

// Rules added through the client are what auditctl -l sees, in order,
// and the kernel's errors come back as the documented errnos.
func TestRulesRoundTripAndErrors(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.DeleteAllRules(ctx))
	lines := []string{
		"-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -F key=priv_esc",
		"-a always,exit -F path=/etc/shadow -F perm=wa -F key=identity",
		"-a never,exclude -F msgtype=CWD",
	}
	for _, l := range lines {
		require.NoError(t, conn.AddRule(ctx, parse(t, l)))
	}
	listed, err := conn.ListRules(ctx)
	require.NoError(t, err)
	require.Len(t, listed, 3)
	out, err := exec.Command("auditctl", "-l").Output()
	require.NoError(t, err)
	var ours []string
	for _, r := range listed {
		ours = append(ours, r.String())
	}
	assert.Equal(t, strings.TrimSpace(string(out)), strings.Join(ours, "\n"))

	err = conn.AddRule(ctx, parse(t, lines[1]))
	assert.True(t, auditnl.IsExist(err), "duplicate add: %v", err)
	assert.ErrorContains(t, err, "already has this rule")

	require.NoError(t, conn.DeleteRule(ctx, parse(t, lines[1])))
	err = conn.DeleteRule(ctx, parse(t, lines[1]))
	assert.True(t, auditnl.IsNotExist(err), "delete missing: %v", err)

	require.NoError(t, conn.DeleteAllRules(ctx))
	listed, err = conn.ListRules(ctx)
	require.NoError(t, err)
	assert.Empty(t, listed)
}

func TestStatusSetAndGet(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{
		Enabled: auditnl.Uint32(1), Failure: auditnl.Uint32(auditnl.FailureSilent),
		BacklogLimit: auditnl.Uint32(4321), RateLimit: auditnl.Uint32(77), BacklogWaitTime: auditnl.Uint32(1234),
	}))
	st, err := conn.GetStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), st.Enabled)
	assert.Equal(t, auditnl.FailureSilent, st.Failure)
	assert.Equal(t, uint32(4321), st.BacklogLimit)
	assert.Equal(t, uint32(77), st.RateLimit)
	assert.Equal(t, uint32(1234), st.BacklogWaitTime)
	out, err := exec.Command("auditctl", "-s").Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "backlog_limit 4321")
	assert.Contains(t, string(out), "rate_limit 77")
}
