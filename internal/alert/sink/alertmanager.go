package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/spool"
)

// Alertmanager posts alerts to Prometheus Alertmanager's API v2 (POST /api/v2/alerts).
// Alertmanager identifies an alert by its label set: the labels hold what routes and groups
// alerts (alertname, severity, instance, app, region, machine) plus the dedupe key, so a
// redelivered alert merges with itself while two events stay two alerts. Everything else
// goes into annotations.
type Alertmanager struct {
	URL    string // base URL, e.g. http://alertmanager:9093
	Client *http.Client
	// Hold is how long an alert stays firing (endsAt = time + Hold). These are events, not
	// conditions that harden could resolve later; without endsAt Alertmanager resolves them
	// after its resolve_timeout anyway. Zero: 1h.
	Hold time.Duration
	Now  func() time.Time
}

// Name implements spool.Sink.
func (m *Alertmanager) Name() string { return "alertmanager-" + shortHash(m.URL) }

// PostableAlert is API v2's postableAlert.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Postable converts an alert.
func (m *Alertmanager) Postable(a *alert.Alert) PostableAlert {
	hold := m.Hold
	if hold == 0 {
		hold = time.Hour
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	start := a.Time
	if start.IsZero() {
		start = a.Raised
	}
	// An alert delivered late (a sink that was down) still shows as firing for Hold.
	end := start
	if n := now(); n.After(end) {
		end = n
	}
	end = end.Add(hold)
	labels := map[string]string{
		"alertname": a.Kind.AlertName(), "severity": string(a.Severity), "kind": string(a.Kind),
		"instance": a.Context.Host, "host": a.Context.Host, "app": a.Context.App,
		"region": a.Context.Region, "machine": a.Context.Machine, "job": "harden",
		"dedupe_key": a.DedupeKey,
	}
	ann := map[string]string{"summary": a.Summary, "description": description(a), "alert_id": a.ID, "image": a.Context.Image}
	for k, v := range a.Attrs {
		if _, taken := ann[k]; !taken {
			ann[k] = v
		}
	}
	dropEmpty(labels)
	dropEmpty(ann)
	return PostableAlert{Labels: labels, Annotations: ann, StartsAt: start.UTC(), EndsAt: end.UTC()}
}

func description(a *alert.Alert) string {
	var b strings.Builder
	b.WriteString(a.Summary)
	for _, k := range a.AttrNames() {
		b.WriteString("\n" + k + ": " + a.Attrs[k])
	}
	return b.String()
}

func dropEmpty(m map[string]string) {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
}

// Send implements spool.Sink.
func (m *Alertmanager) Send(ctx context.Context, a *alert.Alert) error {
	body, err := json.Marshal([]PostableAlert{m.Postable(a)})
	if err != nil {
		return spool.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(m.URL, "/")+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return spool.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "harden-watch")
	c := m.Client
	if c == nil {
		c = http.DefaultClient
	}
	return do(c, req)
}
