package boot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/internal/testutil/syncbuf"
	"github.com/harden-dev/harden/steps/clamav"
	"github.com/harden-dev/harden/steps/firewall"
)

// The helpers in these tests are this test binary itself, run under the name of the program
// it stands for (clamd, clamonacc, ...): real processes that the supervisor starts, signals,
// restarts and reaps, doing the one thing harden boot depends on (clamd answers PING on its
// socket, freshclam writes signatures). The real daemons are proved in the VM suite.
const fakeRootEnv = "HARDEN_BOOT_FAKE_ROOT"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		printProbe()
		os.Exit(0)
	}
	if root := os.Getenv(fakeRootEnv); root != "" {
		if role := filepath.Base(os.Args[0]); role != "boot.test" {
			os.Exit(fake(role, root))
		}
	}
	os.Exit(m.Run())
}

// fake is one helper's stand-in. It records its start in ROOT/fake/ROLE.starts.
func fake(role, root string) int {
	f, _ := os.OpenFile(filepath.Join(root, "fake", role+".starts"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), strings.Join(os.Args[1:], " "))
	f.Close()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch role {
	case "freshclam":
		// Whether harden boot holds the signature download's lock while this runs.
		lock := "free"
		if f, err := os.Open(filepath.Join(root, clamav.DownloadLockPath)); err == nil {
			if errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK) {
				lock = "held"
			}
			f.Close()
		}
		_ = os.WriteFile(filepath.Join(root, "fake", "freshclam.lock"), []byte(lock), 0o644)
		time.Sleep(300 * time.Millisecond)
		_ = os.WriteFile(filepath.Join(root, "var/lib/clamav/daily.cld"), []byte("signatures"), 0o644)
		fmt.Println("daily.cld updated (version: 27104)")
		return 0
	case "harden":
		// harden watch writes journal-shaped records: they must pass through unwrapped.
		fmt.Fprintf(os.Stderr, `{"MESSAGE":"watch: started, records to %s","PRIORITY":"6","SYSLOG_IDENTIFIER":"harden"}`+"\n",
			os.Getenv(changelog.RecordsEnv))
	case "clamd":
		if _, err := os.Stat(filepath.Join(root, "var/lib/clamav/daily.cld")); err != nil {
			fmt.Fprintln(os.Stderr, "fake clamd: no signatures") // as the real one, it will not run
			return 1
		}
		sock := filepath.Join(root, "run/clamav/clamd.ctl")
		_ = os.Remove(sock) // clamd's FixStaleSocket: a killed clamd leaves its socket behind
		ln, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake clamd:", err)
			return 1
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 16)
				n, _ := c.Read(buf)
				if string(buf[:n]) == "zPING\x00" {
					_, _ = c.Write([]byte("PONG\x00"))
				}
				c.Close()
			}
		}()
	}
	fmt.Println(role + " running")
	<-term
	return 0
}

// testBoot is one harden boot over a temporary root.
type testBoot struct {
	t    *testing.T
	root string
	rec  *recLines
	cfg  Config
	// ran records the steps that ran, by name.
	ran *sync.Map
}

