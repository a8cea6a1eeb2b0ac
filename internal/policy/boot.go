package policy

import (
	"fmt"
	"strings"
)

// BootService is one program `harden boot` starts and supervises next to the app. The set
// comes from the policy alone (BootServices), so the services step, `harden policy doc` and
// the supervisor can never disagree about what should run.
type BootService struct {
	// Name is the program's short name in records and the doc: clamd, clamonacc, ...
	Name string
	// Once: it runs to its end once per boot (restarted only when it fails), not all the time.
	Once bool
	// IfInstalled: the program is optional; a machine without it is reported, not failed.
	IfInstalled bool
	// Why says what it is for; Field names the policy field that enables it.
	Why, Field string
}

// Names of the programs harden boot can supervise, in the order it starts them.
const (
	BootWatch     = "watch"
	BootAuditd    = "auditd"
	BootFreshclam = "freshclam"
	BootClamd     = "clamd"
	BootClamonacc = "clamonacc"
	BootSSHD      = "sshd"
)

// BootServices lists what `harden boot` supervises under this policy, in start order. The
// alert daemon comes first, so alerts flow before anything else is up.
func (p *Policy) BootServices() []BootService {
	out := []BootService{
		{Name: BootWatch, Field: "alerts",
			Why: "alerts (failed SSH logins, privilege escalation, critical files, lost audit records, virus detections) to the records (stderr without journald) and the alert sinks"},
		{Name: BootAuditd, IfInstalled: true, Field: "audit",
			Why: "the audit log of the policy's audit events (/var/log/audit); harden loads the rules itself"},
	}
	if c := p.ClamAV; c.Enabled {
		out = append(out,
			BootService{Name: BootFreshclam, Once: true, Field: "clamav.freshclam",
				Why: "signature update once per boot, in the background: the app never waits for it"},
			BootService{Name: BootClamd, Field: "clamav.enabled",
				Why: "ClamAV's scanner; started once signatures are present"})
		if len(c.OnAccessPaths) > 0 {
			out = append(out, BootService{Name: BootClamonacc, Field: "clamav.on_access_paths",
				Why: fmt.Sprintf("on-access scanning of %s; started once clamd answers", strings.Join(c.OnAccessPaths, ", "))})
		}
	}
	if p.Boot.SSHD {
		out = append(out, BootService{Name: BootSSHD, Field: "boot.sshd",
			Why: "OpenSSH, keys only as the sshd section says (fly ssh console does not need it)"})
	}
	return out
}

// BootRequires reports whether the failure of step keeps the app from starting.
func (p *Policy) BootRequires(step string) bool {
	return step == FailClosedStep || contains(p.Boot.RequiredSteps, step)
}
