package clamav

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// ubuntuAppArmor adds Ubuntu 26.04's clamd profile (testdata/apparmor: clamav-daemon
// 1.5.4+dfsg-0ubuntu0.26.04.1, unchanged) and the empty local override its postinst
// creates, with AppArmor on or off in the kernel.
func ubuntuAppArmor(t *testing.T, env *engine.Env, enabled string) {
	t.Helper()
	b, err := os.ReadFile("testdata/apparmor/usr.sbin.clamd")
	require.NoError(t, err)
	enginetest.WriteFile(t, env, ClamdProfile, string(b))
	enginetest.WriteFile(t, env, ClamdLocalProfile, "")
	if enabled != "" {
		enginetest.WriteFile(t, env, AppArmorEnabled, enabled+"\n")
	}
	if enabled == "Y" {
		// What the kernel lists once apparmor.service has loaded the profiles.
		enginetest.WriteFile(t, env, LoadedProfiles, "/usr/bin/man (enforce)\n/usr/sbin/clamd (enforce)\nman_filter (enforce)\n")
	}
}

func parserCalls(f *fakeFreshclam) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Name == "apparmor_parser" {
			out = append(out, c.String())
		}
	}
	return out
}

// The default on-access paths (/home, /tmp, /var/tmp, /srv, /opt) get read rules in the
// local override, the profile is reloaded once, and a second run changes nothing and
// reloads nothing. The administrator's own lines stay.
func TestAppArmorOverrideCoversOnAccessPaths(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	ubuntuAppArmor(t, env, "Y")
	enginetest.WriteFile(t, env, ClamdLocalProfile, "# site rule\n/data/mail/** r,\n")

	rep := enginetest.Converges(t, env, New(Options{}))
	assert.Contains(t, changeObjects(rep), "update "+ClamdLocalProfile)
	b, err := os.ReadFile(env.Root.Path(ClamdLocalProfile))
	require.NoError(t, err)
	local := string(b)
	assert.True(t, strings.HasPrefix(local, "# site rule\n/data/mail/** r,\n"), "the administrator's lines stay first: %s", local)
	for _, p := range []string{"/home", "/tmp", "/var/tmp", "/srv", "/opt"} {
		assert.Contains(t, local, `"`+p+`/" r,`+"\n")
		assert.Contains(t, local, `"`+p+`/**" r,`+"\n")
	}
	// VirusEvent: the shell in clamd's profile, harden in its own child profile.
	assert.Contains(t, local, "/{,usr/}bin/{,da,ba}sh ix,\n")
	assert.Contains(t, local, `"/usr/local/sbin/harden" Cx -> harden_virus_event,`)
	assert.Contains(t, local, "  deny /var/log/clamav/** w,", "clamd's inherited log is refused quietly")
	assert.Contains(t, local, `  "/var/lib/harden/spool/inbox/*" rw,`)
	assert.Equal(t, []string{"apparmor_parser -r -T -W " + ClamdProfile}, parserCalls(fake), "reloaded once, only when it changed")

	// The policy narrows the paths: harden's lines follow, the site's stay, one more reload.
	env.Policy.ClamAV.OnAccessPaths = []string{"/srv"}
	enginetest.Converges(t, env, New(Options{}))
	b, _ = os.ReadFile(env.Root.Path(ClamdLocalProfile))
	assert.Contains(t, string(b), "/data/mail/** r,")
	assert.Contains(t, string(b), `"/srv/**" r,`)
	assert.NotContains(t, string(b), `"/opt/**"`)
	assert.Len(t, parserCalls(fake), 2)
}

// A reload the kernel refuses fails the step and leaves the old file, so the next run tries
// again instead of trusting a file the kernel does not enforce.
func TestAppArmorReloadFailureKeepsTheOldFile(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	ubuntuAppArmor(t, env, "Y")
	fake.fn = func(_ context.Context, c command.Cmd) (command.Result, error) {
		if c.Name == "apparmor_parser" {
			return command.Result{ExitCode: 1}, errors.New("apparmor_parser: Unable to replace \"/usr/sbin/clamd\"")
		}
		return command.Result{}, nil
	}
	rep, _ := enginetest.Run(t, env, false, New(Options{}))
	require.Equal(t, engine.StatusFailed, rep.Steps[0].Status)
	assert.Contains(t, rep.Steps[0].Error, "reloading clamd's AppArmor profile")
	b, _ := os.ReadFile(env.Root.Path(ClamdLocalProfile))
	assert.Empty(t, string(b), "the old (empty) override is back")

	fake.fn = nil
	p, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Contains(t, planObjects(p), ClamdLocalProfile, "planned again")
}

