package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of TIMESTAMP "." BODY with the shared
	// secret>", where TIMESTAMP is the TimestampHeader's value exactly as sent.
	SignatureHeader = "X-Harden-Signature"
	// TimestampHeader is when the request was signed, in Unix seconds. The signature covers
	// it, so a captured delivery replayed later fails the receiver's tolerance window.
	TimestampHeader = "X-Harden-Timestamp"
	// DedupeHeader repeats the alert's dedupe key, so a receiver can drop repeats without
	// parsing the body (also what stops a replay inside the tolerance window).
	DedupeHeader  = "X-Harden-Dedupe-Key"
	AlertIDHeader = "X-Harden-Alert-Id"
)

// DefaultTolerance is how far a receiver should let a signed timestamp be from its own clock
// (either way: clocks differ). A delivery retried later is signed again at each attempt, so
// the window only needs to cover the request's own travel and clock skew.
const DefaultTolerance = 5 * time.Minute

// Webhook POSTs the alert's JSON (the spool's own format) to a URL.
type Webhook struct {
	URL string
	// SecretFile holds the HMAC key; read at every send so a rotated secret takes effect
	// without a restart. Empty: unsigned.
	SecretFile string
	Client     *http.Client
	// Now stamps TimestampHeader (nil: time.Now).
	Now func() time.Time
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
		now := time.Now
		if w.Now != nil {
			now = w.Now
		}
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set(TimestampHeader, ts)
		req.Header.Set(SignatureHeader, Sign(bytes.TrimRight(secret, "\r\n"), ts, body))
	}
	return do(w.client(), req)
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return http.DefaultClient
}

// Sign returns the signature header value of a body sent at timestamp (TimestampHeader's
// value): HMAC-SHA256 over timestamp "." body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does with a delivery (Go receivers may call it; the README shows
// the same in a few lines of Python): the signature must match timestamp "." body in constant
// time, and the timestamp must be within tolerance of now. Each error says which check failed.
func Verify(secret, body []byte, timestamp, signature string, now time.Time, tolerance time.Duration) error {
	if timestamp == "" || signature == "" {
		return errors.New("missing " + TimestampHeader + " or " + SignatureHeader)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("signature does not match")
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", TimestampHeader, timestamp)
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("timestamp %s is %s away from now, outside the %s window (a replay, or a clock off)",
			timestamp, skew.Round(time.Second), tolerance)
	}
	return nil
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
