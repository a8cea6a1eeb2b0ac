package systemdtest

import (
	"bufio"
	"embed"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
)

// The Debian 12 server fixture. See testdata/README.md for how each file
// was made.
//
//go:embed testdata/*.txt
var fixtures embed.FS

// DebianServer is the unit list of a Debian 12 server: the unit files of a
// real bookworm system (mmdebstrap with the usual server packages, listed by
// `systemctl list-unit-files`), the runtime-only unit files a booted
// machine adds (generated, transient, enabled-runtime) and the loaded units
// with their active/sub state as `systemctl list-units --all` shows them
// after boot.
func DebianServer(t testing.TB) []UnitSpec {
	t.Helper()
	specs, err := LoadFixture("debian12")
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	return specs
}

// UbuntuServer is the unit list of the integration suite's Ubuntu 26.04 server image after
// boot, before harden changed any unit (testdata/README.md): socket-activated ssh.socket,
// auditd 4's audit-rules.service, sshd-keygen.service, ufw, cloud-init's units.
func UbuntuServer(t testing.TB) []UnitSpec {
	t.Helper()
	specs, err := LoadFixture("ubuntu2604")
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	return specs
}

// LoadFixture loads testdata/NAME-unit-files.txt, NAME-runtime-unit-files.txt
// (optional) and NAME-units.txt.
func LoadFixture(name string) ([]UnitSpec, error) {
	byName := map[string]*UnitSpec{}
	for _, file := range []string{name + "-unit-files.txt", name + "-runtime-unit-files.txt"} {
		r, err := fixtures.Open("testdata/" + file)
		if err != nil {
			if file == name+"-unit-files.txt" {
				return nil, err
			}
			continue
		}
		err = ParseUnitFiles(file, r, byName)
		r.Close()
		if err != nil {
			return nil, err
		}
	}
	r, err := fixtures.Open("testdata/" + name + "-units.txt")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := ParseUnits(name+"-units.txt", r, byName); err != nil {
		return nil, err
	}
	out := make([]UnitSpec, 0, len(byName))
	for _, s := range byName {
		if s.Path == "" {
			s.Path = defaultPath(s.Name, s.FileState)
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var fileStates = map[string]bool{"enabled": true, "enabled-runtime": true, "linked": true,
	"linked-runtime": true, "alias": true, "masked": true, "masked-runtime": true, "static": true,
	"disabled": true, "indirect": true, "generated": true, "transient": true, "bad": true}

// ParseUnitFiles reads `systemctl list-unit-files --no-legend` output,
// optionally with a third column, the unit file's path:
//
//	ssh.service  enabled  enabled  /lib/systemd/system/ssh.service
//
// The preset column is optional too (systemctl prints it since v245): a
// third field that is a path is taken as the path.
func ParseUnitFiles(file string, r io.Reader, into map[string]*UnitSpec) error {
	return eachLine(file, r, func(line int, f []string) error {
		if len(f) < 2 {
			return fmt.Errorf("%s:%d: want \"UNIT STATE [PRESET] [PATH]\", got %q", file, line, strings.Join(f, " "))
		}
		if !fileStates[f[1]] {
			return fmt.Errorf("%s:%d: unit %s: unknown unit file state %q", file, line, f[0], f[1])
		}
		s := spec(into, f[0])
		s.FileState = f[1]
		for _, x := range f[2:] {
			if strings.HasPrefix(x, "/") {
				s.Path = x
			}
		}
		return nil
	})
}

// ParseUnits reads `systemctl list-units --all --plain --no-legend` output:
//
//	ssh.service  loaded  active  running  OpenBSD Secure Shell server
func ParseUnits(file string, r io.Reader, into map[string]*UnitSpec) error {
	return eachLine(file, r, func(line int, f []string) error {
		if len(f) < 4 {
			return fmt.Errorf("%s:%d: want \"UNIT LOAD ACTIVE SUB DESCRIPTION\", got %q", file, line, strings.Join(f, " "))
		}
		s := spec(into, f[0])
		s.LoadState, s.ActiveState, s.SubState = f[1], f[2], f[3]
		s.Description = strings.Join(f[4:], " ")
		return nil
	})
}

func spec(into map[string]*UnitSpec, name string) *UnitSpec {
	s, ok := into[name]
	if !ok {
		s = &UnitSpec{Name: name}
		into[name] = s
	}
	return s
}

func eachLine(file string, r io.Reader, fn func(line int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := fn(n, strings.Fields(text)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
