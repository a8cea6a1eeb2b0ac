package systemdtest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteUnitDirs writes, under root, the links and files through which systemd would show the
// fake's unit files in their current states: a [Install] link in a .wants directory for an
// enabled unit (under /run for enabled-runtime), a /dev/null link for a mask, the link of a
// linked or alias unit, the file of a generated or transient one. Code that reads the unit
// directories to know which units to ask systemd about (steps/services) then sees the same
// machine the fake describes. Vendor files (static, disabled) are not written: nothing in
// those states is found through a link.
func (f *Fake) WriteUnitDirs(t testing.TB, root string) {
	t.Helper()
	link := func(target, name string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	file := func(name string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("[Unit]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range f.Units() {
		switch u.FileState {
		case "enabled":
			link(u.Path, etcUnitDir+"/"+wantedBy(u.Name)+".wants/"+u.Name)
		case "enabled-runtime":
			link(u.Path, runUnitDir+"/"+wantedBy(u.Name)+".wants/"+u.Name)
		case "masked":
			link("/dev/null", etcUnitDir+"/"+u.Name)
		case "masked-runtime":
			link("/dev/null", runUnitDir+"/"+u.Name)
		case "linked":
			link("/opt/"+u.Name, etcUnitDir+"/"+u.Name)
		case "linked-runtime":
			link("/opt/"+u.Name, runUnitDir+"/"+u.Name)
		case "alias":
			link("/lib/systemd/system/"+u.Name, etcUnitDir+"/"+u.Name)
		case "generated", "transient":
			file(u.Path)
		}
	}
}
