package boot

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/passwd"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/supervise"
	"github.com/harden-dev/harden/steps/clamav"
)

// Programs are where the helpers live. Debian and Ubuntu put them here (merged /usr).
type Programs struct {
	Harden, Auditd, Freshclam, Clamd, Clamonacc, SSHD, SSHKeygen string
}

// DefaultPrograms are the Debian/Ubuntu paths; Harden is filled from os.Executable.
var DefaultPrograms = Programs{
	Auditd:    "/usr/sbin/auditd",
	Freshclam: "/usr/bin/freshclam",
	Clamd:     "/usr/sbin/clamd",
	Clamonacc: "/usr/sbin/clamonacc",
	SSHD:      "/usr/sbin/sshd",
	SSHKeygen: "/usr/bin/ssh-keygen",
}

// Files the helpers read (Debian's locations) and the directory clamonacc moves infected
// files to (the clamav step creates it, as for Debian's clamav-clamonacc.service).
const (
	clamdConf     = "/etc/clamav/clamd.conf"
	quarantineDir = "/root/quarantine"
)

// How often the gates look: signatures on disk (a freshclam run takes minutes), clamd's
// socket (clamd loads signatures for seconds to a minute).
var (
	signaturePoll = 2 * time.Second
	clamdPoll     = time.Second
)

// planned is what harden boot will do with one of the policy's boot services.
type planned struct {
	svc  policy.BootService
	spec supervise.Spec
	// gate, when set, holds the start until it returns true (clamd waits for signatures,
	// clamonacc for clamd); it polls until ctx ends.
	gate     func() bool
	gateWhat string
	// skip says why it will not run (not installed, a kernel feature is missing); sev is the
	// finding's severity.
	skip string
	sev  engine.Severity
}

// planner decides, from the policy, the machine's files and the kernel's features, how
// each boot service is run. It reads only: the services step reports its plan, and the
// helpers run it.
type planner struct {
	pol        *policy.Policy
	policyPath string // --policy, handed on to harden watch
	root       fsroot.Root
	progs      Programs
	features   Features
	environ    []string
}

func (pl *planner) plan() []planned {
	var out []planned
	for _, svc := range pl.pol.BootServices() {
		out = append(out, pl.one(svc))
	}
	return out
}

