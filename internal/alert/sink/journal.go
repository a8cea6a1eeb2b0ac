// Package sink delivers alerts: to the journal (always), to a webhook (signed JSON) and to
// Prometheus Alertmanager (API v2). Every sink implements spool.Sink and is driven by the
// spool's dispatcher, which owns retries; a sink makes one attempt per Send.
package sink

import (
	"context"
	"strings"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/changelog"
)

// messageIDs maps kinds to their journal MESSAGE_ID.
var messageIDs = map[alert.Kind]string{
	alert.KindSSHFailures:     changelog.MsgAlertSSHFailures,
	alert.KindPrivEsc:         changelog.MsgAlertPrivEsc,
	alert.KindCriticalFile:    changelog.MsgAlertCriticalFile,
	alert.KindAuditLost:       changelog.MsgAlertAuditLost,
	alert.KindVirus:           changelog.MsgAlertVirus,
	alert.KindSpoolDropped:    changelog.MsgAlertSpoolDropped,
	alert.KindDrift:           changelog.MsgAlertDrift,
	alert.KindDeliveryRefused: changelog.MsgAlertDeliveryRefused,
}

// MessageID returns the journal MESSAGE_ID of a kind.
func MessageID(k alert.Kind) string {
	if id, ok := messageIDs[k]; ok {
		return id
	}
	return changelog.MsgAlert
}

// Journal writes alerts to the journal at PRIORITY alert (1), one MESSAGE_ID per kind, with a
// HARDEN_ALERT_* field for every attribute and for the context.
type Journal struct{ Out changelog.Sink }

// Name implements spool.Sink.
func (Journal) Name() string { return "journal" }

// Send implements spool.Sink.
func (j Journal) Send(_ context.Context, a *alert.Alert) error {
	return j.Out.Send(JournalEntry(a))
}

// JournalEntry is the journal record of an alert.
func JournalEntry(a *alert.Alert) changelog.Entry {
	f := map[string]string{
		"HARDEN_ALERT_ID": a.ID, "HARDEN_ALERT_KIND": string(a.Kind), "HARDEN_ALERT_SEVERITY": string(a.Severity),
		"HARDEN_ALERT_DEDUPE_KEY": a.DedupeKey, "HARDEN_ALERT_TIME": a.Time.Format("2006-01-02T15:04:05.000Z07:00"),
		"HARDEN_ALERT_HOST": a.Context.Host, "HARDEN_ALERT_APP": a.Context.App, "HARDEN_ALERT_MACHINE": a.Context.Machine,
		"HARDEN_ALERT_REGION": a.Context.Region, "HARDEN_ALERT_IMAGE": a.Context.Image,
	}
	for k, v := range a.Attrs {
		name := "HARDEN_ALERT_" + strings.ToUpper(k)
		if _, taken := f[name]; !taken && len(name) <= 64 {
			f[name] = v
		}
	}
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	return changelog.Entry{MessageID: MessageID(a.Kind), Priority: changelog.PriAlert, Message: "harden alert: " + a.Summary, Fields: f}
}
