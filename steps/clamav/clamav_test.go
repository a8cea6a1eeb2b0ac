package clamav

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// The fixtures under testdata are Debian bookworm's clamd.conf and freshclam.conf exactly
// as clamav-daemon's and clamav-freshclam's postinst write them.

// fakeFreshclam stands in for freshclam: it records calls and runs fn.
type fakeFreshclam struct {
	mu    sync.Mutex
	calls []command.Cmd
	fn    func(ctx context.Context, c command.Cmd) (command.Result, error)
}

func (f *fakeFreshclam) Run(ctx context.Context, c command.Cmd) (command.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.fn == nil {
		return command.Result{}, nil
	}
	return f.fn(ctx, c)
}

func (f *fakeFreshclam) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// testEnv is a machine with Debian's ClamAV files, fresh signatures, enough memory and
// inotify watches, and freshclam faked by a runner that does nothing.
func testEnv(t *testing.T, p *policy.Policy, vars map[string]string) (*engine.Env, *fakeFreshclam) {
	t.Helper()
	env := enginetest.Env(t, p, vars)
	for _, name := range []string{"clamd.conf", "freshclam.conf"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		enginetest.WriteFile(t, env, "/etc/clamav/"+name, string(data))
	}
	require.NoError(t, os.Chmod(env.Root.Path(FreshclamConf), 0o444)) // as Debian ships it
	enginetest.WriteFile(t, env, BootIDPath, "0b1c2d3e-0000-4000-8000-000000000001\n")
	enginetest.WriteFile(t, env, "/proc/meminfo", "MemTotal:        4028560 kB\nMemFree:  100 kB\n")
	enginetest.WriteFile(t, env, InotifyWatchesPath, "1048576\n")
	// clamd's user, as this test's own uid so the temp dir's chown works without root too.
	enginetest.WriteFile(t, env, "/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nclamav:x:%d:%d::/var/lib/clamav:/bin/false\n", os.Getuid(), os.Getgid()))
	writeDB(t, env, "main.cvd", enginetest.Now.Add(-90*24*time.Hour), 62)
	writeDB(t, env, "daily.cld", enginetest.Now.Add(-6*time.Hour), 27100)
	fake := &fakeFreshclam{}
	env.Exec = fake
	return env, fake
}

func writeDB(t *testing.T, env *engine.Env, name string, built time.Time, version int) {
	t.Helper()
	enginetest.WriteFile(t, env, DefaultDBDir+"/"+name, string(SyntheticHeader(built, version, 1000))+"body")
}

func testPolicy(edit func(p *policy.Policy)) *policy.Policy {
	p := policy.Default()
	if edit != nil {
		edit(p)
	}
	return p
}

func readConf(t *testing.T, env *engine.Env, name string) *kvconf.File {
	t.Helper()
	data, err := env.Root.ReadFile(name)
	require.NoError(t, err)
	return kvconf.Parse(data, kvconf.Space)
}