// AppArmor off (or not in the kernel): clamd is unconfined. The override is still written
// (for the boot where AppArmor is on), nothing is reloaded, and a finding says so.
func TestAppArmorOffIsAFinding(t *testing.T) {
	for _, enabled := range []string{"N", ""} {
		env, fake := testEnv(t, nil, nil)
		ubuntuAppArmor(t, env, enabled)
		rep := enginetest.Converges(t, env, New(Options{}))
		assert.Empty(t, parserCalls(fake), enabled)
		var ids []string
		for _, f := range rep.Steps[0].Findings {
			ids = append(ids, f.ID)
		}
		assert.Contains(t, ids, "clamav.apparmor-off", enabled)
		b, _ := os.ReadFile(env.Root.Path(ClamdLocalProfile))
		assert.Contains(t, string(b), `"/srv/**" r,`)
	}
}

// Debian 12: clamav-daemon ships the profile and the kernel runs AppArmor, but without the
// apparmor package nothing loads it: clamd is unconfined, there is nothing to reload (and no
// apparmor_parser to reload with). Seen in the suite's Debian VM, where a reload failed.
func TestAppArmorProfileNotLoadedIsNotReloaded(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	ubuntuAppArmor(t, env, "Y")
	enginetest.WriteFile(t, env, LoadedProfiles, "/usr/bin/man (enforce)\n")
	rep := enginetest.Converges(t, env, New(Options{}))
	assert.Empty(t, parserCalls(fake))
	var msg string
	for _, f := range rep.Steps[0].Findings {
		if f.ID == "clamav.apparmor-off" {
			msg = f.Message
		}
	}
	assert.Contains(t, msg, "clamd's profile is not loaded")
	b, _ := os.ReadFile(env.Root.Path(ClamdLocalProfile))
	assert.Contains(t, string(b), `"/srv/**" r,`)
}

// No clamd profile (Debian without it, other systems): nothing to do, nothing said.
func TestNoClamdProfileNoOverride(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	enginetest.WriteFile(t, env, AppArmorEnabled, "Y\n")
	rep := enginetest.Converges(t, env, New(Options{}))
	assert.NoFileExists(t, env.Root.Path(ClamdLocalProfile))
	assert.Empty(t, parserCalls(fake))
	for _, f := range rep.Steps[0].Findings {
		assert.NotEqual(t, "clamav.apparmor-off", f.ID)
	}
}

// The real apparmor_parser compiles Ubuntu's clamd profile with harden's lines included
// (a path with glob characters among them, escaped), and its preprocessed output shows the
// rules inside the clamd profile.
func TestAppArmorParserAcceptsTheOverride(t *testing.T) {
	parser := need.Tool(t, "apparmor_parser")
	need.File(t, "/etc/apparmor.d/tunables/global", "AppArmor's abstractions and tunables (package apparmor)")
	env, _ := testEnv(t, nil, nil)
	ubuntuAppArmor(t, env, "")
	env.Policy.ClamAV.OnAccessPaths = append(env.Policy.ClamAV.OnAccessPaths, "/srv/odd*name[1]{a,b}@x")
	enginetest.Converges(t, env, New(Options{}))

	base := env.Root.Path("/etc/apparmor.d")
	args := []string{"-b", base, "-I", base, "-I", "/etc/apparmor.d", filepath.Join(base, "usr.sbin.clamd")}
	out, err := exec.Command(parser, append([]string{"-Q", "-K", "-T"}, args...)...).CombinedOutput()
	require.NoError(t, err, "apparmor_parser: %s", out)
	pre, err := exec.Command(parser, append([]string{"-p"}, args...)...).Output()
	require.NoError(t, err)
	profile := string(pre[strings.Index(string(pre), "/usr/sbin/clamd {"):])
	assert.Contains(t, profile, `"/srv/**" r,`)
	assert.Contains(t, profile, `"/srv/odd\*name\[1\]\{a,b\}\@x/**" r,`)
	assert.Contains(t, profile, "profile harden_virus_event {", "the child profile is inside clamd's")

	// A broken line is caught by the same parser: the test can fail.
	enginetest.WriteFile(t, env, ClamdLocalProfile, `"/srv/**" r`+"\n")
	out, err = exec.Command(parser, append([]string{"-Q", "-K", "-T"}, args...)...).CombinedOutput()
	assert.Error(t, err, "%s", out)
}

func changeObjects(rep *engine.Report) []string {
	var out []string
	for _, c := range rep.Steps[0].Changes {
		out = append(out, c.Action+" "+c.Object)
	}
	return out
}

func planObjects(p *engine.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Object)
	}
	return out
}

// Under --root (an image tree) the override is written for the image and this machine's
// kernel is left alone.
func TestAppArmorOfflineWritesOnly(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	ubuntuAppArmor(t, env, "Y")
	enginetest.Converges(t, env, New(Options{Offline: true}))
	assert.Empty(t, parserCalls(fake))
	b, _ := os.ReadFile(env.Root.Path(ClamdLocalProfile))
	assert.Contains(t, string(b), `"/opt/**" r,`)
}
