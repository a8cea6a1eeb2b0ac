// Package unitowner says which step manages a systemd unit itself. The services step masks
// every enabled unit that is neither allowed nor essential; a unit that another step brings
// into the state it needs (auditd 4's rule loader, sshd's socket and host-key generator,
// ClamAV's daemons) is that step's business and must never be masked as "not listed": on
// Ubuntu 26.04, masking sshd-keygen.service leaves an image without host keys unreachable,
// and masking audit-rules.service leaves auditd without rules.
//
// Steps never import each other, so the list lives here, where both the owning step and
// the services step can read it. A step that starts managing a unit adds it here.
package unitowner

import "path"

// Steps that own units (the names of engine steps).
const (
	Audit  = "audit"
	SSHD   = "sshd"
	ClamAV = "clamav"
)

// Unit is one unit a step manages, with why it must be left to that step.
type Unit struct {
	Name string // a unit name; a template (foo@.service) stands for all its instances
	Step string
	Why  string
}

// units is the whole list, grouped by step.
var units = []Unit{
	{"audit-rules.service", Audit, "auditd 4 loads the rules the audit step writes (augenrules --load) at every boot"},

	{"ssh.service", SSHD, "the SSH server the sshd step configures and proves"},
	{"sshd.service", SSHD, "the SSH server (the name Debian aliases and other distributions use)"},
	{"ssh.socket", SSHD, "Ubuntu's SSH listener: sshd is socket-activated"},
	{"sshd@.service", SSHD, "per-connection sshd of socket activation"},
	{"sshd-keygen.service", SSHD, "makes the SSH host keys on an image's first boot"},
	// systemd 256+'s systemd-ssh-generator: SSH over AF_VSOCK and a local AF_UNIX socket,
	// neither of which crosses the firewall; the sshd step decides whether they stay.
	{"sshd-vsock.socket", SSHD, "systemd-ssh-generator: sshd on AF_VSOCK"},
	{"sshd-vsock@.service", SSHD, "systemd-ssh-generator: sshd on AF_VSOCK"},
	{"sshd-unix-local.socket", SSHD, "systemd-ssh-generator: sshd on /run/ssh-unix-local/socket"},
	{"sshd-unix-local@.service", SSHD, "systemd-ssh-generator: sshd on /run/ssh-unix-local/socket"},
	{"sshd-unix-export.socket", SSHD, "systemd-ssh-generator: sshd exported to a container's host"},
	{"sshd-unix-export@.service", SSHD, "systemd-ssh-generator: sshd exported to a container's host"},
	{"sshd-generated@.service", SSHD, "systemd-ssh-generator's sshd template"},

	{"clamav-daemon.service", ClamAV, "the ClamAV scanner the clamav step configures"},
	{"clamav-daemon.socket", ClamAV, "clamd's socket"},
	{"clamav-clamonacc.service", ClamAV, "ClamAV on-access scanning"},
	{"clamav-freshclam.service", ClamAV, "ClamAV signature updates"},
	{"clamav-freshclam-once.service", ClamAV, "ClamAV signature updates (one-shot variant)"},
	{"clamav-freshclam-once.timer", ClamAV, "ClamAV signature updates (one-shot variant)"},
}

// All returns every owned unit, grouped by step.
func All() []Unit { return append([]Unit(nil), units...) }

// Of returns the units the step owns.
func Of(step string) []Unit {
	var out []Unit
	for _, u := range units {
		if u.Step == step {
			out = append(out, u)
		}
	}
	return out
}

// Owner returns the entry for name: the unit itself or, for an instance (foo@bar.service),
// its template.
func Owner(name string) (Unit, bool) {
	t := template(name)
	for _, u := range units {
		if u.Name == name || u.Name == t {
			return u, true
		}
	}
	return Unit{}, false
}

// template maps foo@bar.service to foo@.service; other names map to themselves.
func template(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			return name[:i+1] + path.Ext(name)
		}
	}
	return name
}
