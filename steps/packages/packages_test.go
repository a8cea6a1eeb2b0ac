package packages

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/dpkg"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// testdata/status is part of a Debian bookworm machine's /var/lib/dpkg/status (36 real
// stanzas) plus telnet (on the default remove list), an i386 libc6 (multi-arch) and
// rsh-client with only its conffiles left.

type fakeDpkg struct {
	mu    sync.Mutex
	calls []command.Cmd
	fn    func(c command.Cmd) (command.Result, error)
}

func (f *fakeDpkg) Run(_ context.Context, c command.Cmd) (command.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.fn == nil {
		return command.Result{}, fmt.Errorf("fake dpkg: unexpected call %s", c)
	}
	return f.fn(c)
}

func fixture(t *testing.T) string {
	data, err := os.ReadFile("testdata/status")
	require.NoError(t, err)
	return string(data)
}

func testEnv(t *testing.T, edit func(p *policy.Policy)) (*engine.Env, *fakeDpkg) {
	t.Helper()
	p := policy.Default()
	if edit != nil {
		edit(p)
	}
	env := enginetest.Env(t, p, nil)
	enginetest.WriteFile(t, env, StatusPath, fixture(t))
	fake := &fakeDpkg{}
	env.Exec = fake
	return env, fake
}

// dropStanza removes a package from the fixture the way a successful purge does.
func dropStanza(t *testing.T, env *engine.Env, name, arch string) {
	t.Helper()
	data, err := env.Root.ReadFile(StatusPath)
	require.NoError(t, err)
	var keep []string
	for _, s := range strings.Split(string(data), "\n\n") {
		if strings.HasPrefix(s, "Package: "+name+"\n") && strings.Contains(s, "\nArchitecture: "+arch+"\n") {
			continue
		}
		keep = append(keep, s)
	}
	require.NoError(t, os.WriteFile(env.Root.Path(StatusPath), []byte(strings.Join(keep, "\n\n")), 0o644))
}

// setVersion rewrites (or adds) a package's version in the fixture.
func setVersion(t *testing.T, env *engine.Env, name, arch, version string) {
	t.Helper()
	data, err := env.Root.ReadFile(StatusPath)
	require.NoError(t, err)
	stanzas := strings.Split(strings.TrimRight(string(data), "\n"), "\n\n")
	for i, s := range stanzas {
		if strings.HasPrefix(s, "Package: "+name+"\n") && strings.Contains(s, "\nArchitecture: "+arch+"\n") {
			stanzas[i] = regexp.MustCompile(`(?m)^Version: .*$`).ReplaceAllString(s, "Version: "+version)
			require.NoError(t, os.WriteFile(env.Root.Path(StatusPath), []byte(strings.Join(stanzas, "\n\n")+"\n"), 0o644))
			return
		}
	}
	stanzas = append(stanzas, fmt.Sprintf("Package: %s\nStatus: install ok installed\nArchitecture: %s\nVersion: %s\nDescription: new", name, arch, version))
	require.NoError(t, os.WriteFile(env.Root.Path(StatusPath), []byte(strings.Join(stanzas, "\n\n")+"\n"), 0o644))
}

func TestPurgeRemoveList(t *testing.T) {
	env, fake := testEnv(t, nil)
	fake.fn = func(c command.Cmd) (command.Result, error) {
		dropStanza(t, env, "telnet", "all")
		return command.Result{Stdout: []byte("Removing telnet (0.17+2.4-2) ...\n")}, nil
	}
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotEmpty(t, plan.Changes)
	c := plan.Changes[0]
	assert.Equal(t, "purge package telnet:all: 0.17+2.4-2 -> purged", c.String())
	assert.Regexp(t, `^packages\.remove\[\d+\]$`, c.Reason)
	for _, c := range plan.Changes {
		assert.NotContains(t, c.Object, "rsh-client", "config-files only: nothing to purge")
	}

	enginetest.Converges(t, env, New(Options{}))
	require.Len(t, fake.calls, 1)
	call := fake.calls[0]
	assert.Equal(t, "dpkg", call.Name)
	assert.Equal(t, []string{"--root=" + env.Root.Dir(), "--purge", "telnet:all"}, call.Args)
	assert.Contains(t, call.Env, "DEBIAN_FRONTEND=noninteractive")
	assert.Equal(t, env.Policy.Packages.Timeout.D(), call.Timeout)

	var snap snapshot
	data, err := env.Root.ReadFile(SnapshotPath)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &snap))
	assert.NotContains(t, snap.Packages, "telnet:all", "snapshot saved after the purge")
	assert.Len(t, snap.Packages, 37)
}

