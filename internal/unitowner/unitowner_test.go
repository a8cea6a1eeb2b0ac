package unitowner

import (
	"path"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOwner(t *testing.T) {
	for name, step := range map[string]string{
		"audit-rules.service":            Audit,
		"sshd-keygen.service":            SSHD,
		"ssh.socket":                     SSHD,
		"sshd@1-10.0.2.15:22.service":    SSHD, // an instance of the template
		"sshd-vsock@3-1:22.service":      SSHD,
		"clamav-clamonacc.service":       ClamAV,
		"cups.service":                   "",
		"audit-rules.service.d":          "",
		"sshd-keygen@.service":           "",
		"clamav-daemon.service.wants/x":  "",
		"clamav-clamonacc@x.service":     "",
		"systemd-journald-audit.socket":  "",
		"harden.service":                 "",
		"auditd.service":                 "", // the audit step needs it running: the services step ensures that
		"ssh.service.d/00-harden.conf":   "",
		"sshd-unix-local.socket.wants/x": "",
	} {
		u, ok := Owner(name)
		assert.Equal(t, step != "", ok, name)
		assert.Equal(t, step, u.Step, name)
	}
}

func TestListIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, u := range All() {
		assert.False(t, seen[u.Name], "duplicate %s", u.Name)
		seen[u.Name] = true
		assert.Contains(t, []string{Audit, SSHD, ClamAV}, u.Step, u.Name)
		assert.NotEmpty(t, u.Why, u.Name)
		assert.Contains(t, []string{".service", ".socket", ".timer", ".path"}, path.Ext(u.Name), u.Name)
	}
	assert.Len(t, Of(Audit), 1)
	assert.NotEmpty(t, Of(SSHD))
}
