package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// DefaultSystemBus is where the system bus listens when
// DBUS_SYSTEM_BUS_ADDRESS is not set.
const DefaultSystemBus = "unix:path=/run/dbus/system_bus_socket"

const (
	systemdBusName = "org.freedesktop.systemd1"
	// jobMode "replace" is what systemctl uses: our job replaces a
	// conflicting queued one instead of failing.
	jobMode = "replace"
)

// Options tune Connect. The zero value is the system bus with sane timeouts.
type Options struct {
	// Address is the D-Bus address of the bus systemd is on. Empty means
	// $DBUS_SYSTEM_BUS_ADDRESS, else DefaultSystemBus. Tests point it at a
	// private bus (package systemdtest).
	Address string
	// CallTimeout bounds each D-Bus method call and the connection
	// handshake (default 10s).
	CallTimeout time.Duration
	// JobTimeout bounds the wait for a start/stop/restart job to finish
	// (default 90s, systemd's own default start timeout).
	JobTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Address == "" {
		o.Address = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	}
	if o.Address == "" {
		o.Address = DefaultSystemBus
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 90 * time.Second
	}
	return o
}

// Conn is the D-Bus implementation of Manager, on go-systemd's client.
type Conn struct {
	sd   *sd.Conn
	opts Options
}

var _ Manager = (*Conn)(nil)

// Connect connects to systemd over D-Bus. When there is no bus at the
// address, or nothing owns org.freedesktop.systemd1 on it, the error wraps
// ErrNoSystemd (test with errors.Is).
func Connect(ctx context.Context, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	// go-systemd dials twice: one connection for calls, one for signals.
	c, err := sd.NewConnection(func() (*dbus.Conn, error) {
		return dial(ctx, opts)
	})
	if err != nil {
		return nil, err
	}
	return &Conn{sd: c, opts: opts}, nil
}

// dial opens, authenticates and says Hello on one bus connection, bounded
// by ctx and CallTimeout, then checks that systemd is on that bus.
//
// godbus's Auth and Hello take no context, and its WithContext option would
// close the connection when a short-lived context ends; so the handshake
// runs in a goroutine and the connection is closed (which unblocks it) when
// the deadline passes.
func dial(ctx context.Context, opts Options) (*dbus.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
	defer cancel()

	conn, err := dbus.Dial(opts.Address)
	if err != nil {
		if isNoBus(err) {
			return nil, fmt.Errorf("%w: no system bus at %s: %v", ErrNoSystemd, opts.Address, err)
		}
		return nil, &Error{Op: "connect " + opts.Address, Err: err}
	}
	done := make(chan error, 1)
	go func() {
		// EXTERNAL with the numeric uid avoids a user name lookup, which a
		// static binary cannot do through NSS.
		err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))})
		if err == nil {
			err = conn.Hello()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, &Error{Op: "connect " + opts.Address, Err: err}
	}

	var owned bool
	err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, systemdBusName).Store(&owned)
	if err != nil {
		conn.Close()
		return nil, wrap("connect "+opts.Address, nil, err)
	}
	if !owned {
		conn.Close()
		return nil, fmt.Errorf("%w: nothing owns %s on %s (systemd is not the init system)", ErrNoSystemd, systemdBusName, opts.Address)
	}
	return conn, nil
}

// isNoBus tells "there is no bus here" (socket missing or nobody listening)
// from real failures such as permission denied.
func isNoBus(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
}

// Close closes both bus connections.
func (c *Conn) Close() error {
	c.sd.Close()
	return nil
}

func (c *Conn) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

// ListUnitFiles implements Manager.
func (c *Conn) ListUnitFiles(ctx context.Context, patterns ...string) ([]UnitFile, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	if patterns == nil {
		patterns = []string{}
	}
	files, err := c.sd.ListUnitFilesByPatternsContext(ctx, []string{}, patterns)
	if err != nil {
		return nil, wrap("list unit files", patterns, err)
	}
	out := make([]UnitFile, 0, len(files))
	for _, f := range files {
		out = append(out, UnitFile{Name: baseName(f.Path), Path: f.Path, State: FileState(f.Type)})
	}
	return out, nil
}

// ListUnits implements Manager.
func (c *Conn) ListUnits(ctx context.Context, names ...string) ([]Unit, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	var (
		st  []sd.UnitStatus
		err error
	)
	if len(names) == 0 {
		st, err = c.sd.ListUnitsContext(ctx)
	} else {
		st, err = c.sd.ListUnitsByNamesContext(ctx, names)
	}
	if err != nil {
		return nil, wrap("list units", names, err)
	}
	return units(st), nil
}

// ListLoadedUnits implements Manager.
func (c *Conn) ListLoadedUnits(ctx context.Context, patterns ...string) ([]Unit, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	if patterns == nil {
		patterns = []string{}
	}
	st, err := c.sd.ListUnitsByPatternsContext(ctx, []string{}, patterns)
	if err != nil {
		return nil, wrap("list units", patterns, err)
	}
	return units(st), nil
}

func units(st []sd.UnitStatus) []Unit {
	out := make([]Unit, 0, len(st))
	for _, u := range st {
		out = append(out, Unit{Name: u.Name, Description: u.Description, LoadState: u.LoadState,
			ActiveState: u.ActiveState, SubState: u.SubState, Job: Job{ID: u.JobId, Type: u.JobType}})
	}
	return out
}

// Mask implements Manager. runtime=false puts the link under /etc so it
// survives reboots; force=false so an existing foreign link is an error
// rather than silently replaced.
func (c *Conn) Mask(ctx context.Context, names ...string) ([]FileChange, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	ch, err := c.sd.MaskUnitFilesContext(ctx, names, false, false)
	if err != nil {
		return nil, wrap("mask", names, err)
	}
	out := make([]FileChange, 0, len(ch))
	for _, x := range ch {
		out = append(out, FileChange(x))
	}
	return out, nil
}

