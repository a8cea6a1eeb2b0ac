package sink

import (
	"fmt"
	"net/http"
	"time"

	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/policy"
)

// DefaultTimeout bounds one delivery attempt when the policy sets none.
const DefaultTimeout = 10 * time.Second

// FromPolicy builds the sinks of alerts.sinks. The journal is always one of them, whether the
// policy lists it or not: it is the local record an operator can always query.
func FromPolicy(sinks []policy.Sink, journal changelog.Sink) ([]spool.Sink, error) {
	out := []spool.Sink{Journal{Out: journal}}
	seen := map[string]bool{"journal": true}
	for i, s := range sinks {
		timeout := s.Timeout.D()
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		// The client's own timeout backs up the per-attempt context: a receiver that
		// accepts the connection and never answers cannot hold a worker.
		client := &http.Client{Timeout: timeout}
		var k spool.Sink
		switch s.Type {
		case "journal":
			continue
		case "webhook":
			k = &Webhook{URL: s.URL, SecretFile: s.SecretFile, Client: client}
		case "alertmanager":
			k = &Alertmanager{URL: s.URL, Client: client}
		default:
			return nil, fmt.Errorf("alerts.sinks[%d].type: unknown sink %q", i, s.Type)
		}
		if seen[k.Name()] {
			return nil, fmt.Errorf("alerts.sinks[%d]: the same %s URL is listed twice", i, s.Type)
		}
		seen[k.Name()] = true
		out = append(out, k)
	}
	return out, nil
}
