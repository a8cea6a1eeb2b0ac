// Package alert holds what `harden watch` and `harden alert` raise: the Alert record every
// sink and the spool share, the context stamped on every alert, and the rules that turn audit
// events into alerts (failed SSH authentication bursts, privilege escalation, critical file
// changes). Delivery lives in internal/alert/spool, the sinks in internal/alert/sink, and the
// loop that ties them to the audit stream in internal/alert/watch.
package alert

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind names what an alert is about. The values are a contract: sinks, dashboards and
// Alertmanager routes select on them.
type Kind string

// The alert kinds.
const (
	KindSSHFailures  Kind = "ssh-failures"  // failed SSH authentications from one source above the threshold
	KindPrivEsc      Kind = "priv-esc"      // privilege escalation (attempt)
	KindCriticalFile Kind = "critical-file" // a critical file was written or its attributes changed
	KindAuditLost    Kind = "audit-lost"    // audit records were lost (kernel or our socket)
	KindVirus        Kind = "virus"         // ClamAV found malware
	KindSpoolDropped Kind = "spool-dropped" // the spool was full and dropped its oldest alerts
	KindDrift        Kind = "drift"         // the daily dry-run found the machine off policy
	// A sink refused an alert for good (HTTP 4xx: a rotated secret, a wrong URL): the alert
	// went to the spool's dead-letter directory for that sink, and this one to the others.
	KindDeliveryRefused Kind = "delivery-refused"
)

// Kinds lists every kind, for tables (MESSAGE_IDs, Alertmanager alertnames) and their tests.
var Kinds = []Kind{KindSSHFailures, KindPrivEsc, KindCriticalFile, KindAuditLost, KindVirus, KindSpoolDropped, KindDrift,
	KindDeliveryRefused}

// Severity follows Alertmanager's customary label values.
type Severity string

// Severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Alert is one alert. Its JSON form is what the spool stores and the webhook receives, so
// fields are only ever added.
type Alert struct {
	Version int `json:"version"`
	// ID is unique per alert and orders the spool (it starts with the raise time).
	ID string `json:"id"`
	// DedupeKey is the same for every delivery of the same alert: sinks that see it twice
	// (at-least-once delivery after a crash) keep one.
	DedupeKey string   `json:"dedupe_key"`
	Kind      Kind     `json:"kind"`
	Severity  Severity `json:"severity"`
	Summary   string   `json:"summary"`
	// Time is when the thing happened (the audit event's time), Raised when harden noticed.
	Time   time.Time `json:"time"`
	Raised time.Time `json:"raised"`
	// Attrs are the facts: addr, count, auid, exe, path, ... Keys are lower_snake_case so
	// that every sink can use them as field, label or header names.
	Attrs   map[string]string `json:"attrs"`
	Context Context           `json:"context"`
}

// Context says which machine raised the alert.
type Context struct {
	Host    string `json:"host"`
	App     string `json:"app,omitempty"`     // FLY_APP_NAME
	Machine string `json:"machine,omitempty"` // FLY_MACHINE_ID
	Region  string `json:"region,omitempty"`  // FLY_REGION
	Image   string `json:"image,omitempty"`   // BUILD_TIME of /etc/harden/image-build
}

// New returns an alert with a fresh ID, raised now. The dedupe key defaults to the ID; rules
// set one derived from the event so that the same event always gives the same key.
func New(kind Kind, sev Severity, at, now time.Time, summary string, attrs map[string]string) *Alert {
	a := &Alert{Version: 1, ID: NewID(now), Kind: kind, Severity: sev, Summary: summary,
		Time: at.UTC(), Raised: now.UTC(), Attrs: attrs}
	if a.Attrs == nil {
		a.Attrs = map[string]string{}
	}
	a.DedupeKey = string(kind) + ":" + a.ID
	return a
}

// NewID returns an ID that sorts by time: 16 hex digits of Unix nanoseconds, then 8 random
// hex digits so two alerts in the same nanosecond (or from two processes) never collide.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x-%s", now.UnixNano(), hex.EncodeToString(b[:]))
}

// ValidID reports whether s has NewID's shape (it becomes a file name: no path tricks).
func ValidID(s string) bool {
	if len(s) != 25 || s[16] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i != 16 && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks what sinks rely on.
func (a *Alert) Validate() error {
	if !ValidID(a.ID) {
		return fmt.Errorf("alert: bad id %q", a.ID)
	}
	if a.DedupeKey == "" || a.Kind == "" || a.Severity == "" {
		return fmt.Errorf("alert %s: dedupe_key, kind and severity are required", a.ID)
	}
	for k := range a.Attrs {
		if !validAttr(k) {
			return fmt.Errorf("alert %s: attribute name %q is not lower_snake_case", a.ID, k)
		}
	}
	return nil
}

func validAttr(k string) bool {
	if k == "" || len(k) > 40 || !(k[0] >= 'a' && k[0] <= 'z') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// AttrNames returns the attribute names sorted, for stable output.
func (a *Alert) AttrNames() []string {
	names := make([]string, 0, len(a.Attrs))
	for k := range a.Attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// AlertName is the Alertmanager alertname of a kind: "HardenSSHFailures" style.
func (k Kind) AlertName() string {
	var b strings.Builder
	b.WriteString("Harden")
	for _, part := range strings.Split(string(k), "-") {
		switch part {
		case "ssh":
			b.WriteString("SSH")
		default:
			if part != "" {
				b.WriteString(strings.ToUpper(part[:1]) + part[1:])
			}
		}
	}
	return b.String()
}

func sortStrings(s []string) { sort.Strings(s) }