func newTestBoot(t *testing.T, app ...string) *testBoot {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"fake", "etc/clamav", "var/lib/clamav", "run/clamav", "bin"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	write(t, root, "etc/passwd", fmt.Sprintf("root:x:0:0::/root:/bin/sh\nclamav:x:%d:%d::/var/lib/clamav:/bin/false\n", os.Getuid(), os.Getgid()))
	write(t, root, "etc/clamav/clamd.conf", "User clamav\nLocalSocket /run/clamav/clamd.ctl\nDatabaseDirectory /var/lib/clamav\n")
	self, err := os.Executable()
	require.NoError(t, err)
	progs := Programs{}
	for _, name := range []string{"harden", "auditd", "freshclam", "clamd", "clamonacc", "sshd"} {
		link := filepath.Join(root, "bin", name)
		require.NoError(t, os.Symlink(self, link))
		switch name {
		case "harden":
			progs.Harden = link
		case "auditd":
			progs.Auditd = link
		case "freshclam":
			progs.Freshclam = link
		case "clamd":
			progs.Clamd = link
		case "clamonacc":
			progs.Clamonacc = link
		case "sshd":
			progs.SSHD = link
		}
	}
	tb := &testBoot{t: t, root: root, rec: &recLines{}, ran: &sync.Map{}}
	tb.cfg = Config{
		App: app, Root: root, Records: tb.rec, Version: "test",
		Environ:  append(os.Environ(), fakeRootEnv+"="+root),
		Getenv:   func(string) string { return "" },
		Programs: progs,
		Probe:    func(context.Context) Features { return allFeatures() },
		Steps:    tb.steps(nil),
	}
	return tb
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func allFeatures() Features {
	return Features{FeatureNFTables: {Name: FeatureNFTables}, FeatureAudit: {Name: FeatureAudit}, FeatureFanotify: {Name: FeatureFanotify}}
}

// steps are stand-ins named like the real ones; fail names steps whose Apply fails.
func (tb *testBoot) steps(fail map[string]error) []engine.Step {
	var out []engine.Step
	for _, name := range policy.StepNames {
		if name == "services" {
			continue
		}
		out = append(out, &fakeStep{name: name, err: fail[name], ran: tb.ran})
	}
	return out
}

type fakeStep struct {
	name string
	err  error
	ran  *sync.Map
	// block makes Apply wait for its context (a long step a shutdown interrupts).
	block bool
}

func (s *fakeStep) Name() string { return s.name }

func (s *fakeStep) Plan(_ context.Context, env *engine.Env) (*engine.Plan, error) {
	if _, done := s.ran.Load(s.name); done {
		return &engine.Plan{}, nil
	}
	return &engine.Plan{Changes: []*engine.Change{{Object: "thing " + s.name, Action: engine.ActionSet, Reason: s.name}}}, nil
}

func (s *fakeStep) Apply(ctx context.Context, _ *engine.Env, _ *engine.Plan) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.err != nil {
		return s.err
	}
	s.ran.Store(s.name, true)
	return nil
}

// recLines keeps harden boot's output lines.
type recLines struct{ syncbuf.Buffer }

// records parses every line; each must be a JSON object with the journal's basic fields.
func (r *recLines) records(t *testing.T) []map[string]string {
	t.Helper()
	data := r.Bytes()
	var out []map[string]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var obj map[string]string
		require.NoError(t, json.Unmarshal(sc.Bytes(), &obj), "every line is one JSON object: %q", sc.Text())
		require.NotEmpty(t, obj["MESSAGE"], "%q", sc.Text())
		require.NotEmpty(t, obj["SYSLOG_IDENTIFIER"], "%q", sc.Text())
		require.NotEmpty(t, obj["PRIORITY"], "%q", sc.Text())
		out = append(out, obj)
	}
	return out
}

func (r *recLines) byID(t *testing.T, id string) []map[string]string {
	var out []map[string]string
	for _, rec := range r.records(t) {
		if rec["MESSAGE_ID"] == id {
			out = append(out, rec)
		}
	}
	return out
}

// service returns the supervisor records of one program, in order, as "event" strings.
func (r *recLines) service(t *testing.T, name string) []string {
	var out []string
	for _, rec := range r.records(t) {
		if rec["HARDEN_SERVICE"] == name {
			out = append(out, rec["HARDEN_SERVICE_EVENT"])
		}
	}
	return out
}

func (tb *testBoot) run() int {
	return Run(context.Background(), tb.cfg)
}

// runAsync runs harden boot on its own goroutine.
func (tb *testBoot) runAsync() <-chan int {
	done := make(chan int, 1)
	go func() { done <- tb.run() }()
	return done
}

func (tb *testBoot) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(tb.root, name))
	return string(b)
}

func (tb *testBoot) starts(role string) int {
	return strings.Count(tb.file("fake/"+role+".starts"), "\n")
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitExit(t *testing.T, done <-chan int, d time.Duration) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(d):
		t.Fatalf("harden boot did not exit within %s", d)
		return -1
	}
}

