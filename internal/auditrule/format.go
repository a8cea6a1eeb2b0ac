package auditrule

import (
	"fmt"
	"strconv"
	"strings"
)

// String prints the rule exactly as `auditctl -l` (audit 3.0.9) prints it,
// with b64/b32 resolved against the host machine.
func (r *Rule) String() string { return r.format(HostMachine(), false) }

// FileText prints the rule for a rules file that auditctl -R must turn
// back into the same bytes. auditctl -l text is lossy in three ways that
// FileText avoids: it prints watches as -w (which auditctl turns into a
// path or a dir field depending on what is on disk at load time, and which
// it garbles when perm comes before the path), and it prints any arch as
// b64/b32. FileText always uses the -a form with -F fields in kernel order
// and names a foreign machine.
func (r *Rule) FileText() string { return r.format(HostMachine(), true) }

// Format prints the rule as `auditctl -l` would on the given host machine.
func (r *Rule) Format(host *Machine) string { return r.format(host, false) }

// isWatch is auditctl's test for printing a rule in -w form: only
// path/dir/perm/key fields, a perm field, and all syscalls.
func (r *Rule) isWatch() bool {
	perm := false
	for _, f := range r.Fields {
		switch f.Type {
		case FieldPerm:
			perm = true
		case FieldFilterKey, FieldDir, FieldWatch:
		default:
			return false
		}
	}
	if !r.takesSyscalls() {
		return perm
	}
	return perm && r.allSyscalls()
}

// takesSyscalls reports whether the rule's list uses the syscall mask.
func (r *Rule) takesSyscalls() bool {
	switch r.Filter {
	case FilterUser, FilterTask, FilterExclude, FilterFS:
		return false
	}
	return true
}

func (r *Rule) format(host *Machine, lossless bool) string {
	var b strings.Builder
	watch := !lossless && r.isWatch()
	mach := host
	if !watch {
		fmt.Fprintf(&b, "-a %s,%s", actionName(r.Action), filterName(r.Filter))
		for _, f := range r.Fields {
			if f.Type == FieldArch {
				b.WriteString(" -F arch" + opSymbol(f.Op) + archText(f.Value, host, lossless))
				mach = machineByELF(f.Value)
			}
		}
		if !lossless || !r.allSyscalls() || !r.hasPathOrExe() {
			// A file rule without -S gets every syscall (auditctl does the
			// same), so its file text leaves out the noise of "-S all". Other
			// rules keep it: auditctl wants a -S before a key there.
			r.formatSyscalls(&b, mach)
		}
	}
	for _, f := range r.Fields {
		if f.Type == FieldArch {
			continue
		}
		formatField(&b, f, watch, lossless)
	}
	return b.String()
}

func (r *Rule) hasPathOrExe() bool {
	for _, f := range r.Fields {
		switch f.Type {
		case FieldWatch, FieldDir, FieldExe:
			return true
		}
	}
	return false
}

func actionName(a Action) string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return strconv.FormatUint(uint64(a), 10)
}

func filterName(f Filter) string {
	if n, ok := filterNames[f]; ok {
		return n
	}
	return strconv.FormatUint(uint64(f), 10)
}

func opSymbol(op Op) string {
	if s, ok := opSymbols[op]; ok {
		return s
	}
	return "(null)"
}

// archText is auditctl's print_arch: b64/b32 by the 64-bit flag when the
// ELF value is a known machine, else hex.
func archText(v uint32, host *Machine, lossless bool) string {
	m := machineByELF(v)
	if m == nil {
		return fmt.Sprintf("0x%X", v)
	}
	if lossless && m != host && m != host.compat {
		return m.Name
	}
	if v&arch64Bit != 0 {
		return "b64"
	}
	return "b32"
}

func (r *Rule) formatSyscalls(b *strings.Builder, m *Machine) {
	if !r.takesSyscalls() {
		return
	}
	if r.allSyscalls() {
		b.WriteString(" -S all")
		return
	}
	n := 0
	for nr := 0; nr < 32*bitmaskWords; nr++ {
		if !r.HasSyscall(nr) {
			continue
		}
		if n == 0 {
			b.WriteString(" -S ")
		} else {
			b.WriteByte(',')
		}
		name := ""
		if m != nil {
			name = m.SyscallName(nr)
		}
		if name == "" {
			name = strconv.Itoa(nr)
		}
		b.WriteString(name)
		n++
	}
}

func formatField(b *strings.Builder, f Field, watch, lossless bool) {
	if lossless && f.Type != FieldFilterKey {
		// auditctl reads "\ " as a space in a word; auditctl -l prints the bare value.
		f.Str = escapeWord(f.Str)
	}
	info, known := fieldInfoOf(f.Type)
	op := opSymbol(f.Op)
	if !known {
		fmt.Fprintf(b, " f%d%s%d", f.Type, op, int32(f.Value))
		return
	}
	name := info.name
	switch f.Type {
	case FieldWatch, FieldDir:
		if watch {
			b.WriteString("-w " + f.Str)
		} else {
			b.WriteString(" -F " + name + "=" + f.Str)
		}
		return
	case FieldFilterKey:
		for _, k := range strings.Split(f.Str, string(rune(keySeparator))) {
			if k == "" {
				continue // strtok skips empty tokens
			}
			if lossless {
				k = escapeWord(k)
			}
			if watch {
				b.WriteString(" -k " + k)
			} else {
				b.WriteString(" -F key=" + k)
			}
		}
		return
	case FieldPerm:
		if watch {
			b.WriteString(" -p " + permText(f.Value))
		} else {
			b.WriteString(" -F perm=" + permText(f.Value))
		}
		return
	case FieldCompare:
		if a, c, ok := compareNames(f.Value); ok {
			b.WriteString(" -C " + a + op + c)
		}
		return
	}
	if f.Type == FieldExe && !lossless {
		op = "=" // auditctl -l prints exe= whatever the operator
	}
	var v string
	switch info.kind {
	case kindString:
		v = f.Str
	case kindMsgType:
		if n, ok := msgTypeNames()[f.Value]; ok {
			v = n
		} else {
			v = strconv.Itoa(int(int32(f.Value)))
		}
	case kindInode:
		v = strconv.FormatUint(uint64(f.Value), 10)
	case kindArg:
		v = fmt.Sprintf("0x%X", f.Value)
	case kindExit:
		e := int32(f.Value)
		abs := e
		if abs < 0 {
			abs = -abs
		}
		if n, ok := errnoPrinted()[int(abs)]; ok && e < 0 {
			v = "-" + n
		} else {
			v = strconv.Itoa(int(e))
		}
	case kindFSType:
		if n, ok := fsTypeNames[f.Value]; ok {
			v = n
		} else {
			v = strconv.Itoa(int(int32(f.Value)))
		}
	default:
		v = strconv.Itoa(int(int32(f.Value)))
	}
	b.WriteString(" -F " + name + op + v)
}

func permText(v uint32) string {
	s := ""
	if v&PermRead != 0 {
		s += "r"
	}
	if v&PermWrite != 0 {
		s += "w"
	}
	if v&PermExec != 0 {
		s += "x"
	}
	if v&PermAttr != 0 {
		s += "a"
	}
	return s
}