func (pl *planner) one(svc policy.BootService) planned {
	p := planned{svc: svc, spec: supervise.Spec{Name: svc.Name, Env: pl.environ, Restart: supervise.Always}}
	switch svc.Name {
	case policy.BootWatch:
		p.spec.Path, p.spec.Args = pl.progs.Harden, []string{"watch"}
		if pl.policyPath != "" {
			p.spec.Args = append(p.spec.Args, "--policy", pl.policyPath)
		}
		p.spec.Prepare = pl.watchDirs
		p.spec.StopTimeout = 10 * time.Second // lets it finish a delivery in flight
	case policy.BootAuditd:
		// -n: stay in the foreground; -s nochange: the audit step owns the kernel's enabled
		// flag, and auditd must not turn auditing off when it stops or crashes.
		p.spec.Path, p.spec.Args = pl.progs.Auditd, []string{"-n", "-s", "nochange"}
		if !pl.features.Has(FeatureAudit) {
			p.skip, p.sev = "the kernel has no audit: "+pl.features[FeatureAudit].Err.Error(), engine.Critical
		}
	case policy.BootFreshclam:
		p.spec.Path, p.spec.Args = pl.progs.Freshclam, []string{"--stdout"}
		p.spec.Restart = supervise.OnFailure
		p.spec.RunTimeout = pl.pol.ClamAV.Freshclam.Timeout.D()
		// A failed update (the CDN unreachable, rate-limited) is retried within the boot,
		// slowly: the CDN cools down abusers for hours.
		p.spec.Backoff = supervise.Backoff{Min: 5 * time.Minute, Max: time.Hour, ResetAfter: time.Hour}
		// One download at a time, as the freshclam step makes them: a person's `harden apply`
		// over `fly ssh console` sees this one running (Hold) and leaves it alone. While
		// theirs runs, the first start waits for it (the gate: a failed first start is final),
		// and a restart fails, naming the holder, and is retried after the back-off.
		p.gate, p.gateWhat = func() bool {
			_, held, err := engine.Held(context.Background(), pl.root, clamav.DownloadLockPath)
			return err != nil || !held // an unreadable lock: the start says why
		}, "no other run downloads signatures"
		p.spec.Hold = func() (func(), error) {
			l, err := engine.AcquireIn(context.Background(), pl.root, clamav.DownloadLockPath, true, 0)
			if err != nil {
				return nil, err
			}
			return func() { _ = l.Release() }, nil
		}
	case policy.BootClamd:
		p.spec.Path, p.spec.Args = pl.progs.Clamd, []string{"--foreground=true"}
		conf := pl.clamdConf()
		p.spec.Prepare = func() error { return pl.clamdDirs(conf) }
		db := conf.dbDir
		p.gate, p.gateWhat = func() bool { return signaturesPresent(pl.root.Path(db)) }, "signatures in "+db
		if _, err := pl.root.Stat(clamdConf); err != nil {
			p.skip, p.sev = clamdConf+" is missing (clamav-daemon not installed)", engine.Critical
		}
	case policy.BootClamonacc:
		// --fdpass: clamd (its own user) scans the descriptor clamonacc (root) opened, so
		// files clamd's user cannot open are scanned too. -F: foreground; no --log: stdout.
		p.spec.Path, p.spec.Args = pl.progs.Clamonacc, []string{"-F", "--fdpass", "--move=" + quarantineDir}
		p.spec.StopTimeout = 2 * time.Second
		sock := pl.clamdConf().socket
		p.gate, p.gateWhat = func() bool { return clamdAnswers(pl.root.Path(sock)) }, "clamd to answer on "+sock
		if !pl.features.Has(FeatureFanotify) {
			p.skip, p.sev = "the kernel has no fanotify: "+pl.features[FeatureFanotify].Err.Error(), engine.Critical
		}
	case policy.BootSSHD:
		p.spec.Path, p.spec.Args = pl.progs.SSHD, []string{"-D", "-e"}
		p.spec.Prepare = func() error { return mkdirOwned(pl.root.Path("/run/sshd"), 0o755, 0, 0) }
	default:
		p.skip, p.sev = "unknown boot service (harden bug)", engine.Critical
	}
	if p.skip == "" && !executable(p.spec.Path) {
		p.skip, p.sev = p.spec.Path+" is not installed", engine.Warning
		if svc.IfInstalled {
			p.sev = engine.Info
		}
	}
	return p
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// clamdSettings are the clamd.conf values harden boot needs.
type clamdSettings struct {
	user, socket, dbDir string
}

func (pl *planner) clamdConf() clamdSettings {
	c := clamdSettings{user: "clamav", socket: "/run/clamav/clamd.ctl", dbDir: "/var/lib/clamav"}
	data, err := pl.root.ReadFile(clamdConf)
	if err != nil {
		return c
	}
	f := kvconf.Parse(data, kvconf.Space)
	last := func(key, def string) string {
		if v := f.Get(key); len(v) > 0 && v[len(v)-1] != "" {
			return v[len(v)-1]
		}
		return def
	}
	c.user, c.socket, c.dbDir = last("User", c.user), last("LocalSocket", c.socket), last("DatabaseDirectory", c.dbDir)
	return c
}

// clamdDirs makes clamd's socket directory, which systemd's tmpfiles would make elsewhere.
func (pl *planner) clamdDirs(c clamdSettings) error {
	uid, gid, err := passwd.LookupUser(pl.root, c.user)
	if err != nil {
		return err
	}
	return mkdirOwned(pl.root.Path(filepath.Dir(c.socket)), 0o755, uid, gid)
}

// watchDirs makes what harden's tmpfiles.d entry and harden-watch.service's
// RuntimeDirectory= make under systemd: the spool with its inbox (writable by clamd's group
// for `harden alert virus`) and the watch's lock directory.
func (pl *planner) watchDirs() error {
	spool := pl.pol.Alerts.Spool.Dir
	_, gid, err := passwd.LookupUser(pl.root, "clamav")
	if err != nil {
		gid = 0 // no ClamAV: nobody else writes the inbox
	}
	for _, d := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"/var/lib/harden", 0o711, 0, 0},
		{spool, 0o711, 0, 0},
		{filepath.Join(spool, "inbox"), 0o730, 0, gid},
		{"/run/harden-watch", 0o755, 0, 0},
	} {
		if err := mkdirOwned(pl.root.Path(d.path), d.mode, d.uid, d.gid); err != nil {
			return err
		}
	}
	return nil
}

