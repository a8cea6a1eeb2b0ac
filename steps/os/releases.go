package os

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/engine"
)

// DistroInfoUbuntu is distro-info-data's list of Ubuntu releases: every release with its
// dates, updated with the OS itself. A newer image knows newer releases than the harden
// binary baked into it, so "latest LTS" comes from here first.
const DistroInfoUbuntu = "/usr/share/distro-info/ubuntu.csv"

// release is one LTS release and the day it came out.
type release struct {
	Version  string
	Released time.Time
}

// UbuntuLTS lists Ubuntu LTS releases with their release dates: the fallback where
// distro-info-data is not installed. Add each new LTS here when it is announced; a machine
// whose distro-info-data knows an LTS this list lacks gets a finding (os.lts-table-outdated).
var UbuntuLTS = []release{
	{"20.04", date(2020, 4, 23)},
	{"22.04", date(2022, 4, 21)},
	{"24.04", date(2024, 4, 25)},
	{"26.04", date(2026, 4, 23)},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// parseDistroInfo reads the LTS releases from distro-info-data's CSV: a header line naming
// the columns (version, codename, series, created, release, eol, ...), then one line per
// release whose version ends in " LTS" for long-term releases. Columns are found by name,
// so a column added later does not shift them.
func parseDistroInfo(data []byte) ([]release, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // older releases have fewer eol columns
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	verCol, relCol := -1, -1
	for i, name := range header {
		switch strings.TrimSpace(name) {
		case "version":
			verCol = i
		case "release":
			relCol = i
		}
	}
	if verCol < 0 || relCol < 0 {
		return nil, fmt.Errorf("header %q has no version and release columns", strings.Join(header, ","))
	}
	var out []release
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) <= max(verCol, relCol) {
			return nil, fmt.Errorf("line %d: %d fields, want at least %d", line, len(rec), max(verCol, relCol)+1)
		}
		ver, lts := strings.CutSuffix(strings.TrimSpace(rec[verCol]), " LTS")
		if !lts {
			continue
		}
		day, err := time.Parse("2006-01-02", strings.TrimSpace(rec[relCol]))
		if err != nil {
			return nil, fmt.Errorf("line %d: release date of %s: %w", line, ver, err)
		}
		out = append(out, release{Version: ver, Released: day})
	}
	if len(out) == 0 {
		return nil, errors.New("no LTS release listed")
	}
	return out, nil
}

// releaseData is what "latest-lts" is judged by on this machine.
type releaseData struct {
	machine []release // from DistroInfoUbuntu; nil when absent or unreadable
	table   []release // UbuntuLTS
}

// loadReleases reads the machine's release data. A file that is there but cannot be read
// is a finding, and the embedded table stands in.
func loadReleases(env *engine.Env, p *engine.Plan) (*releaseData, error) {
	d := &releaseData{table: UbuntuLTS}
	data, ok, err := env.Root.ReadFileIfExists(DistroInfoUbuntu)
	if err != nil || !ok {
		return d, err
	}
	if d.machine, err = parseDistroInfo(data); err != nil {
		d.machine = nil
		p.Find(&engine.Finding{ID: "os.release-data-unreadable", Severity: engine.Warning, Object: DistroInfoUbuntu,
			Message: fmt.Sprintf("%s: %v; judging latest-lts by harden's built-in list (newest %s)", DistroInfoUbuntu, err, newest(d.table).Version),
			Reason:  "os.min_version"})
	}
	return d, nil
}

// latestLTS is the newest LTS released by now, by the machine's data and by the embedded
// table: the machine's data knows releases newer than this binary, and the table still
// counts where the machine's data is older than the binary (the image is then too old as
// well, which os.max_image_age reports). It says which source gave the answer.
func (d *releaseData) latestLTS(now time.Time) (string, string) {
	best, from := "", ""
	for _, src := range []struct {
		list []release
		name string
	}{{d.machine, DistroInfoUbuntu}, {d.table, "harden's built-in list"}} {
		for _, r := range src.list {
			if !r.Released.After(now) && (best == "" || compareVersions(r.Version, best) > 0) {
				best, from = r.Version, src.name
			}
		}
	}
	return best, from
}

// checkTable reports an embedded table older than the machine's own release data: on a
// machine without distro-info-data this binary would judge by it and miss the newer LTS.
func (d *releaseData) checkTable(p *engine.Plan) {
	if len(d.machine) == 0 {
		return
	}
	mine, theirs := newest(d.table), newest(d.machine)
	if compareVersions(theirs.Version, mine.Version) <= 0 {
		return
	}
	p.Find(&engine.Finding{ID: "os.lts-table-outdated", Severity: engine.Info, Object: DistroInfoUbuntu,
		Message: fmt.Sprintf("this machine's release data knows Ubuntu %s LTS (released %s); harden's built-in list ends at %s: "+
			"update harden, which uses that list where distro-info-data is not installed",
			theirs.Version, theirs.Released.Format("2006-01-02"), mine.Version),
		Reason: "os.min_version"})
}

func newest(list []release) release {
	var n release
	for _, r := range list {
		if n.Version == "" || compareVersions(r.Version, n.Version) > 0 {
			n = r
		}
	}
	return n
}
