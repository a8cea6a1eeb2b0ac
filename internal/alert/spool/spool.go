// Package spool is the durable queue between raising an alert and delivering it: every alert
// is written to its own file (fsync of the file and the directory, then an atomic rename)
// before anything tries to deliver it, and each sink leaves a marker when it has delivered
// one. A crash or kill -9 at any point therefore loses nothing that was spooled: at restart
// the alerts without a sink's marker are delivered to that sink again (at least once; the
// dedupe key on every alert lets sinks drop the repeats).
//
// Layout under the spool directory:
//
//	alerts/<id>.json          one alert, written once, removed when every sink delivered it
//	delivered/<sink>/<id>     the sink is done with the alert: delivered it, refused it for good
//	                          (then it is in deadletter/), or is not to get it at all
//	deadletter/<sink>/<id>.json  an alert the sink refused for good (HTTP 4xx: a rotated
//	                          secret, a wrong URL), with the sink's answer; kept until an
//	                          operator has dealt with it (no automatic retry: a refusal that
//	                          retrying would cure is not a refusal)
//	tmp/                      files being written (left-overs are removed at open)
//	inbox/                    alerts from unprivileged writers (clamd's VirusEvent runs as the
//	                          clamav user); the watch validates them and moves them in
package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/alert"
)

// Spool is safe for concurrent use by the watch loop and the delivery workers. Several
// processes may write alerts into the same directory (harden alert virus next to the watch);
// Rescan picks theirs up.
type Spool struct {
	dir   string
	max   int
	sinks []string
	now   func() time.Time

	mu     sync.Mutex
	ids    []string // spooled alert ids, oldest first
	known  map[string]bool
	notify func(id string)
}

// Options configure Open.
type Options struct {
	Dir       string
	MaxAlerts int      // the bound; the oldest alerts are dropped beyond it
	Sinks     []string // names of the configured sinks (an alert is done when all delivered it)
	Now       func() time.Time
}

