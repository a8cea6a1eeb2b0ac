package changelog

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// Log writes one run's records: every entry carries HARDEN_RUN_ID. A record the sink
// refuses is kept in Errors, never dropped: the runner puts them in the report and on
// stderr.
type Log struct {
	sink  Sink
	runID string

	mu   sync.Mutex
	errs []error
}

// Errors returns the records that could not be written, in order.
func (l *Log) Errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// New returns a Log for one run.
func New(sink Sink, runID string) *Log { return &Log{sink: sink, runID: runID} }

// Change is one change a step applied.
type Change struct {
	Step, Object, Action, Before, After, Reason string
}

// Change records an applied change.
func (l *Log) Change(c Change) error {
	msg := fmt.Sprintf("%s: %s %s", c.Step, c.Action, c.Object)
	if c.Before != "" || c.After != "" {
		msg += fmt.Sprintf(" (%s -> %s)", orNone(c.Before), orNone(c.After))
	}
	return l.send(MsgChange, PriNotice, msg, map[string]string{
		"HARDEN_STEP": c.Step, "HARDEN_OBJECT": c.Object, "HARDEN_ACTION": c.Action,
		"HARDEN_BEFORE": c.Before, "HARDEN_AFTER": c.After, "HARDEN_REASON": c.Reason,
	})
}

// Refused records a change the machine refused: harden tried it and it did not happen
// (the kernel kept a sysctl, freshclam could not update). Never MsgChange: an auditor
// selecting applied changes must not find it there.
func (l *Log) Refused(c Change, why string) error {
	return l.send(MsgRefused, PriWarning, fmt.Sprintf("%s: %s %s refused: %s", c.Step, c.Action, c.Object, why), map[string]string{
		"HARDEN_STEP": c.Step, "HARDEN_OBJECT": c.Object, "HARDEN_ACTION": c.Action,
		"HARDEN_BEFORE": c.Before, "HARDEN_AFTER": c.After, "HARDEN_REASON": c.Reason,
		"HARDEN_REFUSAL": why,
	})
}

// Finding is something a step sees but does not fix.
type Finding struct {
	Step, ID, Severity, Object, Message, Reason string
}

// Finding records a finding; critical findings are logged at PriCrit.
func (l *Log) Finding(f Finding) error {
	pri := PriWarning
	switch f.Severity {
	case "critical":
		pri = PriCrit
	case "info":
		pri = PriInfo
	}
	return l.send(MsgFinding, pri, fmt.Sprintf("%s: %s: %s", f.Step, f.ID, f.Message), map[string]string{
		"HARDEN_STEP": f.Step, "HARDEN_FINDING": f.ID, "HARDEN_SEVERITY": f.Severity,
		"HARDEN_OBJECT": f.Object, "HARDEN_REASON": f.Reason,
	})
}

// StepFailed records a step's error.
func (l *Log) StepFailed(step string, err error) error {
	return l.send(MsgStepFailed, PriErr, fmt.Sprintf("%s failed: %v", step, err), map[string]string{
		"HARDEN_STEP": step, "HARDEN_ERROR": err.Error(),
	})
}

// FailClosed records that the policy did not load and the default firewall was applied.
func (l *Log) FailClosed(policy string, err error) error {
	return l.send(MsgFailClosed, PriCrit,
		fmt.Sprintf("policy %s could not be loaded; applying the embedded default firewall only: %v", policy, err),
		map[string]string{"HARDEN_POLICY": policy, "HARDEN_ERROR": err.Error()})
}

// Service is one thing harden boot's supervisor did with a program, or saw it do.
type Service struct {
	// Event: start | start-failed | exit | restart | stop | kill | timeout | orphan.
	Event   string
	Service string // "" for an orphan
	PID     int
	// Status says how it ended ("exit 3", "killed by signal 9 (SIGKILL)"); ExitCode is the
	// shell's view of it (128+n for signal n), -1 when there is none.
	Status   string
	ExitCode int
	Success  bool
	Ran      time.Duration // exit: how long the run lasted
	Delay    time.Duration // restart: the back-off before the next start
	Restarts int
	Signal   string // stop, kill: the signal sent
	Err      error  // start-failed
}

