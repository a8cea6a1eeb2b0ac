package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is a place in a policy file.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	if p.Col == 0 { // yaml syntax errors carry a line only
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// FieldError is one problem in a policy, at a place, about a field path like
// "firewall.allow[0].why".
type FieldError struct {
	Pos   Pos
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Field, e.Msg)
}

// Errors is every problem found in one policy, in file order. A policy is rejected whole:
// people fix a file faster when they see all its mistakes at once.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// posError lets a value decoder point at a node inside the one it was given (a CIDR in a list).
type posError struct {
	line, col int
	err       error
}

func (e *posError) Error() string { return e.err.Error() }

// source records where every decoded field path came from.
type source struct {
	file string
	pos  map[string]Pos
}

// decoder walks a yaml.Node tree into Go values by their `yaml` tags, strictly: unknown keys,
// duplicate keys and values of the wrong type are errors. yaml.v3's own Decode reports lines
// but not columns or field paths, and stops at the first error.
type decoder struct {
	src  *source
	errs Errors
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{
		Pos:   Pos{File: d.src.file, Line: n.Line, Col: n.Column},
		Field: path,
		Msg:   fmt.Sprintf(format, args...),
	})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		// Aliases can nest exponentially or form cycles; a policy never needs them.
		d.errorf(n, path, "YAML aliases (*name) are not supported in a policy")
		return
	}
	d.src.pos[path] = Pos{File: d.src.file, Line: n.Line, Col: n.Column}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if err := sd.decodeNode(n); err != nil {
			var pe *posError
			if errors.As(err, &pe) {
				d.errorf(&yaml.Node{Line: pe.line, Column: pe.col}, path, "%v", pe.err)
				return
			}
			d.errorf(n, path, "%v", err)
		}
		return
	}
	if isNull(n) {
		// `key:` with no value empties a list or map; a section keeps its defaults.
		if v.Kind() == reflect.Slice || v.Kind() == reflect.Map {
			v.Set(reflect.Zero(v.Type()))
		} else if v.Kind() != reflect.Struct {
			d.errorf(n, path, "missing value")
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping (key: value lines), got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fpath := join(path, key.Value)
		idx, ok := fields[key.Value]
		switch {
		case !ok:
			d.errorf(key, fpath, "unknown key (known: %s)", strings.Join(sortedKeys(fields), ", "))
		case seen[key.Value]:
			d.errorf(key, fpath, "duplicate key")
		default:
			seen[key.Value] = true
			d.decode(val, v.Field(idx), fpath)
		}
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "want a list, got %s", describe(n))
		return
	}
	d.forgetBelow(path)
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	d.forgetBelow(path)
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		kpath := join(path, key.Value)
		if out.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.errorf(key, kpath, "duplicate key")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, kpath)
		out.SetMapIndex(reflect.ValueOf(key.Value), elem)
	}
	v.Set(out)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a single value, got %s", describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		// Any scalar is text here: `umask: 027` means the string "027", not octal 23.
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.errorf(n, path, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Tag != "!!int" || err != nil {
			d.errorf(n, path, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, path, "internal: no decoder for %s", v.Type())
	}
}

// forgetBelow drops the recorded positions of a list's or map's old elements: a list given
// in a file replaces the default's whole, so errors must not point at the default's items.
func (d *decoder) forgetBelow(path string) {
	for k := range d.src.pos {
		if strings.HasPrefix(k, path+"[") || strings.HasPrefix(k, path+".") {
			delete(d.src.pos, k)
		}
	}
}

// yamlFields maps yaml key names to struct field indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = i
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