// Open creates the layout if needed, removes half-written files and markers of alerts that
// are gone, and loads the spooled ids.
func Open(o Options) (*Spool, error) {
	if o.MaxAlerts < 2 {
		return nil, fmt.Errorf("spool: max_alerts %d: want at least 2", o.MaxAlerts)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Spool{dir: o.Dir, max: o.MaxAlerts, sinks: o.Sinks, now: o.Now, known: map[string]bool{}}
	// The spool itself is traversable but not listable, so the inbox below it can be
	// reached by its group (clamav); everything else inside is root's alone.
	if err := os.MkdirAll(o.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, d := range []string{"alerts", "tmp", "delivered", "deadletter"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	for _, name := range o.Sinks {
		if !validSinkName(name) {
			return nil, fmt.Errorf("spool: bad sink name %q", name)
		}
		for _, d := range []string{"delivered", "deadletter"} {
			if err := os.MkdirAll(filepath.Join(o.Dir, d, name), 0o700); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
		}
	}
	if err := s.cleanTmp(); err != nil {
		return nil, err
	}
	if _, err := s.Rescan(); err != nil {
		return nil, err
	}
	s.cleanMarkers()
	return s, nil
}

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

// SetNotify registers the function told about every newly spooled id (the dispatcher).
func (s *Spool) SetNotify(f func(id string)) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
}

// Len returns the number of spooled alerts.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// IDs returns the spooled ids, oldest first.
func (s *Spool) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

// Put spools an alert durably. When the spool is full the oldest alerts are dropped and an
// alert saying so is spooled as well: losing alerts silently is the one thing not allowed.
func (s *Spool) Put(a *alert.Alert) error {
	if a.ID == "" {
		a.ID = alert.NewID(s.now())
	}
	if err := a.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	dropped := s.makeRoom(1)
	var dropAlert *alert.Alert
	if len(dropped) > 0 {
		dropAlert = dropNotice(dropped, a.Context, s.now())
	}
	s.mu.Unlock()

	if err := s.write(a); err != nil {
		return err
	}
	if dropAlert != nil {
		if err := s.write(dropAlert); err != nil {
			return err
		}
	}
	return nil
}

// PutSkipping spools an alert that the named sinks are not to get: their markers are written
// before the alert appears, so no worker of theirs ever sees it pending. It is how the notice
// about a refusal reaches every sink except the one that refused.
func (s *Spool) PutSkipping(a *alert.Alert, skip ...string) error {
	if a.ID == "" {
		a.ID = alert.NewID(s.now())
	}
	for _, sink := range skip {
		if err := s.touchMarker(a.ID, sink); err != nil {
			return err
		}
	}
	return s.Put(a)
}

// makeRoom drops the oldest alerts so that n more (plus a drop notice) fit. Called locked.
func (s *Spool) makeRoom(n int) []string {
	var dropped []string
	for len(s.ids)+n > s.max || (len(dropped) > 0 && len(s.ids)+n+1 > s.max) {
		if len(s.ids) == 0 {
			break
		}
		id := s.ids[0]
		s.ids = s.ids[1:]
		delete(s.known, id)
		s.removeFiles(id)
		dropped = append(dropped, id)
	}
	return dropped
}

// dropNotice is the alert about alerts the full spool dropped.
func dropNotice(dropped []string, ctx alert.Context, now time.Time) *alert.Alert {
	a := alert.New(alert.KindSpoolDropped, alert.Warning, now, now,
		fmt.Sprintf("alert spool full: dropped the %d oldest undelivered alerts", len(dropped)),
		map[string]string{"dropped": strconv.Itoa(len(dropped)), "oldest": dropped[0], "newest": dropped[len(dropped)-1]})
	a.Context = ctx
	return a
}

// write makes the alert durable: temp file, fsync, rename into alerts/, fsync the directory.
func (s *Spool) write(a *alert.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := writeDurable(filepath.Join(s.dir, "tmp"), filepath.Join(s.dir, "alerts"), a.ID+".json", b, 0o600); err != nil {
		return err
	}
	s.mu.Lock()
	// A rescan may have found the file and a worker delivered it everywhere (forget) since
	// the rename: then it is gone, and adding it now would leave an id nothing can deliver.
	if _, err := os.Stat(s.alertPath(a.ID)); err == nil {
		s.add(a.ID)
	}
	notify := s.notify
	s.mu.Unlock()
	if notify != nil {
		notify(a.ID)
	}
	return nil
}

// writeDurable writes name into dir through tmpDir (same filesystem) so that the file
// appears whole or not at all, and survives power loss once this returns.
func writeDurable(tmpDir, dir, name string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(tmpDir, name+".*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && perm != 0o600 {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool: writing %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsync %s: %w", dir, err)
	}
	return nil
}

// add inserts an id keeping ids sorted (ids sort by raise time). Called locked.
func (s *Spool) add(id string) {
	if s.known[id] {
		return
	}
	s.known[id] = true
	i := sort.SearchStrings(s.ids, id)
	s.ids = append(s.ids, "")
	copy(s.ids[i+1:], s.ids[i:])
	s.ids[i] = id
}

// Load reads a spooled alert; fs.ErrNotExist when it was delivered everywhere or dropped.
func (s *Spool) Load(id string) (*alert.Alert, error) {
	if !alert.ValidID(id) {
		return nil, fmt.Errorf("spool: bad id %q", id)
	}
	b, err := os.ReadFile(s.alertPath(id))
	if err != nil {
		return nil, err
	}
	var a alert.Alert
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	return &a, nil
}

// Delivered reports whether the sink has delivered the alert.
func (s *Spool) Delivered(id, sink string) bool {
	_, err := os.Stat(s.markerPath(id, sink))
	return err == nil
}

// MarkDelivered records that a sink delivered an alert; when every configured sink has, the
// alert leaves the spool.
func (s *Spool) MarkDelivered(id, sink string) error {
	if err := s.touchMarker(id, sink); err != nil {
		return err
	}
	for _, other := range s.sinks {
		if !s.Delivered(id, other) {
			return nil
		}
	}
	s.mu.Lock()
	s.forget(id)
	s.mu.Unlock()
	return nil
}

// touchMarker creates a sink's marker for an alert. The marker needs no data, only its name,
// so a directory fsync is what makes it last; losing it in a crash would only mean one more
// delivery.
func (s *Spool) touchMarker(id, sink string) error {
	f, err := os.OpenFile(s.markerPath(id, sink), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: marker: %w", err)
	}
	f.Close()
	return syncDir(filepath.Dir(s.markerPath(id, sink)))
}

// DeadLetter is what a sink refused for good: the alert, which sink, its answer and when.
type DeadLetter struct {
	Sink      string       `json:"sink"`
	RefusedAt time.Time    `json:"refused_at"`
	Error     string       `json:"error"`
	Alert     *alert.Alert `json:"alert"`
}

// WriteDeadLetter keeps an alert a sink refused for good, with the refusal, in
// deadletter/<sink>/<id>.json (durably). The caller then marks the sink done with it
// (MarkDelivered): in that order, a crash in between only means one more refusal.
func (s *Spool) WriteDeadLetter(a *alert.Alert, sink string, reason error) (string, error) {
	if !alert.ValidID(a.ID) {
		return "", fmt.Errorf("spool: bad id %q", a.ID)
	}
	b, err := json.MarshalIndent(DeadLetter{Sink: sink, RefusedAt: s.now().UTC(), Error: reason.Error(), Alert: a}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	dir := filepath.Join(s.dir, "deadletter", sink)
	if err := writeDurable(filepath.Join(s.dir, "tmp"), dir, a.ID+".json", b, 0o600); err != nil {
		return "", err
	}
	return filepath.Join(dir, a.ID+".json"), nil
}

// DeadLetters counts the alerts in a sink's dead-letter directory.
func (s *Spool) DeadLetters(sink string) int {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "deadletter", sink))
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}

