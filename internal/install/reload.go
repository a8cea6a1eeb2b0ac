package install

import (
	"context"
	"fmt"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// DBusReloader runs systemd's daemon-reload over D-Bus (org.freedesktop.systemd1.Manager.Reload).
type DBusReloader struct {
	// Dial opens the bus connection; nil means the system bus. Tests point it at a private bus.
	Dial func() (*dbus.Conn, error)
}

// Reload implements Reloader.
func (r DBusReloader) Reload(ctx context.Context) error {
	var conn *sd.Conn
	var err error
	if r.Dial == nil {
		conn, err = sd.NewSystemConnectionContext(ctx)
	} else {
		conn, err = sd.NewConnection(r.Dial)
	}
	if err != nil {
		return fmt.Errorf("connecting to systemd: %w", err)
	}
	defer conn.Close()
	return conn.ReloadContext(ctx)
}
