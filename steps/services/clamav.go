package services

import (
	"bufio"
	"bytes"
	"path"
	"sort"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
)

// clamdUnit is ClamAV's daemon. Debian's and Ubuntu's unit (and its socket) start it only
// when the signatures are there: ConditionPathExistsGlob=/var/lib/clamav/main.{c[vl]d,inc}
// and the same for daily. Without them systemd skips clamd, and clamonacc, which waits for
// clamd's socket in its ExecStartPre, would wait until its start times out (95 s, a failed
// unit, a degraded system, a plan that is never empty).
const clamdUnit = "clamav-daemon.service"

// clamdUnits are the units that cannot do anything without clamd.
var clamdUnits = []string{clamdUnit, "clamav-clamonacc.service"}

// holdWithoutSignatures keeps clamd and clamonacc allowed (never masked) but neither enabled
// nor started when systemd would skip clamd: harden says why once (the clamav step's
// clamav.database-missing), and never waits on a start that cannot succeed. Once the
// signatures are there (the freshclam step runs this step again), both are started.
func holdWithoutSignatures(allow map[string]want, root fsroot.Root) {
	if clamdCanStart(root) {
		return
	}
	for _, name := range clamdUnits {
		if w, ok := allow[name]; ok && w.Ensure != EnsureAllowed {
			w.Ensure = EnsureAllowed
			w.Reason += " (held: systemd would skip " + clamdUnit + ", no signatures; see clamav.database-missing)"
			allow[name] = w
		}
	}
}

// unitDirs are systemd's system unit directories, the one that wins first.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system", "/lib/systemd/system"}

// clamdCanStart evaluates clamd's unit's ConditionPathExistsGlob= as systemd would: the unit
// file and its drop-ins as systemd merges them (an empty assignment resets the list, as the
// integration image's drop-in does), each glob looked up inside the root. A machine without
// the unit has nothing to hold.
func clamdCanStart(root fsroot.Root) bool {
	globs, found := unitConditions(root, clamdUnit, "ConditionPathExistsGlob")
	if !found {
		return true
	}
	anyTrigger, triggered := false, false
	for _, g := range globs {
		trigger := strings.HasPrefix(g, "|")
		g = strings.TrimPrefix(g, "|")
		negate := strings.HasPrefix(g, "!")
		ok := globExists(root, strings.TrimPrefix(g, "!")) != negate
		if trigger {
			anyTrigger = true
			triggered = triggered || ok
		} else if !ok {
			return false
		}
	}
	return !anyTrigger || triggered
}

// unitConditions returns the values of key in the [Unit] section of unit, its file and
// drop-ins merged in systemd's order, and whether the unit file exists.
func unitConditions(root fsroot.Root, unit, key string) ([]string, bool) {
	var files []string
	for _, dir := range unitDirs {
		if _, err := root.Stat(path.Join(dir, unit)); err == nil {
			files = append(files, path.Join(dir, unit))
			break
		}
	}
	if len(files) == 0 {
		return nil, false
	}
	// Drop-ins: by file name across directories (the first directory's file of a name wins),
	// applied in file-name order.
	dropins := map[string]string{}
	for i := len(unitDirs) - 1; i >= 0; i-- {
		dir := path.Join(unitDirs[i], unit+".d")
		entries, _ := root.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") {
				dropins[e.Name()] = path.Join(dir, e.Name())
			}
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, dropins[n])
	}
	var values []string
	for _, f := range files {
		data, err := root.ReadFile(f)
		if err != nil {
			continue
		}
		section := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "" || line[0] == '#' || line[0] == ';':
			case line[0] == '[':
				section = strings.Trim(line, "[]")
			case section == "Unit":
				k, v, ok := strings.Cut(line, "=")
				if !ok || strings.TrimSpace(k) != key {
					continue
				}
				if v = strings.TrimSpace(v); v == "" {
					values = nil // an empty assignment resets the list
				} else {
					values = append(values, v)
				}
			}
		}
	}
	return values, true
}

// globExists reports whether pattern (a glob with {a,b} alternatives, as systemd's
// GLOB_BRACE) matches anything inside the root.
func globExists(root fsroot.Root, pattern string) bool {
	for _, p := range expandBraces(pattern) {
		if globIn(root, "/", strings.Split(strings.TrimPrefix(p, "/"), "/")) {
			return true
		}
	}
	return false
}

func globIn(root fsroot.Root, dir string, parts []string) bool {
	if len(parts) == 0 {
		_, err := root.Stat(dir)
		return err == nil
	}
	if !strings.ContainsAny(parts[0], "*?[") {
		return globIn(root, path.Join(dir, parts[0]), parts[1:])
	}
	entries, _ := root.ReadDir(dir)
	for _, e := range entries {
		if ok, _ := path.Match(parts[0], e.Name()); ok && globIn(root, path.Join(dir, e.Name()), parts[1:]) {
			return true
		}
	}
	return false
}

// expandBraces expands the first {a,b,...} group, recursively.
func expandBraces(p string) []string {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}
	}
	end := strings.IndexByte(p[open:], '}')
	if end < 0 {
		return []string{p}
	}
	end += open
	var out []string
	for _, alt := range strings.Split(p[open+1:end], ",") {
		out = append(out, expandBraces(p[:open]+alt+p[end+1:])...)
	}
	return out
}
