package auditrule

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
)

// Error is a rules-file error: where it is and which word is wrong.
type Error struct {
	File  string // "" when parsing a single rule
	Line  int    // 1-based; 0 when parsing a single rule
	Token string // the offending word, if there is one
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Warning is something auditctl warns about but loads anyway.
type Warning struct {
	Line int
	Msg  string
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("line %d: %s", w.Line, w.Msg)
	}
	return w.Msg
}

// ControlKind names a control line of a rules file.
type ControlKind int

// Control lines.
const (
	DeleteAll         ControlKind = iota // -D
	SetEnabled                           // -e N
	SetFailure                           // -f N
	SetBacklogLimit                      // -b N
	SetRateLimit                         // -r N
	SetBacklogWait                       // --backlog_wait_time N
	LoginUIDImmutable                    // --loginuid-immutable
	IgnoreErrors                         // -i
	ContinueOnError                      // -c
)

// Control is one control setting of a rules file, in file order.
type Control struct {
	Kind  ControlKind
	Value uint32
	Line  int
}

// File is a parsed rules file: control settings and rules, each in the
// order written. Controls and rules interleave in a real file (-D first,
// -e 2 last); Items keeps that order.
type File struct {
	Controls []Control
	Rules    []*Rule
	Warnings []Warning
}

// Parser parses auditctl rule text. The zero value parses for the machine
// it runs on, looks up -w paths and user/group names on this host.
type Parser struct {
	// Machine resolves b64/b32 and -S without an arch (default: the host).
	Machine *Machine
	// IsDir tells whether a -w path is a directory, which auditctl turns
	// into a dir= field (default: stat on this host).
	IsDir func(path string) bool
	// LookupUser and LookupGroup resolve names in uid/gid fields.
	LookupUser  func(name string) (uint32, error)
	LookupGroup func(name string) (uint32, error)
}

func (p *Parser) machine() *Machine {
	if p.Machine != nil {
		return p.Machine
	}
	return HostMachine()
}

// ParseFile parses a whole rules file. It stops at the first error, which
// names the file, the line and the word; a file with an error yields no
// rules at all.
func (p *Parser) ParseFile(name string, r io.Reader) (*File, error) {
	f := &File{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if err := p.parseLine(f, line, sc.Text()); err != nil {
			err.File = name
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: name, Line: line + 1, Msg: err.Error()}
	}
	return f, nil
}

// ParseString parses rules-file text.
func (p *Parser) ParseString(name, text string) (*File, error) {
	return p.ParseFile(name, strings.NewReader(text))
}

// ParseRule parses one line that must hold exactly one rule.
func (p *Parser) ParseRule(text string) (*Rule, error) {
	f := &File{}
	if err := p.parseLine(f, 0, text); err != nil {
		return nil, err
	}
	if len(f.Rules) != 1 || len(f.Controls) != 0 {
		return nil, &Error{Msg: fmt.Sprintf("%q is not a single audit rule", text)}
	}
	return f.Rules[0], nil
}

// lineState is auditctl's per-line state (reset_vars).
type lineState struct {
	p        *Parser
	line     int
	rule     Rule
	listSet  bool // -a, -A or -w seen
	actSet   bool
	elf      uint32 // arch for -S; 0 = not chosen yet
	syscall  bool   // _audit_syscalladded
	perm     bool   // _audit_permadded
	exe      bool   // _audit_exeadded
	fstype   bool   // _audit_filterfsadded
	key      string
	hasKey   bool
	warnings []Warning
}

func (s *lineState) errf(token, format string, args ...any) *Error {
	return &Error{Line: s.line, Token: token, Msg: fmt.Sprintf(format, args...)}
}

