package sink

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testAlert(kind alert.Kind) *alert.Alert {
	now := time.Now()
	a := alert.New(kind, alert.Warning, now.Add(-time.Minute), now, "7 failed SSH connections from 203.0.113.7",
		map[string]string{"addr": "203.0.113.7", "count": "7"})
	a.DedupeKey = string(kind) + ":203.0.113.7:1700000020.001:830"
	a.Context = alert.Context{Host: "vm1", App: "app", Machine: "m-1", Region: "ams", Image: "2026-11-20T08:00:00Z"}
	return a
}

func TestJournalEntryHasKindIDAndEveryAttribute(t *testing.T) {
	mem := &changelog.Memory{}
	a := testAlert(alert.KindSSHFailures)
	require.NoError(t, Journal{Out: mem}.Send(context.Background(), a))
	require.Len(t, mem.Entries, 1)
	e := mem.Entries[0]
	assert.Equal(t, changelog.MsgAlertSSHFailures, e.MessageID)
	assert.Equal(t, changelog.PriAlert, e.Priority)
	assert.Contains(t, e.Message, "7 failed SSH connections")
	for k, v := range map[string]string{"HARDEN_ALERT_KIND": "ssh-failures", "HARDEN_ALERT_ADDR": "203.0.113.7",
		"HARDEN_ALERT_COUNT": "7", "HARDEN_ALERT_HOST": "vm1", "HARDEN_ALERT_APP": "app", "HARDEN_ALERT_MACHINE": "m-1",
		"HARDEN_ALERT_REGION": "ams", "HARDEN_ALERT_IMAGE": "2026-11-20T08:00:00Z", "HARDEN_ALERT_DEDUPE_KEY": a.DedupeKey,
		"HARDEN_ALERT_ID": a.ID, "HARDEN_ALERT_SEVERITY": "warning"} {
		assert.Equal(t, v, e.Fields[k], k)
	}
}

func TestEveryKindHasItsOwnMessageID(t *testing.T) {
	seen := map[string]alert.Kind{}
	for _, k := range alert.Kinds {
		id := MessageID(k)
		assert.NotEqual(t, changelog.MsgAlert, id, k)
		_, dup := seen[id]
		assert.False(t, dup, "%s shares its MESSAGE_ID with %s", k, seen[id])
		seen[id] = k
		require.NoError(t, JournalEntry(testAlert(k)).Validate())
	}
}

// receiver is a webhook endpoint that checks signatures and timestamps (as the README tells
// receivers to) and counts alerts by dedupe key.
type receiver struct {
	secret []byte
	now    func() time.Time // the receiver's clock (nil: time.Now)
	kinds  []alert.Kind
	mu     sync.Mutex
	byKey  map[string]int
	bad    int
	fail   int // answer 500 to this many requests first
	delay  time.Duration
	hook   func(n int) // called with the request number before answering
	n      int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.n++
	n := r.n
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	if err := Verify(r.secret, body, req.Header.Get(TimestampHeader), req.Header.Get(SignatureHeader), now(), DefaultTolerance); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var a alert.Alert
	if err := json.Unmarshal(body, &a); err != nil || a.DedupeKey != req.Header.Get(DedupeHeader) {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if r.byKey == nil {
		r.byKey = map[string]int{}
	}
	r.byKey[a.DedupeKey]++
	r.kinds = append(r.kinds, a.Kind)
}

func (r *receiver) counts() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.byKey {
		distinct++
		total += n
	}
	return
}

func writeSecret(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(s+"\n"), 0o600))
	return p
}

func TestWebhookSignsAndIsVerified(t *testing.T) {
	rcv := &receiver{secret: []byte("s3cret")}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	w := &Webhook{URL: srv.URL, SecretFile: writeSecret(t, "s3cret")}
	require.NoError(t, w.Send(context.Background(), testAlert(alert.KindSSHFailures)))
	d, _ := rcv.counts()
	assert.Equal(t, 1, d)

	wrong := &Webhook{URL: srv.URL, SecretFile: writeSecret(t, "other")}
	err := wrong.Send(context.Background(), testAlert(alert.KindSSHFailures))
	var perm *spool.PermanentError
	require.ErrorAs(t, err, &perm, "401 is not retried")
	assert.Equal(t, 1, rcv.bad)

	missing := &Webhook{URL: srv.URL, SecretFile: filepath.Join(t.TempDir(), "nope")}
	err = missing.Send(context.Background(), testAlert(alert.KindSSHFailures))
	require.Error(t, err)
	assert.False(t, errors.As(err, &perm), "a missing secret is retried (provisioned late)")
}

func TestWebhookRetriesOn500ThroughTheSpool(t *testing.T) {
	rcv := &receiver{secret: []byte("k"), fail: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	w := &Webhook{URL: srv.URL, SecretFile: writeSecret(t, "k")}
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), MaxAlerts: 10, Sinks: []string{w.Name()}})
	require.NoError(t, err)
	d := spool.NewDispatcher(sp, []spool.Sink{w}, spool.DispatchOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	require.NoError(t, sp.Put(testAlert(alert.KindPrivEsc)))
	require.Eventually(t, func() bool { return sp.Len() == 0 }, 5*time.Second, 5*time.Millisecond)
	distinct, total := rcv.counts()
	assert.Equal(t, 1, distinct)
	assert.Equal(t, 1, total)
	assert.Equal(t, 3, rcv.n, "two 500s, then delivered")
}

func TestWebhookTimeout(t *testing.T) {
	rcv := &receiver{secret: []byte("k"), delay: 500 * time.Millisecond}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	pol := []policy.Sink{{Type: "webhook", URL: srv.URL, SecretFile: writeSecret(t, "k"), Timeout: policy.Duration(100 * time.Millisecond)}}
	sinks, err := FromPolicy(pol, &changelog.Memory{})
	require.NoError(t, err)
	require.Len(t, sinks, 2)
	assert.Equal(t, "journal", sinks[0].Name(), "the journal is always a sink")
	start := time.Now()
	err = sinks[1].Send(context.Background(), testAlert(alert.KindVirus))
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second, "the policy's timeout bounds the attempt")
}

func TestFromPolicyRefusesDuplicates(t *testing.T) {
	_, err := FromPolicy([]policy.Sink{{Type: "alertmanager", URL: "http://a:9093"}, {Type: "alertmanager", URL: "http://a:9093"}}, &changelog.Memory{})
	require.ErrorContains(t, err, "alerts.sinks[1]")
}

func TestAlertmanagerPayload(t *testing.T) {
	m := &Alertmanager{URL: "http://x", Now: func() time.Time { return time.Unix(1700000100, 0) }}
	a := testAlert(alert.KindSSHFailures)
	a.Time = time.Unix(1700000000, 0)
	p := m.Postable(a)
	assert.Equal(t, map[string]string{"alertname": "HardenSSHFailures", "severity": "warning", "kind": "ssh-failures",
		"instance": "vm1", "host": "vm1", "app": "app", "region": "ams", "machine": "m-1", "job": "harden",
		"dedupe_key": a.DedupeKey}, p.Labels)
	assert.Equal(t, "203.0.113.7", p.Annotations["addr"])
	assert.Equal(t, "2026-11-20T08:00:00Z", p.Annotations["image"])
	assert.True(t, strings.HasPrefix(p.Annotations["description"], a.Summary))
	assert.Equal(t, time.Unix(1700000000, 0).UTC(), p.StartsAt)
	assert.Equal(t, time.Unix(1700000100, 0).Add(time.Hour).UTC(), p.EndsAt, "a late delivery still fires for an hour")
}