func TestSettingsWrittenKeyByKey(t *testing.T) {
	p := testPolicy(func(p *policy.Policy) {
		p.ClamAV.ExcludePaths = []string{"/srv/cache/"}
		p.ClamAV.Prevention = true
		p.ClamAV.Freshclam.Mirror = "https://clamav-mirror.internal/"
	})
	env, _ := testEnv(t, p, nil)
	origClamd := readConf(t, env, ClamdConf)
	origFresh := readConf(t, env, FreshclamConf)

	rep := enginetest.Converges(t, env, New(Options{}))
	objects := []string{}
	for _, c := range rep.Steps[0].Changes {
		objects = append(objects, c.Object)
	}
	assert.Equal(t, []string{ClamdConf, FreshclamConf, QuarantineDir, ClamdTempDir}, objects,
		"the signature update is the freshclam step's (it needs the network)")
	// clamonacc will not watch clamd's temporary directory, which defaults to the watched /tmp.
	assert.Equal(t, []string{ClamdTempDir}, readConf(t, env, ClamdConf).Get("TemporaryDirectory"))
	tmp, err := os.Stat(env.Root.Path(ClamdTempDir))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, tmp.Mode())
	// Debian's clamonacc unit runs --move=/root/quarantine and exits when it is missing.
	fi, err := os.Stat(env.Root.Path(QuarantineDir))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, fi.Mode())

	clamd := readConf(t, env, ClamdConf)
	assert.Equal(t, []string{"/home", "/tmp", "/var/tmp", "/srv", "/opt"}, clamd.Get("OnAccessIncludePath"))
	assert.Equal(t, []string{"/srv/cache"}, clamd.Get("OnAccessExcludePath"))
	assert.Equal(t, []string{"clamav"}, clamd.Get("OnAccessExcludeUname"))
	assert.Equal(t, []string{"yes"}, clamd.Get("OnAccessPrevention"))
	assert.Equal(t, []string{"yes"}, clamd.Get("OnAccessExtraScanning"))
	assert.Equal(t, []string{"/usr/local/sbin/harden alert virus"}, clamd.Get("VirusEvent"))
	owned := map[string]bool{"OnAccessIncludePath": true, "OnAccessExcludePath": true, "OnAccessExcludeUname": true,
		"OnAccessPrevention": true, "OnAccessExtraScanning": true, "VirusEvent": true, "PrivateMirror": true,
		"TemporaryDirectory": true}
	for _, k := range origClamd.Keys() {
		assert.Equal(t, origClamd.Get(k), clamd.Get(k), "clamd.conf key %s kept", k)
	}
	data, _ := env.Root.ReadFile(ClamdConf)
	assert.True(t, strings.HasPrefix(string(data), "#Automatically Generated by clamav-daemon postinst\n"), "comments kept")
	assert.Contains(t, string(data), "# TemporaryDirectory is not set to its default /tmp here")
	for _, k := range clamd.Keys() {
		if origClamd.Get(k) == nil {
			assert.True(t, owned[k], "unexpected key %s added", k)
		}
	}

	fresh := readConf(t, env, FreshclamConf)
	assert.Equal(t, []string{"https://clamav-mirror.internal"}, fresh.Get("PrivateMirror"))
	for _, k := range origFresh.Keys() {
		assert.Equal(t, origFresh.Get(k), fresh.Get(k), "freshclam.conf key %s kept", k)
	}
	fi, err = env.Root.Stat(FreshclamConf)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o444), fi.Mode().Perm(), "Debian's mode kept")

	var units []string
	for _, r := range env.Restarts.Pending() {
		units = append(units, r.Unit)
	}
	assert.Equal(t, []string{"clamav-clamonacc.service", "clamav-daemon.service"}, units)
}

// Prevention off and no mirror: booleans Debian writes as true/false compare by meaning,
// and removing the mirror from the policy removes harden's PrivateMirror line.
func TestPolicyChangesAreUndone(t *testing.T) {
	env, _ := testEnv(t, testPolicy(func(p *policy.Policy) {
		p.ClamAV.Freshclam.Mirror = "http://mirror.internal"
		p.ClamAV.ExcludePaths = []string{"/home/build"}
	}), nil)
	enginetest.Converges(t, env, New(Options{}))
	env.Policy = testPolicy(nil)
	enginetest.WriteFile(t, env, BootIDPath, "second-boot\n")
	enginetest.Converges(t, env, New(Options{}))
	assert.Nil(t, readConf(t, env, FreshclamConf).Get("PrivateMirror"))
	assert.Nil(t, readConf(t, env, ClamdConf).Get("OnAccessExcludePath"))

	// Someone sets OnAccessExtraScanning to "true": same meaning, no rewrite.
	data, _ := env.Root.ReadFile(ClamdConf)
	f := kvconf.Parse(data, kvconf.Space)
	_, err := f.Set("OnAccessExtraScanning", "true")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(env.Root.Path(ClamdConf), f.Bytes(), 0o644))
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Changes)
}

func TestDryRunChangesNothing(t *testing.T) {
	env, fake := testEnv(t, nil, nil)
	rep := enginetest.DryRunChangesNothing(t, env, New(Options{}), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	assert.NotEmpty(t, rep.Steps[0].Changes)
	assert.Zero(t, fake.count(), "dry-run ran freshclam")
	assert.Empty(t, env.Restarts.Pending())
}

func TestRefusedOnAccessPaths(t *testing.T) {
	for _, bad := range []string{"/", "/etc", "/usr/local", "/proc", "/sys/fs", "relative", "/home/with space"} {
		env, _ := testEnv(t, testPolicy(func(p *policy.Policy) { p.ClamAV.OnAccessPaths = []string{"/home", bad} }), nil)
		before := enginetest.TreeDigest(t, env.Root.Dir())
		_, err := New(Options{}).Plan(context.Background(), env)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "clamav.on_access_paths[1]")
		assert.Equal(t, before, enginetest.TreeDigest(t, env.Root.Dir()))

		// The policy loader refuses the same, with file:line.
		_, perr := policy.Parse("policy.yaml", []byte("version: 1\nclamav:\n  on_access_paths: [/home, \""+bad+"\"]\n"), nil)
		require.Error(t, perr, bad)
		assert.Contains(t, perr.Error(), "policy.yaml:3")
		assert.Contains(t, perr.Error(), "clamav.on_access_paths[1]")
	}
}