// Unmask implements Manager.
func (c *Conn) Unmask(ctx context.Context, names ...string) ([]FileChange, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	ch, err := c.sd.UnmaskUnitFilesContext(ctx, names, false)
	if err != nil {
		return nil, wrap("unmask", names, err)
	}
	out := make([]FileChange, 0, len(ch))
	for _, x := range ch {
		out = append(out, FileChange(x))
	}
	return out, nil
}

// Enable implements Manager.
func (c *Conn) Enable(ctx context.Context, names ...string) ([]FileChange, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	_, ch, err := c.sd.EnableUnitFilesContext(ctx, names, false, false)
	if err != nil {
		return nil, wrap("enable", names, err)
	}
	out := make([]FileChange, 0, len(ch))
	for _, x := range ch {
		out = append(out, FileChange(x))
	}
	return out, nil
}

// DaemonReload implements Manager.
func (c *Conn) DaemonReload(ctx context.Context) error {
	// A reload re-reads every unit file; it takes longer than a plain call
	// on a big system, so it gets the job timeout.
	ctx, cancel := context.WithTimeout(ctx, c.opts.JobTimeout)
	defer cancel()
	if err := c.sd.ReloadContext(ctx); err != nil {
		return wrap("daemon-reload", nil, err)
	}
	return nil
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// Start implements Manager.
func (c *Conn) Start(ctx context.Context, name string) (JobResult, error) {
	return c.runJob(ctx, "start", name, c.sd.StartUnitContext)
}

// Stop implements Manager.
func (c *Conn) Stop(ctx context.Context, name string) (JobResult, error) {
	return c.runJob(ctx, "stop", name, c.sd.StopUnitContext)
}

// Restart implements Manager.
func (c *Conn) Restart(ctx context.Context, name string) (JobResult, error) {
	return c.runJob(ctx, "restart", name, c.sd.RestartUnitContext)
}

// ReloadOrRestart implements Manager.
func (c *Conn) ReloadOrRestart(ctx context.Context, name string) (JobResult, error) {
	return c.runJob(ctx, "reload-or-restart", name, c.sd.ReloadOrRestartUnitContext)
}

// TryReloadOrRestart implements Manager.
func (c *Conn) TryReloadOrRestart(ctx context.Context, name string) (JobResult, error) {
	return c.runJob(ctx, "try-reload-or-restart", name, c.sd.ReloadOrTryRestartUnitContext)
}

// EnqueueStart implements Manager. A nil result channel tells go-systemd
// not to track the job, so nothing waits for its JobRemoved.
func (c *Conn) EnqueueStart(ctx context.Context, name string) (Job, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	id, err := c.sd.StartUnitContext(ctx, name, jobMode, nil)
	if err != nil {
		return Job{}, wrap("start", []string{name}, err)
	}
	return Job{ID: uint32(id), Type: "start"}, nil
}

// OrderedAfter implements Manager.
func (c *Conn) OrderedAfter(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	prop, err := c.sd.GetUnitPropertyContext(ctx, name, "Before")
	if err != nil {
		return nil, wrap("read Before of", []string{name}, err)
	}
	units, ok := prop.Value.Value().([]string)
	if !ok {
		return nil, &Error{Op: "read Before of", Units: []string{name},
			Err: fmt.Errorf("property has D-Bus type %s, want as", prop.Value.Signature())}
	}
	return units, nil
}

// runJob queues a job and waits for its JobRemoved signal.
//
// The result channel is buffered (capacity 1): go-systemd writes the result
// from its single signal dispatcher while holding its job lock, so an
// unbuffered channel that nobody reads any more (we gave up on a timeout)
// would block every later job on the connection.
func (c *Conn) runJob(ctx context.Context, op, name string, queue jobFunc) (JobResult, error) {
	result := make(chan string, 1)
	callCtx, cancel := c.callCtx(ctx)
	id, err := queue(callCtx, name, jobMode, result)
	cancel()
	if err != nil {
		return "", wrap(op, []string{name}, err)
	}
	job := fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id)

	wait, cancel := context.WithTimeout(ctx, c.opts.JobTimeout)
	defer cancel()
	select {
	case r := <-result:
		res := JobResult(r)
		if !res.OK() {
			return res, &JobError{Op: op, Unit: name, Job: job, Result: res}
		}
		return res, nil
	case <-wait.Done():
		return "", &Error{Op: op, Units: []string{name},
			Err: fmt.Errorf("waiting for job %s: %w", job, wait.Err())}
	}
}

// wrap turns a go-systemd/godbus error into an *Error that names the
// operation, the units and the D-Bus error name.
func wrap(op string, units []string, err error) error {
	e := &Error{Op: op, Units: units, Err: err}
	var dv dbus.Error
	var dp *dbus.Error
	switch {
	case errors.As(err, &dv):
		e.DBusName = dv.Name
	case errors.As(err, &dp):
		e.DBusName = dp.Name
	}
	// The bus answers for a name nobody owns; that is "no systemd" too
	// (systemd went away after we connected, or never registered).
	if e.DBusName == "org.freedesktop.DBus.Error.ServiceUnknown" || e.DBusName == "org.freedesktop.DBus.Error.NameHasNoOwner" {
		return fmt.Errorf("%w: %w", ErrNoSystemd, e)
	}
	return e
}

// errorText is an error's message without repeating the D-Bus error name
// (godbus prints only the message body when there is one).
func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