func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil // tests as a user: ownership cannot be given away
	}
	return os.Chown(path, uid, gid)
}

// signatureExts are the database files clamd loads signatures from (not the ones that only
// allow or tune: .fp, .ign, .cfg, .ftm, .info).
var signatureExts = map[string]bool{
	".cvd": true, ".cld": true, ".cud": true, ".hdb": true, ".hsb": true, ".hdu": true, ".hsu": true,
	".mdb": true, ".msb": true, ".mdu": true, ".msu": true, ".ndb": true, ".ndu": true, ".ldb": true,
	".ldu": true, ".cdb": true, ".idb": true, ".cbc": true, ".pdb": true, ".gdb": true, ".wdb": true,
	".yar": true, ".yara": true,
}

// signaturesPresent reports whether clamd would find signatures in dir: without any it
// refuses to start, so harden boot waits for freshclam rather than restarting clamd in vain.
func signaturesPresent(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() > 0 && signatureExts[filepath.Ext(e.Name())] {
			return true
		}
	}
	return false
}

// clamdAnswers reports whether clamd answers PING on its local socket: clamonacc gives up at
// once when clamd is not there yet (clamav #834), so it waits for this.
func clamdAnswers(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "PONG")
}

// helpers runs the plan: each program under the supervisor, the gated ones as soon as their
// gate opens, and stops them all, in the reverse order, at the end.
type helpers struct {
	sup *supervise.Supervisor
	out *lines

	mu       sync.Mutex
	stopping bool
	started  map[int]*supervise.Service // by the program's place in the plan
	gates    sync.WaitGroup
	cancel   context.CancelFunc
}

func startHelpers(ctx context.Context, sup *supervise.Supervisor, out *lines, plan []planned, onStartErr func(string, error)) *helpers {
	ctx, cancel := context.WithCancel(ctx)
	h := &helpers{sup: sup, out: out, cancel: cancel, started: map[int]*supervise.Service{}}
	for i, p := range plan {
		if p.skip != "" {
			continue
		}
		p := p
		ref := h.attachOutput(&p.spec)
		if p.gate == nil {
			h.start(i, p.spec, ref, onStartErr)
			continue
		}
		h.gates.Add(1)
		go func() {
			defer h.gates.Done()
			if waitGate(ctx, p.gate, gatePoll(p.svc.Name)) {
				h.start(i, p.spec, ref, onStartErr)
			}
		}()
	}
	return h
}

func gatePoll(name string) time.Duration {
	if name == policy.BootClamd || name == policy.BootFreshclam {
		return signaturePoll
	}
	return clamdPoll
}

// waitGate polls gate until it opens (true) or ctx ends (false).
func waitGate(ctx context.Context, gate func() bool, every time.Duration) bool {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if gate() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// svcRef lets a helper's output name the pid of the run it came from; it is set once the
// service exists.
type svcRef struct {
	mu sync.Mutex
	sv *supervise.Service
}

func (r *svcRef) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sv == nil {
		return 0
	}
	return r.sv.PID()
}

// attachOutput sends the program's output to the JSON lines, tagged with its name.
func (h *helpers) attachOutput(spec *supervise.Spec) *svcRef {
	ref := &svcRef{}
	spec.Stdout = &helperOutput{out: h.out, ident: spec.Name, priority: 6, pid: ref.pid}
	spec.Stderr = &helperOutput{out: h.out, ident: spec.Name, priority: 6, pid: ref.pid}
	return ref
}

func (h *helpers) start(place int, spec supervise.Spec, ref *svcRef, onStartErr func(string, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return
	}
	sv, err := h.sup.Start(spec)
	if err != nil {
		onStartErr(spec.Name, err)
		return
	}
	ref.mu.Lock()
	ref.sv = sv
	ref.mu.Unlock()
	h.started[place] = sv
}

// stop closes the gates, then stops every started helper in the reverse of the plan's order
// (sshd first, harden watch last, so alerts flow to the end), whatever order the gates let
// them start in, all within ctx.
func (h *helpers) stop(ctx context.Context) {
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	h.cancel()
	h.gates.Wait()
	h.mu.Lock()
	places := make([]int, 0, len(h.started))
	for i := range h.started {
		places = append(places, i)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(places)))
	order := make([]*supervise.Service, 0, len(places))
	for _, i := range places {
		order = append(order, h.started[i])
	}
	h.mu.Unlock()
	supervise.StopAll(ctx, order...)
}
