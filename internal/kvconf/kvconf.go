// Package kvconf edits flat "key value" and "key = value" configuration files (clamd.conf,
// freshclam.conf, login.defs, pwquality.conf) key by key, the way a careful admin would with
// an editor: only the keys asked for change, every other line (comments, blank lines, keys
// harden does not own, their order and spacing) stays byte for byte as it was.
//
// It is shared by the clamav and accounts steps. It knows nothing about what the keys mean:
// no defaults, no validation of values beyond what would break the file's line structure.
//
// Repeated keys (clamd's OnAccessIncludePath) are a list: Get returns every value in file
// order and Set replaces the whole list. A key with no active line is inserted after its
// commented-out default ("# minlen = 8", "#LogSyslog false") when the file has one, so the
// setting lands next to its documentation; otherwise at the end.
package kvconf

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Syntax says how a file separates keys from values.
type Syntax struct {
	// Equals: "key = value" (pwquality.conf). Otherwise the key is the first word and the
	// value the rest of the line (clamd.conf, freshclam.conf, login.defs).
	Equals bool
	// NewSep joins key and value on lines kvconf writes that have no neighbour of the same
	// key to copy spacing from: " " for clamd.conf, "\t\t" for login.defs, " = " for pwquality.
	NewSep string
}

var (
	// Space is clamd.conf / freshclam.conf / login.defs syntax.
	Space = Syntax{NewSep: " "}
	// Equals is pwquality.conf syntax.
	Equals = Syntax{Equals: true, NewSep: " = "}
)

// line is one line of the file. Lines kvconf does not change keep raw as read.
type line struct {
	raw   string
	key   string // active setting's key; "" for comments, blank and other lines
	sep   string // raw text between key and value (spacing, "=")
	value string
	// commented is the key of a commented-out setting ("#LogSyslog false"), for placement.
	commented string
}

// File is a parsed configuration file.
type File struct {
	syntax       Syntax
	lines        []line
	finalNewline bool
}

// Parse reads data. It never fails: lines it does not understand are kept as they are, which
// is what an editor does; the program that reads the file judges them.
func Parse(data []byte, s Syntax) *File {
	f := &File{syntax: s}
	if len(data) == 0 {
		return f
	}
	text := string(data)
	f.finalNewline = strings.HasSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	raws := strings.Split(text, "\n")
	f.lines = make([]line, 0, len(raws)+8) // room for the keys a plan adds
	for _, raw := range raws {
		f.lines = append(f.lines, f.parseLine(raw))
	}
	return f
}

func (f *File) parseLine(raw string) line {
	l := line{raw: raw}
	body := strings.TrimLeft(raw, " \t")
	switch {
	case body == "" || body == "\r":
		return l
	case body[0] == '#':
		// A commented-out setting: "#Key value", "# key = value". Only the key is kept.
		inner := strings.TrimLeft(body[1:], " \t")
		if key, _, _, ok := f.split(inner); ok && inner != "" && inner[0] != '#' {
			l.commented = key
		}
		return l
	}
	if key, sep, value, ok := f.split(body); ok {
		l.key, l.sep, l.value = key, sep, value
	}
	return l
}

// split cuts body (no leading blanks) into key, separator and value.
func (f *File) split(body string) (key, sep, value string, ok bool) {
	if f.syntax.Equals {
		i := strings.IndexByte(body, '=')
		if i < 0 {
			// A key without a value ("enforce_for_root" in pwquality.conf).
			key = strings.TrimRight(body, " \t\r")
			return key, "", "", validKey(key, true)
		}
		key = strings.TrimRight(body[:i], " \t")
		rest := body[i+1:]
		value = strings.Trim(rest, " \t\r")
		sepEnd := i + 1 + (len(rest) - len(strings.TrimLeft(rest, " \t")))
		return key, body[len(key):sepEnd], value, validKey(key, true)
	}
	i := strings.IndexAny(body, " \t")
	if i < 0 {
		key = strings.TrimRight(body, "\r")
		return key, "", "", validKey(key, false)
	}
	key = body[:i]
	rest := body[i:]
	value = strings.Trim(rest, " \t\r")
	sepLen := len(rest) - len(strings.TrimLeft(rest, " \t"))
	return key, rest[:sepLen], value, validKey(key, false)
}

