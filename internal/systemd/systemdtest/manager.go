package systemdtest

import (
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// manager holds the methods exported as org.freedesktop.systemd1.Manager.
// godbus exports every method of the value, so this type has nothing else.
// Signatures follow systemd's org.freedesktop.systemd1(5).
type manager struct{ f *Fake }

// unitFileEntry is (ss) of ListUnitFiles.
type unitFileEntry struct {
	Path  string
	State string
}

// unitStatus is (ssssssouso) of ListUnits.
type unitStatus struct {
	Name, Description, LoadState, ActiveState, SubState, Followed string
	Path                                                          dbus.ObjectPath
	JobID                                                         uint32
	JobType                                                       string
	JobPath                                                       dbus.ObjectPath
}

// change is (sss) of Mask/Unmask/Enable/DisableUnitFiles.
type change struct {
	Type, Filename, Destination string
}

var unitSuffixes = []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope"}

func validName(name string) bool {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return false
	}
	return slices.Contains(unitSuffixes, path.Ext(name))
}

func checkNames(names []string) *dbus.Error {
	for _, n := range names {
		if !validName(n) {
			return newErr(errInvalid, "Unit name %s is not valid.", n)
		}
	}
	return nil
}

// matchAny is systemd's strv_fnmatch_or_empty(patterns, name, FNM_NOESCAPE): a backslash
// in a pattern (unit names escape "-" as \x2d) is a plain character, not an escape.
func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ReplaceAll(p, `\`, `\\`), name); ok {
			return true
		}
	}
	return false
}

func (f *Fake) sortedUnits() []*unit {
	out := make([]*unit, 0, len(f.units))
	for _, u := range f.units {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ListUnitFiles returns every unit file.
func (m *manager) ListUnitFiles() ([]unitFileEntry, *dbus.Error) {
	return m.ListUnitFilesByPatterns(nil, nil)
}

// ListUnitFilesByPatterns filters unit files by state and name glob.
func (m *manager) ListUnitFilesByPatterns(states, patterns []string) ([]unitFileEntry, *dbus.Error) {
	f := m.f
	if _, err := f.begin("ListUnitFilesByPatterns", nil, strings.Join(states, ","), strings.Join(patterns, ",")); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := []unitFileEntry{}
	for _, u := range f.sortedUnits() {
		st := u.state()
		if st == "" || !matchAny(patterns, u.Name) {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, st) {
			continue
		}
		out = append(out, unitFileEntry{Path: u.path(), State: st})
	}
	return out, nil
}

// GetUnitFileState returns one unit file's state.
func (m *manager) GetUnitFileState(name string) (string, *dbus.Error) {
	f := m.f
	if _, err := f.begin("GetUnitFileState", []string{name}); err != nil {
		return "", err
	}
	defer f.mu.Unlock()
	if u, ok := f.units[name]; ok && u.state() != "" {
		return u.state(), nil
	}
	return "", newErr(errNoUnit, "Unit file %s does not exist.", name)
}

func (u *unit) status() unitStatus {
	st := unitStatus{Name: u.Name, Description: u.Description, LoadState: u.LoadState,
		ActiveState: u.ActiveState, SubState: u.SubState, Path: unitPath(u.Name), JobPath: "/"}
	if u.job != nil {
		st.JobID, st.JobType, st.JobPath = u.job.id, u.job.typ, u.job.path()
	}
	return st
}

// ListUnits returns the loaded units.
func (m *manager) ListUnits() ([]unitStatus, *dbus.Error) {
	return m.list("ListUnits", nil, nil)
}

// ListUnitsFiltered returns loaded units in any of the given states.
func (m *manager) ListUnitsFiltered(states []string) ([]unitStatus, *dbus.Error) {
	return m.list("ListUnitsFiltered", states, nil)
}

// ListUnitsByPatterns returns loaded units by state and name glob.
func (m *manager) ListUnitsByPatterns(states, patterns []string) ([]unitStatus, *dbus.Error) {
	return m.list("ListUnitsByPatterns", states, patterns)
}

func (m *manager) list(method string, states, patterns []string) ([]unitStatus, *dbus.Error) {
	f := m.f
	if _, err := f.begin(method, nil, strings.Join(states, ","), strings.Join(patterns, ",")); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := []unitStatus{}
	for _, u := range f.sortedUnits() {
		if u.LoadState == "" || !matchAny(patterns, u.Name) {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, u.LoadState) &&
			!slices.Contains(states, u.ActiveState) && !slices.Contains(states, u.SubState) {
			continue
		}
		out = append(out, u.status())
	}
	return out, nil
}

// ListUnitsByNames reports exactly the named units, loading them on demand
// like systemd: unknown names come back as not-found.
func (m *manager) ListUnitsByNames(names []string) ([]unitStatus, *dbus.Error) {
	f := m.f
	if _, err := f.begin("ListUnitsByNames", names); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	out := make([]unitStatus, 0, len(names))
	for _, n := range names {
		u, ok := f.units[n]
		switch {
		case !ok || (u.LoadState == "" && u.baseState == "" && !u.masked()):
			out = append(out, unitStatus{Name: n, LoadState: "not-found", ActiveState: "inactive",
				SubState: "dead", Path: unitPath(n), JobPath: "/"})
		case u.LoadState == "":
			st := unitStatus{Name: n, Description: u.Description, LoadState: "loaded",
				ActiveState: "inactive", SubState: "dead", Path: unitPath(n), JobPath: "/"}
			if u.masked() {
				st.LoadState = "masked"
			}
			out = append(out, st)
		default:
			out = append(out, u.status())
		}
	}
	return out, nil
}

// MaskUnitFiles links units to /dev/null. Like systemd with force=false it
// refuses when a file or foreign link of that name already exists where the
// mask goes. The fake checks every name before changing any.
func (m *manager) MaskUnitFiles(files []string, runtime, force bool) ([]change, *dbus.Error) {
	f := m.f
	if _, err := f.begin("MaskUnitFiles", files, "runtime="+strconv.FormatBool(runtime), "force="+strconv.FormatBool(force)); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if err := checkNames(files); err != nil {
		return nil, err
	}
	dir := etcUnitDir
	if runtime {
		dir = runUnitDir
	}
	for _, n := range files {
		u, ok := f.units[n]
		if ok && !force && u.Path == dir+"/"+n &&
			!((runtime && u.maskRun) || (!runtime && u.maskEtc)) {
			return nil, newErr(errExists, "File %s already exists.", u.Path)
		}
	}
	changes := []change{}
	for _, n := range files {
		u, ok := f.units[n]
		if !ok {
			// systemd masks names it has no unit file for, too.
			u = &unit{UnitSpec: UnitSpec{Name: n, Description: n}, activeSub: activeSubFor(n)}
			f.units[n] = u
		}
		link := dir + "/" + n
		if runtime && !u.maskRun {
			u.maskRun = true
			changes = append(changes, change{"symlink", link, "/dev/null"})
		} else if !runtime && !u.maskEtc {
			u.maskEtc = true
			changes = append(changes, change{"symlink", link, "/dev/null"})
		}
	}
	return changes, nil
}

// UnmaskUnitFiles removes /dev/null links.
func (m *manager) UnmaskUnitFiles(files []string, runtime bool) ([]change, *dbus.Error) {
	f := m.f
	if _, err := f.begin("UnmaskUnitFiles", files, "runtime="+strconv.FormatBool(runtime)); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if err := checkNames(files); err != nil {
		return nil, err
	}
	changes := []change{}
	for _, n := range files {
		u, ok := f.units[n]
		if !ok {
			continue
		}
		if runtime && u.maskRun {
			u.maskRun = false
			changes = append(changes, change{"unlink", runUnitDir + "/" + n, ""})
		} else if !runtime && u.maskEtc {
			u.maskEtc = false
			changes = append(changes, change{"unlink", etcUnitDir + "/" + n, ""})
		}
		if !u.masked() && u.baseState == "" && u.LoadState == "" {
			delete(f.units, n) // the mask was all there was
		}
	}
	return changes, nil
}

// EnableUnitFiles creates the [Install] links of units.
func (m *manager) EnableUnitFiles(files []string, runtime, force bool) (bool, []change, *dbus.Error) {
	f := m.f
	if _, err := f.begin("EnableUnitFiles", files, "runtime="+strconv.FormatBool(runtime), "force="+strconv.FormatBool(force)); err != nil {
		return false, nil, err
	}
	defer f.mu.Unlock()
	if err := checkNames(files); err != nil {
		return false, nil, err
	}
	for _, n := range files {
		u, ok := f.units[n]
		switch {
		case !ok || u.baseState == "":
			return false, nil, newErr(errNoUnit, "Unit file %s does not exist.", n)
		case u.masked():
			return false, nil, newErr(errMasked, "Unit file %s is masked.", n)
		case u.baseState == "generated" || u.baseState == "transient":
			return false, nil, newErr(errGen, "Unit %s is transient or generated.", n)
		}
	}
	carries := false
	changes := []change{}
	for _, n := range files {
		u := f.units[n]
		switch u.baseState {
		case "static":
			continue // no [Install] section: nothing to enable
		case "alias", "indirect":
			carries = true
			continue
		case "enabled":
			carries = true
			continue
		case "enabled-runtime":
			if runtime {
				carries = true
				continue
			}
		}
		carries = true
		dir := etcUnitDir
		u.baseState = "enabled"
		if runtime {
			dir = runUnitDir
			u.baseState = "enabled-runtime"
		}
		changes = append(changes, change{"symlink", dir + "/" + wantedBy(n) + ".wants/" + n, u.Path})
	}
	return carries, changes, nil
}

// DisableUnitFiles removes the [Install] links of units.
func (m *manager) DisableUnitFiles(files []string, runtime bool) ([]change, *dbus.Error) {
	f := m.f
	if _, err := f.begin("DisableUnitFiles", files, "runtime="+strconv.FormatBool(runtime)); err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if err := checkNames(files); err != nil {
		return nil, err
	}
	changes := []change{}
	for _, n := range files {
		u, ok := f.units[n]
		if !ok {
			continue
		}
		if (u.baseState == "enabled" && !runtime) || (u.baseState == "enabled-runtime" && runtime) {
			dir := etcUnitDir
			if runtime {
				dir = runUnitDir
			}
			u.baseState = "disabled"
			changes = append(changes, change{"unlink", dir + "/" + wantedBy(n) + ".wants/" + n, ""})
		}
	}
	return changes, nil
}

// Reload is daemon-reload: loaded units pick up mask changes.
func (m *manager) Reload() *dbus.Error {
	f := m.f
	if _, err := f.begin("Reload", nil); err != nil {
		return err
	}
	defer f.mu.Unlock()
	f.reloads++
	for _, u := range f.units {
		switch {
		case u.LoadState == "":
		case u.masked():
			u.LoadState = "masked"
		case u.LoadState == "masked":
			u.LoadState = "loaded"
		}
	}
	return nil
}

// StartUnit queues a start job.
func (m *manager) StartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("StartUnit", name, mode)
}

// StopUnit queues a stop job.
func (m *manager) StopUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("StopUnit", name, mode)
}

// RestartUnit queues a restart job.
func (m *manager) RestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("RestartUnit", name, mode)
}

// TryRestartUnit queues a restart job if the unit is active.
func (m *manager) TryRestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("TryRestartUnit", name, mode)
}

// ReloadOrRestartUnit queues a reload-or-restart job.
func (m *manager) ReloadOrRestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("ReloadOrRestartUnit", name, mode)
}

// ReloadOrTryRestartUnit queues a reload-or-restart job if the unit is
// active (systemctl try-reload-or-restart); an inactive unit stays inactive.
func (m *manager) ReloadOrTryRestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.f.queueJob("ReloadOrTryRestartUnit", name, mode)
}

// jobTypes is the JobType ListUnits shows while a job of that method is
// queued.
var jobTypes = map[string]string{"StartUnit": "start", "StopUnit": "stop", "RestartUnit": "restart",
	"TryRestartUnit": "try-restart", "ReloadOrRestartUnit": "restart", "ReloadOrTryRestartUnit": "try-restart"}

var jobModes = []string{"replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements",
	"flush", "triggering", "replace-irreversibly"}

// queueJob validates a job request like systemd does, replies with the job
// path and finishes the job in the background by emitting JobRemoved.
func (f *Fake) queueJob(method, name, mode string) (dbus.ObjectPath, *dbus.Error) {
	fl, err := f.begin(method, []string{name}, mode)
	if err != nil {
		return "", err
	}
	defer f.mu.Unlock()
	if !validName(name) {
		return "", newErr(errInvalid, "Unit name %s is not valid.", name)
	}
	if !slices.Contains(jobModes, mode) {
		return "", newErr(errInvalid, "Job mode %s invalid.", mode)
	}
	u, ok := f.units[name]
	known := ok && (u.LoadState != "" || u.baseState != "" || u.masked())
	if method == "StopUnit" {
		if !known {
			return "", newErr(errNoUnit, "Unit %s not loaded.", name)
		}
	} else {
		if !known || (u.baseState == "" && !u.masked() && u.LoadState == "not-found") {
			return "", newErr(errNoUnit, "Unit %s not found.", name)
		}
		// A unit loaded before it was masked keeps running its old
		// definition until daemon-reload; one loaded as masked cannot start.
		if u.LoadState == "masked" || (u.LoadState == "" && u.masked()) || (u.masked() && u.baseState == "") {
			return "", newErr(errMasked, "Unit %s is masked.", name)
		}
	}

	select {
	case <-f.closed:
		return "", newErr(errTimedOut, "fake systemd is shut down")
	default:
	}
	// Like systemd, a start asked for a unit whose start job is already
	// queued merges into that job: same job, no second one.
	if method == "StartUnit" && u.job != nil && u.job.typ == "start" {
		return u.job.path(), nil
	}
	// systemd loads a unit to queue a job for it, so a unit with a job is
	// listed even before the job runs.
	if u.LoadState == "" {
		u.LoadState, u.ActiveState, u.SubState = "loaded", "inactive", "dead"
	}
	f.nextJob++
	id := f.nextJob
	u.job = &job{id: id, typ: jobTypes[method]}
	job := u.job.path()
	result := "done"
	hang := false
	var delay time.Duration
	if fl != nil {
		hang, delay = fl.JobHang, fl.JobDelay
		if fl.JobResult != "" {
			result = fl.JobResult
		}
	}
	f.jobs.Add(1)
	go f.finishJob(method, name, id, job, result, hang, delay)
	return job, nil
}

// finishJob applies the job's effect and announces it with JobRemoved, as
// systemd does when a job leaves the queue. The signal may reach the client
// before the method reply; go-systemd copes (it holds its job lock across
// the call), and the real systemd gives no ordering guarantee either.
func (f *Fake) finishJob(method, name string, id uint32, job dbus.ObjectPath, result string, hang bool, delay time.Duration) {
	defer f.jobs.Done()
	if hang {
		<-f.closed
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-f.closed:
			return
		}
	}
	f.mu.Lock()
	select {
	case <-f.closed:
		f.mu.Unlock()
		return
	default:
	}
	u := f.units[name]
	if u.job != nil && u.job.id == id {
		u.job = nil
	}
	applyJob(u, method, result)
	f.mu.Unlock()
	_ = f.conn.Emit(objectPath, managerIfc+".JobRemoved", id, job, name, result)
}

func applyJob(u *unit, method, result string) {
	if u.LoadState == "" {
		u.LoadState = "loaded"
	}
	switch {
	case result == "failed" || result == "timeout":
		u.ActiveState, u.SubState = "failed", "failed"
	case result != "done":
		// canceled, dependency, skipped: the unit did not change.
	case method == "StopUnit":
		u.ActiveState, u.SubState = "inactive", "dead"
	case (method == "TryRestartUnit" || method == "ReloadOrTryRestartUnit") && u.ActiveState != "active":
	default:
		u.ActiveState, u.SubState = "active", u.activeSub
	}
}

// properties serves org.freedesktop.DBus.Properties.Get on unit objects
// (/org/freedesktop/systemd1/unit/NAME), for the Unit properties harden
// reads: Id, Before, After.
type properties struct{ f *Fake }

// Get returns one property of the unit the call's object path names.
func (p *properties) Get(msg dbus.Message, iface, prop string) (dbus.Variant, *dbus.Error) {
	f := p.f
	obj, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	name := f.unitNameOf(obj)
	if _, err := f.begin("Get", []string{name}, iface, prop); err != nil {
		return dbus.Variant{}, err
	}
	defer f.mu.Unlock()
	if iface != unitIfc {
		return dbus.Variant{}, newErr(errUnknownProperty, "Unknown interface %s.", iface)
	}
	switch prop {
	case "Id":
		return dbus.MakeVariant(name), nil
	case "Before":
		return dbus.MakeVariant(f.ordering(name, true)), nil
	case "After":
		return dbus.MakeVariant(f.ordering(name, false)), nil
	}
	return dbus.Variant{}, newErr(errUnknownProperty, "Unknown property %s.", prop)
}

// unitNameOf maps a unit object path back to the unit's name.
func (f *Fake) unitNameOf(obj dbus.ObjectPath) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.units {
		if unitPath(n) == obj {
			return n
		}
	}
	return strings.TrimPrefix(string(obj), string(unitPathPrefix)+"/")
}

// ordering is a unit's Before (before=true) or After list, from both sides
// of every unit's declarations, sorted. Callers hold f.mu.
func (f *Fake) ordering(name string, before bool) []string {
	set := map[string]bool{}
	if u, ok := f.units[name]; ok {
		own := u.After
		if before {
			own = u.Before
		}
		for _, n := range own {
			set[n] = true
		}
	}
	for _, o := range f.units {
		other := o.Before
		if before {
			other = o.After
		}
		if slices.Contains(other, name) {
			set[o.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
