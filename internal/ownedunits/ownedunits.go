// Package ownedunits lists the systemd units each step manages itself. The services step
// masks enabled units the policy does not list; a unit another step owns (sshd's socket,
// the unit that makes host keys) is that step's business and must never be masked as
// "not listed". Steps cannot import each other, so the list lives here, where both the
// owning step and the services step can read it.
package ownedunits

import (
	"path"
	"strings"
)

// SSHD are the units of OpenSSH's server on Debian, Ubuntu and systemd's own generator:
// ssh.service (Debian, Ubuntu; sshd.service is its alias), ssh.socket (Ubuntu 22.10+
// starts sshd from it), the per-connection templates, sshd-keygen (host keys on a first
// boot: masking it is a lockout on an image without baked keys), rescue-ssh.target, and the
// sockets of systemd 256+'s systemd-ssh-generator, which the sshd step shuts or allows by
// policy (sshd.systemd_ssh_generator).
var SSHD = []string{
	"ssh.service", "sshd.service", "ssh.socket", "sshd.socket",
	"ssh@.service", "sshd@.service",
	"sshd-keygen.service", "sshd-keygen@.service", "ssh-keygen.service",
	"rescue-ssh.target",
	"sshd-vsock.socket", "sshd-vsock@.service",
	"sshd-unix-local.socket", "sshd-unix-local@.service",
	"sshd-unix-export.socket", "sshd-unix-export@.service",
	"sshd-extra.socket", "sshd-extra@.service", "sshd-generated@.service",
}

// byStep maps a step name to the units it owns. A step that owns units adds its list here.
var byStep = map[string][]string{
	"sshd": SSHD,
}

// Of returns the units a step owns (nil for a step that owns none).
func Of(step string) []string {
	return append([]string(nil), byStep[step]...)
}

// Owner returns the step that owns a unit. An instance (sshd@5-10.0.0.1:22.service)
// belongs to the owner of its template (sshd@.service); systemd-ssh-generator's numbered
// extra sockets (sshd-extra-2.socket) belong to sshd.
func Owner(unit string) (string, bool) {
	name := template(unit)
	for step, units := range byStep {
		for _, u := range units {
			if u == name {
				return step, true
			}
		}
	}
	if strings.HasPrefix(name, "sshd-extra-") {
		return "sshd", true
	}
	return "", false
}

// template maps foo@bar.service to foo@.service; other names map to themselves.
func template(name string) string {
	at := strings.IndexByte(name, '@')
	if at < 0 {
		return name
	}
	return name[:at+1] + path.Ext(name)
}
