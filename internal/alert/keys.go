package alert

import "github.com/harden-dev/harden/internal/auditkeys"

// The audit keys the rules select events by come from the one list in internal/auditkeys,
// which the audit step's baseline is checked against too (TestBaselineKeysAndAlertRulesAgree).
var (
	// PrivEscKeys: execs that gain root (priv_esc) and execs of su/sudo/pkexec/... by a
	// logged-in user (priv_cmd).
	PrivEscKeys = auditkeys.Alerting(auditkeys.AlertPrivEsc)
	// CriticalFileKeys: writes and attribute changes of files whose change alters who can
	// log in or run what.
	CriticalFileKeys = auditkeys.Alerting(auditkeys.AlertCriticalFile)
)
