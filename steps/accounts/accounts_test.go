package accounts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
)

// testdata/debian holds Debian bookworm's own files, copied from a machine with
// libpam-pwquality installed: pwquality.conf (libpwquality-common), login.defs (login) and
// the common-password stack pam-auth-update generated.
func debianFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "debian", name))
	require.NoError(t, err)
	return string(b)
}

const (
	passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
		"alice:x:1000:1000::/home/alice:/bin/bash\n"
	shadow = "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\nalice:!$y$j9T$abc:20000:0:99999:7:::\n"
	status = "Package: login\nStatus: install ok installed\nVersion: 1:4.13\n\n" +
		"Package: libpam-pwquality\nStatus: install ok installed\nArchitecture: amd64\n\n"
)

// newEnv is a temp root with Debian's files and clean account databases.
func newEnv(t testing.TB, edit func(*policy.Policy)) *engine.Env {
	t.Helper()
	p := policy.Default()
	if edit != nil {
		edit(p)
	}
	env := enginetest.Env(t, p, nil)
	enginetest.WriteFile(t, env, PwqualityFile, debianFile(t, "pwquality.conf"))
	enginetest.WriteFile(t, env, LoginDefsFile, debianFile(t, "login.defs"))
	enginetest.WriteFile(t, env, PAMPasswordFile, debianFile(t, "common-password"))
	enginetest.WriteFile(t, env, PasswdFile, passwd)
	enginetest.WriteFile(t, env, ShadowFile, shadow)
	enginetest.WriteFile(t, env, DpkgStatusFile, status)
	return env
}

func plan(t *testing.T, env *engine.Env) *engine.Plan {
	t.Helper()
	p, err := New().Plan(context.Background(), env)
	require.NoError(t, err)
	return p
}

func changes(p []*engine.Change) map[string][2]string {
	out := map[string][2]string{}
	for _, c := range p {
		out[c.Object] = [2]string{c.Before, c.After}
	}
	return out
}

func read(t *testing.T, env *engine.Env, name string) string {
	t.Helper()
	b, err := os.ReadFile(env.Root.Path(name))
	require.NoError(t, err)
	return string(b)
}

func TestPlanShowsEveryKeyBeforeAndAfter(t *testing.T) {
	env := newEnv(t, nil)
	p := plan(t, env)
	assert.Equal(t, map[string][2]string{
		PwqualityFile + ": minlen":               {"absent", "14"},
		PwqualityFile + ": dcredit":              {"absent", "-1"},
		PwqualityFile + ": ucredit":              {"absent", "-1"},
		PwqualityFile + ": lcredit":              {"absent", "-1"},
		PwqualityFile + ": ocredit":              {"absent", "-1"},
		PwqualityFile + ": maxrepeat":            {"absent", "3"},
		PwqualityFile + ": dictcheck":            {"absent", "1"},
		PwqualityFile + ": enforce_for_root":     {"absent", "present"},
		LoginDefsFile + ": ENCRYPT_METHOD":       {"SHA512", "YESCRYPT"},
		LoginDefsFile + ": YESCRYPT_COST_FACTOR": {"absent", "5"},
		LoginDefsFile + ": PASS_MAX_DAYS":        {"99999", "365"},
		LoginDefsFile + ": PASS_MIN_DAYS":        {"0", "1"},
		LoginDefsFile + ": UMASK":                {"022", "027"},
	}, changes(p.Changes))
	assert.Empty(t, p.Findings, "Debian's PAM stack calls pam_pwquality and the accounts are clean")

	first := p.Changes[0]
	assert.Equal(t, "accounts.pwquality.minlen", first.Reason)
	assert.Contains(t, first.Diff, "  # minlen = 8\n+ minlen = 14\n", "inserted after its documented default")
	for _, c := range p.Changes {
		if c.Object == LoginDefsFile+": ENCRYPT_METHOD" {
			assert.Contains(t, c.Diff, "- ENCRYPT_METHOD SHA512\n+ ENCRYPT_METHOD YESCRYPT\n")
		}
	}
}