func TestNotInstalled(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Changes)
	assert.Equal(t, []string{"clamav.not-installed", "clamav.freshclam-not-installed", "clamav.database-missing"}, ids(plan),
		"no signatures is said once")

	env.Policy.ClamAV.Enabled = false
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Empty(t, plan.Changes)
	assert.Empty(t, plan.Findings)
}

func ids(p *engine.Plan) []string {
	var out []string
	for _, f := range p.Findings {
		out = append(out, f.ID)
	}
	return out
}

func finding(p *engine.Plan, id string) *engine.Finding {
	for _, f := range p.Findings {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// clamconf parses clamd.conf and freshclam.conf with ClamAV's own option parser: the files
// harden writes must have no unknown option and carry the values harden meant.
func TestClamconfAcceptsResult(t *testing.T) {
	clamconf := need.Tool(t, "clamconf")
	env, _ := testEnv(t, testPolicy(func(p *policy.Policy) {
		p.ClamAV.ExcludePaths = []string{"/srv/cache"}
		p.ClamAV.Freshclam.Mirror = "http://127.0.0.1:8080"
	}), nil)
	enginetest.Converges(t, env, New(Options{}))
	out, err := exec.Command(clamconf, "-c", env.Root.Path("/etc/clamav")).CombinedOutput()
	require.NoError(t, err, string(out))
	text := string(out)
	assert.NotContains(t, text, "ERROR")
	for _, want := range []string{
		`OnAccessIncludePath = "/home", "/tmp", "/var/tmp", "/srv", "/opt"`,
		`OnAccessExcludePath = "/srv/cache"`,
		`OnAccessExcludeUname = "clamav"`,
		`OnAccessPrevention disabled`,
		`OnAccessExtraScanning = "yes"`,
		`VirusEvent = "/usr/local/sbin/harden alert virus"`,
		`PrivateMirror = "http://127.0.0.1:8080"`,
	} {
		assert.Contains(t, text, want)
	}
	// A control: clamconf does report a bad file (so the check above can fail).
	enginetest.WriteFile(t, env, ClamdConf, "OnAccessIncludePath /home\nNoSuchOption 1\n")
	out, _ = exec.Command(clamconf, "-c", env.Root.Path("/etc/clamav")).CombinedOutput()
	assert.Regexp(t, regexp.MustCompile(`ERROR: Parse error at .*clamd.conf:2: Unknown option NoSuchOption`), string(out))
}

func TestStampCleanup(t *testing.T) {
	env, _ := testEnv(t, nil, nil)
	enginetest.WriteFile(t, env, "/var/lib/clamav/freshclam.dat", "FreshClamData...")
	enginetest.WriteFile(t, env, StatePath, "{}")
	removed, err := StampCleanup(env.Root)
	require.NoError(t, err)
	assert.Equal(t, []string{"/var/lib/clamav/freshclam.dat", StatePath}, removed)
	_, err = env.Root.Stat("/var/lib/clamav/freshclam.dat")
	assert.True(t, os.IsNotExist(err))
	assert.NotContains(t, enginetestTree(t, env), "freshclam.dat", "no backup of freshclam.dat left to bake in")
	removed, err = StampCleanup(env.Root)
	require.NoError(t, err)
	assert.Empty(t, removed)
}

// An image whose database directory is a link to the build host's: stamp removes the tree's
// freshclam.dat (none there), never the build host's.
func TestStampCleanupStaysInsideTheTree(t *testing.T) {
	env, _ := testEnv(t, nil, nil)
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "freshclam.dat"), []byte("host"), 0o644))
	require.NoError(t, os.RemoveAll(env.Root.Path(DefaultDBDir)))
	require.NoError(t, os.MkdirAll(env.Root.Path("/var/lib"), 0o755))
	require.NoError(t, os.Symlink(host, env.Root.Path(DefaultDBDir)))
	removed, err := StampCleanup(env.Root)
	require.NoError(t, err)
	assert.Empty(t, removed)
	_, err = os.Stat(filepath.Join(host, "freshclam.dat"))
	assert.NoError(t, err, "the build host's freshclam.dat was removed")
}

func enginetestTree(t *testing.T, env *engine.Env) string {
	var names []string
	require.NoError(t, filepath.Walk(env.Root.Dir(), func(p string, _ os.FileInfo, err error) error {
		names = append(names, p)
		return err
	}))
	return strings.Join(names, "\n")
}

