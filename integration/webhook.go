//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/alert/sink"
)

// WebhookPath is the URL path the test policy's webhook sink posts to.
const WebhookPath = "/harden-test-webhook"

// Received is one alert the webhook receiver accepted (signature verified).
type Received struct {
	Kind    string            `json:"kind"`
	Summary string            `json:"summary"`
	Attrs   map[string]string `json:"attrs"`
}

// Receiver is the host's webhook receiver: what an operator's endpoint would be. It checks
// X-Harden-Signature (HMAC over X-Harden-Timestamp "." body) against the secret the test
// handed into the guest, and the timestamp against the host's clock within the tolerance
// window, and records the alerts; a request with a wrong or missing signature or a stale
// timestamp is refused (401) and counted.
type Receiver struct {
	Secret []byte
	Port   int
	srv    *http.Server

	mu       sync.Mutex
	alerts   []Received
	rejected []string // why requests were refused
}

// StartReceiver listens on a free port of 127.0.0.1 with a fresh random secret.
func StartReceiver() (*Receiver, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{Secret: []byte(hex.EncodeToString(raw)), Port: ln.Addr().(*net.TCPAddr).Port}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Close stops the receiver.
func (r *Receiver) Close() { _ = r.srv.Close() }

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// One request per connection: each connection is a `busybox nc` relay QEMU spawned.
	w.Header().Set("Connection", "close")
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	switch {
	case err != nil:
		r.reject(w, http.StatusBadRequest, "reading the body: "+err.Error())
	case req.Method != http.MethodPost || req.URL.Path != WebhookPath:
		r.reject(w, http.StatusNotFound, req.Method+" "+req.URL.Path)
	case verifyErr(r.Secret, body, req) != nil:
		r.reject(w, http.StatusUnauthorized, fmt.Sprintf("signature %q at %q: %v", req.Header.Get(sink.SignatureHeader),
			req.Header.Get(sink.TimestampHeader), verifyErr(r.Secret, body, req)))
	default:
		var a Received
		if err := json.Unmarshal(body, &a); err != nil || a.Kind == "" {
			r.reject(w, http.StatusBadRequest, fmt.Sprintf("not an alert (%v): %.200s", err, body))
			return
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, a)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// verifyErr is what an operator's receiver checks: the signature over timestamp and body, and
// the timestamp within the tolerance window of this host's clock.
func verifyErr(secret, body []byte, req *http.Request) error {
	return sink.Verify(secret, body, req.Header.Get(sink.TimestampHeader), req.Header.Get(sink.SignatureHeader),
		time.Now(), sink.DefaultTolerance)
}

func (r *Receiver) reject(w http.ResponseWriter, code int, why string) {
	r.mu.Lock()
	r.rejected = append(r.rejected, why)
	r.mu.Unlock()
	http.Error(w, why, code)
}

// Wait polls until match finds an alert or the timeout passes; it returns the alert found.
func (r *Receiver) Wait(timeout time.Duration, match func(Received) bool) (Received, bool) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		for _, a := range r.alerts {
			if match(a) {
				r.mu.Unlock()
				return a, true
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			return Received{}, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Summary lists what arrived (kinds with counts) and what was refused, for failure messages.
func (r *Receiver) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	kinds := map[string]int{}
	for _, a := range r.alerts {
		kinds[a.Kind]++
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%s×%d", k, n))
	}
	s := "received: " + strings.Join(parts, " ")
	if len(r.rejected) > 0 {
		s += fmt.Sprintf("; refused %d: %s", len(r.rejected), r.rejected[0])
	}
	return s
}

// Rejected returns why requests were refused.
func (r *Receiver) Rejected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}