// The whole boot with the embedded default policy: the steps, then the helpers (clamd only
// once freshclam wrote signatures, clamonacc only once clamd answers), then the app, whose
// exit status is harden boot's; the helpers stop in reverse order; every line is JSON.
func TestBootRunsHelpersThenTheAppAndExitsWithItsStatus(t *testing.T) {
	tb := newTestBoot(t, "/bin/sh", "-c", `echo app-out; echo app-err >&2; echo "records=$HARDEN_RECORDS"
while [ ! -e "$ROOT/go" ]; do sleep 0.05; done
exit 7`)
	tb.cfg.Environ = append(tb.cfg.Environ, "ROOT="+tb.root)
	appOut, err := os.Create(filepath.Join(tb.root, "app.out"))
	require.NoError(t, err)
	tb.cfg.AppStdout, tb.cfg.AppStderr = appOut, appOut
	done := tb.runAsync()

	waitFor(t, 10*time.Second, "clamonacc to start", func() bool { return tb.starts("clamonacc") == 1 })
	assert.Equal(t, 1, tb.starts("harden"), "harden watch")
	assert.Contains(t, tb.file("fake/harden.starts"), " watch\n")
	assert.Equal(t, 1, tb.starts("auditd"))
	assert.Contains(t, tb.file("fake/auditd.starts"), " -n -s nochange\n")
	assert.Equal(t, 1, tb.starts("freshclam"))
	assert.Equal(t, 1, tb.starts("clamd"))
	assert.Contains(t, tb.file("fake/clamonacc.starts"), " -F --fdpass --move=/root/quarantine\n")
	assert.Zero(t, tb.starts("sshd"), "no sshd unless boot.sshd")
	// clamd did not start before freshclam had written signatures (it would have exited).
	assert.Equal(t, []string{"start"}, tb.rec.service(t, "clamd"))
	assert.Equal(t, []string{"start", "exit"}, tb.rec.service(t, "freshclam"), "once, and not restarted after success")
	assert.Equal(t, "held", tb.file("fake/freshclam.lock"), "the download lock is held while freshclam runs")
	_, held, err := engine.Held(context.Background(), fsroot.New(tb.root), clamav.DownloadLockPath)
	require.NoError(t, err)
	assert.False(t, held, "and released once it has ended")

	write(t, tb.root, "go", "")
	assert.Equal(t, 7, waitExit(t, done, 30*time.Second), "the app's status is harden boot's")

	assert.Equal(t, "app-out\napp-err\nrecords=\n", tb.file("app.out"), "the app's output is its own, not wrapped; its environment too")
	recs := tb.rec.records(t)
	var stops []string
	for _, r := range recs {
		if r["HARDEN_SERVICE_EVENT"] == "stop" {
			stops = append(stops, r["HARDEN_SERVICE"])
		}
	}
	assert.Equal(t, []string{"clamonacc", "clamd", "auditd", "watch"}, stops, "reverse start order (freshclam had ended)")
	appExit := tb.rec.service(t, "app")
	assert.Equal(t, []string{"start", "exit"}, appExit)

	// Records: the run, the services step's report, helper output wrapped with its name,
	// the watch's own records passed through.
	require.Len(t, tb.rec.byID(t, changelog.MsgRun), 1)
	var supervised string
	for _, r := range tb.rec.byID(t, changelog.MsgFinding) {
		if r["HARDEN_FINDING"] == "services.boot-supervised" {
			supervised = r["MESSAGE"]
		}
	}
	assert.Contains(t, supervised, "watch, auditd, freshclam (once, in the background, when no other run downloads signatures), clamd (once signatures in /var/lib/clamav), clamonacc (once clamd to answer on /run/clamav/clamd.ctl)")
	var wrapped, passed bool
	for _, r := range recs {
		if r["SYSLOG_IDENTIFIER"] == "clamd" && r["MESSAGE"] == "clamd running" && r["SYSLOG_PID"] != "" {
			wrapped = true
		}
		if r["MESSAGE"] == "watch: started, records to stderr" && r["SYSLOG_IDENTIFIER"] == "harden" {
			passed = true
		}
	}
	assert.True(t, wrapped, "a helper's plain output becomes a record tagged with its name and pid")
	assert.True(t, passed, "a record from harden watch passes through as it is")
	rep := tb.file("var/lib/harden/last-run.json")
	assert.Contains(t, rep, `"name": "boot"`)
	assert.Contains(t, rep, `"name": "services"`)
}