func (p *Parser) parseLine(f *File, line int, text string) *Error {
	words, err := splitWords(text)
	if err != nil {
		return &Error{Line: line, Msg: err.Error()}
	}
	if len(words) == 0 {
		return nil
	}
	opts, extra, err := getopt(words)
	if err != nil {
		return &Error{Line: line, Token: words[0], Msg: err.Error()}
	}
	if len(extra) > 0 {
		if strings.HasPrefix(extra[0], "#") {
			return &Error{Line: line, Token: extra[0], Msg: "auditctl does not allow a comment after a rule: put it on its own line"}
		}
		return &Error{Line: line, Token: extra[0], Msg: fmt.Sprintf("unexpected word %q: not an option nor an option's value", extra[0])}
	}
	s := &lineState{p: p, line: line}
	var controls []Control
	for _, o := range opts {
		c, isControl, e := s.control(o, len(opts))
		if e != nil {
			return e
		}
		if isControl {
			if c != nil {
				controls = append(controls, *c)
			}
			continue
		}
		if e := s.ruleOption(o); e != nil {
			return e
		}
	}
	r, e := s.finish()
	if e != nil {
		return e
	}
	f.Controls = append(f.Controls, controls...)
	f.Warnings = append(f.Warnings, s.warnings...)
	if r != nil {
		f.Rules = append(f.Rules, r)
	}
	return nil
}

// control handles the options that are settings, not rule parts.
func (s *lineState) control(o option, nopts int) (*Control, bool, *Error) {
	c := &Control{Line: s.line}
	switch o.name {
	case "D":
		if nopts != 1 {
			return nil, true, s.errf(o.word, "-D must stand alone on its line")
		}
		c.Kind = DeleteAll
	case "e", "f":
		if o.arg != "0" && o.arg != "1" && o.arg != "2" {
			return nil, true, s.errf(o.arg, "-%s must be 0, 1 or 2, not %q", o.name, o.arg)
		}
		c.Kind = map[string]ControlKind{"e": SetEnabled, "f": SetFailure}[o.name]
		c.Value = uint32(o.arg[0] - '0')
	case "b", "r", "backlog_wait_time":
		v, err := parseUnsigned(o.arg)
		if err != nil {
			return nil, true, s.errf(o.arg, "%s must be a number: %v", o.word, err)
		}
		c.Kind = map[string]ControlKind{"b": SetBacklogLimit, "r": SetRateLimit, "backlog_wait_time": SetBacklogWait}[o.name]
		c.Value = v
	case "loginuid-immutable":
		c.Kind = LoginUIDImmutable
	case "i":
		c.Kind = IgnoreErrors
	case "c":
		c.Kind = ContinueOnError
	case "s", "l", "v", "h", "m", "R", "q", "t", "W", "d", "reset-lost", "reset_backlog_wait_time_actual", "signal":
		return nil, true, s.errf(o.word, "option %s is not allowed in a rules file", o.word)
	default:
		return nil, false, nil
	}
	return c, true, nil
}

func (s *lineState) ruleOption(o option) *Error {
	switch o.name {
	case "a", "A":
		return s.list(o)
	case "S":
		return s.syscalls(o)
	case "F":
		if !s.listSet {
			return s.errf(o.arg, "-F %s comes before -a/-A: the list must be given first", o.arg)
		}
		if v, ok := strings.CutPrefix(o.arg, "key="); ok {
			return s.addKey(o.arg, v)
		}
		return s.field(o.arg)
	case "C":
		return s.compare(o.arg)
	case "w":
		return s.watch(o.arg)
	case "k":
		if !(s.syscall || s.perm || s.exe || s.fstype) || !s.listSet {
			return s.errf(o.arg, "-k %s needs a watch or a syscall rule before it", o.arg)
		}
		return s.addKey(o.arg, o.arg)
	case "p":
		return s.perms(o.arg)
	}
	return s.errf(o.word, "unexpected option %s", o.word)
}

// list handles -a/-A LIST,ACTION (either order).
func (s *lineState) list(o option) *Error {
	if strings.Contains(o.arg, "task") && s.syscall {
		return s.errf(o.arg, "syscalls cannot be audited on the task list")
	}
	if s.listSet {
		return s.errf(o.word, "only one -a/-A/-w per rule")
	}
	first, second, ok := strings.Cut(o.arg, ",")
	if !ok || strings.Contains(second, ",") {
		return s.errf(o.arg, "-%s wants LIST,ACTION (e.g. always,exit), not %q", o.name, o.arg)
	}
	act, isAct := actionByName(first)
	filt, isFilt := filterByName(first)
	switch {
	case isAct:
		filt, isFilt = filterByName(second)
	case isFilt:
		act, isAct = actionByName(second)
	default:
		return s.errf(o.arg, "unknown list or action %q in %q", first, o.arg)
	}
	if !isFilt || !isAct {
		return s.errf(o.arg, "-%s wants one list (exit, user, task, exclude, filesystem) and one action (always, never): %q", o.name, o.arg)
	}
	if act == ActionPossible {
		return s.errf(o.arg, "action possible is deprecated: use always or never")
	}
	if filt == FilterEntry {
		return s.errf(o.arg, "the entry list is deprecated: use exit")
	}
	s.rule.Filter, s.rule.Action, s.rule.Prepend = filt, act, o.name == "A"
	s.listSet, s.actSet = true, true
	return nil
}

