// Package auditrec parses kernel audit records and assembles them into events.
//
// A record is what the kernel sends on the audit multicast group (and what auditd writes to
// audit.log after "type=NAME msg="): a numeric type plus the text
// "audit(1700000000.123:456): key=value key=value ...". Records that share the
// "1700000000.123:456" stamp (time and serial) belong to one event; a syscall event ends with
// an EOE record, user-space messages (USER_AUTH, USER_CMD, ...) are one record each.
//
// Parsing is lazy and allocation-light: the assembler only needs the stamp, and the rules look
// at few records, so fields are split on first access and values are substrings of the text
// until a caller asks for a decoded value.
package auditrec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record types the rules and the assembler care about (include/uapi/linux/audit.h).
const (
	TypeUserAcct      uint16 = 1101
	TypeUserAuth      uint16 = 1100
	TypeUserErr       uint16 = 1109
	TypeUserLogin     uint16 = 1112
	TypeUserCmd       uint16 = 1123
	TypeSyscall       uint16 = 1300
	TypePath          uint16 = 1302
	TypeConfigChange  uint16 = 1305
	TypeCwd           uint16 = 1307
	TypeExecve        uint16 = 1309
	TypeEOE           uint16 = 1320
	TypeProctitle     uint16 = 1327
	TypeFirstUserMsg  uint16 = 1100
	TypeLastUserMsg   uint16 = 1199
	TypeFirstUserMsg2 uint16 = 2100
	TypeLastUserMsg2  uint16 = 2999
)

// typeNames maps audit.log's type names to numbers, for fixtures copied from audit.log, and
// typeByNumber back; both are built on first use, not at every process start.
var typeNames = sync.OnceValue(func() map[string]uint16 {
	return map[string]uint16{
		"USER_AUTH": 1100, "USER_ACCT": 1101, "USER_MGMT": 1102, "CRED_ACQ": 1103, "CRED_DISP": 1104,
		"USER_START": 1105, "USER_END": 1106, "USER_AVC": 1107, "USER_CHAUTHTOK": 1108, "USER_ERR": 1109,
		"CRED_REFR": 1110, "USYS_CONFIG": 1111, "USER_LOGIN": 1112, "USER_LOGOUT": 1113,
		"ADD_USER": 1114, "DEL_USER": 1115, "ADD_GROUP": 1116, "DEL_GROUP": 1117,
		"USER_ROLE_CHANGE": 1121, "USER_CMD": 1123, "USER_TTY": 1124, "CRYPTO_KEY_USER": 1126,
		"CRYPTO_SESSION": 1127, "SERVICE_START": 1130, "SERVICE_STOP": 1131,
		"SYSCALL": 1300, "PATH": 1302, "IPC": 1303, "SOCKETCALL": 1304, "CONFIG_CHANGE": 1305,
		"SOCKADDR": 1306, "CWD": 1307, "EXECVE": 1309, "EOE": 1320, "BPRM_FCAPS": 1321,
		"CAPSET": 1322, "MMAP": 1323, "PROCTITLE": 1327, "LOGIN": 1006,
		"ANOM_PROMISCUOUS": 1700, "ANOM_ABEND": 1701, "ANOM_LOGIN_FAILURES": 2100,
		"ANOM_LOGIN_TIME": 2101, "ANOM_LOGIN_SESSIONS": 2102, "ANOM_LOGIN_ACCT": 2103,
		"ANOM_LOGIN_LOCATION": 2104,
	}
})

var typeByNumber = sync.OnceValue(func() map[uint16]string {
	m := make(map[uint16]string, len(typeNames()))
	for n, t := range typeNames() {
		m[t] = n
	}
	return m
})

// TypeName returns audit.log's name of a type ("USER_AUTH"), or "UNKNOWN[1234]".
func TypeName(t uint16) string {
	if n, ok := typeByNumber()[t]; ok {
		return n
	}
	return "UNKNOWN[" + strconv.Itoa(int(t)) + "]"
}

