// Package install puts harden's boot units on a machine or into an image tree: it writes the
// units embedded in assets/units to /etc/systemd/system and enables them.
//
// Two ways to enable, the same result (a symlink in each [Install] WantedBy=/RequiredBy=
// target's .wants/.requires directory):
//   - on a live machine, over D-Bus (internal/systemd: EnableUnitFiles, then daemon-reload,
//     what `systemctl enable` does), so systemd itself judges the [Install] sections;
//   - in an image tree (`harden install --root DIR` while building an image; no systemd
//     runs there) by writing those symlinks directly.
package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/systemd"
)

// UnitDir is where the units go: the administrator's directory, above the packages' units.
const UnitDir = "/etc/systemd/system"

// TmpfilesPath creates harden's state directories at every boot, among them the alert
// spool's inbox that clamd's VirusEvent (as the clamav user) writes to: harden-watch's
// sandbox may not chown, so systemd-tmpfiles makes it with the right group.
const TmpfilesPath = "/etc/tmpfiles.d/harden.conf"

// Binary is where the units expect harden (their ExecStart=). unitsBinary checks that every
// embedded unit agrees, so a unit edited to another path fails the tests, not a boot.
const Binary = "/usr/local/sbin/harden"

// unitsBinary returns the program every unit's ExecStart= runs, or an error naming the units
// that disagree.
func unitsBinary(units []Unit) (string, error) {
	seen := map[string][]string{}
	for _, u := range units {
		for _, line := range strings.Split(string(u.Data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
				if f := strings.Fields(strings.TrimLeft(v, "-@:+!")); len(f) > 0 {
					seen[f[0]] = append(seen[f[0]], u.Name)
				}
			}
		}
	}
	if len(seen) == 1 {
		for b := range seen {
			return b, nil
		}
	}
	return "", fmt.Errorf("install: the units do not agree on the harden binary: %v", seen)
}

// Systemd is the part of internal/systemd's Manager that install uses (a *systemd.Conn).
type Systemd interface {
	Enable(ctx context.Context, names ...string) ([]systemd.FileChange, error)
	DaemonReload(ctx context.Context) error
}

// Options for Run.
type Options struct {
	Root   fsroot.Root
	DryRun bool // list what would change, change nothing
	// Systemd enables the units on a live machine; nil means an image tree (symlinks, and
	// no systemd to reload).
	Systemd Systemd
	// Tmpfiles applies a tmpfiles.d file now (systemd-tmpfiles --create FILE) on a live
	// machine; nil in an image tree, where systemd-tmpfiles runs at the image's first boot.
	Tmpfiles func(ctx context.Context, file string) error
	// Files are more files to put in place with the units (the harden(8) page, the
	// Prometheus rules), each written only when its content differs.
	Files []File
}

// File is one more file for Run to write (mode 0644).
type File struct {
	Path string
	Data []byte
}

// Change is one thing Run did (or, in a dry run, would do).
type Change struct {
	Object string // "/etc/systemd/system/harden.service"
	Action string // "create", "update", "link"
}

func (c Change) String() string { return c.Action + " " + c.Object }

// Unit is one embedded unit file.
type Unit struct {
	Name string
	Data []byte
}

// Units returns the embedded units, sorted by name.
func Units() ([]Unit, error) {
	entries, err := fs.ReadDir(assets.Units, "units")
	if err != nil {
		return nil, err
	}
	var units []Unit
	for _, e := range entries {
		b, err := fs.ReadFile(assets.Units, path.Join("units", e.Name()))
		if err != nil {
			return nil, err
		}
		units = append(units, Unit{Name: e.Name(), Data: b})
	}
	sort.Slice(units, func(i, j int) bool { return units[i].Name < units[j].Name })
	return units, nil
}