func TestPurgeFailureFailsStepButSavesLog(t *testing.T) {
	env, fake := testEnv(t, nil)
	fake.fn = func(c command.Cmd) (command.Result, error) {
		res := command.Result{Stderr: []byte("dpkg: dependency problems prevent removal of telnet:\n keepme depends on telnet.\n"), ExitCode: 1}
		return res, &command.ExitError{Cmd: c, Result: res, Err: fmt.Errorf("exit status 1")}
	}
	rep, mem := enginetest.Run(t, env, false, New(Options{}))
	sr := rep.Steps[0]
	assert.Equal(t, engine.StatusFailed, sr.Status)
	assert.Contains(t, sr.Error, "keepme depends on telnet")
	for _, c := range sr.Changes {
		assert.Equal(t, c.Action != ActionPurge, c.Applied, c.String())
	}
	_, err := env.Root.Stat(SnapshotPath)
	require.NoError(t, err)
	for _, e := range mem.Entries {
		assert.NotEqual(t, ActionPurge, e.Fields["HARDEN_ACTION"], "a failed purge is not logged as done")
	}
}

// The real dpkg, in a root of its own: purges telnet, and refuses (removing nothing) when
// another package depends on it. The host's packages are never touched.
func TestRealDpkgPurgeInTempRoot(t *testing.T) {
	need.Tool(t, "dpkg")
	need.Root(t, "dpkg --root")
	for _, dependent := range []bool{false, true} {
		env, _ := testEnv(t, func(p *policy.Policy) { p.Packages.Remove = []string{"telnet"} })
		env.Exec = command.Exec{}
		status := "Package: telnet\nStatus: install ok installed\nArchitecture: all\nVersion: 0.17+2.4-2\nMaintainer: x <x@example.org>\nDescription: d\n\n" +
			"Package: keepme\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\nMaintainer: x <x@example.org>\nDescription: d\n"
		if dependent {
			status += "Depends: telnet\n"
		}
		enginetest.WriteFile(t, env, StatusPath, status)
		enginetest.WriteFile(t, env, "/var/lib/dpkg/available", "")
		enginetest.WriteFile(t, env, "/var/lib/dpkg/info/telnet.list", "/.\n/usr\n/usr/bin\n/usr/bin/telnet-fixture\n")
		enginetest.WriteFile(t, env, "/var/lib/dpkg/info/keepme.list", "/.\n")
		enginetest.WriteFile(t, env, "/usr/bin/telnet-fixture", "x")
		require.NoError(t, os.MkdirAll(env.Root.Path("/var/lib/dpkg/updates"), 0o755))
		rep, _ := enginetest.Run(t, env, false, New(Options{}))
		_, statErr := env.Root.Stat("/usr/bin/telnet-fixture")
		if dependent {
			assert.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
			assert.Contains(t, rep.Steps[0].Error, "keepme depends on telnet")
			assert.NoError(t, statErr, "nothing removed")
		} else {
			assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status, rep.Steps[0].Error)
			assert.True(t, os.IsNotExist(statErr))
		}
	}
}

func TestApprovedAudit(t *testing.T) {
	env, _ := testEnv(t, func(p *policy.Policy) { p.Packages.Remove = nil })
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Findings, "empty approved list: no audit")

	approvedFile := "# base system\nlib*\nclamav*   # antivirus\n\nopenssh-server\n"
	enginetest.WriteFile(t, env, "/etc/harden/approved-packages", approvedFile)
	env.Policy.Packages.Approved = []string{"bash", "coreutils", "libc6:i386"}
	env.Policy.Packages.ApprovedFile = "/etc/harden/approved-packages"
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.Len(t, plan.Findings, 1)
	f := plan.Findings[0]
	assert.Equal(t, "packages.unapproved", f.ID)
	pkgs, _ := dpkg.ParseStatus("status", []byte(fixture(t)))
	var want []string
	for _, p := range pkgs {
		if p.Present() && !regexp.MustCompile(`^(lib.*|clamav.*|openssh-server|bash|coreutils)$`).MatchString(p.Name) {
			want = append(want, p.Key())
		}
	}
	assert.Equal(t, fmt.Sprintf("%d installed package(s) not approved: %s", len(want), strings.Join(want, ", ")), f.Message)
	assert.NotContains(t, f.Message, "libc6")
	assert.Contains(t, f.Message, "telnet:all")

	// Over 50 names: the count stays exact, the list is cut.
	env.Policy.Packages.Approved = []string{"nothing-matches"}
	env.Policy.Packages.ApprovedFile = ""
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(plan.Findings[0].Message, "38 installed package(s) not approved: "))

	enginetest.WriteFile(t, env, "/etc/harden/approved-packages", "bash\nlib[c\n")
	env.Policy.Packages.ApprovedFile = "/etc/harden/approved-packages"
	_, err = New(Options{}).Plan(context.Background(), env)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/etc/harden/approved-packages:2: bad glob")

	env.Policy.Packages.ApprovedFile = "/etc/harden/missing"
	_, err = New(Options{}).Plan(context.Background(), env)
	assert.ErrorContains(t, err, "packages.approved_file")
}