// OldestAge is how long the oldest spooled alert has waited (0 when the spool is empty): an
// ID starts with its raise time.
func (s *Spool) OldestAge() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return 0
	}
	ns, err := strconv.ParseInt(s.ids[0][:16], 16, 64)
	if err != nil {
		return 0
	}
	if d := s.now().Sub(time.Unix(0, ns)); d > 0 {
		return d
	}
	return 0
}

// Pending returns the ids a sink has not delivered, oldest first.
func (s *Spool) Pending(sink string) []string {
	var out []string
	for _, id := range s.IDs() {
		if !s.Delivered(id, sink) {
			out = append(out, id)
		}
	}
	return out
}

// forget removes an alert and its markers (alert file first: a crash in between leaves only
// markers, which Open cleans). Called locked.
func (s *Spool) forget(id string) {
	if !s.known[id] {
		return
	}
	delete(s.known, id)
	i := sort.SearchStrings(s.ids, id)
	if i < len(s.ids) && s.ids[i] == id {
		s.ids = append(s.ids[:i], s.ids[i+1:]...)
	}
	s.removeFiles(id)
}

func (s *Spool) removeFiles(id string) {
	os.Remove(s.alertPath(id))
	for _, sink := range s.sinks {
		os.Remove(s.markerPath(id, sink))
	}
}

// Rescan picks up alerts other processes spooled and enforces the bound; it returns the ids
// that are new to this process.
func (s *Spool) Rescan() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "alerts"))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var fresh []string
	s.mu.Lock()
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !alert.ValidID(id) || s.known[id] {
			continue
		}
		// The listing was read unlocked: an alert delivered everywhere since then is gone
		// (forget removes the file under the lock). Adding it back would leave an id that
		// no sink can deliver, and a spool that never drains.
		if _, err := os.Stat(s.alertPath(id)); err != nil {
			continue
		}
		s.add(id)
		fresh = append(fresh, id)
	}
	dropped := s.makeRoom(0)
	s.mu.Unlock()
	if len(dropped) > 0 {
		var ctx alert.Context
		if len(fresh) > 0 {
			if a, err := s.Load(fresh[len(fresh)-1]); err == nil {
				ctx = a.Context
			}
		}
		if err := s.write(dropNotice(dropped, ctx, s.now())); err != nil {
			return fresh, err
		}
	}
	sort.Strings(fresh)
	return fresh, nil
}

func (s *Spool) cleanTmp() error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Only left-overs: another process (harden alert virus next to a starting watch) may be
	// writing one right now, and a write takes milliseconds.
	cut := s.now().Add(-time.Minute)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cut) {
			os.Remove(filepath.Join(s.dir, "tmp", e.Name()))
		}
	}
	return nil
}

// cleanMarkers removes markers whose alert is gone (a crash between the two removals).
func (s *Spool) cleanMarkers() {
	ents, _ := os.ReadDir(filepath.Join(s.dir, "delivered"))
	for _, d := range ents {
		ms, _ := os.ReadDir(filepath.Join(s.dir, "delivered", d.Name()))
		for _, m := range ms {
			if _, err := os.Stat(s.alertPath(m.Name())); errors.Is(err, fs.ErrNotExist) {
				os.Remove(filepath.Join(s.dir, "delivered", d.Name(), m.Name()))
			}
		}
	}
}

func (s *Spool) alertPath(id string) string { return filepath.Join(s.dir, "alerts", id+".json") }
func (s *Spool) markerPath(id, sink string) string {
	return filepath.Join(s.dir, "delivered", sink, id)
}

func validSinkName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
