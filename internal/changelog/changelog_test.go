package changelog

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChangeEntryCarriesEveryHardenField(t *testing.T) {
	m := &Memory{}
	l := New(m, "run-1")
	require.NoError(t, l.Change(Change{Step: "sshd", Object: "/etc/ssh/sshd_config.d/00-harden.conf",
		Action: "update", Before: "PasswordAuthentication yes", After: "PasswordAuthentication no", Reason: "sshd.password_authentication"}))
	e := m.ByID(MsgChange)
	require.Len(t, e, 1)
	assert.Equal(t, map[string]string{
		"HARDEN_RUN_ID": "run-1", "HARDEN_STEP": "sshd", "HARDEN_OBJECT": "/etc/ssh/sshd_config.d/00-harden.conf",
		"HARDEN_ACTION": "update", "HARDEN_BEFORE": "PasswordAuthentication yes", "HARDEN_AFTER": "PasswordAuthentication no",
		"HARDEN_REASON": "sshd.password_authentication",
	}, e[0].Fields)
	assert.Equal(t, PriNotice, e[0].Priority)
}

func TestInvalidFieldNamesAndIDsAreRefused(t *testing.T) {
	for _, bad := range []string{"harden_step", "_HIDDEN", "1ABC", "A-B", "ÄB", string(make([]byte, 65))} {
		err := (&Memory{}).Send(Entry{MessageID: MsgRun, Fields: map[string]string{bad: "x"}})
		assert.Error(t, err, bad)
	}
	assert.Error(t, (&Memory{}).Send(Entry{MessageID: "not-an-id"}))
	assert.Error(t, (&Memory{}).Send(Entry{MessageID: MsgRun, Fields: map[string]string{"MESSAGE": "x"}}))
}

func TestMessageIDsAreDistinctAndWellFormed(t *testing.T) {
	ids := []string{MsgChange, MsgFinding, MsgRun, MsgStepFailed, MsgFailClosed, MsgAlert,
		MsgAlertSSHFailures, MsgAlertPrivEsc, MsgAlertCriticalFile, MsgAlertAuditLost, MsgAlertVirus,
		MsgAlertSpoolDropped, MsgAlertDrift, MsgAlertBoot, MsgServiceStart, MsgServiceExit,
		MsgServiceRestart, MsgServiceStop, MsgOrphanReaped, MsgBootBlocked}
	seen := map[string]bool{}
	for _, id := range ids {
		assert.Regexp(t, `^[0-9a-f]{32}$`, id)
		assert.False(t, seen[id], id)
		seen[id] = true
	}
}

func TestJSONLinesFallback(t *testing.T) {
	var b bytes.Buffer
	l := New(NewJSONLines(&b), "r")
	require.NoError(t, l.Run(Summary{Status: "changed", Changes: 2, Duration: 1500 * time.Millisecond, Policy: "p"}))
	require.NoError(t, l.StepFailed("audit", errors.New("EPERM")))
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var obj map[string]string
	require.NoError(t, json.Unmarshal(lines[0], &obj))
	assert.Equal(t, MsgRun, obj["MESSAGE_ID"])
	assert.Equal(t, "1500", obj["HARDEN_DURATION_MS"])
	assert.Equal(t, "6", obj["PRIORITY"])
	assert.Equal(t, "harden", obj["SYSLOG_IDENTIFIER"])
	assert.NotContains(t, obj, "HARDEN_VERSION", "empty fields are left out")
}