// The firewall cannot be applied: nothing is started, harden boot exits 1, and says why
// (record and boot alert) on its output.
func TestFirewallFailureKeepsTheAppDown(t *testing.T) {
	tb := newTestBoot(t, "/bin/sh", "-c", "touch "+filepath.Join(t.TempDir(), "started"))
	tb.cfg.Steps = tb.steps(map[string]error{"firewall": errors.New("netlink: nf_tables: protocol not supported")})
	assert.Equal(t, ExitBlocked, tb.run())
	blocked := tb.rec.byID(t, changelog.MsgBootBlocked)
	require.Len(t, blocked, 1)
	assert.Contains(t, blocked[0]["MESSAGE"], "required step firewall failed")
	assert.Contains(t, blocked[0]["MESSAGE"], "protocol not supported")
	alerts := tb.rec.byID(t, changelog.MsgAlertBoot)
	require.Len(t, alerts, 1, "the boot alert reaches the journal sink (stdout JSON)")
	assert.Equal(t, "false", alerts[0]["HARDEN_ALERT_APP_STARTED"])
	assert.Empty(t, tb.rec.service(t, "app"), "the app never started")
	for _, role := range []string{"harden", "clamd", "auditd"} {
		assert.Zero(t, tb.starts(role), role+" not started either")
	}
	_, auditRan := tb.ran.Load("audit")
	assert.True(t, auditRan, "the other steps still ran (one step failing does not stop the others)")
}

// A missing nf_tables is reported by the probe and keeps the app down even before the
// firewall step says so.
func TestMissingKernelFeaturesAreFindingsNotCrashes(t *testing.T) {
	tb := newTestBoot(t, "/bin/true")
	tb.cfg.Probe = func(context.Context) Features {
		f := allFeatures()
		f[FeatureNFTables] = Feature{Name: FeatureNFTables, Err: syscall.EPROTONOSUPPORT, Disables: "the firewall cannot be applied"}
		f[FeatureFanotify] = Feature{Name: FeatureFanotify, Err: syscall.ENOSYS, Disables: "no on-access scanning"}
		return f
	}
	assert.Equal(t, ExitBlocked, tb.run())
	var missing []string
	for _, r := range tb.rec.byID(t, changelog.MsgFinding) {
		if r["HARDEN_FINDING"] == "boot.kernel-feature-missing" {
			missing = append(missing, r["MESSAGE"])
		}
	}
	require.Len(t, missing, 2)
	assert.Contains(t, missing[0], "the kernel has no nf_tables (protocol not supported): the firewall cannot be applied")
	assert.Contains(t, missing[1], "no fanotify")
	var notStarted string
	for _, r := range tb.rec.byID(t, changelog.MsgFinding) {
		if r["HARDEN_FINDING"] == "services.boot-not-started" {
			notStarted = r["MESSAGE"]
		}
	}
	assert.Contains(t, notStarted, "clamonacc will not run: the kernel has no fanotify")
}

// Without nf_tables the app is down; without fanotify only clamonacc is (the app runs).
func TestMissingFanotifyOnlyStopsClamonacc(t *testing.T) {
	tb := newTestBoot(t, "/bin/sh", "-c", "exit 0")
	tb.cfg.Probe = func(context.Context) Features {
		f := allFeatures()
		f[FeatureFanotify] = Feature{Name: FeatureFanotify, Err: syscall.ENOSYS}
		return f
	}
	assert.Equal(t, 0, tb.run())
	assert.Zero(t, tb.starts("clamonacc"))
	assert.Equal(t, []string{"start", "exit"}, tb.rec.service(t, "app"))
}

