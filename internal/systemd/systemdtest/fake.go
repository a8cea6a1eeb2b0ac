package systemdtest

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName            = "org.freedesktop.systemd1"
	objectPath         = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIfc         = "org.freedesktop.systemd1.Manager"
	etcUnitDir         = "/etc/systemd/system"
	runUnitDir         = "/run/systemd/system"
	errNoUnit          = "org.freedesktop.systemd1.NoSuchUnit"
	errMasked          = "org.freedesktop.systemd1.UnitMasked"
	errExists          = "org.freedesktop.systemd1.UnitExists"
	errGen             = "org.freedesktop.systemd1.UnitGenerated"
	errLinked          = "org.freedesktop.systemd1.UnitLinked"
	errInvalid         = "org.freedesktop.DBus.Error.InvalidArgs"
	errTimedOut        = "org.freedesktop.DBus.Error.TimedOut"
	errUnknownProperty = "org.freedesktop.DBus.Error.UnknownProperty"

	unitPathPrefix = dbus.ObjectPath("/org/freedesktop/systemd1/unit")
	propertiesIfc  = "org.freedesktop.DBus.Properties"
	unitIfc        = "org.freedesktop.systemd1.Unit"
)

// UnitSpec is one unit of the fake's initial state.
type UnitSpec struct {
	Name string
	// FileState is the unit file state ("enabled", "static", ...); empty
	// when the unit has no unit file (devices, scopes, ...).
	FileState string
	// Path of the unit file; derived from FileState when empty.
	Path string
	// Load/Active/Sub are the runtime state; LoadState empty means the
	// unit is not loaded.
	LoadState, ActiveState, SubState string
	Description                      string
	// Job is the type of a job already queued for the unit ("start"), as
	// units have at boot while they wait in the boot transaction. The fake
	// lists it with the unit and never finishes it; a StartUnit call for
	// the unit merges into it (same job path), as systemd does.
	Job string
	// Before and After are ordering dependencies. The fake reports them
	// from both sides, like systemd: "A After=B" shows B's Before as A.
	Before, After []string
}

// Fault makes the fake misbehave on calls of one method (and unit).
type Fault struct {
	Method string // D-Bus member name, e.g. "StartUnit", "MaskUnitFiles"
	Unit   string // only calls naming this unit; "" for any call of Method
	// Err is returned as the D-Bus error reply.
	Err *dbus.Error
	// Hang: never reply to the call (until the test ends).
	Hang bool
	// JobResult: for job methods, finish the job with this result
	// ("failed", "timeout", "dependency", ...) instead of "done".
	JobResult string
	// JobHang: for job methods, accept the job but never emit JobRemoved.
	JobHang bool
	// JobDelay: for job methods, finish the job only after this long.
	JobDelay time.Duration
}

// Call is one method call the fake received.
type Call struct {
	Method string
	Args   []string
}

func (c Call) String() string { return c.Method + "(" + strings.Join(c.Args, ", ") + ")" }

// mutating lists the methods that change unit files or unit state.
var mutating = map[string]bool{
	"MaskUnitFiles": true, "UnmaskUnitFiles": true, "EnableUnitFiles": true, "DisableUnitFiles": true,
	"Reload": true, "StartUnit": true, "StopUnit": true, "RestartUnit": true,
	"ReloadOrRestartUnit": true, "TryRestartUnit": true, "ReloadUnit": true, "ReloadOrTryRestartUnit": true,
}

type unit struct {
	UnitSpec
	baseState string // file state underneath any mask ("" when only a mask exists)
	maskEtc   bool   // persistent mask: /etc/systemd/system/NAME -> /dev/null
	maskRun   bool   // runtime mask under /run/systemd/system
	// activeSub is the sub state the unit shows when active.
	activeSub string
	// job is the job queued or running for the unit (nil when none).
	job *job
}

// job is one queued job: its number and type ("start", "stop", ...).
type job struct {
	id  uint32
	typ string
}

func (j *job) path() dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/systemd1/job/" + strconv.FormatUint(uint64(j.id), 10))
}

// Fake is an in-memory systemd manager exported on a Bus as
// org.freedesktop.systemd1. It implements the Manager methods go-systemd's
// client calls, keeps unit file and unit state, finishes jobs by emitting
// JobRemoved, and can inject failures (see Inject).
type Fake struct {
	conn *dbus.Conn

	mu      sync.Mutex
	units   map[string]*unit
	faults  []Fault
	calls   []Call
	nextJob uint32
	reloads int
	closed  chan struct{}
	jobs    sync.WaitGroup
}

