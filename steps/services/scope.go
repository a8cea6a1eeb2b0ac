package services

import (
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

// unitConfigDirs are the directories whose links and masks can make a unit file enabled,
// enabled-runtime, masked or masked-runtime (systemd's install.c: the persistent and runtime
// configuration, the control and transient directories, the generators' output). A unit file
// whose name appears nowhere in them is static, disabled, indirect or vendor-masked: states the
// plan never acts on unless the policy names the unit.
var unitConfigDirs = []string{
	"/etc/systemd/system", "/etc/systemd/system.control",
	"/run/systemd/system", "/run/systemd/system.control", "/run/systemd/transient",
	"/run/systemd/generator.early", "/run/systemd/generator", "/run/systemd/generator.late",
}

// scope returns the unit names the plan needs from systemd: every name that may be enabled or
// masked (linkNames), the units the policy wants (with the templates of instances, whose file
// stands for them), the units harden masked before and the restarts other steps queued.
//
// Asking systemd for these names only is what keeps a converged plan cheap: systemd works out
// a unit file's state by loading it and scanning every .wants directory for links to it, so
// listing every unit file on the machine (~400 on a server) cost ~3 s under TCG, for a plan
// that looks at a few dozen. ListUnitFilesByPatterns matches names before it looks states up.
func scope(root fsroot.Root, allow map[string]want, recs *records, restarts []engine.Restart) ([]string, error) {
	set := map[string]bool{}
	add := func(name string) {
		if name == "" {
			return
		}
		set[name] = true
		set[template(name)] = true
	}
	if err := linkNames(root, add); err != nil {
		return nil, err
	}
	for name := range allow {
		add(name)
	}
	for _, name := range recs.names() {
		add(name)
	}
	for _, r := range restarts {
		add(r.Unit)
	}
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// linkNames calls add with every unit name that a link or file in unitConfigDirs could make
// enabled or masked: the entries at the top of each directory and, for symlinks, the unit
// they point to (an alias link enables its target), and the entries of its .wants, .requires
// and .upholds directories (systemd matches those by name, or by an instance's template).
func linkNames(root fsroot.Root, add func(string)) error {
	for _, dir := range unitConfigDirs {
		entries, err := root.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			switch {
			case e.IsDir() && isDepDir(name):
				deps, err := root.ReadDir(dir + "/" + name)
				if err != nil {
					return err
				}
				for _, d := range deps {
					// An essential unit is never masked, so whether it is enabled does not
					// matter (a mask of one is a top-level link, still read below; one the
					// policy names comes in through allow). Leaving them out halves the
					// names on a stock system: sysinit.target.wants is mostly systemd-*.
					if !isEssential(d.Name()) {
						add(d.Name())
					}
				}
			case e.IsDir():
				// drop-in directories (foo.service.d): not unit files
			case e.Type()&fs.ModeSymlink != 0:
				add(name)
				dest, err := root.Readlink(dir + "/" + name)
				if err != nil {
					return err
				}
				if dest != "/dev/null" { // a mask
					add(path.Base(dest))
				}
			default:
				add(name)
			}
		}
	}
	return nil
}

func isDepDir(name string) bool {
	for _, s := range []string{".wants", ".requires", ".upholds"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
