package auditrule

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Field is one -F (or -C, -k, -p, -w) condition of a rule.
type Field struct {
	Type  uint32 // a Field* constant
	Op    Op
	Value uint32 // for string fields: set from len(Str) when encoding
	Str   string // the value of a string field (path, dir, exe, key, subj_*, obj_*)
}

// Rule is one kernel audit rule: struct audit_rule_data in Go.
type Rule struct {
	Filter  Filter
	Prepend bool // added with -A: goes to the head of its list
	Action  Action
	Mask    [bitmaskWords]uint32 // syscall bitmap: word nr/32, bit nr%32
	Fields  []Field

	// Line is the line of the rules file the rule came from (0 if none).
	Line int
}

// headerSize is sizeof(struct audit_rule_data) without buf.
const headerSize = 4*3 + 4*bitmaskWords + 3*4*MaxFields + 4

var errShort = errors.New("audit rule: short buffer")

// Marshal encodes the rule as the kernel's struct audit_rule_data, in host
// byte order, exactly as auditctl sends it.
func (r *Rule) Marshal() ([]byte, error) {
	if len(r.Fields) > MaxFields {
		return nil, fmt.Errorf("audit rule: %d fields, at most %d", len(r.Fields), MaxFields)
	}
	buflen := 0
	for _, f := range r.Fields {
		if isStringField(f.Type) {
			buflen += len(f.Str)
		}
	}
	b := make([]byte, headerSize+buflen)
	ne := binary.NativeEndian
	flags := uint32(r.Filter)
	if r.Prepend {
		flags |= filterPrepend
	}
	ne.PutUint32(b[0:], flags)
	ne.PutUint32(b[4:], uint32(r.Action))
	ne.PutUint32(b[8:], uint32(len(r.Fields)))
	off := 12
	for _, w := range r.Mask {
		ne.PutUint32(b[off:], w)
		off += 4
	}
	fieldsOff, valuesOff, flagsOff := off, off+4*MaxFields, off+8*MaxFields
	buf := b[headerSize:headerSize]
	for i, f := range r.Fields {
		v := f.Value
		if isStringField(f.Type) {
			v = uint32(len(f.Str))
			buf = append(buf, f.Str...)
		}
		ne.PutUint32(b[fieldsOff+4*i:], f.Type)
		ne.PutUint32(b[valuesOff+4*i:], v)
		ne.PutUint32(b[flagsOff+4*i:], uint32(f.Op))
	}
	ne.PutUint32(b[headerSize-4:], uint32(buflen))
	return b, nil
}

// Unmarshal decodes a struct audit_rule_data as the kernel lists it.
func Unmarshal(b []byte) (*Rule, error) {
	if len(b) < headerSize {
		return nil, errShort
	}
	ne := binary.NativeEndian
	r := &Rule{}
	flags := ne.Uint32(b[0:])
	r.Filter = Filter(flags & filterMask)
	r.Prepend = flags&filterPrepend != 0
	if flags&^(filterMask|filterPrepend) != 0 {
		return nil, fmt.Errorf("audit rule: unknown flags 0x%x", flags)
	}
	r.Action = Action(ne.Uint32(b[4:]))
	n := ne.Uint32(b[8:])
	if n > MaxFields {
		return nil, fmt.Errorf("audit rule: field count %d over %d", n, MaxFields)
	}
	off := 12
	for i := range r.Mask {
		r.Mask[i] = ne.Uint32(b[off:])
		off += 4
	}
	fieldsOff, valuesOff, flagsOff := off, off+4*MaxFields, off+8*MaxFields
	buflen := int(ne.Uint32(b[headerSize-4:]))
	if len(b) < headerSize+buflen {
		return nil, fmt.Errorf("audit rule: buflen %d but only %d bytes", buflen, len(b)-headerSize)
	}
	buf := b[headerSize : headerSize+buflen]
	r.Fields = make([]Field, n)
	for i := range r.Fields {
		f := Field{
			Type:  ne.Uint32(b[fieldsOff+4*i:]) &^ uint32(opAll),
			Value: ne.Uint32(b[valuesOff+4*i:]),
			Op:    Op(ne.Uint32(b[flagsOff+4*i:]) & uint32(opAll)),
		}
		if isStringField(f.Type) {
			if int(f.Value) > len(buf) {
				return nil, fmt.Errorf("audit rule: string field %d overruns buf", i)
			}
			f.Str = string(buf[:f.Value])
			buf = buf[f.Value:]
		}
		r.Fields[i] = f
	}
	return r, nil
}