// Run writes and enables the units. It is idempotent: a second run changes nothing, reports
// nothing and does not reload. A missing binary is an error: units that cannot start would
// leave the machine without its firewall at the next boot.
func Run(ctx context.Context, opts Options) ([]Change, error) {
	units, err := Units()
	if err != nil {
		return nil, err
	}
	bin, err := unitsBinary(units)
	if err != nil {
		return nil, err
	}
	if fi, err := opts.Root.Stat(bin); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("install: %s is not an executable file in %s: put the harden binary there first", bin, opts.Root.Dir())
	}
	var changes []Change
	tmpfiles, err := writeFile(opts, TmpfilesPath, assets.Tmpfiles)
	if err != nil {
		return nil, err
	}
	changes = append(changes, tmpfiles...)
	if len(tmpfiles) > 0 && !opts.DryRun && opts.Tmpfiles != nil {
		// Now, not only at the next boot: harden watch may start right after install.
		if err := opts.Tmpfiles(ctx, opts.Root.Path(TmpfilesPath)); err != nil {
			return changes, fmt.Errorf("install: systemd-tmpfiles --create %s: %w", TmpfilesPath, err)
		}
	}
	for _, f := range opts.Files {
		c, err := writeFile(opts, f.Path, f.Data)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c...)
	}
	for _, u := range units {
		c, err := writeUnit(opts, u)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c...)
	}
	enable, err := enableChanges(ctx, opts, units)
	changes = append(changes, enable...)
	if err != nil {
		return changes, err
	}
	if len(changes) > 0 && !opts.DryRun && opts.Systemd != nil {
		if err := opts.Systemd.DaemonReload(ctx); err != nil {
			return changes, fmt.Errorf("install: units written and enabled, but systemd daemon-reload failed: %w", err)
		}
	}
	return changes, nil
}

// enableChanges enables every unit with an [Install] section: over D-Bus on a live machine,
// by symlinks in an image tree. A dry run on a live machine plans the symlinks (systemd has
// no "would enable"), which is what the D-Bus call would create.
func enableChanges(ctx context.Context, opts Options, units []Unit) ([]Change, error) {
	var changes, planned []Change
	var names []string
	for _, u := range units {
		targets, err := InstallTargets(u.Data)
		if err != nil {
			return nil, fmt.Errorf("install: %s: %w", u.Name, err)
		}
		if len(targets) > 0 {
			names = append(names, u.Name)
		}
		for _, dir := range targets {
			c, err := link(opts, dir, u.Name, opts.DryRun || opts.Systemd != nil)
			if err != nil {
				return changes, err
			}
			planned = append(planned, c...)
		}
	}
	if opts.Systemd == nil || opts.DryRun {
		return planned, nil
	}
	fc, err := opts.Systemd.Enable(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("install: enabling %v over D-Bus: %w", names, err)
	}
	for _, c := range fc {
		changes = append(changes, Change{Object: c.Filename, Action: "link"})
	}
	return changes, nil
}

func writeUnit(opts Options, u Unit) ([]Change, error) {
	return writeFile(opts, path.Join(UnitDir, u.Name), u.Data)
}

func writeFile(opts Options, name string, data []byte) ([]Change, error) {
	same, err := opts.Root.Same(name, data, 0o644)
	if err != nil || same {
		return nil, err
	}
	action := "create"
	if _, ok, _ := opts.Root.ReadFileIfExists(name); ok {
		action = "update"
	}
	if !opts.DryRun {
		if _, err := opts.Root.WriteFile(name, data, 0o644); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
	}
	return []Change{{Object: name, Action: action}}, nil
}

// link makes UnitDir/<dir>/<unit> a symlink to UnitDir/<unit>, as systemctl enable does. A
// link that points elsewhere is replaced; a regular file there is an error (someone put it
// there on purpose).
func link(opts Options, dir, unit string, planOnly bool) ([]Change, error) {
	name := path.Join(UnitDir, dir, unit)
	want := path.Join(UnitDir, unit)
	host := opts.Root.Path(name)
	fi, err := os.Lstat(host)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		if cur, _ := os.Readlink(host); cur == want {
			return nil, nil
		}
	case err == nil:
		return nil, fmt.Errorf("install: %s exists and is not a symlink; not replacing it", name)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if planOnly {
		return []Change{{Object: name, Action: "link"}}, nil
	}
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return nil, err
	}
	// Atomic replace: a temporary link renamed over the old one.
	tmp := host + ".harden-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(want, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, host); err != nil {
		_ = os.Remove(tmp)
		return nil, err
	}
	return []Change{{Object: name, Action: "link"}}, nil
}

// InstallTargets parses a unit's [Install] section and returns the directories its enable
// links go in ("multi-user.target.wants", "sysinit.target.requires"). Also=, Alias= and
// DefaultInstance= are not used by harden's units and are rejected, so a new unit using them
// is noticed instead of silently half-enabled.
func InstallTargets(unit []byte) ([]string, error) {
	var dirs []string
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		if section != "Install" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key=value", n, line)
		}
		key = strings.TrimSpace(key)
		var suffix string
		switch key {
		case "WantedBy":
			suffix = ".wants"
		case "RequiredBy":
			suffix = ".requires"
		default:
			return nil, fmt.Errorf("line %d: [Install] %s= is not supported by harden install", n, key)
		}
		for _, t := range strings.Fields(val) {
			dirs = append(dirs, t+suffix)
		}
	}
	return dirs, sc.Err()
}