func validKey(key string, equals bool) bool {
	if key == "" || strings.ContainsAny(key, " \t\r\n#") {
		return false
	}
	return !equals || !strings.Contains(key, "=")
}

// Get returns the values of every active line with key, in file order (nil when none). A key
// written without a value yields "".
func (f *File) Get(key string) []string {
	var out []string
	for _, l := range f.lines {
		if l.key == key {
			out = append(out, l.value)
		}
	}
	return out
}

// Keys lists the active keys, each once, in file order.
func (f *File) Keys() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range f.lines {
		if l.key != "" && !seen[l.key] {
			seen[l.key] = true
			out = append(out, l.key)
		}
	}
	return out
}

// Set makes values the key's values, in order. Lines that already hold the right value at the
// right position are not touched (so a converged file is rewritten to the same bytes); the
// first lines of the key are rewritten in place, extra lines removed, missing values inserted
// after the key's last line (or its commented-out default, or at the end). Set with no values
// removes the key. A value "" writes the key alone. It reports whether anything changed.
func (f *File) Set(key string, values ...string) (bool, error) {
	if !validKey(key, f.syntax.Equals) {
		return false, fmt.Errorf("kvconf: invalid key %q", key)
	}
	for _, v := range values {
		if strings.ContainsAny(v, "\n\r") {
			return false, fmt.Errorf("kvconf: value of %s contains a line break: %q", key, v)
		}
		if v != strings.TrimSpace(v) {
			// It would not read back the same: the parser trims values.
			return false, fmt.Errorf("kvconf: value of %s has leading or trailing blanks: %q", key, v)
		}
	}
	changed := false
	// The lines are edited in place: kept shares f.lines' array and is only ever behind the
	// loop's read position (lines are dropped, never added, inside it). A login.defs is
	// ~400 lines and a plan sets a dozen keys; copying every line for every key was most of
	// the accounts step's memory.
	kept := f.lines[:0]
	n := 0
	insertAt := -1 // index in kept after which new values go
	sep := ""
	for _, l := range f.lines {
		if l.key != key {
			if l.commented == key && n == 0 {
				insertAt = len(kept)
			}
			kept = append(kept, l)
			continue
		}
		if sep == "" {
			sep = l.sep
		}
		if n >= len(values) {
			changed = true // drop surplus line
			n++
			continue
		}
		if l.value != values[n] {
			l = f.rewrite(l, values[n])
			changed = true
		}
		kept = append(kept, l)
		insertAt = len(kept) - 1
		n++
	}
	if n < len(values) {
		var add []line
		for _, v := range values[n:] {
			add = append(add, f.newLine(key, sep, v))
		}
		pos := len(kept)
		if insertAt >= 0 {
			pos = insertAt + 1
		}
		kept = slices.Insert(kept, pos, add...)
		changed = true
		f.finalNewline = true
	}
	f.lines = kept
	return changed, nil
}

// Delete removes every active line of key. It reports whether anything changed.
func (f *File) Delete(key string) bool {
	changed, _ := f.Set(key)
	return changed
}

// rewrite keeps a line's indentation and separator and replaces its value.
func (f *File) rewrite(l line, value string) line {
	indent := l.raw[:len(l.raw)-len(strings.TrimLeft(l.raw, " \t"))]
	sep := l.sep
	if sep == "" {
		sep = f.syntax.NewSep
	}
	return f.render(indent, l.key, sep, value)
}

func (f *File) newLine(key, sep, value string) line {
	if sep == "" {
		sep = f.syntax.NewSep
	}
	return f.render("", key, sep, value)
}

func (f *File) render(indent, key, sep, value string) line {
	raw := indent + key
	if value != "" {
		raw += sep + value
	} else {
		sep = ""
	}
	return line{raw: raw, key: key, sep: sep, value: value}
}

// Bytes renders the file. An unchanged File renders exactly the bytes it was parsed from.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	size := len(f.lines)
	for _, l := range f.lines {
		size += len(l.raw)
	}
	b.Grow(size)
	for i, l := range f.lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.raw)
	}
	if f.finalNewline && len(f.lines) > 0 {
		b.WriteByte('\n')
	}
	return b.Bytes()
}