func actionByName(n string) (Action, bool) {
	for a, name := range actionNames {
		if name == n {
			return a, true
		}
	}
	return 0, false
}

func filterByName(n string) (Filter, bool) {
	for f, name := range filterNames {
		if name == n {
			return f, true
		}
	}
	return 0, false
}

// syscalls handles -S NAME[,NAME...], numbers and "all".
func (s *lineState) syscalls(o option) *Error {
	if s.listSet {
		switch s.rule.Filter {
		case FilterTask, FilterUser, FilterFS, FilterExclude:
			return s.errf(o.arg, "syscalls cannot be audited on the %s list", filterNames[s.rule.Filter])
		}
	}
	unknownArch := s.elf == 0
	if unknownArch {
		s.elf = s.p.machine().ELF
	}
	m := machineByELF(s.elf)
	if m == nil {
		return s.errf(o.arg, "no syscall table for arch 0x%x", s.elf)
	}
	if err := addSyscalls(&s.rule, m, o.arg); err != nil {
		return s.errf(o.arg, "%s", err.Error())
	}
	s.syscall = true
	if unknownArch && s.listSet {
		s.checkMismatch(o.arg)
	}
	return nil
}

func addSyscalls(r *Rule, m *Machine, list string) error {
	for _, name := range strings.Split(list, ",") {
		if name == "all" {
			r.setAllSyscalls()
			continue
		}
		nr, ok := m.Syscall(name)
		if !ok && name != "" && name[0] >= '0' && name[0] <= '9' {
			v, err := parseUnsigned(name)
			if err != nil {
				return fmt.Errorf("bad syscall number %q: %v", name, err)
			}
			nr, ok = int(v), true
		}
		if !ok {
			return fmt.Errorf("unknown syscall %q for %s", name, m.Name)
		}
		if nr >= 32*bitmaskWords {
			return fmt.Errorf("syscall number %d is over %d", nr, 32*bitmaskWords-1)
		}
		r.setSyscall(nr)
	}
	return nil
}

// checkMismatch copies auditctl's warning for -S without an arch: the
// names mean other syscalls in the host's 32-bit ABI.
func (s *lineState) checkMismatch(list string) {
	compat := s.p.machine().compat
	if compat == nil {
		return
	}
	var tmp Rule
	for _, name := range strings.Split(list, ",") {
		_ = addSyscalls(&tmp, compat, name) // unknown names are skipped, as in auditctl
	}
	if tmp.Mask != s.rule.Mask {
		s.warnings = append(s.warnings, Warning{Line: s.line,
			Msg: "32/64 bit syscall mismatch, you should specify an arch (-F arch=b64 or b32): the rule has no arch field and matches these numbers in every ABI"})
	}
}

func (s *lineState) addKey(word, k string) *Error {
	total := len(s.key) + len(k)
	if s.hasKey {
		total++
	}
	if total > MaxKeyLen {
		return s.errf(word, "key %q makes the rule's keys longer than %d bytes", k, MaxKeyLen)
	}
	if strings.ContainsRune(k, keySeparator) {
		return s.errf(word, "key %q holds the key separator \\x01", k)
	}
	for _, op := range []string{"!=", ">=", "<=", "&="} {
		if strings.Contains(k, op) {
			return s.errf(word, "key %q holds %q, which auditctl would read as an operator", k, op)
		}
	}
	if s.hasKey {
		s.key += string(rune(keySeparator))
	}
	s.key += k
	s.hasKey = true
	return nil
}

