// Package boot is `harden boot -- APP`: the entrypoint of an image whose PID 1 is not systemd
// (a Fly Machine, whose PID 1 is Fly's own init). In order it
//
//  1. probes the kernel features harden needs (nf_tables, audit, fanotify) and reports any
//     that is missing as a finding that says what it turns off;
//  2. applies the policy as `harden apply` does, the firewall first. When the firewall cannot
//     be applied (no nf_tables, a refused transaction, a policy that does not load: then the
//     embedded default's firewall is applied and that is all) or a step listed in
//     boot.required_steps fails, the app is NOT started and harden boot exits 1: fail closed;
//  3. starts and supervises the helpers the policy enables (policy.BootServices: harden
//     watch, auditd, freshclam once in the background, clamd once signatures are present,
//     clamonacc once clamd answers, sshd only when boot.sshd), restarting them with back-off;
//  4. runs the app as its child, forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1/2 and SIGQUIT to
//     it, reaps orphans (child subreaper), and when the app exits stops the helpers in the
//     reverse of that order (harden watch last) within boot.stop_timeout and exits with the
//     app's status (128+n when a signal n killed it), which is what Fly's restart policy sees.
//
// Without journald every record (changes, findings, alerts, supervisor events, diagnostics,
// the helpers' output) goes to stderr as one JSON object per line with the journal's fields.
// The app's own stdout and stderr are its own, untouched.
package boot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/watch"
	"github.com/harden-dev/harden/internal/changelog"
	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/supervise"
)

// Exit statuses of harden boot itself; otherwise it exits with the app's status.
const (
	ExitBlocked  = 1   // the app was not started (fail closed)
	ExitUsage    = 2   // no app given
	ExitNotExec  = 126 // the app could not be executed
	ExitNotFound = 127 // the app does not exist
)

// Forwarded are the signals harden boot passes on to the app. Before the app runs, the
// first three stop harden boot between two changes, and it exits without starting the app.
var Forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}

func isShutdown(s os.Signal) bool {
	return s == syscall.SIGTERM || s == syscall.SIGINT || s == syscall.SIGQUIT
}

