// Package install puts harden's boot units on a machine or into an image tree: it writes the
// units embedded in assets/units to /etc/systemd/system and enables them the way
// `systemctl enable` does (a symlink in each [Install] WantedBy=/RequiredBy= target's .wants
// or .requires directory), then asks a running systemd to reload.
//
// Enabling by symlinks, not over D-Bus, is deliberate: it works the same in an image tree
// (`harden install --root DIR` while building an image, no systemd running) and on a live
// machine, and it makes the result exactly checkable. On a live machine the caller passes a
// Reloader (daemon-reload over D-Bus) so systemd sees the new units.
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
)

// UnitDir is where the units go: the administrator's directory, above the packages' units.
const UnitDir = "/etc/systemd/system"

// Binary is where the units expect harden (their ExecStart=).
const Binary = "/usr/local/sbin/harden"

// Reloader makes a running systemd re-read its unit files (daemon-reload).
type Reloader interface {
	Reload(ctx context.Context) error
}

// Options for Run.
type Options struct {
	Root   fsroot.Root
	DryRun bool     // list what would change, change nothing
	Reload Reloader // nil: no systemd to tell (an image tree)
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
	if fi, err := opts.Root.Stat(Binary); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("install: %s is not an executable file in %s: put the harden binary there first", Binary, opts.Root.Dir())
	}
	units, err := Units()
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, u := range units {
		c, err := writeUnit(opts, u)
		if err != nil {
			return changes, err
		}
		changes = append(changes, c...)
	}
	for _, u := range units {
		targets, err := InstallTargets(u.Data)
		if err != nil {
			return changes, fmt.Errorf("install: %s: %w", u.Name, err)
		}
		for _, dir := range targets {
			c, err := link(opts, dir, u.Name)
			if err != nil {
				return changes, err
			}
			changes = append(changes, c...)
		}
	}
	if len(changes) > 0 && !opts.DryRun && opts.Reload != nil {
		if err := opts.Reload.Reload(ctx); err != nil {
			return changes, fmt.Errorf("install: units written, but systemd daemon-reload failed: %w", err)
		}
	}
	return changes, nil
}

func writeUnit(opts Options, u Unit) ([]Change, error) {
	name := path.Join(UnitDir, u.Name)
	same, err := opts.Root.Same(name, u.Data, 0o644)
	if err != nil || same {
		return nil, err
	}
	action := "create"
	if _, ok, _ := opts.Root.ReadFileIfExists(name); ok {
		action = "update"
	}
	if !opts.DryRun {
		if _, err := opts.Root.WriteFile(name, u.Data, 0o644); err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
	}
	return []Change{{Object: name, Action: action}}, nil
}

// link makes UnitDir/<dir>/<unit> a symlink to UnitDir/<unit>, as systemctl enable does. A
// link that points elsewhere is replaced; a regular file there is an error (someone put it
// there on purpose).
func link(opts Options, dir, unit string) ([]Change, error) {
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
	if opts.DryRun {
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
