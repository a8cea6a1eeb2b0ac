package alert

import (
	"fmt"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert/auditrec"
)

// benchStream is 10,000 records shaped like a busy machine's audit stream: mostly syscall
// events of 6 records (SYSCALL, CWD, 2 PATH, PROCTITLE, EOE) under keys that raise nothing,
// user-space messages (logins, sudo), and a few failed SSH attempts.
func benchStream() (types []uint16, texts []string) {
	add := func(t uint16, s string) { types = append(types, t); texts = append(texts, s) }
	serial := 1000
	for len(types) < 10000 {
		serial++
		st := fmt.Sprintf("audit(1700000%03d.%03d:%d): ", serial/1000%1000, serial%1000, serial)
		switch serial % 10 {
		case 9: // a failed SSH authentication, new connection every time, many sources
			add(auditrec.TypeUserAuth, st+fmt.Sprintf(`pid=%d uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=198.51.100.%d addr=198.51.100.%d terminal=ssh res=failed'`, serial, serial%250, serial%250))
		case 8: // a successful sudo command
			add(auditrec.TypeUserCmd, st+`pid=3130 uid=1001 auid=1001 ses=4 subj=unconfined msg='cwd="/home/bob" cmd=6964 exe="/usr/bin/sudo" terminal=pts/1 res=success'`)
		default: // a syscall event under a key that is not alerted on (session, time_change, ...)
			add(auditrec.TypeSyscall, st+fmt.Sprintf(`arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffe1c1a2f60 a2=441 a3=1b6 items=2 ppid=3300 pid=%d auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="login" exe="/usr/bin/login" subj=unconfined key="session"`, serial))
			add(auditrec.TypeCwd, st+`cwd="/root"`)
			add(auditrec.TypePath, st+`item=0 name="/var/run/" inode=131073 dev=fd:01 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`)
			add(auditrec.TypePath, st+`item=1 name="/var/run/utmp" inode=131555 dev=fd:01 mode=0100664 ouid=0 ogid=43 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`)
			add(auditrec.TypeProctitle, st+`proctitle=2F62696E2F6C6F67696E002D70`)
			add(auditrec.TypeEOE, st)
		}
	}
	return types[:10000], texts[:10000]
}

// BenchmarkRecords10k: parse, assemble and apply the rules to 10,000 records (one op).
// ns/record and the CPU share at 10,000 records/s are reported; bench/watch.sh prints them.
func BenchmarkRecords10k(b *testing.B) {
	types, texts := benchStream()
	now := time.Unix(1700000000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	alerts := 0
	for i := 0; i < b.N; i++ {
		rules := NewRules(RulesConfig{SSHThreshold: 5, SSHWindow: 10 * time.Minute}, func() time.Time { return now })
		asm := auditrec.NewAssembler(func(ev *auditrec.Event) { alerts += len(rules.Event(ev)) })
		for j := range types {
			r, err := auditrec.Parse(types[j], texts[j])
			if err != nil {
				b.Fatal(err)
			}
			asm.Push(&r, now)
		}
		asm.Flush()
	}
	b.StopTimer()
	perRecord := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 10000
	b.ReportMetric(perRecord, "ns/record")
	// At 10,000 records/s the loop spends 10,000 * perRecord ns in every second.
	b.ReportMetric(perRecord*10000/1e9*100, "%core@10k/s")
	if alerts == 0 {
		b.Fatal("the stream raised no alert: the rules did not run")
	}
}
