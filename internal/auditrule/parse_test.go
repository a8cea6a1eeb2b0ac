package auditrule_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hostless() *auditrule.Parser {
	return &auditrule.Parser{
		Machine:     auditrule.MachineX86_64,
		IsDir:       func(string) bool { return false },
		LookupUser:  func(string) (uint32, error) { return 0, errors.New("no users here") },
		LookupGroup: func(string) (uint32, error) { return 0, errors.New("no groups here") },
	}
}

// A bad line is reported with its file, line and the offending word, and a file with an
// error yields no rules at all (nothing half-loaded).
func TestMalformedRulesNameLineAndToken(t *testing.T) {
	cases := []struct{ line, token, msg string }{
		{"-a always,exit -F arch=b64 -S notasyscall -k x", "notasyscall", `unknown syscall "notasyscall"`},
		{"-a always,exit -F auidd>=1000", "auidd>=1000", `unknown field "auidd"`},
		{"-a always,exot -S all", "always,exot", "one list"},
		{"-a always,exit -F exit=-ENOTANERRNO", "exit=-ENOTANERRNO", `unknown errno name "ENOTANERRNO"`},
		{"-w etc/shadow -p wa", "etc/shadow", "must start with /"},
		{"-w /etc/shadow -p wz", "wz", `'z' is not one of r, w, x, a`},
		{"-a always,exit -F uid=nosuchuser -S all", "uid=nosuchuser", `unknown user "nosuchuser"`},
		{"-a always,exit -F arch=b64 -S open -C uid!=bogus", "uid!=bogus", `unknown field "bogus"`},
		{"-a always,exit -F arch=b64 -S open -k a -F key=" + strings.Repeat("k", 300), "key=" + strings.Repeat("k", 300), "longer than"},
		{"-e 3", "3", "must be 0, 1 or 2"},
		{"-w /etc/shadow -p wa # comment", "#", "comment after a rule"},
		{"-S open", "-S", "needs a list"},
		{"-a always,exit -F a0=12junk", "a0=12junk", "not a number"},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			text := "## header\n-w /etc/passwd -p wa -k identity\n" + c.line + "\n-w /etc/group -p wa\n"
			f, err := hostless().ParseString("site.rules", text)
			require.Error(t, err)
			assert.Nil(t, f, "a file with an error yields nothing")
			var pe *auditrule.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "site.rules", pe.File)
			assert.Equal(t, 3, pe.Line)
			assert.Equal(t, c.token, pe.Token)
			assert.Contains(t, err.Error(), "site.rules: line 3: ")
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}

func TestControlsAndRulesKeepFileOrder(t *testing.T) {
	f, err := hostless().ParseString("x.rules", "-D\n-b 8192\n--backlog_wait_time 60000\n-f 1\n\n# c\n-a always,exit -F arch=b64 -S execve -k exec\n-r 100\n-e 2\n")
	require.NoError(t, err)
	require.Len(t, f.Rules, 1)
	assert.Equal(t, 7, f.Rules[0].Line)
	var kinds []auditrule.ControlKind
	for _, c := range f.Controls {
		kinds = append(kinds, c.Kind)
	}
	assert.Equal(t, []auditrule.ControlKind{auditrule.DeleteAll, auditrule.SetBacklogLimit, auditrule.SetBacklogWait,
		auditrule.SetFailure, auditrule.SetRateLimit, auditrule.SetEnabled}, kinds)
	assert.Equal(t, uint32(2), f.Controls[len(f.Controls)-1].Value)
}

// FileText is lossless where auditctl -l text is not: a directory watch stays dir=, perm
// before path stays in place, and a space in a path is escaped as auditctl reads it.
func TestFileTextReadsBackExactly(t *testing.T) {
	for _, line := range []string{
		"-a always,exit -F dir=/etc/sudoers.d/ -F perm=wa -F key=sudoers",
		"-a always,exit -F perm=x -F path=/usr/bin/sudo -F key=priv",
		`-a always,exit -F path=/tmp/a\ b -F perm=wa -F key=sp\ ace`,
		`-a always,exit -F path=/tmp/back\\slash -F perm=r`,
		"-a always,exit -F arch=b32 -S setuid32,chown -F auid>=1000 -F auid!=-1 -k a -k b",
	} {
		r, err := hostless().ParseRule(line)
		require.NoError(t, err, line)
		back, err := hostless().ParseRule(r.FileText())
		require.NoError(t, err, r.FileText())
		assert.True(t, back.Equal(r), "%q -> %q", line, r.FileText())
	}
}

// FuzzParse: the parser never panics, and whatever it accepts encodes, decodes to the same
// rule and reads back from its file text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"-w /etc/shadow -p wa -k identity",
		"-a always,exit -F arch=b64 -S execve -C uid!=euid -F euid=0 -k priv_esc",
		"-a never,exclude -F msgtype=CWD",
		"-A exit,always -F arch=b32 -S all -F exit=-EPERM -F a1&0x3",
		"-a always,user -F uid=0 -F subj_type=x_t",
		`-a always,exit -F path=/tmp/a\ b -F perm=rwxa`,
		"-e 2", "--backlog_wait_time 10", "-D",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := hostless()
		r, err := p.ParseRule(line)
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil {
			return // too many fields: refused before the kernel
		}
		dec, err := auditrule.Unmarshal(b)
		require.NoError(t, err)
		require.True(t, dec.Equal(r))
		_ = dec.String() // auditctl -l text: must not panic
		back, err := p.ParseRule(dec.FileText())
		require.NoError(t, err, "file text %q of %q", dec.FileText(), line)
		require.True(t, back.Equal(dec), "%q -> %q", line, dec.FileText())
	})
}