// Service records a supervisor event. Every start, exit and restart is one record, so
// `fly logs` (or any shipper of stdout) shows what ran, for how long and how it ended.
func (l *Log) Service(s Service) error {
	f := map[string]string{"HARDEN_SERVICE": s.Service, "HARDEN_SERVICE_EVENT": s.Event, "HARDEN_RESTARTS": strconv.Itoa(s.Restarts)}
	if s.PID != 0 {
		f["HARDEN_PID"] = strconv.Itoa(s.PID)
	}
	name := s.Service
	id, pri, msg := MsgServiceStart, PriInfo, ""
	switch s.Event {
	case "start":
		msg = fmt.Sprintf("%s started (pid %d)", name, s.PID)
	case "start-failed":
		pri, msg = PriErr, fmt.Sprintf("%s could not be started: %v", name, s.Err)
		f["HARDEN_ERROR"] = fmt.Sprint(s.Err)
	case "exit", "orphan":
		id, pri = MsgServiceExit, PriNotice
		if !s.Success {
			pri = PriWarning
		}
		msg = fmt.Sprintf("%s (pid %d) exited after %s: %s", name, s.PID, s.Ran.Round(time.Millisecond), s.Status)
		if s.Event == "orphan" {
			id, pri = MsgOrphanReaped, PriInfo
			msg = fmt.Sprintf("reaped orphaned process %d: %s", s.PID, s.Status)
		} else {
			f["HARDEN_RUNTIME_MS"] = strconv.FormatInt(s.Ran.Milliseconds(), 10)
		}
		f["HARDEN_EXIT_STATUS"], f["HARDEN_EXIT_CODE"] = s.Status, strconv.Itoa(s.ExitCode)
	case "restart":
		id, pri = MsgServiceRestart, PriWarning
		msg = fmt.Sprintf("%s will be restarted in %s (restart %d)", name, s.Delay, s.Restarts)
		f["HARDEN_RESTART_DELAY_MS"] = strconv.FormatInt(s.Delay.Milliseconds(), 10)
	case "stop", "kill", "timeout":
		id = MsgServiceStop
		msg = fmt.Sprintf("%s (pid %d): sent %s to stop it", name, s.PID, s.Signal)
		switch s.Event {
		case "kill":
			pri = PriWarning
			msg = fmt.Sprintf("%s (pid %d) did not stop in time: killed its process group", name, s.PID)
		case "timeout":
			pri = PriWarning
			msg = fmt.Sprintf("%s (pid %d) %v: sent %s to stop it", name, s.PID, s.Err, s.Signal)
			f["HARDEN_ERROR"] = fmt.Sprint(s.Err)
		}
		f["HARDEN_SIGNAL"] = s.Signal
	default:
		return fmt.Errorf("changelog: unknown service event %q", s.Event)
	}
	return l.send(id, pri, msg, f)
}

// BootBlocked records that harden boot did not start the app, and why.
func (l *Log) BootBlocked(policy string, reasons []string) error {
	return l.send(MsgBootBlocked, PriCrit,
		"harden boot: the app was NOT started: "+strings.Join(reasons, "; "),
		map[string]string{"HARDEN_POLICY": policy, "HARDEN_ERROR": strings.Join(reasons, "; ")})
}

// Summary is one run's outcome.
type Summary struct {
	DryRun                             bool
	Status                             string // ok | changed | pending | failed
	Policy                             string
	Changes, Refused, Findings, Failed int
	Duration                           time.Duration
	Version                            string
}

// Run records the run's summary.
func (l *Log) Run(s Summary) error {
	pri := PriInfo
	if s.Status == "failed" {
		pri = PriErr
	}
	verb := "applied"
	if s.DryRun {
		verb = "pending"
	}
	msg := fmt.Sprintf("harden run %s: %d changes %s, %d findings, %d steps failed", s.Status, s.Changes, verb, s.Findings, s.Failed)
	return l.send(MsgRun, pri, msg, map[string]string{
		"HARDEN_DRY_RUN": strconv.FormatBool(s.DryRun), "HARDEN_STATUS": s.Status, "HARDEN_POLICY": s.Policy,
		"HARDEN_CHANGES": strconv.Itoa(s.Changes), "HARDEN_REFUSED": strconv.Itoa(s.Refused),
		"HARDEN_FINDINGS":     strconv.Itoa(s.Findings),
		"HARDEN_FAILED_STEPS": strconv.Itoa(s.Failed), "HARDEN_DURATION_MS": strconv.FormatInt(s.Duration.Milliseconds(), 10),
		"HARDEN_VERSION": s.Version,
	})
}

func (l *Log) send(id string, pri Priority, msg string, fields map[string]string) error {
	fields["HARDEN_RUN_ID"] = l.runID
	for k, v := range fields {
		if v == "" {
			delete(fields, k) // an empty journal field says nothing; leave it out
		}
	}
	err := l.sink.Send(Entry{MessageID: id, Priority: pri, Message: msg, Fields: fields})
	if err != nil {
		err = fmt.Errorf("%s: %w", msg, err)
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	}
	return err
}

// Priority is a syslog priority.
type Priority = journal.Priority

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
