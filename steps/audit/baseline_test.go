package audit

import (
	"io/fs"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/auditkeys"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allDirs pretends every path exists as a directory, so the whole baseline is wanted.
func allDirs(string) (fs.FileInfo, error) { return dirInfo{}, nil }

type dirInfo struct{ fs.FileInfo }

func (dirInfo) IsDir() bool { return true }

func baselinePolicy() policy.Audit {
	a := policy.Default().Audit
	a.Immutable = false
	return a
}

// Every baseline rule carries exactly one of the keys of internal/auditkeys (the list the
// alert rules read too), every key is used, and each of the policy's event classes is covered.
func TestBaselineKeysAreTheExportedOnes(t *testing.T) {
	file, err := (&auditrule.Parser{IsDir: func(string) bool { return true }}).ParseString("baseline", string(assets.AuditBaseline))
	require.NoError(t, err)
	require.Empty(t, file.Controls, "the baseline holds rules only")
	require.Empty(t, file.Warnings)
	known := map[string]bool{}
	for _, k := range auditkeys.Names() {
		require.False(t, known[k], "key %s listed twice", k)
		known[k] = true
	}
	for _, c := range []auditkeys.Class{auditkeys.CriticalFiles, auditkeys.Logins, auditkeys.PrivEsc, auditkeys.Config} {
		assert.NotEmpty(t, auditkeys.InClass(c), "no key for the event class %q", c)
	}
	used := map[string]int{}
	for _, r := range file.Rules {
		var keys []string
		for _, f := range r.Fields {
			if f.Type == auditrule.FieldFilterKey {
				keys = append(keys, f.Str)
			}
		}
		require.Len(t, keys, 1, "line %d: one key per rule", r.Line)
		assert.True(t, known[keys[0]], "line %d: key %q is not in internal/auditkeys", r.Line, keys[0])
		used[keys[0]]++
	}
	for k := range known {
		assert.Positive(t, used[k], "key %s is listed but no baseline rule uses it", k)
	}
	t.Logf("baseline: %d rules, %d keys", len(file.Rules), len(used))
}

// Syscall rules come in b64/b32 pairs with the same key, so 32-bit programs are caught too.
func TestBaselineSyscallRulesCoverBothABIs(t *testing.T) {
	file, err := (&auditrule.Parser{}).ParseString("baseline", string(assets.AuditBaseline))
	require.NoError(t, err)
	arches := map[string][]string{}
	for _, r := range file.Rules {
		text := r.Normalize().String()
		if !strings.Contains(text, " -S ") {
			continue
		}
		key := text[strings.LastIndex(text, "key=")+4:]
		for _, f := range r.Fields {
			if f.Type == auditrule.FieldArch {
				arches[key] = append(arches[key], map[uint32]string{auditrule.ArchX86_64: "b64", auditrule.ArchI386: "b32"}[f.Value])
			}
		}
	}
	require.NotEmpty(t, arches)
	for k, a := range arches {
		sort.Strings(a)
		assert.Contains(t, a, "b32", k)
		assert.Contains(t, a, "b64", k)
	}
}

func TestWantedDirectoriesFallBackToPathsOrAreSkipped(t *testing.T) {
	stat := func(p string) (fs.FileInfo, error) {
		switch p {
		case "/etc/sudoers.d", "/var/spool/cron":
			return nil, fs.ErrNotExist // absent directory: watch the path
		case "/etc/ssh":
			return nil, fs.ErrNotExist // absent parent: cannot watch at all
		}
		return dirInfo{}, nil
	}
	d, err := wantState(baselinePolicy(), stat)
	require.NoError(t, err)
	var texts []string
	for _, w := range d.rules {
		texts = append(texts, w.rule.FileText())
	}
	all := strings.Join(texts, "\n")
	assert.Contains(t, all, "-F path=/etc/sudoers.d -F perm=wa -F key=sudoers")
	assert.Contains(t, all, "-F dir=/etc/pam.d -F perm=wa -F key=pam")
	assert.NotContains(t, all, "sshd_config")
	var skipped []string
	for _, f := range d.findings {
		if f.ID == "audit.watch-skipped" {
			skipped = append(skipped, f.Object)
		}
	}
	assert.Len(t, skipped, 2, "sshd_config and sshd_config.d: %v", skipped)
}

func TestPolicyRulesAfterBaselineInKernelOrderWithoutDuplicates(t *testing.T) {
	a := baselinePolicy()
	a.Rules = []string{
		"-a never,exclude -F msgtype=CWD",
		"-w /etc/shadow -p wa -k identity", // also in the baseline: loaded once
		"-a always,exit -F arch=b64 -S openat -F exit=-EACCES -k access",
		"-A always,exit -F arch=b64 -S kill -k kill", // -A: head of the exit list
		"-a always,user -F uid=0",
	}
	d, err := wantState(a, func(p string) (fs.FileInfo, error) {
		if p == "/etc/shadow" {
			return os.Stat("/etc/hostname") // a regular file
		}
		return dirInfo{}, nil
	})
	require.NoError(t, err)
	first, last := d.rules[0].rule.String(), d.rules[len(d.rules)-1].rule.String()
	assert.Equal(t, "-a always,user -F uid=0", first, "the user list is listed first")
	assert.Equal(t, "-a always,exit -F arch=b64 -S kill -F key=kill", d.rules[1].rule.String(), "-A goes to the head of exit")
	assert.Equal(t, "-a never,exclude -F msgtype=CWD", last)
	assert.Equal(t, "audit.rules[2]", d.rules[len(d.rules)-2].reason)
	n := 0
	for _, w := range d.rules {
		if w.rule.String() == "-w /etc/shadow -p wa -k identity" {
			n++
		}
		assert.False(t, w.rule.Prepend, "wanted rules are normalized")
	}
	assert.Equal(t, 1, n)
	require.NotEmpty(t, d.findings)
	assert.Equal(t, "audit.duplicate-rule", d.findings[len(d.findings)-1].ID)
}