// Normalize returns the rule as the kernel will list it after adding it.
// The kernel drops the prepend flag, and it turns the syscall-class bits at the top of the mask (the last
// 16 bits) into the syscalls of those classes and clears them; auditctl
// never sets a class on purpose, only through "all".
func (r *Rule) Normalize() *Rule {
	n := *r
	n.Fields = append([]Field(nil), r.Fields...)
	n.Line = 0
	// The kernel honours -A when it inserts the rule and then forgets it:
	// listed rules never carry the prepend flag.
	n.Prepend = false
	for i := range n.Fields {
		if isStringField(n.Fields[i].Type) {
			n.Fields[i].Value = uint32(len(n.Fields[i].Str))
		}
	}
	if n.Filter != FilterTask && n.Mask[bitmaskWords-1]&0xFFFF0000 != 0 {
		// Classes hold real syscall numbers far below 2016, so only the
		// class bits themselves disappear from the last word.
		n.Mask[bitmaskWords-1] &^= 0xFFFF0000
	}
	return &n
}

// Key identifies a rule the way the kernel does when it compares rules
// (delete, duplicate check): two rules have the same key exactly when their
// normalized bytes (Normalize, then Marshal) are the same. It holds the
// same words without the marshalled struct's padding of unused field slots
// (~1 KB a rule, most of it zeros; the field count is in both), and is built
// without copying the rule: the audit step keys every rule of every plan.
func (r *Rule) Key() string {
	if len(r.Fields) > MaxFields {
		return "" // as Marshal: no kernel rule has this key
	}
	buflen := 0
	for _, f := range r.Fields {
		if isStringField(f.Type) {
			buflen += len(f.Str)
		}
	}
	b := make([]byte, 0, 4*(3+bitmaskWords+3*len(r.Fields)+1)+buflen)
	ne := binary.NativeEndian
	b = ne.AppendUint32(b, uint32(r.Filter)) // never the prepend flag: the kernel forgets it
	b = ne.AppendUint32(b, uint32(r.Action))
	b = ne.AppendUint32(b, uint32(len(r.Fields)))
	for i, w := range r.Mask {
		if i == bitmaskWords-1 && r.Filter != FilterTask {
			w &^= 0xFFFF0000 // the class bits, as Normalize clears them
		}
		b = ne.AppendUint32(b, w)
	}
	for _, f := range r.Fields {
		v := f.Value
		if isStringField(f.Type) {
			v = uint32(len(f.Str))
		}
		b = ne.AppendUint32(b, f.Type)
		b = ne.AppendUint32(b, v)
		b = ne.AppendUint32(b, uint32(f.Op))
	}
	b = ne.AppendUint32(b, uint32(buflen))
	for _, f := range r.Fields {
		if isStringField(f.Type) {
			b = append(b, f.Str...)
		}
	}
	return string(b)
}

// Equal reports whether two rules are the same kernel rule.
func (r *Rule) Equal(o *Rule) bool { return r.Key() == o.Key() }

// HasSyscall reports whether syscall nr is in the rule's mask.
func (r *Rule) HasSyscall(nr int) bool {
	return nr >= 0 && nr < 32*bitmaskWords && r.Mask[nr/32]&(1<<(nr%32)) != 0
}

func (r *Rule) setSyscall(nr int) {
	r.Mask[nr/32] |= 1 << (nr % 32)
}

func (r *Rule) setAllSyscalls() {
	for i := range r.Mask {
		r.Mask[i] = ^uint32(0)
	}
}

// allSyscalls reports the "-S all" test auditctl uses: the first 63 words
// set (the last word holds the kernel's class bits).
func (r *Rule) allSyscalls() bool {
	for _, w := range r.Mask[:bitmaskWords-1] {
		if w != ^uint32(0) {
			return false
		}
	}
	return true
}
