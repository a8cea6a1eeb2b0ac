package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/changelog"
)

// capture is a webhook endpoint that keeps the last request as it came, so a test can play
// an attacker who captured a delivery and sends it again.
type capture struct {
	mu     sync.Mutex
	header http.Header
	body   []byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	c.mu.Lock()
	c.header, c.body = req.Header.Clone(), b
	c.mu.Unlock()
}

// replay sends a captured request to url with its headers as they were (or as edit leaves
// them) and returns the status.
func replay(t *testing.T, url string, h http.Header, body []byte, edit func(http.Header)) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = h.Clone()
	if edit != nil {
		edit(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// The signature covers the timestamp: a receiver that checks both (as the README shows)
// accepts the delivery when it comes and refuses the same bytes replayed after the
// tolerance window, and refuses a replay whose timestamp was moved forward.
func TestWebhookSignatureCoversTheTimestamp(t *testing.T) {
	sent := time.Unix(1800000000, 0)
	cap := &capture{}
	capSrv := httptest.NewServer(cap)
	defer capSrv.Close()
	w := &Webhook{URL: capSrv.URL, SecretFile: writeSecret(t, "s3cret"), Now: func() time.Time { return sent }}
	require.NoError(t, w.Send(context.Background(), testAlert(alert.KindCriticalFile)))
	assert.Equal(t, "1800000000", cap.header.Get(TimestampHeader))

	clock := sent.Add(30 * time.Second)
	rcv := &receiver{secret: []byte("s3cret"), now: func() time.Time { return clock }}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	assert.Equal(t, http.StatusOK, replay(t, srv.URL, cap.header, cap.body, nil), "the delivery itself, 30s later")

	clock = sent.Add(DefaultTolerance + time.Minute)
	assert.Equal(t, http.StatusUnauthorized, replay(t, srv.URL, cap.header, cap.body, nil), "the same bytes replayed later")
	assert.Equal(t, http.StatusUnauthorized, replay(t, srv.URL, cap.header, cap.body, func(h http.Header) {
		h.Set(TimestampHeader, "1800000360")
	}), "a replay with a fresh timestamp: the signature no longer matches")
	assert.Equal(t, http.StatusUnauthorized, replay(t, srv.URL, cap.header, cap.body, func(h http.Header) {
		h.Del(TimestampHeader)
	}))
	assert.Equal(t, 3, rcv.bad)
	distinct, _ := rcv.counts()
	assert.Equal(t, 1, distinct)

	err := Verify([]byte("s3cret"), cap.body, cap.header.Get(TimestampHeader), cap.header.Get(SignatureHeader), clock, DefaultTolerance)
	assert.ErrorContains(t, err, "outside the 5m0s window")
	err = Verify([]byte("other"), cap.body, cap.header.Get(TimestampHeader), cap.header.Get(SignatureHeader), sent, DefaultTolerance)
	assert.ErrorContains(t, err, "signature does not match")
}

// startAuthAlertmanager runs the real Alertmanager behind HTTP basic auth (its web config),
// the way a fleet exposes it, and returns its URL without credentials.
func startAuthAlertmanager(t *testing.T) string {
	// bcrypt of "secret-before-rotation" (cost 4), made once with golang.org/x/crypto/bcrypt.
	const hash = "$2a$04$Z9Q2PT0ZfzObSOw9EoWkW.GANNHh8mQaAGh5RkeED2FNcF8TY3FuS"
	web := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(web, []byte("basic_auth_users:\n  harden: "+hash+"\n"), 0o600))
	return startAlertmanager(t, "--web.config.file="+web, "harden:secret-before-rotation")
}

func withCreds(base, userPass string) string {
	return strings.Replace(base, "http://", "http://"+userPass+"@", 1)
}

func deadLetters(t *testing.T, dir, sink string) []spool.DeadLetter {
	ents, err := os.ReadDir(filepath.Join(dir, "deadletter", sink))
	require.NoError(t, err)
	var out []spool.DeadLetter
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "deadletter", sink, e.Name()))
		require.NoError(t, err)
		var d spool.DeadLetter
		require.NoError(t, json.Unmarshal(b, &d))
		out = append(out, d)
	}
	return out
}