// Signals reach the app; SIGTERM ends it; harden boot exits with its status.
func TestSignalsAreForwardedToTheApp(t *testing.T) {
	got := filepath.Join(t.TempDir(), "got")
	ready := filepath.Join(t.TempDir(), "ready")
	tb := newTestBoot(t, "/bin/sh", "-c", fmt.Sprintf(`
for s in HUP USR1 USR2 INT QUIT; do trap "echo $s >>%[1]s" $s; done
trap 'echo TERM >>%[1]s; exit 42' TERM
touch %[2]s
while :; do sleep 0.05; done`, got, ready))
	done := tb.runAsync()
	waitFor(t, 20*time.Second, "the app", func() bool { _, err := os.Stat(ready); return err == nil })
	waitFor(t, 20*time.Second, "clamonacc", func() bool { return tb.starts("clamonacc") == 1 })
	for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGQUIT} {
		require.NoError(t, syscall.Kill(os.Getpid(), s))
		name := strings.TrimPrefix(sigName(s), "SIG")
		waitFor(t, 5*time.Second, name+" at the app", func() bool {
			b, _ := os.ReadFile(got)
			return strings.Contains(string(b), name+"\n")
		})
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	assert.Equal(t, 42, waitExit(t, done, 30*time.Second))
	b, _ := os.ReadFile(got)
	assert.Equal(t, "HUP\nUSR1\nUSR2\nINT\nQUIT\nTERM\n", string(b))
	for _, role := range []string{"clamonacc", "clamd", "auditd", "watch"} {
		assert.Contains(t, tb.rec.service(t, role), "stop", role+" stopped after the app")
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT"}[s]
}

// An app killed by a signal: harden boot exits 128+n, as a shell would report it.
func TestAppKilledBySignal(t *testing.T) {
	tb := newTestBoot(t, "/bin/sh", "-c", "kill -KILL $$")
	assert.Equal(t, 137, tb.run())
	exits := tb.rec.byID(t, changelog.MsgServiceExit)
	var app map[string]string
	for _, e := range exits {
		if e["HARDEN_SERVICE"] == "app" {
			app = e
		}
	}
	require.NotNil(t, app)
	assert.Equal(t, "137", app["HARDEN_EXIT_CODE"])
	assert.Equal(t, "killed by signal 9 (SIGKILL)", app["HARDEN_EXIT_STATUS"])
}

func TestAppNotFound(t *testing.T) {
	tb := newTestBoot(t, "no-such-app-anywhere")
	assert.Equal(t, ExitNotFound, tb.run())
	tb = newTestBoot(t)
	assert.Equal(t, ExitUsage, tb.run())
}

// The app leaves a process behind; harden boot (the subreaper) reaps it when it exits.
func TestOrphansOfTheAppAreReaped(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "orphan")
	tb := newTestBoot(t, "/bin/sh", "-c", fmt.Sprintf(`sh -c 'sleep 0.5 & echo $! >%s'; sleep 1.5; exit 3`, pidFile))
	assert.Equal(t, 3, tb.run())
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid := strings.TrimSpace(string(b))
	var reaped bool
	for _, r := range tb.rec.byID(t, changelog.MsgOrphanReaped) {
		reaped = reaped || r["HARDEN_PID"] == pid
	}
	assert.True(t, reaped, "orphan %s reaped and recorded", pid)
	_, err = os.Stat("/proc/" + pid)
	assert.True(t, os.IsNotExist(err), "no zombie left")
}

// A helper that dies is restarted, with the restart recorded; the app keeps running.
func TestKilledHelperIsRestarted(t *testing.T) {
	tb := newTestBoot(t, "/bin/sh", "-c", `while [ ! -e "$ROOT/go" ]; do sleep 0.05; done`)
	tb.cfg.Environ = append(tb.cfg.Environ, "ROOT="+tb.root)
	done := tb.runAsync()
	waitFor(t, 10*time.Second, "clamd", func() bool { return tb.starts("clamd") == 1 })
	first := strings.Fields(tb.file("fake/clamd.starts"))[0]
	pid, _ := strconv.Atoi(first)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, 10*time.Second, "clamd restarted", func() bool { return tb.starts("clamd") == 2 })
	write(t, tb.root, "go", "")
	assert.Equal(t, 0, waitExit(t, done, 30*time.Second))
	events := tb.rec.service(t, "clamd")
	assert.Equal(t, []string{"start", "exit", "restart", "start", "stop", "exit"}, events)
}

