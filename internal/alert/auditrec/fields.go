package auditrec

import (
	"encoding/hex"
	"strings"
)

// encodedFields are the fields the kernel and libaudit log with audit_log_untrustedstring /
// audit_encode_value: a value is written "quoted" when it is plain, and as bare upper-case hex
// when it holds a space, quote, control or non-ASCII byte (so an attacker cannot forge
// "key=value" pairs with a file name). A bare value of one of these fields is therefore hex.
var encodedFields = map[string]bool{
	"acct": true, "cmd": true, "comm": true, "cwd": true, "data": true, "dir": true,
	"exe": true, "file": true, "key": true, "name": true, "new": true, "ocomm": true,
	"old": true, "path": true, "proctitle": true, "root_dir": true, "vm": true, "watch": true,
	"grp": true, "new_group": true, "new_user": true, "id": true,
}

// KeySeparator separates several rule keys in one key= value (AUDIT_KEY_SEPARATOR).
const KeySeparator = "\x01"

// enrichedSep starts the fields auditd appends in log_format=ENRICHED ("\x1dUID=\"root\"").
// They are auditd's interpretation, not the kernel's record: we stop there.
const enrichedSep = '\x1d'

// split parses the body into fields once. A user-space message's msg='...' is flattened: its
// inner key=value pairs (op, acct, exe, addr, res, ...) become fields of the record, which is
// how every consumer of USER_* records reads them.
func (r *Record) split() {
	if r.parsed {
		return
	}
	r.parsed = true
	r.fields = make([]field, 0, 24)
	r.fields = appendFields(r.fields, r.Body)
}

func appendFields(out []field, s string) []field {
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] == enrichedSep {
			break
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			break // trailing garbage without '=': not a field
		}
		key := s[i : i+eq]
		if sp := strings.IndexByte(key, ' '); sp >= 0 {
			// A word without '=' (seen in some AVC records): skip it.
			i += sp + 1
			continue
		}
		i += eq + 1
		switch {
		case i < len(s) && s[i] == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				end = len(s) - i - 1
			}
			inner := s[i+1 : i+1+end]
			if key == "msg" {
				out = appendFields(out, inner)
			} else {
				out = append(out, field{key: key, raw: inner, quoted: true})
			}
			i += end + 2
		case i < len(s) && s[i] == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				end = len(s) - i - 1
			}
			out = append(out, field{key: key, raw: s[i+1 : i+1+end], quoted: true})
			i += end + 2
		default:
			end := strings.IndexAny(s[i:], " \x1d")
			if end < 0 {
				end = len(s) - i
			}
			out = append(out, field{key: key, raw: s[i : i+end]})
			i += end
		}
	}
	return out
}

// Raw returns a field's text as logged (quotes removed, hex not decoded) and whether it exists.
// When a key repeats, the last one wins: in USER_* records the message's own fields (inside
// msg='...') come after the sender's pid/uid/auid, and are the ones that describe the event.
func (r *Record) Raw(key string) (string, bool) {
	r.split()
	for i := len(r.fields) - 1; i >= 0; i-- {
		if r.fields[i].key == key {
			return r.fields[i].raw, true
		}
	}
	return "", false
}

// Get returns a field's value: unquoted, hex-decoded for encoded fields, "" for (null).
func (r *Record) Get(key string) string {
	r.split()
	for i := len(r.fields) - 1; i >= 0; i-- {
		f := r.fields[i]
		if f.key != key {
			continue
		}
		return decode(f)
	}
	return ""
}

// Fields returns all fields decoded, in order (later duplicates overwrite earlier ones).
func (r *Record) Fields() map[string]string {
	r.split()
	m := make(map[string]string, len(r.fields))
	for _, f := range r.fields {
		m[f.key] = decode(f)
	}
	return m
}

func decode(f field) string {
	if f.quoted {
		return f.raw
	}
	if f.raw == "(null)" {
		return ""
	}
	if encodedFields[f.key] {
		if b, ok := decodeHex(f.raw); ok {
			return b
		}
	}
	return f.raw
}

// decodeHex decodes audit's upper-case hex; a value that is not hex is returned as is by the
// caller (older tools log some encoded fields bare, e.g. exe=/usr/bin/x in USER_* records).
func decodeHex(s string) (string, bool) {
	if len(s) == 0 || len(s)%2 != 0 {
		return "", false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// Keys returns the rule keys of a record (key="a" or hex of "a\x01b"); nil when none.
func (r *Record) Keys() []string {
	var k string
	if r.parsed {
		k = r.Get("key")
	} else {
		// Fast path: most events are looked at only for their key, which the kernel puts
		// last in a SYSCALL record; finding it avoids splitting ~25 fields. Quoted values
		// cannot hide " key=" (a value with a space is hex-encoded).
		k = r.lastKey()
	}
	if k == "" {
		return nil
	}
	return strings.Split(k, KeySeparator)
}

// Cmdline turns a PROCTITLE or USER_CMD value (arguments separated by NUL) into a readable line.
func Cmdline(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\x00", " "), " ")
}

// lastKey finds the last key= field without splitting the record.
func (r *Record) lastKey() string {
	body := r.Body
	if i := strings.IndexByte(body, enrichedSep); i >= 0 {
		body = body[:i]
	}
	i := strings.LastIndex(body, " key=")
	if i < 0 {
		if !strings.HasPrefix(body, "key=") {
			return ""
		}
		i = -1
	}
	v := body[i+5:]
	if strings.HasPrefix(v, "\"") {
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return v[1:]
		}
		return v[1 : 1+end]
	}
	if sp := strings.IndexByte(v, ' '); sp >= 0 {
		v = v[:sp]
	}
	return decode(field{key: "key", raw: v})
}
