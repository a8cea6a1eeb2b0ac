//go:build linux

// Command flyinit is the VM suite's stand-in for Fly's init, PID 1 of a Fly Machine: what
// harden boot meets there, without systemd. The harness builds it statically, hands it in,
// and boots the image with init=/usr/local/sbin/flyinit. Like Fly's init it
//
//   - mounts /proc, /sys, /dev/pts, /dev/shm, /run and cgroup2;
//   - brings eth0 up with the slirp IPv4 address and a 6PN-style fdaa:: address (Fly's 6PN);
//   - answers on [6PN]:22 the way Fly's own SSH server ("hallpass", behind `fly ssh
//     console`) does: only a banner here;
//   - runs the image's entrypoint (ENTRYPOINT + CMD from /fly/run.json) as its child with the
//     FLY_* environment, its output to the console (Fly's log stream) and to a log file;
//   - forwards a shutdown (SIGTERM to PID 1, as `fly machine stop` sends it) to the
//     entrypoint as SIGTERM, and SIGKILLs it after kill_timeout;
//   - reaps every process and powers the VM off when the entrypoint has exited.
//
// Two things are the suite's own, not Fly's: it loads virtio_net (Debian's kernel has it as
// a module; Fly's kernel has it built in), and it first starts the suite's checker (which
// plays an operator's `fly ssh console` session) and powers off once both have exited.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config is /fly/run.json, what Fly's init gets from the machine's config.
type Config struct {
	Entrypoint  []string          `json:"entrypoint"`
	Cmd         []string          `json:"cmd"`
	Env         map[string]string `json:"env"`
	Hostname    string            `json:"hostname"`
	IPv4        string            `json:"ipv4"`    // 10.0.2.15/24
	Gateway     string            `json:"gateway"` // 10.0.2.2
	PrivateIP   string            `json:"private_ip"`
	PrivateBits int               `json:"private_bits"` // prefix length on eth0
	KillTimeout int               `json:"kill_timeout"` // seconds
	// Checker is the suite's checker; flyinit waits for ReadyFile before the entrypoint.
	Checker   []string `json:"checker"`
	ReadyFile string   `json:"ready_file"`
}

// State is where flyinit tells the checker what happened.
const (
	stateDir   = "/run/flyinit"
	appLog     = stateDir + "/app.log"        // the entrypoint's output
	exitFile   = stateDir + "/exit"           // "exit N" or "signal N" once it exited
	entryPID   = stateDir + "/entrypoint.pid" // its pid
	configPath = "/fly/run.json"
)

var console io.Writer = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(console, "flyinit: "+format+"\n", args...)
}

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "flyinit: must be PID 1")
		os.Exit(1)
	}
	// The kernel starts PID 1 with no PATH.
	_ = os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	mounts()
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		console = c
	}
	cfg, err := readConfig()
	if err != nil {
		fatal("config: %v", err)
	}
	if cfg.Hostname != "" {
		_ = unix.Sethostname([]byte(cfg.Hostname))
	}
	// Signals first: a shutdown may come at any time.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	if err := network(cfg); err != nil {
		fatal("network: %v", err)
	}
	go hallpass(cfg.PrivateIP)
	_ = os.MkdirAll(stateDir, 0o755)

	// From here flyinit starts children and reaps every process itself (wait4(-1)); no
	// exec.Cmd.Wait after this point.
	env := environment(cfg)
	checker := start("checker", cfg.Checker, env, console)
	waitReady(cfg.ReadyFile, 120*time.Second)
	out, err := os.Create(appLog)
	if err != nil {
		fatal("%v", err)
	}
	entry := start("entrypoint", append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...), env, io.MultiWriter(console, out))
	_ = os.WriteFile(entryPID, []byte(fmt.Sprintf("%d\n", entry)), 0o644)
	logf("started the entrypoint %v (pid %d)", append(cfg.Entrypoint, cfg.Cmd...), entry)

	loop(cfg, sigs, entry, checker)
}

// loop reaps every child, forwards a shutdown to the entrypoint, and powers off once the
// entrypoint and the checker have both exited.
func loop(cfg Config, sigs chan os.Signal, entry, checker int) {
	entryDone, checkerDone := false, checker == 0
	var killAt, checkerDeadline <-chan time.Time
	for !entryDone || !checkerDone {
		select {
		case s := <-sigs:
			if s == syscall.SIGCHLD {
				break
			}
			if !entryDone {
				logf("%s: stopping the entrypoint with SIGTERM (kill_timeout %ds)", s, cfg.KillTimeout)
				_ = syscall.Kill(entry, syscall.SIGTERM)
				killAt = time.After(time.Duration(cfg.KillTimeout) * time.Second)
			}
		case <-killAt:
			if !entryDone {
				logf("the entrypoint did not exit within kill_timeout: SIGKILL")
				_ = syscall.Kill(entry, syscall.SIGKILL)
			}
		case <-checkerDeadline:
			logf("the checker did not finish within 10 minutes of the entrypoint's exit")
			checkerDone = true
		case <-time.After(time.Second):
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			switch pid {
			case entry:
				entryDone = true
				st := status(ws)
				_ = os.WriteFile(exitFile+".tmp", []byte(st+"\n"), 0o644)
				_ = os.Rename(exitFile+".tmp", exitFile)
				logf("the entrypoint exited: %s", st)
				checkerDeadline = time.After(10 * time.Minute)
			case checker:
				checkerDone = true
				logf("the checker exited: %s", status(ws))
				if !entryDone {
					// The session ended first: stop the machine as `fly machine stop` would.
					_ = syscall.Kill(entry, syscall.SIGTERM)
					killAt = time.After(time.Duration(cfg.KillTimeout) * time.Second)
				}
			}
		}
	}
	powerOff()
}

