// Package changelog writes harden's audit trail: one journal entry per change applied, per
// finding and per run, with stable MESSAGE_IDs and HARDEN_* fields that queries and alerting
// can rely on (`journalctl MESSAGE_ID=<id>`, `journalctl HARDEN_STEP=firewall`). Where there
// is no journald (a laptop, a container) the same records go to stderr as JSON lines.
package changelog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// Stable MESSAGE_IDs (32 lowercase hex digits). Never change one: dashboards and alert rules
// select on them. The README lists them.
const (
	MsgChange     = "8f1b5b2c6a0e4d57a3c1e9d2b7f40a61" // a change harden applied
	MsgRefused    = "73bfb6faf95c47e6b64da2df346a026b" // a change the machine refused: tried, not made
	MsgFinding    = "2d6e0c9a4b8f4e1d9c3a7b5e6f1d2c83" // something harden sees but does not fix
	MsgRun        = "c4a7e2f1083b4d6c95e1a2b3d4f5e6a7" // one run's summary
	MsgStepFailed = "e13f5a7c92d04b68a1c3e5f7092b4d6e" // a step failed
	MsgFailClosed = "5b9d1f3e7a2c4e6081b3d5f7a9c1e3f5" // the policy did not load: default firewall applied
	MsgAlert      = "a9e4c7b2d1f04e3a8b6c5d2e1f0a9b8c" // an alert raised by harden watch / harden alert

	// One MESSAGE_ID per alert kind (internal/alert.Kind), so `journalctl MESSAGE_ID=...`
	// selects one kind of alert. MsgAlert stays for alerts of a kind without its own id.
	MsgAlertSSHFailures  = "7d48114a193f45e8a4c1b874d5988b50" // failed SSH authentications above the threshold
	MsgAlertPrivEsc      = "8f46cd90c230476bba11f905d1570ae0" // privilege escalation (attempt)
	MsgAlertCriticalFile = "5db8c9caa3834972a8c350bf800e4746" // a critical file was modified
	MsgAlertAuditLost    = "cfd230341554418082a6ec33d4741592" // audit records were lost
	MsgAlertVirus        = "a85bfee7f2114a0d990ee0da66c89ae3" // ClamAV detection
	MsgAlertSpoolDropped = "25aa2e68281a4e179fba45411758a524" // the alert spool was full and dropped alerts
	MsgAlertDrift        = "8da6ef1676d0474699aa25edf036a32d" // the daily dry-run found drift from the policy
	// An alert sink refused an alert for good (HTTP 4xx): it went to the dead-letter directory.
	MsgAlertDeliveryRefused = "e9d45b5938ed449aa0554f046fe9453d"
	MsgAlertBoot            = "363956482832f851a87056421d8d1750" // harden boot: a step failed, or the app was not started

	// harden boot's supervisor (Fly Machines: no systemd to log what runs).
	MsgServiceStart   = "384e4f528a8df47d5a3eb63d3766540f" // a supervised program (or the app) was started, or could not be
	MsgServiceExit    = "f99a420fc0b394717b1283a0c488561f" // a supervised program (or the app) exited
	MsgServiceRestart = "bbeee2f7acfed6ce21c8b46b38159c9a" // it will be started again after a back-off
	MsgServiceStop    = "c90b99bf157d129972e040984b649c2d" // harden boot asked it to stop, or killed it
	MsgOrphanReaped   = "1fc6e0906f95921bb39cfc2502fe7fef" // an orphaned process was reaped
	MsgBootBlocked    = "a9d4024d7501a2e3f7657013d922e8f6" // harden boot did not start the app (fail closed)
)

// Priorities, as syslog levels.
const (
	PriAlert   = journal.PriAlert
	PriCrit    = journal.PriCrit
	PriErr     = journal.PriErr
	PriWarning = journal.PriWarning
	PriNotice  = journal.PriNotice
	PriInfo    = journal.PriInfo
	PriDebug   = journal.PriDebug
)

// Entry is one structured record.
type Entry struct {
	MessageID string
	Priority  journal.Priority
	Message   string
	Fields    map[string]string // HARDEN_* and other journal fields
}

// Sink delivers entries.
type Sink interface {
	Send(Entry) error
}

// validField is journald's rule for field names: A-Z, 0-9 and _, 1-64 characters, not
// starting with a digit or _. journald silently drops fields that break it and go-systemd
// does not check, so a typo would lose audit data without a trace; we refuse instead.
// (A loop, not a regexp: `{0,63}` compiles to a 64-state program at every process start.)
func validField(k string) bool {
	if len(k) < 1 || len(k) > 64 || k[0] < 'A' || k[0] > 'Z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		if c := k[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validMessageID: 32 lowercase hex digits.
func validMessageID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks field names and the MESSAGE_ID.
func (e Entry) Validate() error {
	if !validMessageID(e.MessageID) {
		return fmt.Errorf("changelog: MESSAGE_ID %q is not 32 lowercase hex digits", e.MessageID)
	}
	for k := range e.Fields {
		if !validField(k) {
			return fmt.Errorf("changelog: invalid journal field name %q", k)
		}
		if k == "MESSAGE" || k == "MESSAGE_ID" || k == "PRIORITY" {
			return fmt.Errorf("changelog: field %s is set by the entry itself", k)
		}
	}
	return nil
}

// RecordsEnv set to "stderr" makes Auto write JSON lines even where journald's socket
// exists: harden boot sets it for the programs it runs (harden watch), so every record of a
// machine without systemd goes the one way.
const RecordsEnv = "HARDEN_RECORDS"

// Auto returns the journal when journald's socket exists, else JSON lines on w.
func Auto(w io.Writer) Sink {
	if os.Getenv(RecordsEnv) != "stderr" && journal.Enabled() {
		return Journal{}
	}
	return NewJSONLines(w)
}

// Journal sends entries to journald's native socket.
type Journal struct{}

// Send implements Sink.
func (Journal) Send(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	vars := make(map[string]string, len(e.Fields)+2)
	for k, v := range e.Fields {
		vars[k] = v
	}
	vars["MESSAGE_ID"] = e.MessageID
	vars["SYSLOG_IDENTIFIER"] = "harden"
	return journal.Send(e.Message, e.Priority, vars)
}

// JSONLines writes one JSON object per entry, with the journal's field names.
type JSONLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines writes to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Send implements Sink.
func (j *JSONLines) Send(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	obj := make(map[string]string, len(e.Fields)+4)
	for k, v := range e.Fields {
		obj[k] = v
	}
	obj["MESSAGE"] = e.Message
	obj["MESSAGE_ID"] = e.MessageID
	obj["PRIORITY"] = strconv.Itoa(int(e.Priority))
	obj["SYSLOG_IDENTIFIER"] = "harden"
	b, err := json.Marshal(obj) // map keys are sorted: stable output
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// Memory keeps entries, for tests.
type Memory struct {
	mu      sync.Mutex
	Entries []Entry
}

// Send implements Sink.
func (m *Memory) Send(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Entries = append(m.Entries, e)
	return nil
}

// ByID returns the entries with a MESSAGE_ID.
func (m *Memory) ByID(id string) []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.Entries {
		if e.MessageID == id {
			out = append(out, e)
		}
	}
	return out
}

// Discard drops entries (dry-run by hand records nothing).
type Discard struct{}

// Send implements Sink.
func (Discard) Send(e Entry) error { return e.Validate() }
