package hostaudit_test

import (
	"context"
	"testing"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Restore puts back rules (in order) and status after a test changed them.
func TestRestorePutsBackRulesAndStatus(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	p := &auditrule.Parser{}
	require.NoError(t, conn.DeleteAllRules(ctx))
	for _, l := range []string{"-a always,exit -F arch=b64 -S chmod -k a", "-a never,exclude -F msgtype=CWD", "-A always,exit -F arch=b64 -S chown -k b"} {
		r, err := p.ParseRule(l)
		require.NoError(t, err)
		require.NoError(t, conn.AddRule(ctx, r))
	}
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{BacklogLimit: auditnl.Uint32(1234), RateLimit: auditnl.Uint32(5)}))
	snap, err := hostaudit.Take(ctx, conn)
	require.NoError(t, err)

	require.NoError(t, conn.DeleteAllRules(ctx))
	r, err := p.ParseRule("-w /etc/hosts -p wa")
	require.NoError(t, err)
	require.NoError(t, conn.AddRule(ctx, r))
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{BacklogLimit: auditnl.Uint32(999), Enabled: auditnl.Uint32(1)}))

	require.NoError(t, hostaudit.Restore(ctx, conn, snap))
	now, err := hostaudit.Take(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, snap.Rules, now.Rules)
	assert.Equal(t, snap.Status.BacklogLimit, now.Status.BacklogLimit)
	assert.Equal(t, snap.Status.Enabled, now.Status.Enabled)
	assert.Equal(t, uint32(5), now.Status.RateLimit)
}
