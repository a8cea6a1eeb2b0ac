package alert

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert/auditrec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// loadRecords reads an audit.log fixture (the text auditd writes is the kernel's record text
// after "type=NAME msg=").
func loadRecords(t testing.TB, names ...string) []*auditrec.Record {
	t.Helper()
	var out []*auditrec.Record
	for _, name := range names {
		f, err := os.Open(filepath.Join("testdata", name))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			r, err := auditrec.ParseLogLine(sc.Text())
			require.NoError(t, err, "%s:%d", name, n)
			out = append(out, &r)
		}
		f.Close()
	}
	return out
}

// replay runs records through the assembler and the rules, as the watch loop does.
func replay(t testing.TB, rules *Rules, recs []*auditrec.Record) []*Alert {
	var alerts []*Alert
	asm := auditrec.NewAssembler(func(ev *auditrec.Event) { alerts = append(alerts, rules.Event(ev)...) })
	for _, r := range recs {
		asm.Push(r, r.Stamp.Time())
	}
	asm.Flush()
	return alerts
}

func newRules(threshold int, window time.Duration) *Rules {
	return NewRules(RulesConfig{SSHThreshold: threshold, SSHWindow: window}, func() time.Time { return testNow })
}

func TestSSHFailedPasswordCountsConnectionsNotRecords(t *testing.T) {
	recs := loadRecords(t, "ssh-failed-password.log") // 10 records, 3 connections (pids)
	// Threshold 2: the third connection crosses it; 10 records would have crossed it long before.
	alerts := replay(t, newRules(2, 10*time.Minute), recs)
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, KindSSHFailures, a.Kind)
	assert.Equal(t, "203.0.113.7", a.Attrs["addr"])
	assert.Equal(t, "3", a.Attrs["count"])
	assert.Equal(t, "admin,root", a.Attrs["users"])
	assert.Equal(t, "/usr/sbin/sshd", a.Attrs["exe"])
	assert.Equal(t, "ssh-failures:203.0.113.7:1700000020.001:830", a.DedupeKey)
	assert.Equal(t, time.Unix(1700000020, 1e6).UTC(), a.Time)
	require.NoError(t, a.Validate())

	// Threshold 3: exactly 3 connections is not "more than 3".
	assert.Empty(t, replay(t, newRules(3, 10*time.Minute), recs))
}

func TestSSHKeyProbesAreOneConnection(t *testing.T) {
	// 4 failed methods (none + 3 keys) in one connection, then a successful login.
	recs := loadRecords(t, "ssh-key-probe.log")
	assert.Empty(t, replay(t, newRules(1, time.Minute), recs))
	r := newRules(0, time.Minute) // any failed connection alerts: proves it is counted once
	alerts := replay(t, r, recs)
	require.Len(t, alerts, 1)
	assert.Equal(t, "1", alerts[0].Attrs["count"])
	assert.Equal(t, "198.51.100.23", alerts[0].Attrs["addr"])
}

func TestSSHInvalidUsersFromSSHDSessionIPv6(t *testing.T) {
	alerts := replay(t, newRules(1, time.Minute), loadRecords(t, "ssh-invalid-user.log"))
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, "2001:db8::66", a.Attrs["addr"])
	assert.Equal(t, "2", a.Attrs["count"])
	assert.Equal(t, "/usr/lib/openssh/sshd-session", a.Attrs["exe"])
	assert.Equal(t, "(invalid user)", a.Attrs["users"])
}

