package alert

import (
	"fmt"
	"strconv"
	"time"

	"github.com/harden-dev/harden/internal/alert/auditrec"
)

// sshSource is one source address's recent failed connections.
type sshSource struct {
	conns []sshConn // distinct failed connections inside the window, oldest first
	// quietUntil: after an alert, the source stays quiet for one window (one alert per
	// source per window), then alerts again if it is still above the threshold.
	quietUntil time.Time
	users      map[string]bool // accounts tried, for the alert (bounded)
}

type sshConn struct {
	id string // the sshd process of the connection
	at time.Time
}

// sshFailure counts a failed SSH authentication record. sshd logs one record per failed
// method of a connection (the `none` probe, each key, each password), so records of a
// connection already counted are ignored: the connection is its sshd process (pid, which
// is per connection in both the monitor and sshd-session designs).
func (r *Rules) sshFailure(rec *auditrec.Record) *Alert {
	addr := rec.Get("addr")
	if addr == "" || addr == "?" {
		addr = rec.Get("hostname")
	}
	if addr == "" || addr == "?" {
		addr = "unknown"
	}
	at := rec.Stamp.Time()
	conn := rec.Get("pid")
	if conn == "" {
		conn = rec.Stamp.String() // no pid: count each record
	}

	s := r.ssh[addr]
	if s == nil {
		if len(r.ssh) >= r.cfg.MaxSources {
			r.sweep(at)
		}
		if len(r.ssh) >= r.cfg.MaxSources {
			return nil // still full after dropping expired sources: bounded memory wins
		}
		s = &sshSource{users: map[string]bool{}}
		r.ssh[addr] = s
	}
	s.expire(at.Add(-r.cfg.SSHWindow))
	if acct := rec.Get("acct"); acct != "" && acct != "?" && len(s.users) < 10 {
		s.users[acct] = true
	}
	for _, c := range s.conns {
		if c.id == conn {
			return nil // same connection: counted already
		}
	}
	s.conns = append(s.conns, sshConn{id: conn, at: at})
	if len(s.conns) <= r.cfg.SSHThreshold || at.Before(s.quietUntil) {
		return nil
	}
	s.quietUntil = at.Add(r.cfg.SSHWindow)
	count := len(s.conns)
	attrs := map[string]string{
		"addr": addr, "count": strconv.Itoa(count), "threshold": strconv.Itoa(r.cfg.SSHThreshold),
		"window": r.cfg.SSHWindow.String(), "first": s.conns[0].at.UTC().Format(time.RFC3339),
		"exe": rec.Get("exe"), "users": joinKeys(s.users), "event": rec.Stamp.String(),
	}
	prune(attrs)
	sum := fmt.Sprintf("%d failed SSH connections from %s within %s (threshold %d)", count, addr, r.cfg.SSHWindow, r.cfg.SSHThreshold)
	a := New(KindSSHFailures, Warning, at, r.now(), sum, attrs)
	// One alert per source per window: the key names the source and the event that crossed
	// the threshold, so a redelivery is recognised and the next window is a new alert.
	a.DedupeKey = string(KindSSHFailures) + ":" + addr + ":" + rec.Stamp.String()
	return a
}

// Tick forgets sources with nothing left in their window; call it now and then (the watch
// loop does, once a minute) so a scan from many addresses does not pin memory.
func (r *Rules) Tick(now time.Time) { r.sweep(now) }

func (r *Rules) sweep(now time.Time) {
	cut := now.Add(-r.cfg.SSHWindow)
	for addr, s := range r.ssh {
		s.expire(cut)
		if len(s.conns) == 0 && !now.Before(s.quietUntil) {
			delete(r.ssh, addr)
		}
	}
}

// SSHSources returns how many sources are tracked (for tests and metrics).
func (r *Rules) SSHSources() int { return len(r.ssh) }

func (s *sshSource) expire(cut time.Time) {
	i := 0
	for i < len(s.conns) && !s.conns[i].at.After(cut) {
		i++
	}
	if i > 0 {
		s.conns = append(s.conns[:0], s.conns[i:]...)
		if len(s.conns) == 0 {
			clear(s.users)
		}
	}
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += k
	}
	return out
}
