// Package systemd is the narrow view of systemd that harden's steps need:
// list unit files and loaded units, mask/unmask/enable unit files, run
// start/stop/restart jobs and wait for their result, and daemon-reload.
//
// The only implementation talks to systemd over D-Bus (see Connect); steps
// depend on the Manager interface so that their logic can be unit tested, and
// package systemdtest provides a real private bus with a fake systemd for the
// tests that must exercise the D-Bus path itself.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// FileState is systemd's enablement state of a unit file, as printed by
// `systemctl list-unit-files` (UnitFileState on D-Bus).
type FileState string

// The unit file states systemd reports (systemd/src/shared/install.c).
const (
	Enabled        FileState = "enabled"
	EnabledRuntime FileState = "enabled-runtime"
	Linked         FileState = "linked"
	LinkedRuntime  FileState = "linked-runtime"
	Alias          FileState = "alias"
	Masked         FileState = "masked"
	MaskedRuntime  FileState = "masked-runtime"
	Static         FileState = "static"
	Disabled       FileState = "disabled"
	Indirect       FileState = "indirect"
	Generated      FileState = "generated"
	Transient      FileState = "transient"
	Bad            FileState = "bad"
)

// Managed reports whether harden may ever mask a unit file in this state.
// Static units have no [Install] section (they are pulled in by others),
// generated and transient ones live in /run and vanish, alias/indirect/linked
// ones are names for or links to other units: masking any of them either has
// no lasting effect or breaks the unit they stand for.
func (s FileState) Managed() bool {
	switch s {
	case Enabled, EnabledRuntime, Disabled, Masked, MaskedRuntime:
		return true
	}
	return false
}

// IsEnabled reports whether the unit file is enabled (persistently or for
// this boot only).
func (s FileState) IsEnabled() bool { return s == Enabled || s == EnabledRuntime }

// IsMasked reports whether the unit file is masked (persistently or for this
// boot only).
func (s FileState) IsMasked() bool { return s == Masked || s == MaskedRuntime }

// UnitFile is one entry of ListUnitFiles.
type UnitFile struct {
	Name  string    // unit name, e.g. "ssh.service"
	Path  string    // path of the unit file (or of the mask link)
	State FileState // enablement state
}

// Unit is a unit loaded in the manager, as in `systemctl list-units`.
type Unit struct {
	Name        string
	Description string
	LoadState   string // loaded, not-found, masked, bad-setting, error, ...
	ActiveState string // active, reloading, inactive, failed, activating, deactivating
	SubState    string // running, exited, dead, listening, ...
	// Job is the job queued or running for the unit; zero when none. At
	// boot, units are inactive with a "start" job waiting in the boot
	// transaction until the units they are ordered after are up.
	Job Job
}

// Job is a job systemd has queued for a unit (JobId/JobType of ListUnits).
type Job struct {
	ID   uint32
	Type string // start, stop, restart, reload, verify-active, try-restart, reload-or-start, ...
}

// Starting reports whether the unit is coming up: activating, or with a job
// queued that will leave it active. Such a unit needs no start of its own;
// queueing one would only merge into the job already there.
func (u Unit) Starting() bool {
	if u.ActiveState == "activating" {
		return true
	}
	switch u.Job.Type {
	case "start", "restart", "reload-or-start", "verify-active":
		return true
	}
	return false
}

// Active reports whether the unit is running or about to (anything a stop
// job would act on).
func (u Unit) Active() bool {
	switch u.ActiveState {
	case "active", "reloading", "activating", "refreshing":
		return true
	}
	return false
}

// Exists reports whether systemd knows a unit file for the unit.
func (u Unit) Exists() bool { return u.LoadState != "" && u.LoadState != "not-found" }

// FileChange is one symlink systemd created or removed for
// mask/unmask/enable, as returned over D-Bus.
type FileChange struct {
	Type        string // "symlink" or "unlink"
	Filename    string // the link
	Destination string // its target ("" for unlink)
}

func (c FileChange) String() string {
	if c.Destination == "" {
		return c.Type + " " + c.Filename
	}
	return c.Type + " " + c.Filename + " -> " + c.Destination
}

// JobResult is the result systemd reports when a job finishes (JobRemoved).
type JobResult string

// The job results systemd reports.
const (
	JobDone       JobResult = "done"
	JobCanceled   JobResult = "canceled"
	JobTimeout    JobResult = "timeout"
	JobFailed     JobResult = "failed"
	JobDependency JobResult = "dependency"
	JobSkipped    JobResult = "skipped"
)