// LogLine formats a record as auditd writes it to audit.log (without enrichment), the form
// ParseLogLine reads: `harden watch --record FILE` captures fixtures with it.
func (r *Record) LogLine() string {
	return "type=" + TypeName(r.Type) + " msg=audit(" + r.Stamp.String() + "): " + r.Body
}

// TypeByName returns the number of an audit.log type name ("USER_AUTH"), or of "UNKNOWN[1234]".
func TypeByName(name string) (uint16, bool) {
	if t, ok := typeNames()[name]; ok {
		return t, true
	}
	if strings.HasPrefix(name, "UNKNOWN[") && strings.HasSuffix(name, "]") {
		n, err := strconv.ParseUint(name[8:len(name)-1], 10, 16)
		return uint16(n), err == nil
	}
	return 0, false
}

// Stamp identifies an event: the kernel's time (seconds and milliseconds) and serial.
type Stamp struct {
	Sec    int64
	Milli  uint16
	Serial uint64
}

// Time returns the stamp's wall-clock time.
func (s Stamp) Time() time.Time { return time.Unix(s.Sec, int64(s.Milli)*int64(time.Millisecond)) }

// String formats the stamp as audit does: "1700000000.123:456".
func (s Stamp) String() string { return fmt.Sprintf("%d.%03d:%d", s.Sec, s.Milli, s.Serial) }

// Record is one audit record.
type Record struct {
	Type  uint16
	Stamp Stamp
	// Body is the text after "audit(...): ".
	Body string

	fields []field // split on first use
	parsed bool
}

type field struct {
	key, raw string
	quoted   bool
}

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed audit record")

// Parse parses the multicast form: a type number and "audit(1700000000.123:456): k=v ...".
func Parse(typ uint16, text string) (Record, error) {
	st, body, err := parseHeader(text)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: typ, Stamp: st, Body: body}, nil
}

// ParseLogLine parses one audit.log line: "type=USER_AUTH msg=audit(...): k=v ...".
func ParseLogLine(line string) (Record, error) {
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "type=")
	if !ok {
		return Record{}, fmt.Errorf("%w: no type= at the start of %q", ErrMalformed, clip(line))
	}
	name, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return Record{}, fmt.Errorf("%w: nothing after the type in %q", ErrMalformed, clip(line))
	}
	typ, ok := TypeByName(name)
	if !ok {
		return Record{}, fmt.Errorf("%w: unknown record type %q", ErrMalformed, name)
	}
	rest, ok = strings.CutPrefix(rest, "msg=")
	if !ok {
		return Record{}, fmt.Errorf("%w: no msg= after the type in %q", ErrMalformed, clip(line))
	}
	return Parse(typ, rest)
}

// parseHeader splits "audit(SEC.MSEC:SERIAL): body".
func parseHeader(text string) (Stamp, string, error) {
	rest, ok := strings.CutPrefix(text, "audit(")
	if !ok {
		return Stamp{}, "", fmt.Errorf("%w: no audit( header in %q", ErrMalformed, clip(text))
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return Stamp{}, "", fmt.Errorf("%w: unterminated audit( header in %q", ErrMalformed, clip(text))
	}
	var st Stamp
	var ok1, ok2, ok3 bool
	hdr := rest[:end]
	dot := strings.IndexByte(hdr, '.')
	colon := strings.IndexByte(hdr, ':')
	if dot > 0 && colon > dot {
		st.Sec, ok1 = atoi(hdr[:dot])
		var ms int64
		ms, ok2 = atoi(hdr[dot+1 : colon])
		st.Milli = uint16(ms)
		var serial int64
		serial, ok3 = atoi(hdr[colon+1:])
		st.Serial = uint64(serial)
		ok2 = ok2 && ms < 1000
	}
	if !ok1 || !ok2 || !ok3 {
		return Stamp{}, "", fmt.Errorf("%w: bad stamp %q (want SEC.MSEC:SERIAL)", ErrMalformed, hdr)
	}
	body := strings.TrimPrefix(rest[end+1:], ":")
	return st, strings.TrimLeft(body, " "), nil
}

// atoi parses a non-negative decimal without allocating.
func atoi(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