// An Alertmanager whose password was rotated answers 401. The alert is not counted delivered
// there: it lands in that sink's dead-letter directory, a delivery-refused alert reaches the
// journal and the webhook, and the counts say so. The webhook, which answers 503 twice first,
// is retried, not dead-lettered.
func TestRefusedAlertIsDeadLetteredAndRaisedElsewhere(t *testing.T) {
	base := startAuthAlertmanager(t)
	am := &Alertmanager{URL: withCreds(base, "harden:secret-after-rotation")}
	rcv := &receiver{secret: []byte("k"), fail: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	wh := &Webhook{URL: srv.URL, SecretFile: writeSecret(t, "k")}
	journal := &changelog.Memory{}
	sinks := []spool.Sink{Journal{Out: journal}, wh, am}

	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir, MaxAlerts: 100, Sinks: sinkNames(sinks)})
	require.NoError(t, err)
	d := spool.NewDispatcher(sp, sinks, spool.DispatchOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	a := testAlert(alert.KindCriticalFile)
	require.NoError(t, sp.Put(a))
	require.Eventually(t, func() bool { return sp.Len() == 0 }, 10*time.Second, 5*time.Millisecond, "the spool drains")
	cancel()
	<-done

	dl := deadLetters(t, dir, am.Name())
	require.Len(t, dl, 1)
	assert.Equal(t, a.ID, dl[0].Alert.ID)
	assert.Equal(t, am.Name(), dl[0].Sink)
	assert.Contains(t, dl[0].Error, "401")
	assert.NotContains(t, dl[0].Error, "secret-after-rotation", "credentials never reach the dead letter")
	assert.Empty(t, deadLetters(t, dir, wh.Name()), "503 is retried, not refused")
	assert.Equal(t, 1, sp.DeadLetters(am.Name()))

	assert.Equal(t, []alert.Kind{alert.KindCriticalFile, alert.KindDeliveryRefused}, rcv.kinds)
	var journalIDs []string
	for _, e := range journal.Entries {
		journalIDs = append(journalIDs, e.MessageID)
	}
	assert.ElementsMatch(t, []string{changelog.MsgAlertCriticalFile, changelog.MsgAlertDeliveryRefused}, journalIDs)
	refusal := journal.Entries[len(journal.Entries)-1]
	if refusal.MessageID != changelog.MsgAlertDeliveryRefused {
		refusal = journal.Entries[0]
	}
	assert.Equal(t, am.Name(), refusal.Fields["HARDEN_ALERT_SINK"])
	assert.Equal(t, a.ID, refusal.Fields["HARDEN_ALERT_REFUSED_ALERT_ID"])

	// Nothing reached Alertmanager (asked with the right password).
	assert.Empty(t, listAlerts(t, withCreds(base, "harden:secret-before-rotation")))

	st := d.Stats()
	assert.Equal(t, spool.SinkStats{Delivered: 0, Failed: 0, Refused: 1}, st[am.Name()])
	assert.Equal(t, spool.SinkStats{Delivered: 2, Failed: 2, Refused: 0}, st[wh.Name()])
	assert.Equal(t, uint64(2), st["journal"].Delivered)
}

// Two sinks refusing: each dead-letters the alert and gets the other's notice, refuses that
// too, and it ends there (no notice about a notice).
func TestTwoRefusingSinksDoNotBounceNotices(t *testing.T) {
	base := startAuthAlertmanager(t)
	am := &Alertmanager{URL: withCreds(base, "harden:wrong")}
	rcv := &receiver{secret: []byte("rotated")}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	wh := &Webhook{URL: srv.URL, SecretFile: writeSecret(t, "old")}
	journal := &changelog.Memory{}
	sinks := []spool.Sink{Journal{Out: journal}, wh, am}
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir, MaxAlerts: 100, Sinks: sinkNames(sinks)})
	require.NoError(t, err)
	d := spool.NewDispatcher(sp, sinks, spool.DispatchOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	require.NoError(t, sp.Put(testAlert(alert.KindPrivEsc)))
	require.Eventually(t, func() bool { return sp.Len() == 0 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // anything still being raised would show now
	cancel()
	<-done
	assert.Equal(t, 0, sp.Len())
	assert.Len(t, journal.Entries, 3, "the alert and one notice per refusing sink")
	assert.Len(t, deadLetters(t, dir, am.Name()), 2, "the alert and the webhook's notice")
	assert.Len(t, deadLetters(t, dir, wh.Name()), 2, "the alert and Alertmanager's notice")
}