func TestMemoryFinding(t *testing.T) {
	env, _ := testEnv(t, nil, map[string]string{"FLY_VM_MEMORY_MB": "1024"})
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	f := finding(plan, "clamav.memory-too-small")
	require.NotNil(t, f)
	assert.Equal(t, engine.Critical, f.Severity)
	assert.Contains(t, f.Message, "1024 MiB")

	env, _ = testEnv(t, nil, nil) // 4028560 kB in /proc/meminfo: enough
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Nil(t, finding(plan, "clamav.memory-too-small"))
	enginetest.WriteFile(t, env, "/proc/meminfo", "MemTotal:         985000 kB\n")
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotNil(t, finding(plan, "clamav.memory-too-small"))
	assert.Equal(t, "/proc/meminfo", finding(plan, "clamav.memory-too-small").Object)
}

// The kernel step owns fs.inotify.max_user_watches (it persists and applies it when
// on-access scanning is on): this step never plans it, so a plan lists it once. It reports a
// policy that sets it too low for clamonacc.
func TestInotifyLimitIsTheKernelSteps(t *testing.T) {
	env, _ := testEnv(t, nil, nil)
	enginetest.WriteFile(t, env, InotifyWatchesPath, "15774\n")
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	for _, c := range plan.Changes {
		assert.NotContains(t, c.Object, "inotify")
	}
	assert.Nil(t, finding(plan, "clamav.inotify-watches-low"))

	env.Policy.Kernel.Sysctl = map[string]string{"fs.inotify.max_user_watches": "8192"}
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	require.NotNil(t, finding(plan, "clamav.inotify-watches-low"))
	env.Policy.Kernel.Sysctl = map[string]string{"fs.inotify.max_user_watches": "1048576"}
	plan, err = New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Nil(t, finding(plan, "clamav.inotify-watches-low"))
}

// BenchmarkConvergedPlan is the clamav step's cost on a converged machine at every boot
// after the first run of that boot: two small files parsed, two headers read.
func BenchmarkConvergedPlan(b *testing.B) {
	env := enginetest.Env(b, nil, nil)
	for _, name := range []string{"clamd.conf", "freshclam.conf"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(b, err)
		enginetest.WriteFile(b, env, "/etc/clamav/"+name, string(data))
	}
	enginetest.WriteFile(b, env, InotifyWatchesPath, "1048576\n")
	enginetest.WriteFile(b, env, BootIDPath, "boot\n")
	enginetest.WriteFile(b, env, "/proc/meminfo", "MemTotal:        4028560 kB\nMemFree:  100 kB\n")
	// clamd's user, as in testEnv: the plan looks it up.
	enginetest.WriteFile(b, env, "/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nclamav:x:%d:%d::/var/lib/clamav:/bin/false\n", os.Getuid(), os.Getgid()))
	for _, db := range []string{"main.cvd", "daily.cld"} {
		enginetest.WriteFile(b, env, DefaultDBDir+"/"+db, string(SyntheticHeader(enginetest.Now.Add(-time.Hour), 1, 1)))
	}
	env.Exec = &fakeFreshclam{}
	enginetest.Run(b, env, false, New(Options{}))
	b.ResetTimer()
	for b.Loop() {
		p, err := New(Options{}).Plan(context.Background(), env)
		if err != nil {
			b.Fatalf("plan: %v", err)
		}
		if len(p.Changes) > 0 {
			b.Fatalf("not converged: %v", p.Changes)
		}
	}
}

// namedNoop is a step that changes nothing, standing in for the services step.
type namedNoop string

func (n namedNoop) Name() string                                          { return string(n) }
func (namedNoop) Plan(context.Context, *engine.Env) (*engine.Plan, error) { return &engine.Plan{}, nil }
func (namedNoop) Apply(context.Context, *engine.Env, *engine.Plan) error  { return nil }

// clamd's restart is the services step's: a run without it (`--only clamav`) says that a
// running clamd keeps its old settings; a run with it does not.
func TestRestartNotRunSaidWithoutServicesStep(t *testing.T) {
	findings := func(steps ...engine.Step) []string {
		env, _ := testEnv(t, nil, nil)
		rep, _ := enginetest.Run(t, env, true, steps...)
		var ids []string
		for _, f := range rep.Steps[0].Findings {
			ids = append(ids, f.ID)
		}
		return ids
	}
	assert.Contains(t, findings(New(Options{})), "clamav.restart-not-run")
	assert.NotContains(t, findings(New(Options{}), namedNoop("services")), "clamav.restart-not-run")
}