func TestUpdateLog(t *testing.T) {
	env, _ := testEnv(t, func(p *policy.Policy) { p.Packages.Remove = nil })
	enginetest.WriteFile(t, env, ImageStampPath, "2026-11-01T10:00:00Z abc123\n")

	// First run: a baseline, not 38 "installed" entries.
	rep := enginetest.Converges(t, env, New(Options{}))
	require.Len(t, rep.Steps[0].Changes, 1)
	assert.Equal(t, "create /var/lib/harden/packages.json: (none) -> 38 packages, image 2026-11-01T10:00:00Z abc123", rep.Steps[0].Changes[0].String())

	// Since then: openssl upgraded, bash downgraded, curl installed, sudo removed, new image.
	setVersion(t, env, "openssl", "amd64", "3.0.99-1~deb12u1")
	setVersion(t, env, "bash", "amd64", "5.0-1")
	setVersion(t, env, "curl", "amd64", "7.88.1-10+deb12u14")
	dropStanza(t, env, "tar", "amd64")
	enginetest.WriteFile(t, env, ImageStampPath, "2026-11-15T10:00:00Z def456\n")

	dry := enginetest.DryRunChangesNothing(t, env, New(Options{}), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	assert.Len(t, dry.Steps[0].Changes, 5)

	rep, mem := enginetest.Run(t, env, false, New(Options{}))
	require.Equal(t, engine.StatusChanged, rep.Steps[0].Status, rep.Steps[0].Error)
	var got []string
	for _, e := range mem.Entries {
		if e.Fields["HARDEN_STEP"] == "packages" && strings.HasPrefix(e.Fields["HARDEN_OBJECT"], "package ") {
			got = append(got, fmt.Sprintf("%s %s %s>%s", e.Fields["HARDEN_ACTION"], e.Fields["HARDEN_OBJECT"], e.Fields["HARDEN_BEFORE"], e.Fields["HARDEN_AFTER"]))
		}
	}
	tarVersion := versionIn(t, fixture(t), "tar")
	bashVersion := versionIn(t, fixture(t), "bash")
	opensslVersion := versionIn(t, fixture(t), "openssl")
	assert.Equal(t, []string{
		"downgraded package bash:amd64 " + bashVersion + ">5.0-1",
		"installed package curl:amd64 >7.88.1-10+deb12u14",
		"upgraded package openssl:amd64 " + opensslVersion + ">3.0.99-1~deb12u1",
		"removed package tar:amd64 " + tarVersion + ">",
	}, got)
	snap := rep.Steps[0].Changes[len(rep.Steps[0].Changes)-1]
	assert.Equal(t, "update /var/lib/harden/packages.json: 38 packages, image 2026-11-01T10:00:00Z abc123 -> 38 packages, image 2026-11-15T10:00:00Z def456", snap.String())
	assert.Contains(t, snap.Diff, "installed curl:amd64 (none) -> 7.88.1-10+deb12u14\n")

	// Converged: nothing more to log.
	enginetest.Converges(t, env, New(Options{}))
}

func versionIn(t *testing.T, status, name string) string {
	m := regexp.MustCompile(`(?m)^Package: ` + regexp.QuoteMeta(name) + `\n(?:[^\n]+\n)*?Version: (\S+)`).FindStringSubmatch(status)
	require.NotNil(t, m, name)
	return m[1]
}

func TestDryRunChangesNothing(t *testing.T) {
	env, fake := testEnv(t, nil)
	rep := enginetest.DryRunChangesNothing(t, env, New(Options{}), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	assert.NotEmpty(t, rep.Steps[0].Changes)
	assert.Empty(t, fake.calls)
}

func TestNoDpkg(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Changes)
	assert.Equal(t, "packages.dpkg-missing", plan.Findings[0].ID)
}

// BenchmarkParseStatus parses this machine's dpkg database (or the fixture), what every run
// costs; compare with `dpkg-query -W` (bench/ prints the ratio).
func BenchmarkParseStatus(b *testing.B) {
	data, err := os.ReadFile(StatusPath)
	if err != nil {
		data, err = os.ReadFile("testdata/status")
		require.NoError(b, err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := dpkg.ParseStatus(StatusPath, data); err != nil {
			b.Fatal(err)
		}
	}
}
