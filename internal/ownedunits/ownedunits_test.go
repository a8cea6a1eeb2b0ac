package ownedunits

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOwner(t *testing.T) {
	for unit, want := range map[string]string{
		"ssh.socket":                    "sshd",
		"sshd-keygen.service":           "sshd",
		"sshd-vsock.socket":             "sshd",
		"sshd-unix-local.socket":        "sshd",
		"sshd@5-10.0.0.1:22.service":    "sshd",
		"sshd-vsock@3-2:22-3:5.service": "sshd",
		"sshd-extra-2.socket":           "sshd",
		"audit-rules.service":           "audit",
		"clamav-clamonacc.service":      "clamav",
		"clamav-freshclam-once.timer":   "clamav",
		"auditd.service":                "", // kept running by the services step, not owned
		"cups.service":                  "",
		"ssh-agent.service":             "",
	} {
		got, ok := Owner(unit)
		assert.Equal(t, want, got, unit)
		assert.Equal(t, want != "", ok, unit)
	}
	assert.Contains(t, Of("sshd"), "ssh.socket")
	assert.Nil(t, Of("kernel"))
	l := Of("sshd")
	l[0] = "changed"
	assert.Equal(t, "ssh.service", SSHD[0], "Of returns a copy")
	assert.Equal(t, []string{"audit", "clamav", "sshd"}, Steps())
}

// A unit has one owner.
func TestNoUnitHasTwoOwners(t *testing.T) {
	seen := map[string]string{}
	for _, step := range Steps() {
		for _, u := range Of(step) {
			assert.Empty(t, seen[u], "%s owned by %s and %s", u, seen[u], step)
			seen[u] = step
		}
	}
}