// sshRec makes a USER_AUTH failure from a connection (pid) at a time offset.
func sshRec(t *testing.T, addr string, pid int, at time.Duration, serial int) *auditrec.Record {
	ts := time.Unix(1700000000, 0).Add(at)
	text := "audit(" + itoa(ts.Unix()) + "." + pad3(ts.Nanosecond()/1e6) + ":" + itoa(int64(serial)) + "): pid=" + itoa(int64(pid)) +
		` uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=` + addr + " addr=" + addr + ` terminal=ssh res=failed'`
	r, err := auditrec.Parse(auditrec.TypeUserAuth, text)
	require.NoError(t, err)
	return &r
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
func pad3(n int) string {
	s := itoa(int64(n))
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

func TestSSHSlidingWindowEdgesAndOneAlertPerWindow(t *testing.T) {
	const w = 10 * time.Minute
	r := newRules(3, w)
	ev := func(rec *auditrec.Record) []*Alert {
		return r.Event(&auditrec.Event{Stamp: rec.Stamp, Records: []*auditrec.Record{rec}, Complete: true})
	}
	// Connections at 0, 1, 2 min: 3 = threshold, no alert.
	for i := 0; i < 3; i++ {
		assert.Empty(t, ev(sshRec(t, "192.0.2.1", 100+i, time.Duration(i)*time.Minute, i+1)))
	}
	// Another source does not count towards this one.
	assert.Empty(t, ev(sshRec(t, "192.0.2.2", 200, 3*time.Minute, 10)))
	// 4th connection at exactly 10 min: the one at 0 min has left the window (age == window).
	assert.Empty(t, ev(sshRec(t, "192.0.2.1", 103, w, 11)))
	// 5th at 10m30s: 1, 2, 10, 10.5 min = 4 > 3: alert.
	got := ev(sshRec(t, "192.0.2.1", 104, w+30*time.Second, 12))
	require.Len(t, got, 1)
	assert.Equal(t, "4", got[0].Attrs["count"])
	// More failures within the next window: quiet (one alert per source per window).
	for i := 0; i < 5; i++ {
		assert.Empty(t, ev(sshRec(t, "192.0.2.1", 110+i, w+time.Duration(i+1)*time.Minute, 20+i)))
	}
	// A window after the alert, still failing: a new alert with the count in the window.
	got = ev(sshRec(t, "192.0.2.1", 120, 2*w+30*time.Second, 40))
	require.Len(t, got, 1)
	assert.Equal(t, "6", got[0].Attrs["count"], "10.5 is out; 11..15 min and 20.5 min are in")
	assert.NotEqual(t, "", got[0].DedupeKey)

	// Sweeping after everything expired forgets both sources.
	assert.Equal(t, 2, r.SSHSources())
	r.Tick(time.Unix(1700000000, 0).Add(4 * w))
	assert.Equal(t, 0, r.SSHSources())
}

func TestSSHTrackerMemoryIsBounded(t *testing.T) {
	r := NewRules(RulesConfig{SSHThreshold: 5, SSHWindow: time.Minute, MaxSources: 10}, func() time.Time { return testNow })
	for i := 0; i < 50; i++ {
		rec := sshRec(t, "192.0.2."+itoa(int64(i)), i+1, 0, i+1)
		r.Event(&auditrec.Event{Stamp: rec.Stamp, Records: []*auditrec.Record{rec}})
	}
	assert.Equal(t, 10, r.SSHSources())
	// Once the window passed, new sources are tracked again.
	rec := sshRec(t, "192.0.2.200", 999, 2*time.Minute, 999)
	r.Event(&auditrec.Event{Stamp: rec.Stamp, Records: []*auditrec.Record{rec}})
	assert.Equal(t, 1, r.SSHSources())
}

func TestFailedSudoSuPkexec(t *testing.T) {
	alerts := replay(t, newRules(5, time.Minute), loadRecords(t, "sudo-su-failures.log"))
	require.Len(t, alerts, 4, "2 sudo failures, su, pkexec; the successful sudo is quiet")
	for _, a := range alerts {
		assert.Equal(t, KindPrivEsc, a.Kind)
		assert.Equal(t, Critical, a.Severity)
		assert.Equal(t, "failed", a.Attrs["result"])
		require.NoError(t, a.Validate())
	}
	assert.Equal(t, map[string]string{"record": "USER_AUTH", "op": "PAM:authentication", "exe": "/usr/bin/sudo",
		"auid": "1000", "uid": "1000", "acct": "alice", "terminal": "/dev/pts/0", "result": "failed", "pid": "3100",
		"event": "1700000300.004:1001"}, alerts[0].Attrs)
	assert.Equal(t, "cat /etc/shadow", alerts[1].Attrs["command"], "USER_CMD's cmd is hex")
	assert.Equal(t, "/home/alice", alerts[1].Attrs["cwd"])
	assert.Equal(t, "/usr/bin/su", alerts[2].Attrs["exe"])
	assert.Equal(t, "root", alerts[2].Attrs["acct"])
	assert.Equal(t, "/usr/lib/polkit-1/polkit-agent-helper-1", alerts[3].Attrs["exe"])
	assert.Equal(t, "priv-esc:1700000300.004:1001", alerts[0].DedupeKey)
}

func TestPrivEscKeyedExecs(t *testing.T) {
	alerts := replay(t, newRules(5, time.Minute), loadRecords(t, "priv-esc.log"))
	require.Len(t, alerts, 2)
	ok, bad := alerts[0], alerts[1]
	assert.Equal(t, Warning, ok.Severity)
	assert.Equal(t, "success", ok.Attrs["result"])
	assert.Equal(t, "sudo id", ok.Attrs["command"])
	assert.Equal(t, "1000", ok.Attrs["auid"])
	assert.Equal(t, "0", ok.Attrs["euid"])
	assert.Equal(t, "/usr/bin/sudo", ok.Attrs["exe"])
	assert.Contains(t, ok.Summary, "auid 1000 (uid 1000, euid 0) ran sudo id")

	assert.Equal(t, Critical, bad.Severity, "multiple keys: priv_esc matched")
	assert.Equal(t, "failed", bad.Attrs["result"])
	assert.Equal(t, "-13", bad.Attrs["exit"])
	assert.Equal(t, "priv_esc", bad.Attrs["key"])
}

func TestCriticalFileWritesNotReads(t *testing.T) {
	alerts := replay(t, newRules(5, time.Minute), loadRecords(t, "critical-files.log"))
	require.Len(t, alerts, 3, "neither the read-only open of /etc/shadow nor the exec of auditctl is a modification")
	shadow, chmod, sudoers := alerts[0], alerts[1], alerts[2]
	assert.Equal(t, KindCriticalFile, shadow.Kind)
	assert.Equal(t, "/etc/shadow", shadow.Attrs["path"])
	assert.Equal(t, "identity", shadow.Attrs["key"])
	assert.Equal(t, "/usr/bin/bash", shadow.Attrs["exe"])
	assert.Equal(t, "1000", shadow.Attrs["auid"])
	assert.Equal(t, "/etc/ssh/sshd_config", chmod.Attrs["path"], "relative name joined to the CWD")
	assert.Equal(t, "chmod 777 sshd_config", chmod.Attrs["command"])
	assert.Equal(t, "/etc/sudoers.d/x.tmp /etc/sudoers.d/x", sudoers.Attrs["path"], "PARENT records left out")
	assert.Equal(t, "sudoers", sudoers.Attrs["key"])
	for _, a := range alerts {
		require.NoError(t, a.Validate())
	}
}

// A relative name is placed in the CWD only when the syscall resolved it there. harden's own
// writes (openat in a directory it opened by descriptor, as the VM's audit log shows them) name
// only the file: joined to the CWD they read "/audit.rules", a file nobody wrote.
func TestRelativeNamesUnderADirectoryDescriptorStayRelative(t *testing.T) {
	event := func(a0 string) *auditrec.Event {
		var recs []*auditrec.Record
		for _, l := range []struct {
			typ  uint16
			text string
		}{
			{auditrec.TypeSyscall, `audit(1.000:7): arch=c000003e syscall=257 success=yes exit=3 a0=` + a0 + ` a1=c0004a2f30 a2=80241 a3=180 ppid=1 pid=1005 auid=4294967295 uid=0 gid=0 euid=0 comm="harden" exe="/usr/local/sbin/harden" key="audit_config"`},
			{auditrec.TypeCwd, `audit(1.000:7): cwd="/"`},
			{auditrec.TypePath, `audit(1.000:7): item=0 name="/etc/audit/rules.d" inode=12 nametype=PARENT`},
			{auditrec.TypePath, `audit(1.000:7): item=1 name="audit.rules" inode=13 nametype=CREATE`},
			{auditrec.TypePath, `audit(1.000:7): item=2 name=(null) inode=14 nametype=NORMAL`},
		} {
			r, err := auditrec.Parse(l.typ, l.text)
			require.NoError(t, err)
			recs = append(recs, &r)
		}
		return &auditrec.Event{Records: recs}
	}
	assert.Equal(t, "audit.rules", changedPaths(event("7")), "openat(fd 7, ...)")
	assert.Equal(t, "/audit.rules", changedPaths(event("ffffff9c")), "openat(AT_FDCWD, ...) with CWD /")
}

func TestUnkeyedAndUnrelatedEventsAreQuiet(t *testing.T) {
	r := newRules(0, time.Minute)
	rec, err := auditrec.Parse(auditrec.TypeSyscall, `audit(1.000:1): arch=c000003e syscall=257 key="other"`)
	require.NoError(t, err)
	assert.Empty(t, r.Event(&auditrec.Event{Records: []*auditrec.Record{&rec}}))
	// A failed USER_AUTH from a program that is neither sshd nor an escalation tool.
	rec, err = auditrec.Parse(auditrec.TypeUserAuth, `audit(1.000:2): pid=9 uid=0 auid=0 ses=1 msg='op=PAM:authentication acct="x" exe="/usr/sbin/vsftpd" addr=192.0.2.9 res=failed'`)
	require.NoError(t, err)
	assert.Empty(t, r.Event(&auditrec.Event{Records: []*auditrec.Record{&rec}}))
}

func TestAlertNames(t *testing.T) {
	assert.Equal(t, "HardenSSHFailures", KindSSHFailures.AlertName())
	assert.Equal(t, "HardenCriticalFile", KindCriticalFile.AlertName())
	assert.Equal(t, "HardenSpoolDropped", KindSpoolDropped.AlertName())
}

func TestLoadContext(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/harden"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, ImageStampPath), []byte("# stamp\nBUILD_TIME=2026-11-20T08:00:00Z\n"), 0o644))
	env := map[string]string{"FLY_APP_NAME": "app", "FLY_MACHINE_ID": "m1", "FLY_REGION": "ams"}
	c := LoadContext(root, func(k string) string { return env[k] })
	host, _ := os.Hostname()
	assert.Equal(t, Context{Host: host, App: "app", Machine: "m1", Region: "ams", Image: "2026-11-20T08:00:00Z"}, c)
	assert.Equal(t, "", LoadContext(t.TempDir(), func(string) string { return "" }).Image)
}

// TestRecordsCapturedFromTheKernel: records the host kernel multicast in
// TestWatchOnHostKernel (HARDEN_CAPTURE), including the kernel's own formatting of user
// messages (no subj= without an LSM) and an event-listener record of an unknown type.
func TestRecordsCapturedFromTheKernel(t *testing.T) {
	alerts := replay(t, newRules(1, time.Minute), loadRecords(t, "kernel-captured.log"))
	require.Len(t, alerts, 2)
	assert.Equal(t, KindSSHFailures, alerts[0].Kind)
	assert.Equal(t, "2", alerts[0].Attrs["count"], "two sender pids: two connections")
	assert.Equal(t, KindCriticalFile, alerts[1].Kind)
	assert.Equal(t, "/tmp/TestWatchOnHostKernel2617528045/001/shadow", alerts[1].Attrs["path"])
	assert.Equal(t, "4294967295", alerts[1].Attrs["auid"])
}

// Records auditd wrote in the integration suite's VMs for 7 failed connections from the host:
// one password-method probe (only a PAM bad_ident USER_ERR) and 6 public-key logins with an
// unknown key as root (USER_LOGIN acct="root") or as unknown users (USER_LOGIN acct=hex
// "(invalid user)"), each followed by USER_ERR bad_ident: 17 records, one sshd pid per
// connection. Debian bookworm: OpenSSH 9.2p1 built with libaudit. Ubuntu 26.04 (auditd
// 4.1.2, OpenSSH 10.2p1): the authentication runs in sshd-auth, but the records come from
// the per-connection /usr/lib/openssh/sshd-session, and an unknown user's connection logs
// USER_LOGIN twice. Either way the alert counts connections, not records.
func TestSSHRealVMRecordsCountConnections(t *testing.T) {
	for _, tc := range []struct{ fixture, exe string }{
		{"ssh-bookworm-vm-burst.log", "/usr/sbin/sshd"},
		{"ssh-resolute-vm-burst.log", "/usr/lib/openssh/sshd-session"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			recs := loadRecords(t, tc.fixture)
			require.Len(t, recs, 17)
			alerts := replay(t, newRules(3, 10*time.Minute), recs)
			require.Len(t, alerts, 1, "one alert per source per window")
			a := alerts[0]
			assert.Equal(t, KindSSHFailures, a.Kind)
			assert.Equal(t, "10.0.2.2", a.Attrs["addr"])
			assert.Equal(t, "4", a.Attrs["count"], "the 4th connection crosses threshold 3")
			assert.Equal(t, "(invalid user),root", a.Attrs["users"])
			assert.Equal(t, tc.exe, a.Attrs["exe"])
			// 7 connections in all: threshold 6 alerts at the last one, threshold 7 never.
			alerts = replay(t, newRules(6, 10*time.Minute), recs)
			require.Len(t, alerts, 1)
			assert.Equal(t, "7", alerts[0].Attrs["count"])
			assert.Empty(t, replay(t, newRules(7, 10*time.Minute), recs), "7 connections, not 17 records")
		})
	}
}

// Real PAM records captured in the QEMU VM (Debian bookworm, integration TestBaked): as
// nobody, `su root` and `sudo -S` with a wrong password read from stdin. sudo asks twice
// (two USER_AUTH records, one pid); each failed authentication is its own alert.
func TestPrivEscRealBookwormFailedAuthentication(t *testing.T) {
	recs := loadRecords(t, "priv-esc-bookworm-vm.log")
	require.Len(t, recs, 3)
	alerts := replay(t, newRules(3, 10*time.Minute), recs)
	require.Len(t, alerts, 3)
	for _, a := range alerts {
		assert.Equal(t, KindPrivEsc, a.Kind)
		assert.Equal(t, "failed", a.Attrs["result"])
		assert.Equal(t, "USER_AUTH", a.Attrs["record"])
		assert.Equal(t, "65534", a.Attrs["uid"])
	}
	assert.Equal(t, "/usr/bin/su", alerts[0].Attrs["exe"])
	assert.Equal(t, "root", alerts[0].Attrs["acct"])
	assert.Equal(t, "/usr/bin/sudo", alerts[1].Attrs["exe"])
}

// Real records from the Ubuntu 26.04 VM (integration TestBaked), sudo being sudo-rs
// (/usr/lib/cargo/bin/sudo, behind the /usr/bin/sudo alternatives link): as nobody,
// `su root` with a wrong password; as nobody, `sudo -S -u root true`, which sudo-rs refuses
// before PAM because the policy does not allow nobody (no USER_* record: only the exec of
// the setuid sudo, key priv_esc); as harden-sudoer (group sudo), the same with a wrong
// password: two USER_AUTH res=failed from sudo-rs's PAM conversation. sudo-rs writes no
// USER_CMD record. Every exec and every failed authentication is an alert.
func TestPrivEscRealResoluteSudoRsAndSu(t *testing.T) {
	recs := loadRecords(t, "priv-esc-resolute-vm.log")
	require.Len(t, recs, 24)
	alerts := replay(t, newRules(3, 10*time.Minute), recs)
	require.Len(t, alerts, 6)
	// The assembler hands on single-record USER_* events at once and syscall events once
	// complete: in the order of the events they come from, by serial.
	serial := func(a *Alert) int {
		_, n, _ := strings.Cut(a.Attrs["event"], ":")
		i, _ := strconv.Atoi(n)
		return i
	}
	sort.Slice(alerts, func(i, j int) bool { return serial(alerts[i]) < serial(alerts[j]) })
	type seen struct {
		sev                 Severity
		exe, result, record string
	}
	var got []seen
	for _, a := range alerts {
		assert.Equal(t, KindPrivEsc, a.Kind)
		got = append(got, seen{a.Severity, a.Attrs["exe"], a.Attrs["result"], a.Attrs["record"]})
	}
	assert.Equal(t, []seen{
		{Warning, "/usr/bin/su", "success", ""},                      // nobody execs su (setuid)
		{Critical, "/usr/bin/su", "failed", "USER_AUTH"},             // su: wrong password
		{Warning, "/usr/lib/cargo/bin/sudo", "success", ""},          // nobody execs sudo-rs: refused before PAM, no other trace
		{Warning, "/usr/lib/cargo/bin/sudo", "success", ""},          // harden-sudoer execs sudo-rs
		{Critical, "/usr/lib/cargo/bin/sudo", "failed", "USER_AUTH"}, // sudo-rs: wrong password
		{Critical, "/usr/lib/cargo/bin/sudo", "failed", "USER_AUTH"}, // sudo-rs asks again
	}, got)
	assert.Equal(t, "sudo -S -u root true", alerts[2].Attrs["command"])
	assert.Equal(t, "65534", alerts[2].Attrs["uid"])
	assert.Equal(t, "harden-sudoer", alerts[4].Attrs["acct"])
	assert.Equal(t, "1000", alerts[4].Attrs["uid"])
	assert.Contains(t, alerts[4].Summary, "ran sudo as harden-sudoer")
}