// Every line of Debian's files that is not one of the policy's keys is kept, in order.
func TestApplyEditsOnlyThePolicyKeys(t *testing.T) {
	env := newEnv(t, nil)
	rep := enginetest.Converges(t, env, New())
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)

	pw := read(t, env, PwqualityFile)
	for _, l := range []string{"minlen = 14", "dcredit = -1", "ocredit = -1", "maxrepeat = 3", "dictcheck = 1", "enforce_for_root"} {
		assert.Contains(t, pw, "\n"+l+"\n")
	}
	assert.Equal(t, withoutLines(pw, "minlen", "dcredit", "ucredit", "lcredit", "ocredit", "maxrepeat", "dictcheck", "enforce_for_root"),
		debianFile(t, "pwquality.conf"), "only added lines")

	ld := read(t, env, LoginDefsFile)
	for _, l := range []string{"ENCRYPT_METHOD YESCRYPT", "YESCRYPT_COST_FACTOR\t\t5", "PASS_MAX_DAYS\t365", "PASS_MIN_DAYS\t1",
		"PASS_WARN_AGE\t7", "UMASK\t\t027"} {
		assert.Contains(t, ld, "\n"+l+"\n")
	}
	orig := debianFile(t, "login.defs")
	keys := []string{"ENCRYPT_METHOD", "YESCRYPT_COST_FACTOR", "PASS_MAX_DAYS", "PASS_MIN_DAYS", "UMASK"}
	assert.Equal(t, withoutLines(orig, keys...), withoutLines(ld, keys...))
	assert.Less(t, strings.Index(ld, "#YESCRYPT_COST_FACTOR 5"), strings.Index(ld, "YESCRYPT_COST_FACTOR\t\t5"))

	// The originals are in the run's backup directory.
	for name, want := range map[string]string{PwqualityFile: debianFile(t, "pwquality.conf"), LoginDefsFile: orig} {
		b, err := os.ReadFile(env.Root.Path(filepath.Join(env.Root.BackupDir(), name)))
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
	}
}

