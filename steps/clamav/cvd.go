package clamav

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/engine"
)

// HeaderSize is the size of a .cvd/.cld header: ASCII fields joined by ':' padded with
// spaces to 512 bytes, then the (gzipped tar, or for .cld plain tar) body.
const HeaderSize = 512

// Header is what a signature database says about itself.
type Header struct {
	Name    string    // "daily", from the file name
	Built   time.Time // build time
	Version int
	Sigs    int
	FLevel  int
	Builder string
}

// ParseHeader parses "ClamAV-VDB:<build time>:<version>:<sigs>:<f-level>:<md5>:<dsig>:
// <builder>:<stime>". The build time is stime (Unix seconds) when present, else the human
// field ("23 Nov 2026 07-47 -0500"), which is the only one older databases carry.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("header is %d bytes, want %d", len(b), HeaderSize)
	}
	text := strings.TrimRight(string(b[:HeaderSize]), " \x00")
	f := strings.Split(text, ":")
	if len(f) < 8 || f[0] != "ClamAV-VDB" {
		return h, fmt.Errorf("not a ClamAV database header (want ClamAV-VDB:..., got %q)", clip(text, 40))
	}
	var err error
	if h.Version, err = strconv.Atoi(f[2]); err != nil {
		return h, fmt.Errorf("version field %q: %w", f[2], err)
	}
	h.Sigs, _ = strconv.Atoi(f[3])
	h.FLevel, _ = strconv.Atoi(f[4])
	h.Builder = f[7]
	if len(f) > 8 {
		if sec, err := strconv.ParseInt(strings.TrimSpace(f[8]), 10, 64); err == nil && sec > 0 {
			h.Built = time.Unix(sec, 0).UTC()
			return h, nil
		}
	}
	t, err := time.Parse("02 Jan 2006 15-04 -0700", f[1])
	if err != nil {
		return h, fmt.Errorf("build time field %q: %w", f[1], err)
	}
	h.Built = t.UTC()
	return h, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ReadHeader reads the header of one database file on the host.
func ReadHeader(hostPath string) (Header, error) {
	f, err := os.Open(hostPath)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return readHeader(f, hostPath)
}

func readHeader(r io.Reader, name string) (Header, error) {
	b := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return Header{}, fmt.Errorf("%s: %w", name, err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%s: %w", name, err)
	}
	return h, nil
}

// readHeaderIn reads a database's header through the root (a link in an image tree
// resolves inside the tree).
func readHeaderIn(env *engine.Env, name string) (Header, error) {
	f, err := env.Root.Open(name)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return readHeader(f, name)
}

// findDB returns the newest header of name.cld / name.cvd in dir (freshclam keeps one of
// the two; if both exist clamd loads the higher version), its path, and ok=false if none.
func findDB(env *engine.Env, dir, name string) (Header, string, bool, error) {
	var best Header
	var bestPath string
	for _, ext := range []string{".cld", ".cvd"} {
		p := dir + "/" + name + ext
		h, err := readHeaderIn(env, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return best, p, false, err
		}
		h.Name = name
		if bestPath == "" || h.Version > best.Version {
			best, bestPath = h, p
		}
	}
	return best, bestPath, bestPath != "", nil
}

// checkDatabases judges the signatures by their build time. main is rebuilt a few times a
// year and updated through daily, so only daily's age is the freshness; main (and daily)
// missing means clamd will not even start (Debian's unit has ConditionPathExistsGlob).
func checkDatabases(env *engine.Env, p *engine.Plan, dir string) {
	maxAge := env.Policy.ClamAV.Freshclam.MaxDBAge.D()
	var missing []string
	defer func() {
		// Said once: without signatures clamd cannot start, so neither clamd nor clamonacc
		// is started (the services step) until they are there.
		if len(missing) == 0 {
			return
		}
		p.Find(&engine.Finding{ID: "clamav.database-missing", Severity: engine.Critical, Object: dir,
			Message: fmt.Sprintf("no %s signatures (.cvd or .cld) in %s: clamd cannot start without them, so neither clamd nor on-access scanning is started until they are there (ship them in the image; harden-freshclam.service fetches them once the network is up)",
				strings.Join(missing, " and "), dir),
			Reason: "clamav.freshclam.max_db_age"})
	}()
	for _, name := range []string{"main", "daily"} {
		h, file, ok, err := findDB(env, dir, name)
		if err != nil {
			p.Find(&engine.Finding{ID: "clamav.database-unreadable", Severity: engine.Critical, Object: file,
				Message: fmt.Sprintf("signature database unreadable: %v", err), Reason: "clamav.freshclam.max_db_age"})
			continue
		}
		if !ok {
			missing = append(missing, name)
			continue
		}
		if name != "daily" {
			continue
		}
		age := env.Now().Sub(h.Built)
		if age <= maxAge {
			continue
		}
		sev := engine.Warning
		if age > 2*maxAge {
			sev = engine.Critical
		}
		p.Find(&engine.Finding{ID: "clamav.database-stale", Severity: sev, Object: file,
			Message: fmt.Sprintf("signatures built %s (daily version %d) are %s old; policy allows %s",
				h.Built.Format(time.RFC3339), h.Version, age.Round(time.Hour), env.Policy.ClamAV.Freshclam.MaxDBAge),
			Reason: "clamav.freshclam.max_db_age"})
	}
}

// SyntheticHeader builds a database header for tests and fixtures, with the field layout
// sigtool writes.
func SyntheticHeader(built time.Time, version, sigs int) []byte {
	h := fmt.Sprintf("ClamAV-VDB:%s:%d:%d:90:00000000000000000000000000000000:X:harden-test:%d",
		built.UTC().Format("02 Jan 2006 15-04 -0700"), version, sigs, built.Unix())
	return append([]byte(h), bytes.Repeat([]byte(" "), HeaderSize-len(h))...)
}
