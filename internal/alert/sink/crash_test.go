package sink

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childEnv names the spool directory of TestSpoolDeliveryChild, the delivery process that
// TestKill9MidDeliveryLosesNothing starts and kills.
const childEnv = "HARDEN_TEST_SPOOL_CHILD_DIR"

func childSinks() []spool.Sink {
	return []spool.Sink{
		&Webhook{URL: os.Getenv("HARDEN_TEST_WEBHOOK"), SecretFile: os.Getenv("HARDEN_TEST_SECRET")},
		&Alertmanager{URL: os.Getenv("HARDEN_TEST_AM")},
	}
}

func sinkNames(s []spool.Sink) []string {
	var out []string
	for _, k := range s {
		out = append(out, k.Name())
	}
	return out
}

// TestMain runs this test binary as the delivery process the crash test kills when childEnv
// names its spool (a process of its own, not a test that would show as skipped).
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		spoolDeliveryChild(dir)
		return
	}
	os.Exit(m.Run())
}

// spoolDeliveryChild delivers from the spool until it is killed.
func spoolDeliveryChild(dir string) {
	sinks := childSinks()
	sp, err := spool.Open(spool.Options{Dir: dir, MaxAlerts: 1000, Sinks: sinkNames(sinks)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "spool child:", err)
		os.Exit(3)
	}
	d := spool.NewDispatcher(sp, sinks, spool.DispatchOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 30 * time.Second})
	d.Run(context.Background()) // until killed
}

func TestKill9MidDeliveryLosesNothing(t *testing.T) {
	const n = 40
	am := startAlertmanager(t)
	killNow := make(chan struct{})
	hold := make(chan struct{})
	rcv := &receiver{secret: []byte("k"), delay: 2 * time.Millisecond}
	rcv.hook = func(i int) {
		if i == 10 { // the 10th webhook request: the child dies while it is in flight
			close(killNow)
			<-hold
		}
	}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	defer close(hold)

	dir := t.TempDir()
	env := append(os.Environ(), childEnv+"="+dir, "HARDEN_TEST_WEBHOOK="+srv.URL,
		"HARDEN_TEST_SECRET="+writeSecret(t, "k"), "HARDEN_TEST_AM="+am)
	// Spool the alerts first (as the watch loop would), then start delivering.
	names := []string{(&Webhook{URL: srv.URL}).Name(), (&Alertmanager{URL: am}).Name()}
	sp, err := spool.Open(spool.Options{Dir: dir, MaxAlerts: 1000, Sinks: names})
	require.NoError(t, err)
	keys := map[string]bool{}
	for i := 0; i < n; i++ {
		a := testAlert(alert.KindCriticalFile)
		a.DedupeKey = fmt.Sprintf("critical-file:1700000400.%03d:%d", i, 2000+i)
		keys[a.DedupeKey] = true
		require.NoError(t, sp.Put(a))
	}

	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	first := child()
	select {
	case <-killNow:
	case <-time.After(30 * time.Second):
		_ = first.Process.Kill()
		t.Fatal("the child never reached the 10th delivery")
	}
	require.NoError(t, syscall.Kill(first.Process.Pid, syscall.SIGKILL))
	_ = first.Wait()
	distinct, _ := rcv.counts()
	require.Less(t, distinct, n, "killed mid-way, not after the end")

	second := child()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir(filepath.Join(dir, "alerts"))
		return len(ents) == 0
	}, 60*time.Second, 20*time.Millisecond, "the restarted process delivers everything that was spooled")

	distinct, total := rcv.counts()
	assert.Equal(t, n, distinct, "every alert reached the webhook")
	assert.GreaterOrEqual(t, total, n, "at least once")
	rcv.mu.Lock()
	for k := range keys {
		assert.GreaterOrEqual(t, rcv.byKey[k], 1, k)
	}
	rcv.mu.Unlock()

	// Alertmanager dedupes by labels (the dedupe key is one): exactly one alert per key.
	got := listAlerts(t, am)
	seen := map[string]int{}
	for _, g := range got {
		seen[g.Labels["dedupe_key"]]++
	}
	assert.Len(t, got, n)
	for k := range keys {
		assert.Equal(t, 1, seen[k], k)
	}
}