// withoutLines drops active lines of the given keys (both syntaxes).
func withoutLines(s string, keys ...string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		f := strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' || r == '\n' })
		drop := false
		for _, k := range keys {
			if len(f) > 0 && f[0] == k {
				drop = true
			}
		}
		if !drop {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func TestDryRunChangesNothing(t *testing.T) {
	env := newEnv(t, nil)
	rep := enginetest.DryRunChangesNothing(t, env, New(), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
	assert.Len(t, rep.Steps[0].Changes, 13)
}

func TestSHA512AndNoRootEnforcement(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) {
		p.Accounts.LoginDefs.EncryptMethod = "SHA512"
		p.Accounts.Pwquality.EnforceForRoot = false
		p.Accounts.Pwquality.Dictcheck = false
	})
	enginetest.WriteFile(t, env, PwqualityFile, debianFile(t, "pwquality.conf")+"enforce_for_root\n")
	rep := enginetest.Converges(t, env, New())
	got := changes(rep.Steps[0].Changes)
	assert.Equal(t, [2]string{"present", "absent"}, got[PwqualityFile+": enforce_for_root"])
	assert.Equal(t, [2]string{"absent", "0"}, got[PwqualityFile+": dictcheck"])
	assert.NotContains(t, got, LoginDefsFile+": ENCRYPT_METHOD", "already SHA512")

	pw := read(t, env, PwqualityFile)
	assert.NotContains(t, pw, "\nenforce_for_root\n")
	assert.Contains(t, pw, "# enforce_for_root\n", "the documentation stays")
	ld := read(t, env, LoginDefsFile)
	assert.Contains(t, ld, "#SHA_CRYPT_MIN_ROUNDS 5000\nSHA_CRYPT_MIN_ROUNDS\t\t65536\n")
	assert.Contains(t, ld, "#SHA_CRYPT_MAX_ROUNDS 5000\nSHA_CRYPT_MAX_ROUNDS\t\t65536\n")
	assert.NotContains(t, ld, "\nYESCRYPT_COST_FACTOR")
}

func TestMissingPwqualityConfIsCreated(t *testing.T) {
	env := newEnv(t, nil)
	require.NoError(t, os.Remove(env.Root.Path(PwqualityFile)))
	enginetest.Converges(t, env, New())
	assert.Equal(t, "minlen = 14\ndcredit = -1\nucredit = -1\nlcredit = -1\nocredit = -1\nmaxrepeat = 3\ndictcheck = 1\nenforce_for_root\n",
		read(t, env, PwqualityFile))
}

func findingIDs(p *engine.Plan) map[string][]string {
	out := map[string][]string{}
	for _, f := range p.Findings {
		out[f.ID] = append(out[f.ID], f.Object+" "+string(f.Severity))
	}
	return out
}

func TestEmptyPasswordAndExtraUID0AreCritical(t *testing.T) {
	env := newEnv(t, nil)
	enginetest.WriteFile(t, env, PasswdFile, passwd+"toor:x:0:0::/root:/bin/sh\n+::::::\nbob:x:1001:1001::/home/bob:/bin/sh\n")
	enginetest.WriteFile(t, env, ShadowFile, shadow+"toor:!:20000::::::\nbob::20000:0:99999:7:::\n")
	p := plan(t, env)
	assert.Equal(t, map[string][]string{
		"accounts.empty-password": {"account bob critical"},
		"accounts.extra-uid0":     {"account toor critical"},
	}, findingIDs(p))
	for _, f := range p.Findings {
		if f.ID == "accounts.empty-password" {
			assert.Contains(t, f.Message, "/etc/shadow line 5")
		}
	}
}

func TestPwqualityNotInUseIsAFinding(t *testing.T) {
	env := newEnv(t, nil)
	enginetest.WriteFile(t, env, DpkgStatusFile, "Package: login\nStatus: install ok installed\n\n"+
		"Package: libpam-pwquality\nStatus: deinstall ok config-files\n")
	stack := strings.ReplaceAll(debianFile(t, "common-password"), "pam_pwquality.so", "pam_cracklib.so")
	enginetest.WriteFile(t, env, PAMPasswordFile, stack)
	assert.Equal(t, map[string][]string{
		"accounts.pwquality-not-installed": {"package libpam-pwquality warning"},
		"accounts.pam-pwquality-missing":   {PAMPasswordFile + " warning"},
	}, findingIDs(plan(t, env)))
}

func TestPAMArgumentsThatOverrideThePolicy(t *testing.T) {
	env := newEnv(t, nil)
	enginetest.WriteFile(t, env, PAMPasswordFile, "# comment pam_pwquality.so minlen=1\n"+
		"password [success=ok default=die] /usr/lib/x86_64-linux-gnu/security/pam_pwquality.so retry=3 minlen=8 dcredit=-1 enforce_for_root\n")
	p := plan(t, env)
	require.Len(t, p.Findings, 1)
	assert.Equal(t, "accounts.pam-pwquality-args", p.Findings[0].ID)
	assert.Contains(t, p.Findings[0].Message, "minlen=8 (policy: 14)")
}

// A file changed between plan and apply (a package upgrade) is not overwritten with what
// was planned from the old content.
func TestFileChangedSincePlanIsNotOverwritten(t *testing.T) {
	env := newEnv(t, nil)
	s := New()
	p, err := s.Plan(context.Background(), env)
	require.NoError(t, err)
	enginetest.WriteFile(t, env, LoginDefsFile, "UMASK 077\n")
	err = s.Apply(context.Background(), env, p)
	require.ErrorContains(t, err, "/etc/login.defs changed since it was planned")
	assert.Equal(t, "UMASK 077\n", read(t, env, LoginDefsFile))
}
