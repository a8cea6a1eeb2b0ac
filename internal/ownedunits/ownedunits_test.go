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
}
