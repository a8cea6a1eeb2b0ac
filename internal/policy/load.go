package policy

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/harden-dev/harden/internal/fsroot"
)

// DefaultPath is where the machine's policy lives; without it the embedded default applies.
const DefaultPath = "/etc/harden/policy.yaml"

// EmbeddedName names the embedded default in errors and reports.
const EmbeddedName = "embedded:policy.yaml"

// Default returns a fresh copy of the embedded default policy. The default is tested to load,
// so a failure here is a build defect, not a runtime condition.
func Default() *Policy {
	embedded := embeddedOnce()
	p := embedded.clone()
	p.source = &source{file: EmbeddedName, pos: copyPos(embedded.source.pos)}
	return &p
}

// embeddedOnce is the embedded default, built once per process; callers get clones. It is
// compiled in (zdefault.go, generated from assets/policy.yaml and checked against it by
// TestEmbeddedDefaultIsGenerated): parsing and validating the YAML at run time cost every
// harden process ~4 ms on a slow VM, for a value that never changes.
var embeddedOnce = sync.OnceValue(embeddedDefault)

// Parse reads a policy document laid over base (nil: over the embedded default). On any problem it returns Errors,
// each with file:line:col and the field path, and no policy.
func Parse(file string, data []byte, base *Policy) (*Policy, error) {
	if base == nil {
		// parseOver copies its base, so the shared parsed default needs no copy of its own.
		base = embeddedOnce()
	}
	return parseOver(file, data, base)
}

// parseOver decodes data over base, or over zero values when base is nil (the embedded
// default itself).
func parseOver(file string, data []byte, base *Policy) (*Policy, error) {
	p := &Policy{source: &source{file: file, pos: map[string]Pos{}}}
	if base != nil {
		*p = base.clone()
		p.source = &source{file: file, pos: copyPos(base.source.pos)}
		p.Version = 0 // every file states its version
		delete(p.source.pos, "version")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(file, err)}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{Pos: Pos{File: file}, Msg: "empty policy: want at least `version: 1`"}}
	}
	d := &decoder{src: p.source}
	d.decode(doc.Content[0], reflect.ValueOf(p).Elem(), "")
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	if errs := validate(p); len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// yamlLineRE is compiled on first use: only a policy with a YAML syntax error needs it.
var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// syntaxError turns yaml.v3's "yaml: line N: msg" into a placed error. yaml.v3 does not
// report a column for syntax errors, so the position is file:line.
func syntaxError(file string, err error) *FieldError {
	m := yamlLineRE().FindStringSubmatch(err.Error())
	if m == nil {
		return &FieldError{Pos: Pos{File: file}, Msg: "YAML syntax: " + err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	return &FieldError{Pos: Pos{File: file, Line: line}, Msg: "YAML syntax: " + m[2]}
}

// FileCheck says whether LoadFile checks the file's owner and mode. Production always does;
// `policy validate --content-only` lints a policy in a repository checkout.
type FileCheck bool

const (
	CheckOwner FileCheck = true
	SkipOwner  FileCheck = false
)

// LoadFile reads and parses a policy file (a path on this machine) over the embedded
// default. With CheckOwner the file must be one only root could have written (see LoadIn):
// whoever can write the policy can open the firewall.
func LoadFile(path string, check FileCheck) (*Policy, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: path}, Msg: err.Error()}}
	}
	return load(fsroot.New("/"), abs, path, check)
}

// LoadIn reads and parses the policy at name inside root (the machine's policy under
// --root). With CheckOwner it is refused unless only root could have written it: the file
// is opened without following a link (a link there is refused), checked with fstat on the
// descriptor that is then read (so no swap between check and read), and every directory
// on the way, the root included, must be owned by root and not writable by group or
// others. A sticky directory owned by root (/tmp) passes: there only the owner of an entry
// may rename or remove it, and the entries on the way are checked to be root's.
func LoadIn(root fsroot.Root, name string, check FileCheck) (*Policy, error) {
	return load(root, name, name, check)
}

func load(root fsroot.Root, name, display string, check FileCheck) (*Policy, error) {
	fail := func(err error) (*Policy, error) {
		return nil, Errors{{Pos: Pos{File: display}, Msg: err.Error()}}
	}
	var f *os.File
	var err error
	if check == CheckOwner {
		f, err = root.OpenVerified(name, trustedDir)
		if err == nil {
			err = trustedFile(f)
		}
	} else {
		f, err = root.Open(name)
	}
	if f != nil {
		defer f.Close()
	}
	if err != nil {
		return fail(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fail(err)
	}
	return Parse(display, data, nil)
}

// trustedDir accepts a directory only root can change the entries of.
func trustedDir(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read the owner of %s", dir)
	}
	if st.Uid != 0 {
		return fmt.Errorf("refused: %s is owned by uid %d, not root", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("refused: %s is writable by group or others (mode %04o)", dir, fi.Mode().Perm())
	}
	return nil
}

// trustedFile checks the open policy file itself.
func trustedFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("refused: %s is not a regular file", f.Name())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read the owner of %s", f.Name())
	}
	if st.Uid != 0 {
		return fmt.Errorf("refused: %s is owned by uid %d, not root", f.Name(), st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("refused: %s is writable by group or others (mode %04o)", f.Name(), fi.Mode().Perm())
	}
	return nil
}

// File is the policy's source: a path or EmbeddedName.
func (p *Policy) File() string { return p.source.file }

// IsEmbedded reports whether this is the embedded default, unchanged.
func (p *Policy) IsEmbedded() bool { return p.source.file == EmbeddedName }

// Where returns the position of a field path (e.g. "firewall.allow[0].why"), or of its
// nearest recorded parent, so errors found after loading still point into the file.
func (p *Policy) Where(field string) Pos {
	for f := field; ; {
		if pos, ok := p.source.pos[f]; ok {
			return pos
		}
		i := lastSep(f)
		if i < 0 {
			return Pos{File: p.source.file}
		}
		f = f[:i]
	}
}

func lastSep(f string) int {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i] == '.' || f[i] == '[' {
			return i
		}
	}
	return -1
}

// YAML renders the effective policy; the output is itself a valid policy.
func (p *Policy) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// clone deep-copies the policy, so a base is never aliased: nothing in the copy shares a
// slice or a map with p. It walks the value with reflection rather than listing fields, so
// a field added to the schema is copied too (TestCloneSharesNothing checks every kind).
// The copy has no source; callers set their own.
func (p *Policy) clone() Policy {
	out := *p
	out.source = nil
	deepCopy(reflect.ValueOf(&out).Elem())
	return out
}

// deepCopy replaces, in place, every slice and map reachable from v through exported
// fields by a copy. Unexported fields are values with nothing mutable behind them
// (netip.Prefix) or set by the caller (source).
func deepCopy(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			if t.Field(i).IsExported() {
				deepCopy(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := 0; i < c.Len(); i++ {
			deepCopy(c.Index(i))
		}
		v.Set(c)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			deepCopy(e)
			c.SetMapIndex(it.Key(), e)
		}
		v.Set(c)
	case reflect.Pointer, reflect.Interface:
		panic("policy: deepCopy cannot copy a " + v.Type().String() + " field; give it a case")
	}
}

func copyPos(m map[string]Pos) map[string]Pos {
	out := make(map[string]Pos, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