// watch handles -w PATH: a path (or, if it is a directory now, dir) field
// plus perm=rwxa, on exit,always with all syscalls.
func (s *lineState) watch(p string) *Error {
	if s.listSet {
		return s.errf(p, "-w cannot be combined with -a/-A")
	}
	if len(p) >= pathMax {
		return s.errf(p, "watch path is longer than %d bytes", pathMax-1)
	}
	if !strings.HasPrefix(p, "/") {
		return s.errf(p, "watch path %q must start with /", p)
	}
	if len(path.Base(p)) > nameMax {
		return s.errf(p, "the last element of watch path %q is longer than %d bytes", p, nameMax)
	}
	for _, op := range []string{"!=", ">=", "<=", "&="} {
		if strings.Contains(p, op) {
			// Such a path cannot be written as -F path=... (auditctl would
			// read the operator), so it could not go into a rules file.
			return s.errf(p, "watch path %q holds %q, which auditctl would read as an operator", p, op)
		}
	}
	if strings.Contains(p, "..") {
		s.warnings = append(s.warnings, Warning{s.line, fmt.Sprintf("watch %q: relative path notation is not supported", p)})
	}
	if strings.ContainsAny(p, "*?") {
		s.warnings = append(s.warnings, Warning{s.line, fmt.Sprintf("watch %q: wildcard notation is not supported", p)})
	}
	if len(s.rule.Fields) > 0 {
		return s.errf(p, "-w must come before any field")
	}
	for len(p) > 2 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	typ := FieldWatch
	if s.isDir(p) {
		typ = FieldDir
	}
	s.rule = Rule{Filter: FilterExit, Action: ActionAlways}
	s.rule.setAllSyscalls()
	s.rule.Fields = []Field{
		{Type: typ, Op: OpEqual, Str: p},
		{Type: FieldPerm, Op: OpEqual, Value: PermRead | PermWrite | PermExec | PermAttr},
	}
	s.listSet, s.actSet, s.syscall, s.perm = true, true, true, true
	return nil
}

