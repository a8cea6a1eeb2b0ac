package kernel

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// desired is the sysctl set the policy asks for, in file order: the baseline (when on), then
// fs.suid_dumpable when core dumps are off, the inotify limit on-access scanning needs, then
// kernel.sysctl (overriding a key already in the list, appending the others in key order so
// the file is stable).
func desired(p *policy.Policy) []setting {
	k := p.Kernel
	var out []setting
	if k.Baseline {
		out = baseline()
	}
	set := func(s setting) {
		for i := range out {
			if out[i].Key == s.Key {
				if s.Why == "" {
					s.Why = out[i].Why
				}
				out[i] = s
				return
			}
		}
		out = append(out, s)
	}
	if !k.CoreDumps {
		set(setting{Key: "fs.suid_dumpable", Value: "0", Reason: reasonCoreDumps,
			Why: "Core dumps are off (kernel.core_dumps: false): setuid programs never dump core."})
	}
	if c := p.ClamAV; c.Enabled && len(c.OnAccessPaths) > 0 {
		// Persisted here rather than set at run time by the clamav step, so the value is in
		// place from early boot and a second boot has nothing to change.
		set(setting{Key: "fs.inotify.max_user_watches", Value: strconv.Itoa(policy.OnAccessInotifyWatches),
			Reason: "clamav.on_access_paths", Why: "clamonacc watches every directory under the on-access paths (clamav.on_access_paths)."})
	}
	keys := make([]string, 0, len(k.Sysctl))
	for key := range k.Sysctl {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		set(setting{Key: key, Value: normalise(k.Sysctl[key]), Reason: "kernel.sysctl." + key})
	}
	return out
}

// normalise makes a sysctl value comparable: the kernel prints multi-value keys with tabs
// (ip_local_port_range "32768\t60999") and a trailing newline; the policy writes spaces.
func normalise(v string) string { return strings.Join(strings.Fields(v), " ") }

// live is one concrete /proc/sys file a setting resolves to.
type live struct {
	Name string // dotted sysctl name, as sysctl(8) prints it
	Path string // the file's path in procSys.root
	setting
}

// procSys is the live sysctl tree: the directory dir inside root.
type procSys struct {
	root fsroot.Root
	dir  string
}

// read reads a sysctl file and normalises its value.
func (ps procSys) read(p string) (string, error) {
	b, err := ps.root.ReadFile(p)
	if err != nil {
		return "", err
	}
	return normalise(string(b)), nil
}

// write writes a value the way sysctl(8) does: one write of the value and a newline, into
// the existing file (procfs files are not replaced; a test tree's plain files are truncated).
func (ps procSys) write(p, value string) error {
	return writeSysctl(ps.root, p, value)
}

func writeSysctl(root fsroot.Root, p, value string) error {
	return root.WriteExisting(p, []byte(value+"\n"))
}

// resolve maps settings to /proc/sys files under ps. A literal key resolves to its file
// whether or not it exists (a missing one is reported); a "*" segment expands to what exists
// now. A literal key beats a glob on the same file, as in systemd-sysctl.
func resolve(ps procSys, settings []setting, keep func(string) bool) ([]live, error) {
	var out []live
	index := map[string]int{}
	literal := map[string]bool{}
	listed := map[string][]fs.DirEntry{} // each directory is read once a plan, not once a key
	for _, s := range settings {
		paths, err := expand(ps, s.Key, listed)
		if err != nil {
			return nil, err
		}
		isGlob := hasGlob(s.Key)
		for _, p := range paths {
			name := dotted(ps.dir, p)
			if keep != nil && !keep(name) {
				continue
			}
			l := live{Name: name, Path: p, setting: s}
			i, seen := index[p]
			switch {
			case !seen:
				index[p] = len(out)
				out = append(out, l)
			case !isGlob || !literal[p]:
				out[i] = l // a later line wins, except a glob over a literal key
			}
			if !isGlob {
				literal[p] = true
			}
		}
	}
	return out, nil
}

func hasGlob(key string) bool { return strings.ContainsAny(key, "*?[") }

// expand turns a dotted key into paths, expanding glob segments against the directory.
// listed keeps the directories already read, for the next key.
func expand(ps procSys, key string, listed map[string][]fs.DirEntry) ([]string, error) {
	dirs := []string{ps.dir}
	for _, seg := range strings.Split(key, ".") {
		var next []string
		for _, d := range dirs {
			if !hasGlob(seg) {
				next = append(next, path.Join(d, seg))
				continue
			}
			entries, ok := listed[d]
			if !ok {
				var err error
				if entries, err = ps.root.ReadDir(d); err != nil {
					return nil, fmt.Errorf("sysctl %s: %w", key, err)
				}
				listed[d] = entries
			}
			for _, e := range entries {
				if ok, _ := path.Match(seg, e.Name()); ok {
					next = append(next, path.Join(d, e.Name()))
				}
			}
		}
		dirs = next
	}
	if !hasGlob(key) {
		return dirs, nil
	}
	// A glob only ever names files that exist and are files (not a directory that happens
	// to match an inner pattern).
	var files []string
	for _, p := range dirs {
		if fi, err := ps.root.Stat(p); err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	return files, nil
}

// dotted is sysctl(8)'s name for a /proc/sys path: "/" becomes "." and a "." inside a
// segment (an interface called eth0.100) becomes "/".
func dotted(dir, p string) string {
	rel, ok := strings.CutPrefix(p, strings.TrimSuffix(dir, "/")+"/")
	if !ok {
		return p
	}
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(s, ".", "/")
	}
	return strings.Join(segs, ".")
}
