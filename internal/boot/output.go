package boot

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"sync"
)

// lines is where every JSON line of harden boot goes (its records, its diagnostics, the
// helpers' output): one Write per line, under one lock, so lines from many goroutines never
// interleave.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// helperOutput turns a helper's output, one line per Write (supervise delivers it so), into
// journal-shaped JSON records with SYSLOG_IDENTIFIER set to the helper's name, the way
// journald records a service's stdout. A line that already is such a record (harden watch,
// and `harden alert virus` run by clamd, write them) passes through unchanged.
type helperOutput struct {
	out      *lines
	ident    string
	priority int
	pid      func() int
}

func (h *helperOutput) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\r\n")
	if len(line) == 0 {
		return len(p), nil
	}
	if isRecord(line) {
		_, err := h.out.Write(append(line[:len(line):len(line)], '\n'))
		return len(p), err
	}
	obj := map[string]string{
		"MESSAGE": string(line), "PRIORITY": strconv.Itoa(h.priority), "SYSLOG_IDENTIFIER": h.ident,
	}
	if h.pid != nil {
		if pid := h.pid(); pid != 0 {
			obj["SYSLOG_PID"] = strconv.Itoa(pid)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return len(p), err
	}
	_, err = h.out.Write(append(b, '\n'))
	return len(p), err
}

// isRecord reports whether line is a JSON object with a MESSAGE and a SYSLOG_IDENTIFIER.
func isRecord(line []byte) bool {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return false
	}
	var obj map[string]any
	if json.Unmarshal(line, &obj) != nil {
		return false
	}
	_, msg := obj["MESSAGE"].(string)
	_, ident := obj["SYSLOG_IDENTIFIER"].(string)
	return msg && ident
}