func (s *lineState) isDir(p string) bool {
	if s.p.IsDir != nil {
		return s.p.IsDir(p)
	}
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// perms handles -p rwxa: it sets (or adds) the rule's perm field.
func (s *lineState) perms(v string) *Error {
	if !s.listSet {
		return s.errf(v, "-p %s needs a watch (-w) or a rule (-a) before it", v)
	}
	val, err := parsePerm(v)
	if err != nil {
		return s.errf(v, "%v", err)
	}
	if len(s.rule.Fields) == 0 {
		return s.errf(v, "-p %s needs a path or dir field before it", v)
	}
	for i := range s.rule.Fields {
		if s.rule.Fields[i].Type == FieldPerm {
			s.rule.Fields[i].Value = val
			s.perm = true
			return nil
		}
	}
	if len(s.rule.Fields) >= MaxFields-1 {
		return s.errf(v, "too many fields (at most %d)", MaxFields-1)
	}
	s.rule.Fields = append(s.rule.Fields, Field{Type: FieldPerm, Op: OpEqual, Value: val})
	s.perm = true
	return nil
}

func parsePerm(v string) (uint32, error) {
	if len(v) > 4 {
		return 0, fmt.Errorf("permission %q is too long (letters r, w, x, a)", v)
	}
	var val uint32
	for _, c := range strings.ToLower(v) {
		switch c {
		case 'r':
			val |= PermRead
		case 'w':
			val |= PermWrite
		case 'x':
			val |= PermExec
		case 'a':
			val |= PermAttr
		default:
			return 0, fmt.Errorf("permission %q: %q is not one of r, w, x, a", v, c)
		}
	}
	return val, nil
}

// compare handles -C FIELD=FIELD / FIELD!=FIELD.
func (s *lineState) compare(arg string) *Error {
	if len(s.rule.Fields) >= MaxFields-1 {
		return s.errf(arg, "too many fields (at most %d)", MaxFields-1)
	}
	op := OpEqual
	a, b, ok := strings.Cut(arg, "!=")
	if ok {
		op = OpNotEqual
	} else if a, b, ok = strings.Cut(arg, "="); !ok {
		return s.errf(arg, "-C %s: comparison needs = or !=", arg)
	}
	if a == "" || b == "" {
		return s.errf(arg, "-C %s: a field name is missing", arg)
	}
	if _, known := fieldByName()[a]; !known {
		return s.errf(arg, "-C %s: unknown field %q", arg, a)
	}
	if _, known := fieldByName()[b]; !known {
		return s.errf(arg, "-C %s: unknown field %q", arg, b)
	}
	if !s.listSet || s.rule.Filter != FilterExit {
		return s.errf(arg, "-C %s: comparisons work only on the exit list", arg)
	}
	v, ok := compareValue(canonicalName(a), canonicalName(b))
	if !ok {
		return s.errf(arg, "-C %s: %s and %s cannot be compared", arg, a, b)
	}
	s.rule.Fields = append(s.rule.Fields, Field{Type: FieldCompare, Op: op, Value: v})
	return nil
}

func canonicalName(n string) string {
	f, _ := fieldInfoOf(fieldByName()[n])
	return f.name
}

// finish is auditctl's end of setopt and handle_request: append the key,
// default to all syscalls.
func (s *lineState) finish() (*Rule, *Error) {
	if !s.listSet {
		if s.syscall {
			return nil, s.errf("-S", "-S needs a list: add -a always,exit")
		}
		return nil, nil
	}
	if s.hasKey {
		if !(s.syscall || s.perm || s.exe || s.fstype) {
			return nil, s.errf(s.key, "key %q needs a syscall (-S), a path/dir, an exe or an fstype field in the rule", s.key)
		}
		if len(s.rule.Fields) >= MaxFields-1 {
			return nil, s.errf(s.key, "too many fields (at most %d)", MaxFields-1)
		}
		s.rule.Fields = append(s.rule.Fields, Field{Type: FieldFilterKey, Op: OpEqual, Str: s.key})
	}
	if s.rule.Filter != FilterTask && !s.syscall {
		s.rule.setAllSyscalls()
	}
	r := s.rule
	r.Line = s.line
	return &r, nil
}

// field handles -F NAME<op>VALUE (libaudit's audit_rule_fieldpair_data).
func (s *lineState) field(pair string) *Error {
	if len(s.rule.Fields) >= MaxFields-1 {
		return s.errf(pair, "too many fields (at most %d)", MaxFields-1)
	}
	name, op, v, ok := splitPair(pair)
	if !ok {
		return s.errf(pair, "-F %s: no operator (=, !=, <, >, <=, >=, &, &=)", pair)
	}
	if name == "" {
		return s.errf(pair, "-F %s: field name missing", pair)
	}
	if v == "" {
		return s.errf(pair, "-F %s: value missing", pair)
	}
	id, known := fieldByName()[name]
	if !known {
		return s.errf(pair, "-F %s: unknown field %q", pair, name)
	}
	filt := s.rule.Filter
	if filt == FilterExclude {
		switch id {
		case FieldPID, FieldUID, FieldGID, FieldLoginUID, FieldMsgType,
			FieldSubjUser, FieldSubjRole, FieldSubjType, FieldSubjSen, FieldSubjClr:
		default:
			return s.errf(pair, "-F %s: the exclude list takes only msgtype, pid, uid, gid, auid and subj_* fields", pair)
		}
	}
	f := Field{Type: id, Op: op}
	exitOnly := func() *Error {
		if filt != FilterExit {
			return s.errf(pair, "-F %s: field %s works only on the exit list", pair, name)
		}
		return nil
	}
	eqOnly := func(allowNE bool) *Error {
		if op == OpEqual || (allowNE && op == OpNotEqual) {
			return nil
		}
		if allowNE {
			return s.errf(pair, "-F %s: field %s takes only = or !=", pair, name)
		}
		return s.errf(pair, "-F %s: field %s takes only =", pair, name)
	}
	var e *Error
	switch id {
	case FieldUID, FieldEUID, FieldSUID, FieldFSUID, FieldLoginUID, FieldObjUID:
		f.Value, e = s.idValue(pair, v, true)
	case FieldGID, FieldEGID, FieldSGID, FieldFSGID, FieldObjGID:
		f.Value, e = s.idValue(pair, v, false)
	case FieldExit:
		if e = exitOnly(); e == nil {
			f.Value, e = s.exitValue(pair, v)
		}
	case FieldMsgType:
		if filt != FilterExclude && filt != FilterUser {
			return s.errf(pair, "-F %s: msgtype works only on the exclude and user lists", pair)
		}
		f.Value, e = s.msgTypeValue(pair, v)
	case FieldObjUser, FieldObjRole, FieldObjType, FieldObjLevLow, FieldObjLevHigh, FieldWatch, FieldDir:
		// The kernel refuses (EINVAL) path/dir with any operator but =, and
		// string fields with ordering or bit operators: say so here.
		if e = eqOnly(id != FieldWatch && id != FieldDir); e != nil {
			return e
		}
		if e = exitOnly(); e == nil {
			if id == FieldWatch || id == FieldDir {
				s.perm = true
			}
			f.Str, e = s.stringValue(pair, id, v)
		}
	case FieldSubjUser, FieldSubjRole, FieldSubjType, FieldSubjSen, FieldSubjClr, FieldFilterKey, FieldExe:
		// A key is a label, not a condition: "key!=x" would load, list as
		// key=x and never match anything it seems to say.
		if e = eqOnly(id != FieldFilterKey); e != nil {
			return e
		}
		if id == FieldExe {
			if e = eqOnly(true); e != nil {
				return e
			}
			s.exe = true
		}
		if id == FieldFilterKey && !(s.syscall || s.perm || s.exe || s.fstype) {
			return s.errf(pair, "-F %s: a key needs a syscall, path/dir, exe or fstype before it", pair)
		}
		f.Str, e = s.stringValue(pair, id, v)
	case FieldArch:
		if s.syscall {
			return s.errf(pair, "-F %s: arch must come before -S", pair)
		}
		if e = eqOnly(true); e == nil {
			elf, err := resolveArch(v, s.p.machine())
			if err != nil {
				return s.errf(pair, "-F %s: %v", pair, err)
			}
			f.Value, s.elf = elf, elf
		}
	case FieldPerm:
		if e = exitOnly(); e == nil {
			if e = eqOnly(false); e == nil {
				var err error
				if f.Value, err = parsePerm(v); err != nil {
					e = s.errf(pair, "-F %s: %v", pair, err)
				}
			}
		}
	case FieldFileType:
		if e = exitOnly(); e == nil {
			f.Value, e = s.fileTypeValue(pair, v)
		}
	case FieldFSType:
		if filt != FilterFS {
			return s.errf(pair, "-F %s: fstype works only on the filesystem list", pair)
		}
		if e = eqOnly(true); e == nil {
			f.Value, e = s.fsTypeValue(pair, v)
			s.fstype = true
		}
	case FieldArg0, FieldArg1, FieldArg2, FieldArg3:
		f.Value, e = s.numValue(pair, v, true)
	case FieldSessionID:
		if filt != FilterExclude && filt != FilterUser && filt != FilterExit {
			return s.errf(pair, "-F %s: sessionid works only on the exit, user and exclude lists", pair)
		}
		if v == "unset" {
			f.Value = unsetID
		} else {
			f.Value, e = s.numValue(pair, v, true)
		}
	default:
		switch id {
		case FieldDevMajor, FieldDevMinor, FieldInode, FieldSuccess, FieldPPID:
			if e = exitOnly(); e != nil {
				return e
			}
		}
		if id == FieldInode {
			if e = eqOnly(true); e != nil {
				return e
			}
		}
		f.Value, e = s.numValue(pair, v, false)
	}
	if e != nil {
		return e
	}
	s.rule.Fields = append(s.rule.Fields, f)
	return nil
}

// splitPair finds the operator the way libaudit does (see opSearch).
func splitPair(pair string) (name string, op Op, value string, ok bool) {
	for _, o := range opSearch {
		if i := strings.Index(pair, o.sym); i >= 0 {
			return pair[:i], o.op, pair[i+len(o.sym):], true
		}
	}
	return "", 0, "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// numValue reads a C integer (decimal, 0x hex, 0 octal); negative values
// only where libaudit takes them (minus = true) and always as a word that
// starts with a digit otherwise.
func (s *lineState) numValue(pair, v string, minus bool) (uint32, *Error) {
	if !isDigit(v[0]) && !(minus && len(v) >= 2 && v[0] == '-' && isDigit(v[1])) {
		return 0, s.errf(pair, "-F %s: value %q is not a number", pair, v)
	}
	n, err := parseNumber(v)
	if err != nil {
		return 0, s.errf(pair, "-F %s: %v", pair, err)
	}
	return n, nil
}

func (s *lineState) idValue(pair, v string, isUser bool) (uint32, *Error) {
	if isDigit(v[0]) || (isUser && len(v) >= 2 && v[0] == '-' && isDigit(v[1])) {
		return s.numValue(pair, v, isUser)
	}
	if isUser && v == "unset" {
		return unsetID, nil
	}
	lookup, what := s.p.LookupUser, "user"
	if lookup == nil {
		lookup = lookupUser
	}
	if !isUser {
		lookup, what = s.p.LookupGroup, "group"
		if lookup == nil {
			lookup = lookupGroup
		}
	}
	id, err := lookup(v)
	if err != nil {
		return 0, s.errf(pair, "-F %s: unknown %s %q", pair, what, v)
	}
	return id, nil
}

func lookupUser(name string) (uint32, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(n), err
}

func lookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), err
}

