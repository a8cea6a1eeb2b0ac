package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body with the shared secret>".
	SignatureHeader = "X-Harden-Signature"
	// DedupeHeader repeats the alert's dedupe key, so a receiver can drop repeats without
	// parsing the body.
	DedupeHeader  = "X-Harden-Dedupe-Key"
	AlertIDHeader = "X-Harden-Alert-Id"
)

// Webhook POSTs the alert's JSON (the spool's own format) to a URL.
type Webhook struct {
	URL string
	// SecretFile holds the HMAC key; read at every send so a rotated secret takes effect
	// without a restart. Empty: unsigned.
	SecretFile string
	Client     *http.Client
}

// Name implements spool.Sink: stable per URL, so markers survive reordering the policy.
func (w *Webhook) Name() string { return "webhook-" + shortHash(w.URL) }

// Send implements spool.Sink.
func (w *Webhook) Send(ctx context.Context, a *alert.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return spool.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return spool.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "harden-watch")
	req.Header.Set(DedupeHeader, a.DedupeKey)
	req.Header.Set(AlertIDHeader, a.ID)
	if w.SecretFile != "" {
		secret, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err) // retried: the file may be provisioned late
		}
		req.Header.Set(SignatureHeader, Sign(bytes.TrimRight(secret, "\r\n"), body))
	}
	return do(w.client(), req)
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return http.DefaultClient
}

// Sign returns the signature header value of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header value in constant time (for receivers and tests).
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// do sends the request: 2xx is delivered; 4xx other than 408/429 will not get better with
// retries (a malformed alert, a wrong URL path) and is permanent; the rest is retried.
func do(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429 {
		return spool.Permanent(err)
	}
	return err
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}