// A shutdown signal while the steps run stops them between changes; the app never starts.
func TestShutdownBeforeTheAppStarts(t *testing.T) {
	tb := newTestBoot(t, "/bin/true")
	steps := tb.steps(nil)
	steps[2] = &fakeStep{name: steps[2].Name(), ran: tb.ran, block: true} // kernel: blocks
	tb.cfg.Steps = steps
	done := tb.runAsync()
	waitFor(t, 10*time.Second, "the firewall to be applied", func() bool { _, ok := tb.ran.Load("firewall"); return ok })
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	assert.Equal(t, 128+int(syscall.SIGTERM), waitExit(t, done, 20*time.Second))
	assert.Empty(t, tb.rec.service(t, "app"))
	blocked := tb.rec.byID(t, changelog.MsgBootBlocked)
	require.Len(t, blocked, 1)
	assert.Contains(t, blocked[0]["MESSAGE"], "received terminated before the app started")
}

// policyFile writes a policy where LoadFile accepts it: owned by root, not writable by
// others (so these tests need root).
func (tb *testBoot) policyFile(content string) string {
	tb.t.Helper()
	dir := filepath.Join(tb.root, "etc/harden")
	require.NoError(tb.t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "policy.yaml")
	require.NoError(tb.t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// A policy that does not load: only the firewall runs, with the embedded default (fail
// closed); the app does not start; harden boot exits 1 and says why.
func TestBrokenPolicyAppliesTheDefaultFirewallAndKeepsTheAppDown(t *testing.T) {
	nfttest.RequireRoot(t)
	tb := newTestBoot(t, "/bin/true")
	tb.policyFile("version: 1\nfirewall:\n  allow:\n    - {name: x, proto: tcp, port: 70000, from: private, why: w}\n")
	assert.Equal(t, ExitBlocked, tb.run())
	_, fw := tb.ran.Load("firewall")
	assert.True(t, fw, "the firewall step ran (with the embedded default)")
	for _, s := range []string{"os", "kernel", "sshd", "audit", "clamav"} {
		_, ran := tb.ran.Load(s)
		assert.False(t, ran, s+" must not run on a broken policy")
	}
	require.Len(t, tb.rec.byID(t, changelog.MsgFailClosed), 1)
	blocked := tb.rec.byID(t, changelog.MsgBootBlocked)
	require.Len(t, blocked, 1)
	assert.Contains(t, blocked[0]["MESSAGE"], "policy.yaml:4:35: firewall.allow[0].port: port 70000 out of range")
	assert.Contains(t, blocked[0]["MESSAGE"], "the embedded default firewall was applied instead")
	assert.Empty(t, tb.rec.service(t, "app"))
}

// boot.required_steps: a failing step listed there keeps the app down; not listed, the app
// starts and a boot alert says the run failed.
func TestRequiredSteps(t *testing.T) {
	nfttest.RequireRoot(t)
	tb := newTestBoot(t, "/bin/true")
	tb.policyFile("version: 1\nboot:\n  required_steps: [firewall, audit]\n")
	tb.cfg.Steps = tb.steps(map[string]error{"audit": errors.New("EPERM: rules locked")})
	assert.Equal(t, ExitBlocked, tb.run())
	blocked := tb.rec.byID(t, changelog.MsgBootBlocked)
	require.Len(t, blocked, 1)
	assert.Contains(t, blocked[0]["MESSAGE"], "required step audit failed")

	tb = newTestBoot(t, "/bin/sh", "-c", "sleep 0.5")
	tb.policyFile("version: 1\n")
	tb.cfg.Steps = tb.steps(map[string]error{"audit": errors.New("EPERM: rules locked")})
	assert.Equal(t, 0, tb.run(), "audit is not required by default: the app runs")
	waitFor(t, 15*time.Second, "the boot alert", func() bool { return len(tb.rec.byID(t, changelog.MsgAlertBoot)) == 1 })
	a := tb.rec.byID(t, changelog.MsgAlertBoot)[0]
	assert.Equal(t, "true", a["HARDEN_ALERT_APP_STARTED"])
	assert.Equal(t, "warning", a["HARDEN_ALERT_SEVERITY"])
	assert.Contains(t, a["HARDEN_ALERT_PROBLEMS"], "step audit failed: apply: EPERM: rules locked")
}

// The real firewall step: in a namespace it is applied before the app starts; aimed at a
// namespace that does not exist it fails for real, and the app never starts.
func TestRealFirewallFirst(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hboot")
	marker := filepath.Join(t.TempDir(), "table-at-app-start")
	tb := newTestBoot(t, "/bin/sh", "-c", "ip netns exec "+ns.Name+" nft list table inet harden >"+marker)
	steps := tb.steps(nil)
	steps[1] = firewall.New(firewall.Options{NetNS: ns.Name})
	tb.cfg.Steps = steps
	assert.Equal(t, 0, tb.run())
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	assert.Contains(t, string(b), "table inet harden", "the table was there when the app started")

	tb = newTestBoot(t, "/bin/true")
	steps = tb.steps(nil)
	steps[1] = firewall.New(firewall.Options{NetNS: "/nonexistent/netns"})
	tb.cfg.Steps = steps
	assert.Equal(t, ExitBlocked, tb.run())
	assert.Empty(t, tb.rec.service(t, "app"))
}

const probeEnv = "HARDEN_BOOT_PROBE"

func printProbe() {
	out := map[string]string{}
	for name, f := range Probe(context.Background()) {
		out[name] = "ok"
		if f.Err != nil {
			out[name] = f.Err.Error()
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// The probes against real kernels: this machine's (everything there, as root), and the
// same kernel seen from an unprivileged user namespace, where audit and fanotify's
// permission class are not available: each is reported with its reason, nothing crashes.
func TestProbeReportsWhatTheKernelLacks(t *testing.T) {
	nfttest.RequireRoot(t)
	host := Probe(context.Background())
	for _, name := range []string{FeatureNFTables, FeatureAudit, FeatureFanotify} {
		assert.NoError(t, host[name].Err, name)
		assert.NotEmpty(t, host[name].Disables, name)
	}

	need.Tool(t, "unshare")
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", self)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	out, err := cmd.Output()
	require.NoError(t, err, "unshare: %s", out)
	var got map[string]string
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	assert.Equal(t, "ok", got[FeatureNFTables], "a user namespace's own network namespace has nf_tables")
	assert.NotEqual(t, "ok", got[FeatureAudit], "audit is for the initial user namespace only")
	assert.Contains(t, got[FeatureFanotify], "fanotify_init", "permission events need CAP_SYS_ADMIN in the initial namespace")
}

// boot.sshd: the image has no host keys (it must not: every machine would share them), so
// harden boot makes this machine's before the steps (the sshd step's sshd -t needs them) and
// then runs sshd in the foreground, logging to stderr.
func TestSSHDGetsItsOwnHostKeysFirst(t *testing.T) {
	nfttest.RequireRoot(t)
	tb := newTestBoot(t, "/bin/sh", "-c", `while [ ! -e "$ROOT/go" ]; do sleep 0.05; done`)
	tb.cfg.Environ = append(tb.cfg.Environ, "ROOT="+tb.root)
	tb.policyFile("version: 1\nboot:\n  sshd: true\n")
	keygen := filepath.Join(tb.root, "bin", "ssh-keygen")
	write(t, tb.root, "bin/ssh-keygen", `#!/bin/sh
[ "$1" = -A ] && [ "$2" = -f ] && mkdir -p "$3/etc/ssh" && echo key >"$3/etc/ssh/ssh_host_ed25519_key"`)
	require.NoError(t, os.Chmod(keygen, 0o755))
	tb.cfg.Programs.SSHKeygen = keygen
	done := tb.runAsync()
	waitFor(t, 20*time.Second, "clamonacc, the last gated helper", func() bool { return tb.starts("clamonacc") == 1 })
	write(t, tb.root, "go", "")
	assert.Equal(t, 0, waitExit(t, done, 30*time.Second))
	assert.Equal(t, "key\n", tb.file("etc/ssh/ssh_host_ed25519_key"))
	recs := tb.rec.records(t)
	keys, summary := -1, -1
	for i, r := range recs {
		if r["MESSAGE_ID"] == changelog.MsgChange && r["HARDEN_OBJECT"] == "/etc/ssh/ssh_host_*_key" {
			keys = i
		}
		if r["MESSAGE_ID"] == changelog.MsgRun {
			summary = i
		}
	}
	require.GreaterOrEqual(t, keys, 0, "a change record for the new host keys")
	assert.Less(t, keys, summary, "made before the steps ran")
	assert.Contains(t, tb.file("fake/sshd.starts"), " -D -e\n")
	assert.Equal(t, []string{"start", "stop", "exit"}, tb.rec.service(t, "sshd"))
	var stops []string
	for _, r := range recs {
		if r["HARDEN_SERVICE_EVENT"] == "stop" {
			stops = append(stops, r["HARDEN_SERVICE"])
		}
	}
	require.NotEmpty(t, stops)
	assert.Equal(t, "sshd", stops[0], "sshd starts before clamd's gate opens, but stops first: the plan's reverse order")

	// With keys in place nothing is generated.
	tb2 := newTestBoot(t, "/bin/true")
	tb2.policyFile("version: 1\nboot:\n  sshd: true\n")
	write(t, tb2.root, "etc/ssh/ssh_host_ed25519_key", "image key\n")
	tb2.cfg.Programs.SSHKeygen = "/nonexistent/ssh-keygen"
	assert.Equal(t, 0, tb2.run())
	for _, r := range tb2.rec.byID(t, changelog.MsgChange) {
		assert.NotEqual(t, "/etc/ssh/ssh_host_*_key", r["HARDEN_OBJECT"])
	}
}

// A person's harden apply that is downloading the signatures when harden boot comes to its
// freshclam: harden boot's waits for that download to end instead of starting beside it, and
// the app does not wait for either.
func TestFreshclamWaitsForAnotherDownload(t *testing.T) {
	old := signaturePoll
	signaturePoll = 50 * time.Millisecond
	t.Cleanup(func() { signaturePoll = old })
	tb := newTestBoot(t, "/bin/sh", "-c", `while [ ! -e "$ROOT/go" ]; do sleep 0.05; done`)
	tb.cfg.Environ = append(tb.cfg.Environ, "ROOT="+tb.root)
	l, err := engine.AcquireIn(context.Background(), fsroot.New(tb.root), clamav.DownloadLockPath, true, 0)
	require.NoError(t, err)
	done := tb.runAsync()
	waitFor(t, 10*time.Second, "the app to start", func() bool { return len(tb.rec.service(t, "app")) > 0 })
	time.Sleep(300 * time.Millisecond)
	assert.Zero(t, tb.starts("freshclam"), "not beside the other download")

	require.NoError(t, l.Release())
	waitFor(t, 10*time.Second, "freshclam to start once the other download ended", func() bool { return tb.starts("freshclam") == 1 })
	waitFor(t, 10*time.Second, "freshclam to end", func() bool { return len(tb.rec.service(t, "freshclam")) == 2 })
	assert.Equal(t, "held", tb.file("fake/freshclam.lock"), "and it holds the lock itself")
	write(t, tb.root, "go", "")
	assert.Equal(t, 0, waitExit(t, done, 30*time.Second))
	assert.Equal(t, []string{"start", "exit"}, tb.rec.service(t, "freshclam"))
}