func (s *lineState) exitValue(pair, v string) (uint32, *Error) {
	if isDigit(v[0]) || (len(v) >= 2 && v[0] == '-' && isDigit(v[1])) {
		return s.numValue(pair, v, true)
	}
	name, neg := strings.CutPrefix(v, "-")
	n, ok := errnoNames()[name]
	if !ok {
		return 0, s.errf(pair, "-F %s: unknown errno name %q", pair, name)
	}
	if neg {
		n = -n
	}
	return uint32(int32(n)), nil
}

func (s *lineState) msgTypeValue(pair, v string) (uint32, *Error) {
	if isDigit(v[0]) {
		return s.numValue(pair, v, false)
	}
	if n, ok := msgTypeByName()[v]; ok {
		return n, nil
	}
	return 0, s.errf(pair, "-F %s: unknown record type %q", pair, v)
}

func (s *lineState) stringValue(pair string, id uint32, v string) (string, *Error) {
	if id == FieldFilterKey && len(v) > MaxKeyLen {
		return "", s.errf(pair, "-F %s: key longer than %d bytes", pair, MaxKeyLen)
	}
	if len(v) > pathMax {
		return "", s.errf(pair, "-F %s: value longer than %d bytes", pair, pathMax)
	}
	return v, nil
}

// fileTypeValue takes auditctl's names and, so that `auditctl -l` text
// (which prints the number) reads back, a number.
func (s *lineState) fileTypeValue(pair, v string) (uint32, *Error) {
	if n, ok := fileTypes[v]; ok {
		return n, nil
	}
	if isDigit(v[0]) {
		return s.numValue(pair, v, false)
	}
	return 0, s.errf(pair, "-F %s: unknown file type %q (file, dir, socket, link, character, block, fifo)", pair, v)
}