// OK reports whether the job did what was asked. "skipped" counts: systemd
// uses it for a job that did not apply to the unit's state (e.g. a reload of a
// unit that just stopped), which is not an error for a caller converging state.
func (r JobResult) OK() bool { return r == JobDone || r == JobSkipped }

// Manager is everything harden's steps do with systemd. Every method takes a
// context; the D-Bus implementation also applies its own timeouts.
type Manager interface {
	// ListUnitFiles lists unit files whose names match any of the glob
	// patterns (all unit files when none are given).
	ListUnitFiles(ctx context.Context, patterns ...string) ([]UnitFile, error)
	// ListUnits lists loaded units. With names, it reports exactly those
	// units, loading them if needed (LoadState "not-found" for unknown ones).
	ListUnits(ctx context.Context, names ...string) ([]Unit, error)
	// ListLoadedUnits lists the loaded units whose names match any of the
	// glob patterns (all loaded units when none are given). Unlike ListUnits
	// with names, it never loads a unit.
	ListLoadedUnits(ctx context.Context, patterns ...string) ([]Unit, error)

	// Mask masks unit files persistently (a /dev/null link under /etc), so
	// the mask holds on a boot where harden does not run. Like systemctl, it
	// neither stops the units nor reloads the manager.
	Mask(ctx context.Context, names ...string) ([]FileChange, error)
	// Unmask removes persistent masks.
	Unmask(ctx context.Context, names ...string) ([]FileChange, error)
	// Enable enables unit files persistently (their [Install] links).
	Enable(ctx context.Context, names ...string) ([]FileChange, error)
	// DaemonReload makes the manager re-read unit files (after mask/enable).
	DaemonReload(ctx context.Context) error

	// Start, Stop, Restart and ReloadOrRestart queue a job for the unit and
	// wait until it finishes. The result is returned; a result that is not
	// OK also gives a *JobError.
	Start(ctx context.Context, name string) (JobResult, error)
	Stop(ctx context.Context, name string) (JobResult, error)
	Restart(ctx context.Context, name string) (JobResult, error)
	ReloadOrRestart(ctx context.Context, name string) (JobResult, error)
	// TryReloadOrRestart is systemctl try-reload-or-restart: reload (or
	// restart) the unit if it is active, leave it alone if not. For a
	// socket-activated daemon that may or may not run right now.
	TryReloadOrRestart(ctx context.Context, name string) (JobResult, error)
	// EnqueueStart queues a start job and returns without waiting for it.
	// It is for units whose start cannot finish while the caller runs (they
	// are ordered after the unit the caller runs in); ListUnits shows the
	// job until it is done.
	EnqueueStart(ctx context.Context, name string) (Job, error)

	// OrderedAfter lists the units ordered after name (the unit's Before=
	// property, which systemd fills from both sides: "X Before=Y" and
	// "Y After=X" alike). A start job of any of them waits while name has
	// a start job of its own.
	OrderedAfter(ctx context.Context, name string) ([]string, error)

	// Close releases the connection.
	Close() error
}

// ErrNoSystemd means there is no systemd to talk to: no system bus, or
// nothing owns org.freedesktop.systemd1 on it (systemd is not PID 1, as in a
// container or under Fly's own init). Steps turn it into the finding
// "no systemd: units not managed" rather than an error.
var ErrNoSystemd = errors.New("no systemd")

// Error is a failed call to systemd. It names the operation, the unit(s) and,
// when systemd answered with a D-Bus error, that error's name, e.g.
// "systemd: mask cups.service: org.freedesktop.systemd1.UnitExists: File ... already exists."
type Error struct {
	Op       string   // "mask", "start", "list unit files", ...
	Units    []string // units the call was about (may be empty)
	DBusName string   // D-Bus error name, "" if the failure was not a D-Bus error
	Err      error    // underlying error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("systemd: ")
	b.WriteString(e.Op)
	if len(e.Units) > 0 {
		b.WriteString(" ")
		b.WriteString(strings.Join(e.Units, " "))
	}
	b.WriteString(": ")
	if e.DBusName != "" {
		b.WriteString(e.DBusName)
		b.WriteString(": ")
	}
	b.WriteString(errorText(e.Err))
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// JobError is a job that finished with a result other than done/skipped.
type JobError struct {
	Op     string // "start", "stop", "restart", "reload-or-restart"
	Unit   string
	Job    string // job object path
	Result JobResult
}

func (e *JobError) Error() string {
	return fmt.Sprintf("systemd: %s %s: job %s finished with result %q", e.Op, e.Unit, e.Job, e.Result)
}