// NewFake exports a fake systemd with the given units on bus. It stops
// serving when the test ends.
func NewFake(t testing.TB, bus *Bus, units []UnitSpec) *Fake {
	t.Helper()
	conn, err := dbus.Dial(bus.Address)
	if err != nil {
		t.Fatalf("systemdtest: dial bus: %v", err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		t.Fatalf("systemdtest: auth: %v", err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatalf("systemdtest: hello: %v", err)
	}
	f := &Fake{conn: conn, units: map[string]*unit{}, nextJob: 100, closed: make(chan struct{})}
	for _, s := range units {
		f.add(s)
	}
	if err := conn.Export(&manager{f}, objectPath, managerIfc); err != nil {
		t.Fatalf("systemdtest: export: %v", err)
	}
	if err := conn.ExportSubtree(&properties{f}, unitPathPrefix, propertiesIfc); err != nil {
		t.Fatalf("systemdtest: export unit properties: %v", err)
	}
	reply, err := conn.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("systemdtest: request name %s: reply %v, %v", busName, reply, err)
	}
	t.Cleanup(f.Close)
	return f
}

// Close releases the bus name and stops serving: later calls fail with
// org.freedesktop.DBus.Error.ServiceUnknown, as when systemd goes away.
func (f *Fake) Close() {
	f.mu.Lock()
	select {
	case <-f.closed:
		f.mu.Unlock()
		return
	default:
		close(f.closed)
	}
	f.mu.Unlock()
	f.jobs.Wait()
	_, _ = f.conn.ReleaseName(busName)
	_ = f.conn.Close()
}

func (f *Fake) add(s UnitSpec) {
	u := &unit{UnitSpec: s, baseState: s.FileState}
	// A masked unit in a list-unit-files output hides the state of the
	// vendor file underneath; "disabled" is what unmasking shows on Debian.
	switch s.FileState {
	case "masked":
		u.maskEtc, u.baseState = true, "disabled"
	case "masked-runtime":
		u.maskRun, u.baseState = true, "disabled"
	}
	// For a masked unit the given path is the mask link; Path keeps the
	// vendor file that unmasking uncovers.
	if u.Path == "" || u.masked() {
		u.Path = defaultPath(s.Name, u.baseState)
	}
	u.activeSub = s.SubState
	if u.ActiveState != "active" || u.activeSub == "" {
		u.activeSub = activeSubFor(s.Name)
	}
	if u.Description == "" {
		u.Description = s.Name
	}
	if s.Job != "" {
		f.nextJob++
		u.job = &job{id: f.nextJob, typ: s.Job}
	}
	f.units[s.Name] = u
}

// defaultPath is where Debian keeps a unit file of that state.
func defaultPath(name, state string) string {
	switch state {
	case "":
		return ""
	case "masked", "alias", "linked":
		return etcUnitDir + "/" + name
	case "masked-runtime", "linked-runtime", "enabled-runtime":
		return runUnitDir + "/" + name
	case "generated":
		return "/run/systemd/generator/" + name
	case "transient":
		return "/run/systemd/transient/" + name
	}
	return "/lib/systemd/system/" + name
}

func activeSubFor(name string) string {
	switch path.Ext(name) {
	case ".service":
		return "running"
	case ".socket":
		return "listening"
	case ".timer", ".path":
		return "waiting"
	case ".mount":
		return "mounted"
	case ".device":
		return "plugged"
	}
	return "active"
}

// Inject adds a fault; it applies to every matching call until ClearFaults.
func (f *Fake) Inject(fl Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fl)
}

// ClearFaults removes all injected faults.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// Calls returns the method calls received so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Mutations returns the calls received so far that change state.
func (f *Fake) Mutations() []Call {
	var out []Call
	for _, c := range f.Calls() {
		if mutating[c.Method] {
			out = append(out, c)
		}
	}
	return out
}

// Reloads counts daemon-reloads.
func (f *Fake) Reloads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

// FileState is the unit file state the fake would list for name ("" when
// the unit has no file).
func (f *Fake) FileState(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.units[name]; ok {
		return u.state()
	}
	return ""
}

// State is a unit's runtime state.
func (f *Fake) State(name string) (load, active, sub string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.units[name]; ok {
		return u.LoadState, u.ActiveState, u.SubState
	}
	return "", "", ""
}

// Units returns the fake's current state of every unit, sorted by name.
func (f *Fake) Units() []UnitSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]UnitSpec, 0, len(f.units))
	for _, u := range f.units {
		s := u.UnitSpec
		s.FileState = u.state()
		s.Path = u.path()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// state is what list-unit-files shows: /etc takes precedence over /run.
func (u *unit) state() string {
	switch {
	case u.maskEtc:
		return "masked"
	case u.maskRun:
		return "masked-runtime"
	}
	return u.baseState
}

func (u *unit) masked() bool { return u.maskEtc || u.maskRun }

func (u *unit) path() string {
	switch {
	case u.maskEtc:
		return etcUnitDir + "/" + u.Name
	case u.maskRun:
		return runUnitDir + "/" + u.Name
	}
	return u.Path
}

// record logs a call and returns the fault that applies to it, if any.
func (f *Fake) record(method string, units []string, args ...string) *Fault {
	f.calls = append(f.calls, Call{Method: method, Args: append(slices.Clone(units), args...)})
	for i := range f.faults {
		fl := &f.faults[i]
		if fl.Method == method && (fl.Unit == "" || slices.Contains(units, fl.Unit)) {
			return fl
		}
	}
	return nil
}

// begin records a call under the lock and handles Err/Hang faults. When it
// returns a non-nil error (or after a hang), the caller must reply with it.
// It returns with f.mu held when err is nil.
func (f *Fake) begin(method string, units []string, args ...string) (*Fault, *dbus.Error) {
	f.mu.Lock()
	fl := f.record(method, units, args...)
	if fl == nil {
		return nil, nil
	}
	if fl.Hang {
		f.mu.Unlock()
		<-f.closed
		return nil, dbus.NewError(errTimedOut, []any{"fake systemd hung on " + method})
	}
	if fl.Err != nil {
		f.mu.Unlock()
		return nil, fl.Err
	}
	return fl, nil
}

func newErr(name, format string, a ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, a...)})
}

func unitPath(name string) dbus.ObjectPath {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return dbus.ObjectPath(string(unitPathPrefix) + "/" + b.String())
}

// wantedBy is the target an [Install] WantedBy= of this unit type usually
// names on Debian.
func wantedBy(name string) string {
	switch path.Ext(name) {
	case ".socket":
		return "sockets.target"
	case ".timer":
		return "timers.target"
	case ".path":
		return "paths.target"
	}
	return "multi-user.target"
}
