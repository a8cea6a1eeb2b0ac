package watch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/harden-dev/harden/internal/testutil/syncbuf"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const sendEnv = "HARDEN_TEST_SEND_USER_AUTH"

// TestMain runs this test binary as the "sshd connection" of TestWatchOnHostKernel when
// sendEnv is set: a separate process (its own pid, as every sshd connection has) that sends
// one USER_AUTH message the way libaudit does for sshd's PAM failure.
func TestMain(m *testing.M) {
	if text := os.Getenv(sendEnv); text != "" {
		if err := sendUserAuth(text); err != nil {
			fmt.Fprintln(os.Stderr, "send USER_AUTH:", err)
			os.Exit(3)
		}
		return
	}
	os.Exit(m.Run())
}

func sendUserAuth(text string) error {
	nl, err := netlink.Dial(unix.NETLINK_AUDIT, nil)
	if err != nil {
		return err
	}
	defer nl.Close()
	_, err = nl.Send(netlink.Message{Header: netlink.Header{Type: 1100, Flags: netlink.Request}, Data: append([]byte(text), 0)})
	return err
}

// TestWatchOnHostKernel runs the whole watch on the real kernel: the multicast reader, two
// failed SSH authentications from two processes (two connections) and a write to a file
// under a critical-file rule, and checks the alerts that reach the journal sink.
func TestWatchOnHostKernel(t *testing.T) {
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{Enabled: auditnl.Uint32(1), BacklogLimit: auditnl.Uint32(16384), RateLimit: auditnl.Uint32(0)}))
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	require.NoError(t, os.WriteFile(target, []byte("x\n"), 0o600))
	rule, err := (&auditrule.Parser{}).ParseRule("-a always,exit -F path=" + target + " -F perm=wa -F key=identity")
	require.NoError(t, err)
	require.NoError(t, conn.AddRule(ctx, rule))

	c, mem := testConfig(t)
	c.Policy.Alerts.SSHFailures.Threshold = 1
	// Every record the watch reads is copied here, so the test knows when the reader has
	// joined the multicast group (HARDEN_CAPTURE=FILE also keeps a copy:
	// internal/alert/testdata/kernel-*.log).
	tap := &syncbuf.Buffer{}
	c.Record = tap
	if p := os.Getenv("HARDEN_CAPTURE"); p != "" {
		f, err := os.Create(p)
		require.NoError(t, err)
		defer f.Close()
		c.Record = io.MultiWriter(tap, f)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Watch(wctx, c) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	require.Eventually(t, func() bool { return Running(c.LockPath) }, 5*time.Second, 5*time.Millisecond)
	// The reader joins the group after taking the lock; records sent before that are not
	// seen. Send a harmless probe until the watch has read one (a sleep raced under load).
	probe := "op=harden-test-probe acct=\"nobody\" exe=\"/bin/true\" res=success"
	require.Eventually(t, func() bool {
		require.NoError(t, sendUserAuth(probe))
		return strings.Contains(tap.String(), "harden-test-probe")
	}, 15*time.Second, 100*time.Millisecond, "the watch never read a record from the multicast group")

	msg := `op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=192.0.2.44 addr=192.0.2.44 terminal=ssh res=failed`
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), sendEnv+"="+msg)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("y\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.Eventually(t, func() bool {
		return len(mem.ByID(changelog.MsgAlertSSHFailures)) == 1 && len(mem.ByID(changelog.MsgAlertCriticalFile)) >= 1
	}, 15*time.Second, 20*time.Millisecond, "alerts from the kernel's records")
	ssh := mem.ByID(changelog.MsgAlertSSHFailures)[0]
	assert.Equal(t, "192.0.2.44", ssh.Fields["HARDEN_ALERT_ADDR"])
	assert.Equal(t, "2", ssh.Fields["HARDEN_ALERT_COUNT"], "two processes: two connections")
	file := mem.ByID(changelog.MsgAlertCriticalFile)[0]
	assert.Equal(t, target, file.Fields["HARDEN_ALERT_PATH"])
	assert.Equal(t, "identity", file.Fields["HARDEN_ALERT_KEY"])
	assert.Equal(t, changelog.PriAlert, file.Priority)
	exe, _ := os.Executable()
	assert.Equal(t, exe, file.Fields["HARDEN_ALERT_EXE"], "the process that wrote is this test")
}
