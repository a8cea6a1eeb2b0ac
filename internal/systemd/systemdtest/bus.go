// Package systemdtest runs a real private D-Bus daemon with a fake
// org.freedesktop.systemd1 on it, so that code using internal/systemd (and
// go-systemd underneath) is tested over the same wire protocol as in
// production, on machines where systemd is not PID 1.
//
// Typical use:
//
//	bus := systemdtest.StartBus(t)
//	fake := systemdtest.NewFake(t, bus, systemdtest.DebianServer(t))
//	m, err := systemd.Connect(ctx, systemd.Options{Address: bus.Address})
package systemdtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// Bus is a private dbus-daemon started for one test.
type Bus struct {
	// Address is the bus's D-Bus address (unix:path=...,guid=...).
	Address string
	// Socket is the path of its listening socket.
	Socket string
}

// A session-type bus (no activation, no system policy) that lets every
// connection own any name and send to anyone: the fake systemd needs to own
// org.freedesktop.systemd1, which the system policy reserves for root.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`

// StartBus starts a private dbus-daemon and stops it when the test ends. It
// skips the test when dbus-daemon is not installed.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	exe := need.Tool(t, "dbus-daemon")
	// Not t.TempDir(): a unix socket path must fit in 108 bytes and test
	// names make TempDir paths long.
	dir, err := os.MkdirTemp("", "harden-dbus-")
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		t.Fatalf("systemdtest: %v", err)
	}

	cmd := exec.Command(exe, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("systemdtest: %v", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("systemdtest: start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// The daemon prints its address once it listens: that is our readiness
	// signal.
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatalf("systemdtest: dbus-daemon exited without an address: %s", stderr.String())
		}
		return &Bus{Address: a, Socket: sock}
	case <-time.After(10 * time.Second):
		t.Fatalf("systemdtest: dbus-daemon did not start in 10s: %s", stderr.String())
	}
	return nil
}
