package sshd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
)

// A view is the configuration as the host's sshd binary is pointed at it: the main config
// and everything it includes, as sshd will read them on the machine, with
//   - pending content in place of some files (a staged drop-in, validated before its
//     rename: the real Include glob never reads a staged file), and
//   - under a root other than /, every Include and HostKey path mapped into the root,
//     while the files harden writes keep the machine's paths (/etc/ssh/...).
//
// With root / and nothing pending the view is the real /etc/ssh/sshd_config: no copy.
type view struct {
	dir  string // temporary directory of the copies ("" when none)
	main string // host path to give sshd with -f
}

// pathKeywords name files sshd opens when it loads its config (sshd -t checks them).
var pathKeywords = map[string]bool{"hostkey": true, "hostcertificate": true}

// newView builds the view. pending maps machine paths to content that replaces (or
// creates) that file.
func newView(root fsroot.Root, pending map[string][]byte) (*view, error) {
	if isHostRoot(root) && len(pending) == 0 {
		return &view{main: MainConfig}, nil
	}
	dir, err := os.MkdirTemp("", "harden-sshd-view-")
	if err != nil {
		return nil, err
	}
	v := &view{dir: dir}
	b := &viewBuilder{root: root, pending: pending, dir: dir, done: map[string]string{}}
	if v.main, err = b.stage(MainConfig, 0); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Close removes the copies.
func (v *view) Close() {
	if v.dir != "" {
		os.RemoveAll(v.dir)
	}
}

// hostPath maps a machine path in the view's config to the host path sshd opens.
func (b *viewBuilder) hostPath(p string) string {
	if isHostRoot(b.root) || strings.HasPrefix(p, b.root.Dir()+"/") {
		return p
	}
	return b.root.Path(p)
}

func isHostRoot(r fsroot.Root) bool { return r.Dir() == "/" || r.Dir() == "" }

type viewBuilder struct {
	root    fsroot.Root
	pending map[string][]byte
	dir     string
	done    map[string]string // machine path -> copy
}

// stage writes the copy of one config file and returns its host path.
func (b *viewBuilder) stage(file string, depth int) (string, error) {
	if depth > 16 {
		return "", fmt.Errorf("%s: Include nested too deep", file)
	}
	if c, ok := b.done[file]; ok {
		return c, nil
	}
	data, ok := b.pending[file]
	if !ok {
		var err error
		if data, err = b.root.ReadFile(file); err != nil {
			return "", err
		}
	}
	copyPath := filepath.Join(b.dir, filepath.Clean("/"+file))
	b.done[file] = copyPath
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		kw, args := keyword(line)
		switch lk := strings.ToLower(kw); {
		case lk == "include":
			var files []string
			for _, pat := range strings.Fields(args) {
				matched, err := b.expand(strings.Trim(pat, `"`))
				if err != nil {
					return "", fmt.Errorf("%s: Include %s: %w", file, pat, err)
				}
				for _, m := range matched {
					c, err := b.stage(m, depth+1)
					if err != nil {
						return "", err
					}
					files = append(files, c)
				}
			}
			if len(files) == 0 {
				line = "# " + line + " (matches nothing)"
			} else {
				line = "Include " + strings.Join(files, " ")
			}
		case pathKeywords[lk] && path.IsAbs(strings.Trim(args, `"`)):
			line = kw + " " + b.hostPath(strings.Trim(args, `"`))
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(copyPath), 0o700); err != nil {
		return "", err
	}
	return copyPath, os.WriteFile(copyPath, out.Bytes(), 0o600)
}

// expand is the Include glob in the root, plus pending files it would match, in sshd's
// (lexical) order.
func (b *viewBuilder) expand(pat string) ([]string, error) {
	files, err := expand(b.root, pat)
	if err != nil {
		return nil, err
	}
	machinePat := pat
	if !path.IsAbs(machinePat) {
		machinePat = "/etc/ssh/" + machinePat
	}
	for p := range b.pending {
		if ok, _ := path.Match(machinePat, p); ok && !contains(files, p) {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	return files, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
