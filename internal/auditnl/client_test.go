package auditnl_test

import (
	"context"
	"fmt"
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

// AddRules loads the same list as AddRule one by one (order included), and names the rule
// the kernel refused.
func TestAddRulesBatches(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.DeleteAllRules(ctx))
	var rules []*auditrule.Rule
	for i := range 150 { // more than one batch
		rules = append(rules, parse(t, fmt.Sprintf("-a always,exit -F arch=b64 -S openat -F auid=%d -F key=batch", 2000+i)))
	}
	require.NoError(t, conn.AddRules(ctx, rules))
	listed, err := conn.ListRules(ctx)
	require.NoError(t, err)
	require.Len(t, listed, 150)
	for i := range rules {
		assert.True(t, listed[i].Equal(rules[i]), "rule %d out of place", i)
	}
	// A duplicate in the middle of the second batch.
	err = conn.AddRules(ctx, []*auditrule.Rule{parse(t, "-a always,exit -F arch=b64 -S chmod -k new"), rules[70]})
	require.Error(t, err)
	assert.True(t, auditnl.IsExist(err))
	var be *auditnl.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 1, be.Index)
	// The socket is still in step: a plain request works.
	_, err = conn.GetStatus(ctx)
	require.NoError(t, err)
}

// A long list comes back whole and in order through the batch reader (many rules per
// recvmmsg), and a reply too large for its slot sends the request again through the
// library's reader instead of cutting it.
func TestListRulesInBatchesAndAfterATruncatedReply(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.DeleteAllRules(ctx))
	var rules []*auditrule.Rule
	for i := range 300 {
		// Keys of up to 200 bytes: every reply is well over 1 KB.
		key := fmt.Sprintf("list%d-%s", i, strings.Repeat("k", 100+i%100))
		rules = append(rules, parse(t, fmt.Sprintf("-a always,exit -F arch=b64 -S openat -F auid=%d -F key=%s", 1000+i, key)))
	}
	require.NoError(t, conn.AddRules(ctx, rules))
	t.Cleanup(func() { _ = conn.DeleteAllRules(ctx) })
	keys := func(rs []*auditrule.Rule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Key())
		}
		return out
	}

	batched, err := conn.ListRules(ctx)
	require.NoError(t, err)
	assert.True(t, conn.UsesBatch())
	assert.Equal(t, keys(rules), keys(batched))

	defer auditnl.SetRecvSlot(512)() // smaller than any of these rules
	small, err := auditnl.Dial(auditnl.Options{})
	require.NoError(t, err)
	defer small.Close()
	again, err := small.ListRules(ctx)
	require.NoError(t, err)
	assert.False(t, small.UsesBatch(), "the truncated reply switched the connection to the library's reader")
	assert.Equal(t, keys(rules), keys(again))
}
