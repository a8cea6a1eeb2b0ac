package sink

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startAlertmanager runs the real Prometheus Alertmanager (Debian's prometheus-alertmanager)
// on a loopback port with its storage in a temp dir, and returns its base URL. extra are more
// flags and, last, the "user:password" its readiness check needs when the flags turn on
// basic auth.
func startAlertmanager(t testing.TB, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			need.Tool(t, "alertmanager")
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "am.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n"), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	creds := ""
	if len(extra) > 1 {
		creds, extra = extra[len(extra)-1]+"@", extra[:len(extra)-1]
	}
	args := append([]string{"--config.file=" + cfg, "--storage.path=" + dir, "--web.listen-address=" + addr,
		"--cluster.listen-address=", "--log.level=warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + creds + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 15*time.Second, 50*time.Millisecond, "alertmanager did not become ready")
	return base
}

// gettableAlert is the part of API v2's gettableAlert the tests read.
type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func listAlerts(t testing.TB, base string) []gettableAlert {
	resp, err := http.Get(base + "/api/v2/alerts")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var out []gettableAlert
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func TestRealAlertmanagerReceivesAndDedupes(t *testing.T) {
	base := startAlertmanager(t)
	m := &Alertmanager{URL: base}
	a := testAlert(alert.KindSSHFailures)
	ctx := context.Background()
	require.NoError(t, m.Send(ctx, a))
	require.NoError(t, m.Send(ctx, a), "a redelivery (at-least-once)")
	b := testAlert(alert.KindCriticalFile)
	b.DedupeKey = "critical-file:1700000400.456:2001"
	b.Attrs = map[string]string{"path": "/etc/shadow"}
	require.NoError(t, m.Send(ctx, b))

	var got []gettableAlert
	require.Eventually(t, func() bool { got = listAlerts(t, base); return len(got) == 2 }, 5*time.Second, 50*time.Millisecond,
		"two alerts, the repeat merged by its labels")
	byName := map[string]gettableAlert{}
	for _, g := range got {
		byName[g.Labels["alertname"]] = g
	}
	ssh := byName["HardenSSHFailures"]
	assert.Equal(t, "active", ssh.Status.State)
	assert.Equal(t, "warning", ssh.Labels["severity"])
	assert.Equal(t, "vm1", ssh.Labels["instance"])
	assert.Equal(t, "app", ssh.Labels["app"])
	assert.Equal(t, "ams", ssh.Labels["region"])
	assert.Equal(t, "m-1", ssh.Labels["machine"])
	assert.Equal(t, a.DedupeKey, ssh.Labels["dedupe_key"])
	assert.Equal(t, "203.0.113.7", ssh.Annotations["addr"])
	assert.Equal(t, "/etc/shadow", byName["HardenCriticalFile"].Annotations["path"])

	// Optional context missing (no Fly env, no stamp): still accepted.
	c := testAlert(alert.KindVirus)
	c.Context = alert.Context{Host: "vm1"}
	require.NoError(t, m.Send(ctx, c))
	require.Eventually(t, func() bool { return len(listAlerts(t, base)) == 3 }, 5*time.Second, 50*time.Millisecond)
}
