package alert

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/alert/auditrec"
)

// RulesConfig is what the rules need from the policy.
type RulesConfig struct {
	// SSHThreshold: alert when one source fails more than this many connections in SSHWindow.
	SSHThreshold int
	SSHWindow    time.Duration
	// Keys of the baseline's rules; nil means PrivEscKeys / CriticalFileKeys.
	PrivEscKeys, CriticalFileKeys []string
	// MaxSources bounds the SSH tracker's memory (a scan from many addresses); 0 = 65536.
	MaxSources int
}

// Rules turns audit events into alerts. Not safe for concurrent use (one watch loop owns it).
// Time comes from the events themselves, so a replay of recorded records behaves exactly as
// the live stream did.
type Rules struct {
	cfg      RulesConfig
	privEsc  map[string]bool
	critical map[string]bool
	ssh      map[string]*sshSource
	now      func() time.Time
}

// NewRules returns the rules; now stamps Raised on alerts.
func NewRules(cfg RulesConfig, now func() time.Time) *Rules {
	if cfg.PrivEscKeys == nil {
		cfg.PrivEscKeys = PrivEscKeys
	}
	if cfg.CriticalFileKeys == nil {
		cfg.CriticalFileKeys = CriticalFileKeys
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = 65536
	}
	return &Rules{cfg: cfg, privEsc: set(cfg.PrivEscKeys), critical: set(cfg.CriticalFileKeys),
		ssh: make(map[string]*sshSource), now: now}
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// Event applies every rule to one event and returns the alerts it raises (usually none).
func (r *Rules) Event(ev *auditrec.Event) []*Alert {
	if len(ev.Records) == 1 && auditrec.Standalone(ev.Records[0].Type) {
		return r.userMessage(ev.Records[0])
	}
	// Only keyed syscall events interest us; Keys looks at the SYSCALL record's key= only.
	keys := ev.Keys()
	if keys == nil {
		return nil
	}
	var out []*Alert
	for _, k := range keys {
		switch {
		case r.privEsc[k]:
			out = append(out, r.privEscEvent(ev, k))
		case r.critical[k]:
			if a := r.criticalFileEvent(ev, k); a != nil {
				out = append(out, a)
			}
		default:
			continue
		}
		break // one alert per event, even when it matches several keys
	}
	return out
}

// userMessage handles USER_* records: SSH authentication failures and failed sudo/su/pkexec.
func (r *Rules) userMessage(rec *auditrec.Record) []*Alert {
	switch rec.Type {
	case auditrec.TypeUserAuth, auditrec.TypeUserLogin, auditrec.TypeUserErr, auditrec.TypeUserAcct, auditrec.TypeUserCmd:
	default:
		return nil
	}
	if !failed(rec.Get("res")) {
		return nil
	}
	exe := path.Base(rec.Get("exe"))
	switch {
	case sshdExe[exe] && rec.Type != auditrec.TypeUserCmd && rec.Type != auditrec.TypeUserAcct:
		if a := r.sshFailure(rec); a != nil {
			return []*Alert{a}
		}
	case escalationExe[exe]:
		return []*Alert{r.failedEscalation(rec, exe)}
	}
	return nil
}

// sshdExe: the process names that log SSH authentication. OpenSSH 9.8 moved the per-connection
// work to sshd-session, and 10.0 the authentication itself to sshd-auth.
var sshdExe = map[string]bool{"sshd": true, "sshd-session": true, "sshd-auth": true}

// escalationExe: tools whose failed authentication or refused command is an escalation attempt.
// pkexec authenticates through polkit's agent helper, which is the process that logs.
var escalationExe = map[string]bool{"sudo": true, "su": true, "pkexec": true,
	"polkit-agent-helper-1": true, "doas": true, "sudo-rs": true, "su-rs": true}

func failed(res string) bool { return res == "failed" || res == "failure" || res == "fail" }

// failedEscalation: a failed sudo/su/pkexec authentication or a command sudo refused.
func (r *Rules) failedEscalation(rec *auditrec.Record, exe string) *Alert {
	attrs := map[string]string{
		"record": typeName(rec.Type), "op": rec.Get("op"), "exe": rec.Get("exe"),
		"auid": rec.Get("auid"), "uid": rec.Get("uid"), "acct": rec.Get("acct"),
		"terminal": rec.Get("terminal"), "result": "failed", "pid": rec.Get("pid"),
		"event": rec.Stamp.String(),
	}
	if cmd := rec.Get("cmd"); cmd != "" {
		attrs["command"] = auditrec.Cmdline(cmd)
	}
	if cwd := rec.Get("cwd"); cwd != "" {
		attrs["cwd"] = cwd
	}
	prune(attrs)
	what := exe
	if c := attrs["command"]; c != "" {
		what += " " + c
	}
	sum := fmt.Sprintf("failed privilege escalation: auid %s (uid %s) ran %s as %s", orQ(attrs["auid"]), orQ(attrs["uid"]), what, orQ(attrs["acct"]))
	return r.fromEvent(KindPrivEsc, Critical, rec.Stamp, sum, attrs)
}

// privEscEvent: an exec keyed by the baseline's privilege-escalation rules.
func (r *Rules) privEscEvent(ev *auditrec.Event, key string) *Alert {
	attrs := syscallAttrs(ev, key)
	sev, verb := Warning, "ran"
	if attrs["success"] == "no" {
		sev, verb = Critical, "failed to run"
		attrs["result"] = "failed"
	} else {
		attrs["result"] = "success"
	}
	what := attrs["command"]
	if what == "" {
		what = attrs["exe"]
	}
	sum := fmt.Sprintf("privilege escalation: auid %s (uid %s, euid %s) %s %s", orQ(attrs["auid"]), orQ(attrs["uid"]), orQ(attrs["euid"]), verb, orQ(what))
	return r.fromEvent(KindPrivEsc, sev, ev.Stamp, sum, attrs)
}

// criticalFileEvent: a write or attribute change of a file under a critical-file key. A read
// (an open without write flags) is not a modification; the baseline watches these files with
// -p wa, so this only filters rules added by hand with wider permissions.
func (r *Rules) criticalFileEvent(ev *auditrec.Event, key string) *Alert {
	sc := ev.First(auditrec.TypeSyscall)
	if sc != nil && (readOnlyOpen(sc) || isExec(sc)) {
		return nil
	}
	attrs := syscallAttrs(ev, key)
	attrs["path"] = changedPaths(ev)
	if attrs["success"] == "no" {
		attrs["result"] = "failed"
	} else {
		attrs["result"] = "success"
	}
	prune(attrs)
	sum := fmt.Sprintf("critical file %s changed (%s) by %s (auid %s, pid %s)", orQ(attrs["path"]), attrs["result"], orQ(attrs["exe"]), orQ(attrs["auid"]), orQ(attrs["pid"]))
	return r.fromEvent(KindCriticalFile, Critical, ev.Stamp, sum, attrs)
}

// syscallAttrs are the who/what of a syscall event.
func syscallAttrs(ev *auditrec.Event, key string) map[string]string {
	attrs := map[string]string{"key": key, "event": ev.Stamp.String()}
	if sc := ev.First(auditrec.TypeSyscall); sc != nil {
		for _, f := range []string{"auid", "uid", "euid", "pid", "ppid", "exe", "comm", "success", "exit", "syscall", "tty", "ses"} {
			attrs[f] = sc.Get(f)
		}
	}
	if pt := ev.First(auditrec.TypeProctitle); pt != nil {
		attrs["command"] = clipAttr(auditrec.Cmdline(pt.Get("proctitle")))
	}
	if cwd := ev.First(auditrec.TypeCwd); cwd != nil {
		attrs["cwd"] = cwd.Get("cwd")
	}
	prune(attrs)
	return attrs
}

// changedPaths lists the PATH records' names that were touched: the objects themselves, not
// the PARENT directory records a create/rename/unlink also logs (unless that is all there is).
// Relative names are joined to the CWD record when the syscall resolved them against the CWD;
// under another directory descriptor (an *at call given an open directory, as harden's own
// writes are) the record does not say which directory, so the name stays relative rather than
// being placed in the wrong one. Unnamed objects ("?", "(null)") are left out.
func changedPaths(ev *auditrec.Event) string {
	cwd := ""
	if c := ev.First(auditrec.TypeCwd); c != nil && cwdRelative(ev.First(auditrec.TypeSyscall)) {
		cwd = c.Get("cwd")
	}
	var objs, parents []string
	for _, rec := range ev.Records {
		if rec.Type != auditrec.TypePath {
			continue
		}
		name := rec.Get("name")
		if name == "" || name == "?" || name == "(null)" {
			continue
		}
		if !strings.HasPrefix(name, "/") && cwd != "" {
			name = path.Join(cwd, name)
		}
		if rec.Get("nametype") == "PARENT" {
			parents = append(parents, name)
		} else {
			objs = append(objs, name)
		}
	}
	if len(objs) == 0 {
		objs = parents
	}
	return strings.Join(objs, " ")
}

// readOnlyOpen: open/openat/openat2 without O_WRONLY, O_RDWR, O_CREAT or O_TRUNC.
func readOnlyOpen(sc *auditrec.Record) bool {
	nr, _ := strconv.Atoi(sc.Get("syscall"))
	var flagsArg string
	switch sc.Get("arch") {
	case "c000003e": // x86_64
		switch nr {
		case 2: // open(path, flags)
			flagsArg = "a1"
		case 257: // openat(dirfd, path, flags)
			flagsArg = "a2"
		}
	case "c00000b7": // aarch64
		if nr == 56 { // openat
			flagsArg = "a2"
		}
	}
	if flagsArg == "" {
		return false
	}
	flags, err := strconv.ParseUint(sc.Get(flagsArg), 16, 64)
	if err != nil {
		return false
	}
	const wr = 0x1 | 0x2 | 0x40 | 0x200 // O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
	return flags&wr == 0
}

// cwdRelative reports whether the syscall resolves a relative name against the CWD: true for
// calls without a directory descriptor, and for *at calls given AT_FDCWD (-100, logged as
// ffffff9c) in every directory argument.
func cwdRelative(sc *auditrec.Record) bool {
	if sc == nil {
		return true
	}
	for _, arg := range dirfdArgs(sc.Get("arch"), sc.Get("syscall")) {
		if v := sc.Get(arg); v != "ffffff9c" && v != "ffffffffffffff9c" {
			return false
		}
	}
	return true
}

// dirfdArgs are the arguments of an *at syscall that hold directory descriptors (a switch,
// not a table: nothing is built at process start).
func dirfdArgs(arch, nr string) []string {
	switch arch {
	case "c000003e": // x86_64
		switch nr {
		case "257", "437", "258", "259", "260", "263", "268", "280", "322", "452": // openat, openat2, mkdirat, mknodat, fchownat, unlinkat, fchmodat, utimensat, execveat, fchmodat2
			return []string{"a0"}
		case "264", "265", "316": // renameat, linkat, renameat2
			return []string{"a0", "a2"}
		case "266": // symlinkat
			return []string{"a1"}
		}
	case "c00000b7": // aarch64
		switch nr {
		case "56", "437", "34", "33", "54", "35", "53", "88", "281", "452":
			return []string{"a0"}
		case "38", "37", "276":
			return []string{"a0", "a2"}
		case "36":
			return []string{"a1"}
		}
	}
	return nil
}

// isExec: execve/execveat, logged under a critical-file key by perm=x rules (the audit
// tools): running a program is not a modification of it.
func isExec(sc *auditrec.Record) bool {
	nr := sc.Get("syscall")
	switch sc.Get("arch") {
	case "c000003e":
		return nr == "59" || nr == "322"
	case "c00000b7":
		return nr == "221" || nr == "281"
	}
	return false
}

// fromEvent builds an alert whose dedupe key is derived from the event, so that a redelivery
// of the same alert (after a crash) carries the same key.
func (r *Rules) fromEvent(kind Kind, sev Severity, st auditrec.Stamp, summary string, attrs map[string]string) *Alert {
	a := New(kind, sev, st.Time(), r.now(), summary, attrs)
	a.DedupeKey = string(kind) + ":" + st.String()
	return a
}

// prune drops empty and unknown ("?") attributes: they say nothing.
func prune(m map[string]string) {
	for k, v := range m {
		if v == "" || v == "?" {
			delete(m, k)
		}
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func clipAttr(s string) string {
	if len(s) > 512 {
		return s[:512] + "..."
	}
	return s
}

func typeName(t uint16) string {
	switch t {
	case auditrec.TypeUserAuth:
		return "USER_AUTH"
	case auditrec.TypeUserAcct:
		return "USER_ACCT"
	case auditrec.TypeUserErr:
		return "USER_ERR"
	case auditrec.TypeUserLogin:
		return "USER_LOGIN"
	case auditrec.TypeUserCmd:
		return "USER_CMD"
	}
	return strconv.Itoa(int(t))
}
