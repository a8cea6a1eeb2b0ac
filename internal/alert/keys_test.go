package alert

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/alert/auditrec"
	"github.com/harden-dev/harden/internal/auditkeys"
	"github.com/harden-dev/harden/internal/auditrule"
)

// baselineKeys parses the embedded baseline the audit step loads and returns the key of
// every rule.
func baselineKeys(t *testing.T) map[string]bool {
	file, err := (&auditrule.Parser{IsDir: func(string) bool { return true }}).ParseString("baseline", string(assets.AuditBaseline))
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, r := range file.Rules {
		for _, f := range r.Fields {
			if f.Type == auditrule.FieldFilterKey {
				keys[f.Str] = true
			}
		}
	}
	require.NotEmpty(t, keys)
	return keys
}

// keyedWrite is the audit event of a process writing /etc/shadow under a key: an
// open(O_WRONLY|O_CREAT|O_TRUNC) by a logged-in user that became root, as auditd logs it.
func keyedWrite(t *testing.T, key string, serial int) []*auditrec.Record {
	stamp := fmt.Sprintf("audit(1700000400.%03d:%d)", serial%1000, 5000+serial)
	lines := []string{
		"type=SYSCALL msg=" + stamp + `: arch=c000003e syscall=2 success=yes exit=3 a0=55d1d5f3a4e0 a1=241 a2=1b6 a3=0 items=1 ppid=3300 pid=3301 auid=1000 uid=1000 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="tee" exe="/usr/bin/tee" subj=unconfined key="` + key + `"`,
		"type=PATH msg=" + stamp + `: item=0 name="/etc/shadow" inode=131555 dev=fd:01 mode=0100640 ouid=0 ogid=42 rdev=00:00 nametype=NORMAL`,
		"type=EOE msg=" + stamp + ": ",
	}
	var out []*auditrec.Record
	for _, l := range lines {
		r, err := auditrec.ParseLogLine(l)
		require.NoError(t, err, l)
		out = append(out, &r)
	}
	return out
}

// TestBaselineKeysAndAlertRulesAgree: the baseline rules' keys, the one key list and the
// alert rules say the same thing. Every key a baseline rule sets is in the list and every
// listed key is set by a rule; an event under each key raises exactly the alert the list
// names (or none), through the same rules `harden watch` runs.
func TestBaselineKeysAndAlertRulesAgree(t *testing.T) {
	inBaseline := baselineKeys(t)
	for k := range inBaseline {
		_, ok := auditkeys.Lookup(k)
		assert.True(t, ok, "baseline key %q is not in internal/auditkeys", k)
	}
	for i, k := range auditkeys.All {
		assert.True(t, inBaseline[k.Name], "listed key %q is set by no baseline rule", k.Name)
		alerts := replay(t, newRules(5, 0), keyedWrite(t, k.Name, i))
		if k.Alert == auditkeys.NoAlert {
			assert.Empty(t, alerts, "key %q is listed as not alerting", k.Name)
			continue
		}
		if assert.Len(t, alerts, 1, "key %q", k.Name) {
			assert.Equal(t, string(k.Alert), string(alerts[0].Kind), "key %q", k.Name)
			assert.Equal(t, k.Name, alerts[0].Attrs["key"])
		}
	}
}

// The alert names of the key list are alert kinds.
func TestKeyListAlertsAreKinds(t *testing.T) {
	kinds := map[string]bool{}
	for _, k := range Kinds {
		kinds[string(k)] = true
	}
	for _, a := range []auditkeys.Alert{auditkeys.AlertCriticalFile, auditkeys.AlertPrivEsc} {
		assert.True(t, kinds[string(a)], "%q is not an alert kind", a)
		assert.NotEmpty(t, auditkeys.Alerting(a))
	}
	assert.Equal(t, auditkeys.Alerting(auditkeys.AlertPrivEsc), PrivEscKeys)
	assert.Equal(t, auditkeys.Alerting(auditkeys.AlertCriticalFile), CriticalFileKeys)
	assert.False(t, strings.Contains(strings.Join(PrivEscKeys, ","), auditkeys.PrivSetID),
		"priv_setid would alert several times per sudo")
}