// powerOff drains the serial ports and powers the VM off. Without the drain, the checker's
// last line ("DONE") can still sit in the kernel's transmit buffer of /dev/ttyS1 when the
// machine stops, and the harness sees its control channel close before DONE (CI saw it).
// Closing the tty does not drain it: background processes the checker started still hold it.
func powerOff() {
	logf("powering off")
	drainSerial("/dev/ttyS1", "/dev/ttyS0")
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// drainSerial waits, at most 5 s in all, until every byte written to the given ttys has
// left the UART: TCSBRK with a non-zero argument is tcdrain(3).
func drainSerial(ttys ...string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range ttys {
			fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			_ = unix.IoctlSetInt(fd, unix.TCSBRK, 1)
			_ = unix.Close(fd)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		logf("the serial ports did not drain within 5 s")
	}
}

func status(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("signal %d", int(ws.Signal()))
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

func fatal(format string, args ...any) {
	logf("FATAL: "+format, args...)
	powerOff()
}

func mounts() {
	for _, m := range []struct {
		src, dst, fstype, data string
		flags                  uintptr
	}{
		{"proc", "/proc", "proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "sysfs", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", unix.MS_NOSUID},
		{"devpts", "/dev/pts", "devpts", "mode=0620,ptmxmode=0666", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/run", "tmpfs", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	} {
		if _, err := os.Stat("/dev/console"); err == nil && m.dst == "/dev" {
			continue // the initrd moved its devtmpfs here
		}
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil && err != unix.EBUSY {
			fmt.Fprintf(os.Stderr, "flyinit: mount %s: %v\n", m.dst, err)
		}
	}
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
	_ = os.MkdirAll("/run/lock", 0o1777)
}

func readConfig() (Config, error) {
	var c Config
	b, err := os.ReadFile(configPath)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	if c.KillTimeout == 0 {
		c.KillTimeout = 30
	}
	return c, nil
}

// run runs a setup command to its end (only before children are reaped by the loop).
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func network(c Config) error {
	if err := run("modprobe", "virtio_net"); err != nil {
		return err
	}
	for i := 0; ; i++ {
		if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		if i > 200 {
			return fmt.Errorf("no eth0")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "set", "eth0", "up"},
		{"ip", "addr", "add", c.IPv4, "dev", "eth0"},
		{"ip", "route", "add", "default", "via", c.Gateway},
		{"ip", "-6", "addr", "add", fmt.Sprintf("%s/%d", c.PrivateIP, c.PrivateBits), "dev", "eth0", "nodad"},
	} {
		if err := run(args...); err != nil {
			return err
		}
	}
	return nil
}

// hallpass answers on the 6PN address's port 22 like Fly's SSH server (banner only).
func hallpass(addr string) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		logf("hallpass stand-in: %v", err)
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("SSH-2.0-hallpass-standin\r\n"))
		c.Close()
	}
}

func environment(c Config) []string {
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TERM": "linux"}
	for k, v := range c.Env {
		env[k] = v
	}
	env["FLY_PRIVATE_IP"] = c.PrivateIP
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

var startMu sync.Mutex

// start starts a child in its own session; its stdout and stderr go to out through a pipe,
// as Fly's init collects the machine's logs.
func start(name string, argv, env []string, out io.Writer) int {
	if len(argv) == 0 {
		return 0
	}
	startMu.Lock()
	defer startMu.Unlock()
	devnull, _ := os.Open(os.DevNull)
	r, w, err := os.Pipe()
	if err != nil {
		fatal("pipe: %v", err)
	}
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir: "/", Env: env, Files: []*os.File{devnull, w, w},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	devnull.Close()
	if err != nil {
		fatal("starting the %s %v: %v", name, argv, err)
	}
	go func() { _, _ = io.Copy(out, r) }()
	return p.Pid
}

func waitReady(file string, d time.Duration) {
	if file == "" {
		return
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(file); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("the checker did not get ready within %s: starting the entrypoint anyway", d)
}