// Every supervisor event becomes one record on the JSON lines sink, with the fields a
// query needs (which program, which pid, how it ended, how long it ran).
func TestServiceRecordsAsJSONLines(t *testing.T) {
	var b bytes.Buffer
	l := New(NewJSONLines(&b), "r")
	require.NoError(t, l.Service(Service{Event: "start", Service: "clamd", PID: 42}))
	require.NoError(t, l.Service(Service{Event: "exit", Service: "clamd", PID: 42, Status: "killed by signal 9 (SIGKILL)",
		ExitCode: 137, Ran: 1500 * time.Millisecond}))
	require.NoError(t, l.Service(Service{Event: "restart", Service: "clamd", Delay: 2 * time.Second, Restarts: 1}))
	require.NoError(t, l.Service(Service{Event: "orphan", PID: 77, Status: "exit 0", ExitCode: 0, Success: true}))
	require.NoError(t, l.Service(Service{Event: "start-failed", Service: "auditd", Err: errors.New("no such file")}))
	require.NoError(t, l.Service(Service{Event: "kill", Service: "app", PID: 9, Signal: "SIGKILL"}))
	require.NoError(t, l.BootBlocked("/etc/harden/policy.yaml", []string{"firewall failed: nf_tables missing"}))
	require.Error(t, l.Service(Service{Event: "bogus"}))

	var recs []map[string]string
	for _, line := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		var obj map[string]string
		require.NoError(t, json.Unmarshal(line, &obj), "%s", line)
		recs = append(recs, obj)
	}
	require.Len(t, recs, 7)
	assert.Equal(t, MsgServiceStart, recs[0]["MESSAGE_ID"])
	assert.Equal(t, "42", recs[0]["HARDEN_PID"])
	assert.Equal(t, MsgServiceExit, recs[1]["MESSAGE_ID"])
	assert.Equal(t, "137", recs[1]["HARDEN_EXIT_CODE"])
	assert.Equal(t, "1500", recs[1]["HARDEN_RUNTIME_MS"])
	assert.Equal(t, "4", recs[1]["PRIORITY"], "a failed exit is a warning")
	assert.Equal(t, MsgServiceRestart, recs[2]["MESSAGE_ID"])
	assert.Equal(t, "2000", recs[2]["HARDEN_RESTART_DELAY_MS"])
	assert.Equal(t, MsgOrphanReaped, recs[3]["MESSAGE_ID"])
	assert.Equal(t, "77", recs[3]["HARDEN_PID"])
	assert.Equal(t, "3", recs[4]["PRIORITY"])
	assert.Equal(t, "no such file", recs[4]["HARDEN_ERROR"])
	assert.Equal(t, MsgServiceStop, recs[5]["MESSAGE_ID"])
	assert.Equal(t, MsgBootBlocked, recs[6]["MESSAGE_ID"])
	assert.Equal(t, "2", recs[6]["PRIORITY"])
	for _, r := range recs {
		assert.Equal(t, "r", r["HARDEN_RUN_ID"])
		assert.Equal(t, "harden", r["SYSLOG_IDENTIFIER"])
	}
}

func TestLogrusLinesHaveTheJournalShape(t *testing.T) {
	var b bytes.Buffer
	lg := logrus.New()
	lg.SetOutput(&b)
	lg.SetFormatter(JSONFormatter{RunID: "r"})
	lg.WithField("step", "clamav").WithField("bad key!", 3).Warn("freshclam: timed out")
	var obj map[string]string
	require.NoError(t, json.Unmarshal(b.Bytes(), &obj))
	assert.Equal(t, map[string]string{"MESSAGE": "freshclam: timed out", "PRIORITY": "4", "SYSLOG_IDENTIFIER": "harden",
		"HARDEN_RUN_ID": "r", "HARDEN_STEP": "clamav", "HARDEN_BAD_KEY_": "3"}, obj)
}

// The checks are loops for start-up's sake; they must accept exactly what journald's rule
// (and the MESSAGE_ID form) written as regexps accepts.
func TestFieldAndIDChecksMatchTheirRegexps(t *testing.T) {
	fieldRE := regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
	idRE := regexp.MustCompile(`^[0-9a-f]{32}$`)
	inputs := []string{"", "A", "a", "_A", "1A", "A_1", "HARDEN_STEP", "A-B", "ÄB", "AÄ",
		strings.Repeat("A", 64), strings.Repeat("A", 65), MsgRun, strings.ToUpper(MsgRun), MsgRun + "0", MsgRun[1:]}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "AZaz09_-fgÄ"
	for range 5000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for i := range 2000 {
		b := []byte(MsgRun)
		b[i%32] = alphabet[r.IntN(len(alphabet))]
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		assert.Equal(t, fieldRE.MatchString(in), validField(in), "field %q", in)
		assert.Equal(t, idRE.MatchString(in), validMessageID(in), "message id %q", in)
	}
}
