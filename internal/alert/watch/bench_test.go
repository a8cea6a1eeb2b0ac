package watch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/auditrec"
)

// sliceSource replays parsed-at-read records, as NetlinkSource parses each datagram.
type sliceSource struct {
	types []uint16
	texts []string
	i     int
}

func (s *sliceSource) Read() (auditrec.Record, error) {
	if s.i == len(s.types) {
		return auditrec.Record{}, errEOF
	}
	s.i++
	return auditrec.Parse(s.types[s.i-1], s.texts[s.i-1])
}

// BenchmarkRun10k is the whole watch loop minus the kernel: 10,000 records read (and parsed)
// on the reader goroutine, handed over, assembled, checked by the rules; syscall events
// of 6 records under a non-alerting key, as on a busy machine.
func BenchmarkRun10k(b *testing.B) {
	var types []uint16
	var texts []string
	for serial := 1; len(types) < 10000; serial++ {
		st := fmt.Sprintf("audit(1700000000.%03d:%d): ", serial%1000, serial)
		types = append(types, auditrec.TypeSyscall, auditrec.TypeCwd, auditrec.TypePath, auditrec.TypePath, auditrec.TypeProctitle, auditrec.TypeEOE)
		texts = append(texts,
			st+fmt.Sprintf(`arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffe1c1a2f60 a2=441 a3=1b6 items=2 ppid=3300 pid=%d auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="login" exe="/usr/bin/login" subj=unconfined key="session"`, serial),
			st+`cwd="/root"`,
			st+`item=0 name="/var/run/" inode=131073 dev=fd:01 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
			st+`item=1 name="/var/run/utmp" inode=131555 dev=fd:01 mode=0100664 ouid=0 ogid=43 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
			st+`proctitle=2F62696E2F6C6F67696E002D70`, st)
	}
	types, texts = types[:10000], texts[:10000]
	sp := openSpool(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rules := alert.NewRules(alert.RulesConfig{SSHThreshold: 5, SSHWindow: time.Minute}, time.Now)
		st, err := Run(context.Background(), Options{Source: &sliceSource{types: types, texts: texts}, Rules: rules, Spool: sp})
		if err != nil || st.Records != 10000 {
			b.Fatalf("%v %+v", err, st)
		}
	}
	perRecord := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 10000
	b.ReportMetric(perRecord, "ns/record")
	b.ReportMetric(perRecord*10000/1e9*100, "%core@10k/s")
}