func (s *lineState) fsTypeValue(pair, v string) (uint32, *Error) {
	if isDigit(v[0]) {
		return s.numValue(pair, v, false)
	}
	if n, ok := fsTypes[v]; ok {
		return n, nil
	}
	return 0, s.errf(pair, "-F %s: unknown filesystem type %q (debugfs, tracefs or a magic number)", pair, v)
}

// parseNumber parses a C integer literal that must fit in 32 bits, signed
// or unsigned, and returns its bits.
func parseNumber(v string) (uint32, error) {
	neg := strings.HasPrefix(v, "-")
	digits := strings.TrimPrefix(v, "-")
	n, err := strconv.ParseUint(cPrefix(digits), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if neg {
		if n > 1<<31 {
			return 0, fmt.Errorf("%s does not fit in 32 bits", v)
		}
		return uint32(-int64(n)), nil
	}
	if n > 1<<32-1 {
		return 0, fmt.Errorf("%s does not fit in 32 bits", v)
	}
	return uint32(n), nil
}

func parseUnsigned(v string) (uint32, error) {
	if v == "" || !isDigit(v[0]) {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	return parseNumber(v)
}

// cPrefix turns C's octal "017" into Go's "0o17" (Go's base 0 reads a
// leading 0 as octal too, but also accepts "0b" and "_", which C does not).
func cPrefix(d string) string {
	if strings.ContainsAny(d, "_oObB") && !strings.HasPrefix(strings.ToLower(d), "0x") {
		return "invalid"
	}
	if strings.Contains(d, "_") {
		return "invalid"
	}
	return d
}