// Config is one harden boot.
type Config struct {
	// App is the program to run and its arguments (the image's CMD).
	App []string
	// PolicyPath is --policy; "" is /etc/harden/policy.yaml when present, else the embedded
	// default.
	PolicyPath string
	// Steps are the steps to apply, in order, without the services step (harden boot has its
	// own: see servicesStep).
	Steps   []engine.Step
	Version string
	// Records is where every JSON line goes (stderr).
	Records io.Writer

	// The rest defaults to this machine.
	Root     string   // "/"
	Environ  []string // the app's and the helpers' environment: os.Environ()
	Getenv   func(string) string
	Programs Programs // DefaultPrograms, Harden = os.Executable()
	Probe    func(context.Context) Features
	LockPath string // engine.DefaultLockPath under Root
	// AppStdout and AppStderr default to this process's own (the app writes to Fly's log
	// stream directly).
	AppStdout, AppStderr *os.File
	// StopTimeout overrides boot.stop_timeout (tests).
	StopTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.Environ == nil {
		c.Environ = os.Environ()
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Programs == (Programs{}) {
		c.Programs = DefaultPrograms
	}
	if c.Programs.Harden == "" {
		c.Programs.Harden, _ = os.Executable()
	}
	if c.Probe == nil {
		c.Probe = Probe
	}
	if c.LockPath == "" {
		c.LockPath = filepath.Join(c.Root, engine.DefaultLockPath)
	}
	if c.AppStdout == nil {
		c.AppStdout = os.Stdout
	}
	if c.AppStderr == nil {
		c.AppStderr = os.Stderr
	}
	if c.Records == nil {
		c.Records = os.Stderr
	}
}

// booter is one run of harden boot.
type booter struct {
	c      Config
	out    *lines
	log    *changelog.Log
	logger *logrus.Logger
	runID  string
	root   fsroot.Root

	mu       sync.Mutex
	app      *supervise.Service
	stopSig  os.Signal // the shutdown signal that came before the app ran
	cancelRu context.CancelCauseFunc
}

// Run is harden boot. It returns the process's exit status.
func Run(ctx context.Context, c Config) int {
	c.defaults()
	b := &booter{c: c, out: &lines{w: c.Records}, runID: newRunID(), root: fsroot.New(c.Root)}
	b.log = changelog.New(changelog.NewJSONLines(b.out), b.runID)
	b.logger = logrus.New()
	b.logger.SetOutput(b.out)
	b.logger.SetFormatter(changelog.JSONFormatter{RunID: b.runID})
	if len(c.App) == 0 {
		b.logger.Error("harden boot: no app to run: harden boot [--policy FILE] -- COMMAND [ARG...]")
		return ExitUsage
	}

	// From here on the forwarded signals are ours: before the app runs, a shutdown signal
	// stops the run between two changes; once it runs, every one goes to the app.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, Forwarded...)
	defer signal.Stop(sigs)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.cancelRu = cancel
	go b.handleSignals(sigs)

	features := c.Probe(runCtx)
	probeFindings := b.reportFeatures(features)
	pol, polName, polErr := engine.LoadPolicy(b.root, c.PolicyPath)
	if polErr == nil && pol.Boot.SSHD {
		// Before the sshd step, whose sshd -t needs them, as sshd-keygen.service runs
		// before ssh.service.
		b.ensureHostKeys()
	}
	rep, err := b.applySteps(runCtx, pol, polName, polErr, features)
	if err != nil {
		b.logger.WithError(err).Error("harden boot: the steps could not run")
	}
	if rep != nil {
		rep.Steps = append([]*engine.StepReport{{Name: "boot", Status: engine.StatusOK, Changes: []*engine.Change{},
			Findings: probeFindings}}, rep.Steps...)
		if err := engine.SaveReport(b.root, pol, rep); err != nil {
			b.logger.WithError(err).Warn("harden boot: report not saved")
		}
	}
	if reasons := b.blockReasons(rep, err, pol, polErr, features); len(reasons) > 0 {
		return b.block(pol, polName, reasons)
	}
	return b.runApp(pol, rep, features)
}

// handleSignals forwards signals to the app once it runs; before that, a shutdown signal
// cancels the run (steps stop between two changes) and is remembered for the exit status.
func (b *booter) handleSignals(sigs <-chan os.Signal) {
	for s := range sigs {
		b.mu.Lock()
		app := b.app
		if app == nil && isShutdown(s) && b.stopSig == nil {
			b.stopSig = s
			b.cancelRu(fmt.Errorf("received %s before the app started", s))
		}
		b.mu.Unlock()
		switch {
		case app != nil:
			if err := app.Signal(s.(syscall.Signal)); err != nil && !errors.Is(err, supervise.ErrNotRunning) {
				b.logger.WithError(err).Warnf("harden boot: forwarding %s to the app", s)
			}
		case isShutdown(s):
			b.logger.Warnf("harden boot: %s before the app started: stopping; the app will not start", s)
		default:
			b.logger.Infof("harden boot: %s before the app started: ignored", s)
		}
	}
}

func (b *booter) stoppedBy() os.Signal {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopSig
}

// reportFeatures logs a finding for each missing kernel feature and returns them for the
// report.
func (b *booter) reportFeatures(fs Features) []*engine.Finding {
	out := []*engine.Finding{}
	for _, name := range []string{FeatureNFTables, FeatureAudit, FeatureFanotify} {
		f, ok := fs[name]
		if !ok || f.OK() {
			continue
		}
		fd := &engine.Finding{ID: "boot.kernel-feature-missing", Severity: engine.Critical, Object: "kernel " + name,
			Message: fmt.Sprintf("the kernel has no %s (%v): %s", name, f.Err, f.Disables), Reason: "boot"}
		out = append(out, fd)
		_ = b.log.Finding(changelog.Finding{Step: "boot", ID: fd.ID, Severity: string(fd.Severity), Object: fd.Object,
			Message: fd.Message, Reason: fd.Reason})
	}
	return out
}

// applySteps runs the steps as `harden apply` does, under the run lock, with harden boot's
// services step last.
func (b *booter) applySteps(ctx context.Context, pol *policy.Policy, polName string, polErr error, features Features) (*engine.Report, error) {
	if polErr != nil {
		b.logger.Errorf("harden boot: policy %s not loaded: %v; failing closed: applying the embedded default firewall only", polName, polErr)
	}
	lock, err := engine.Acquire(ctx, b.c.LockPath, true, 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	env := &engine.Env{
		Policy: pol, Root: b.root, Now: time.Now, Getenv: b.c.Getenv, Exec: command.Exec{},
		Log: logrus.NewEntry(b.logger), Progress: engine.NoProgress{}, Restarts: &engine.RestartQueue{}, RunID: b.runID,
	}
	steps := append(append([]engine.Step{}, b.c.Steps...), &servicesStep{plan: func(p *policy.Policy) []planned {
		return b.planner(p, features).plan()
	}})
	host, _ := os.Hostname()
	runner := &engine.Runner{Steps: steps, Log: b.log, PlanAhead: true}
	return runner.Run(ctx, env, engine.Options{FailClosed: polErr != nil, PolicyError: polErr, PolicyName: polName,
		Version: b.c.Version, Host: host})
}

func (b *booter) planner(p *policy.Policy, features Features) *planner {
	// The helpers write their records as JSON lines too (harden watch would pick journald
	// where its socket exists).
	env := append(append([]string{}, b.c.Environ...), changelog.RecordsEnv+"=stderr")
	return &planner{pol: p, policyPath: b.c.PolicyPath, root: b.root, progs: b.c.Programs, features: features, environ: env}
}

// blockReasons says why the app must not start; none means it starts.
func (b *booter) blockReasons(rep *engine.Report, runErr error, pol *policy.Policy, polErr error, features Features) []string {
	var out []string
	if s := b.stoppedBy(); s != nil {
		out = append(out, fmt.Sprintf("received %s before the app started", s))
	}
	if runErr != nil {
		out = append(out, "the steps could not run: "+runErr.Error())
	}
	if polErr != nil {
		out = append(out, fmt.Sprintf("the policy could not be loaded (%s); the embedded default firewall was applied instead (fail closed)",
			firstLine(polErr.Error())))
	}
	if !features.Has(FeatureNFTables) {
		out = append(out, "the kernel has no nf_tables: the firewall cannot be applied")
	}
	if rep == nil {
		return out
	}
	for _, s := range rep.Steps {
		if !pol.BootRequires(s.Name) {
			continue
		}
		switch {
		case s.Status == engine.StatusFailed || s.Status == engine.StatusCancelled:
			out = append(out, fmt.Sprintf("required step %s %s: %s", s.Name, s.Status, firstLine(s.Error)))
		case s.Status == engine.StatusSkipped && s.Name == policy.FailClosedStep:
			out = append(out, "the firewall step did not run")
		default:
			for _, f := range s.Findings {
				if f.Severity.AtLeast(rep.FailOn) {
					out = append(out, fmt.Sprintf("required step %s: %s finding %s: %s", s.Name, f.Severity, f.ID, f.Message))
				}
			}
		}
	}
	return out
}

// block records and alerts that the app was not started, and returns the exit status.
func (b *booter) block(pol *policy.Policy, polName string, reasons []string) int {
	_ = b.log.BootBlocked(polName, reasons)
	b.alert(pol, alert.Critical, "harden boot did not start the app: "+strings.Join(reasons, "; "),
		map[string]string{"app_started": "false", "reasons": strings.Join(reasons, "; ")})
	if s, ok := b.stoppedBy().(syscall.Signal); ok {
		return 128 + int(s)
	}
	return ExitBlocked
}

// alert raises a boot alert through the policy's sinks: spooled, and delivered directly
// (bounded) when no watch runs yet, by the watch otherwise.
func (b *booter) alert(pol *policy.Policy, sev alert.Severity, summary string, attrs map[string]string) {
	now := time.Now()
	attrs["run_id"] = b.runID
	a := alert.New(alert.KindBoot, sev, now, now, summary, attrs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*watch.DirectTimeout)
	defer cancel()
	// The spool is the machine's (under Root, so a test's root keeps its own).
	p := *pol
	p.Alerts.Spool.Dir = b.root.Path(pol.Alerts.Spool.Dir)
	cfg := watch.Config{Policy: &p, Root: b.c.Root, Getenv: b.c.Getenv, Journal: changelog.NewJSONLines(b.out),
		LockPath: filepath.Join(b.c.Root, watch.DefaultLockPath)}
	if _, err := watch.Raise(ctx, cfg, a); err != nil {
		b.logger.WithError(err).Warn("harden boot: boot alert not raised")
	}
}

// runApp starts the helpers and the app, waits for the app, stops the helpers and returns
// the app's status.
func (b *booter) runApp(pol *policy.Policy, rep *engine.Report, features Features) int {
	// From here on no process is started and waited for outside the supervisor (it reaps
	// every child): everything below is a supervised program.
	sup, err := supervise.New(supervise.Options{Log: b.serviceEvent})
	if err != nil {
		b.logger.WithError(err).Error("harden boot: cannot supervise")
		return ExitBlocked
	}
	defer sup.Close()
	plan := b.planner(pol, features).plan()
	h := startHelpers(context.Background(), sup, b.out, plan, func(string, error) {})
	if rep != nil && rep.Failed() {
		problems := runProblems(rep)
		go b.alert(pol, alert.Warning, "harden boot: the run failed ("+strings.Join(problems, "; ")+"); the app was started",
			map[string]string{"app_started": "true", "status": rep.Status, "problems": strings.Join(problems, "; ")})
	}

	stopTimeout := pol.Boot.StopTimeout.D()
	if b.c.StopTimeout > 0 {
		stopTimeout = b.c.StopTimeout
	}
	app, code := b.startApp(sup)
	if app == nil {
		b.stopHelpers(h, stopTimeout)
		return code
	}
	<-app.Done()
	st := app.Status()
	b.stopHelpers(h, stopTimeout)
	b.logger.Infof("harden boot: the app %s; exiting %d", st, st.ExitCode())
	return st.ExitCode()
}

// runProblems names what made a run fail: failed steps and findings at run.fail_on.
func runProblems(rep *engine.Report) []string {
	var out []string
	for _, s := range rep.Steps {
		if s.Status == engine.StatusFailed || s.Status == engine.StatusCancelled {
			out = append(out, fmt.Sprintf("step %s %s: %s", s.Name, s.Status, firstLine(s.Error)))
		}
		for _, f := range s.Findings {
			if f.Severity.AtLeast(rep.FailOn) {
				out = append(out, fmt.Sprintf("%s finding %s", f.Severity, f.ID))
			}
		}
	}
	if len(out) == 0 {
		out = append(out, "status "+rep.Status)
	}
	return out
}

func (b *booter) stopHelpers(h *helpers, bound time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	h.stop(ctx)
	b.logger.Infof("harden boot: helpers stopped in %s (bound %s)", time.Since(start).Round(time.Millisecond), bound)
}

// startApp starts the app; on failure it returns nil and the exit status a shell would give.
func (b *booter) startApp(sup *supervise.Supervisor) (*supervise.Service, int) {
	path, err := lookPath(b.c.App[0], b.c.Environ)
	if err != nil {
		b.logger.WithError(err).Errorf("harden boot: the app %q was not found", b.c.App[0])
		return nil, ExitNotFound
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopSig != nil {
		// A shutdown signal came while the helpers started.
		return nil, 128 + int(b.stopSig.(syscall.Signal))
	}
	app, err := sup.Start(supervise.Spec{Name: "app", Path: path, Args: b.c.App[1:], Env: b.c.Environ,
		Stdin: os.Stdin, Stdout: b.c.AppStdout, Stderr: b.c.AppStderr, Restart: supervise.Never})
	if err != nil {
		code := ExitNotExec
		if errors.Is(err, os.ErrNotExist) {
			code = ExitNotFound
		}
		return nil, code
	}
	b.app = app
	return app, 0
}

// lookPath finds the app like a shell would, with the PATH of the app's environment.
func lookPath(name string, environ []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// serviceEvent records one supervisor event.
func (b *booter) serviceEvent(e supervise.Event) {
	rec := changelog.Service{Event: string(e.Kind), Service: e.Service, PID: e.PID, Restarts: e.Restarts,
		Ran: e.Ran, Delay: e.Delay, Err: e.Err, ExitCode: -1}
	switch e.Kind {
	case supervise.EventExit, supervise.EventOrphan:
		rec.Status, rec.ExitCode, rec.Success = e.Status.String(), e.Status.ExitCode(), e.Status.Success()
	case supervise.EventStop, supervise.EventKill, supervise.EventTimeout:
		rec.Signal = unix.SignalName(e.Signal)
	}
	if err := b.log.Service(rec); err != nil {
		b.logger.WithError(err).Warn("harden boot: recording a supervisor event")
	}
}

// ensureHostKeys makes sshd's host keys when the image has none (a golden image must not
// carry them: every machine would share one): before sshd starts, like sshd-keygen.service.
func (b *booter) ensureHostKeys() {
	keys, _ := filepath.Glob(b.root.Path("/etc/ssh/ssh_host_*_key"))
	if len(keys) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-A"}
	if b.c.Root != "/" {
		args = append(args, "-f", b.c.Root) // -A writes under this prefix
	}
	if _, err := (command.Exec{}).Run(ctx, command.Cmd{Name: b.c.Programs.SSHKeygen, Args: args}); err != nil {
		b.logger.WithError(err).Error("harden boot: ssh-keygen -A: sshd will not start without host keys")
		return
	}
	_ = b.log.Change(changelog.Change{Step: "boot", Object: "/etc/ssh/ssh_host_*_key", Action: engine.ActionCreate,
		Before: "absent", After: "new host keys", Reason: "boot.sshd (this machine's own keys, never the image's)"})
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func newRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
