//go:build integration

package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Boot describes one VM run: the image, the files handed in, and how long it may take.
type Boot struct {
	Image   Image
	HandIn  string        // a directory tree copied over the root by the initrd before systemd starts
	Dir     string        // where the console log, results and sockets go
	Timeout time.Duration // for the whole QEMU run, reboots included
	Reboot  bool          // let the guest reboot (same disk, the snapshot overlay lives as long as QEMU)
	Append  string        // extra kernel command line
	// WebhookPort: a host port on 127.0.0.1 the guest reaches as WebhookGuestAddr. The
	// network is restrict=on (nothing leaves the machine), which also keeps the guest from
	// the host's 10.0.2.2; a guestfwd is the one way out it allows. 0: none.
	WebhookPort int
}

// WebhookGuestAddr is where the guest finds the harness's webhook receiver (Boot.WebhookPort):
// a slirp guestfwd spawns `busybox nc 127.0.0.1 PORT` on the host for each connection.
const WebhookGuestAddr = "10.0.2.100:8088"

// VM is a running boot.
type VM struct {
	cmd      *exec.Cmd
	ctl      net.Conn
	Lines    *bufio.Reader // the guest's control channel (its /dev/ttyS1)
	SSHPort  int           // host port forwarded to the guest's 22
	HTTPPort int           // host port forwarded to the guest's 8080
	Console  string        // the guest's /dev/ttyS0 (kernel and systemd console)
	Results  string        // the raw disk the guest writes a tar of its results onto
	exited   chan error
}

// Start boots the VM. QEMU waits (wait=on) until the harness is connected to the control
// socket, so no line of the guest is lost.
func Start(ctx context.Context, b Boot) (*VM, error) {
	initrd := filepath.Join(b.Dir, "initrd-with-handin.img")
	if err := buildInitrd(b.Image.Initrd, b.HandIn, initrd); err != nil {
		return nil, err
	}
	vm := &VM{
		Console: filepath.Join(b.Dir, "console.log"),
		Results: filepath.Join(b.Dir, "results.tar"),
		exited:  make(chan error, 1),
	}
	if err := os.WriteFile(vm.Results, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(vm.Results, 64<<20); err != nil {
		return nil, err
	}
	var err error
	if vm.SSHPort, err = freePort(); err != nil {
		return nil, err
	}
	if vm.HTTPPort, err = freePort(); err != nil {
		return nil, err
	}
	netdev := fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:8080", vm.SSHPort, vm.HTTPPort)
	if b.WebhookPort != 0 {
		bb, err := exec.LookPath("busybox")
		if err != nil {
			return nil, fmt.Errorf("the webhook relay needs busybox on the host (busybox-static): %w", err)
		}
		netdev += fmt.Sprintf(",guestfwd=tcp:%s-cmd:%s nc 127.0.0.1 %d", WebhookGuestAddr, bb, b.WebhookPort)
	}
	sock := filepath.Join(b.Dir, "ctl.sock")
	cmdline := "root=/dev/vda console=ttyS0 quiet loglevel=1 systemd.show_status=0 panic=-1 " + b.Append
	// $HARDEN_VM_APPEND: more kernel command line for diagnosis, e.g.
	// systemd.journald.forward_to_console=1 puts the whole journal in console.log, which a
	// boot that times out before the guest saved its results still leaves behind.
	if extra := os.Getenv("HARDEN_VM_APPEND"); extra != "" {
		cmdline += " " + extra
	}
	args := []string{
		"-accel", "tcg", "-M", "pc", "-cpu", "qemu64", "-smp", "2", "-m", "1024",
		"-nodefaults", "-display", "none", "-no-user-config",
		"-kernel", b.Image.Kernel, "-initrd", initrd, "-append", cmdline,
		"-drive", "file=" + b.Image.Root + ",format=raw,if=virtio,snapshot=on",
		"-drive", "file=" + vm.Results + ",format=raw,if=virtio",
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=n0",
		"-serial", "file:" + vm.Console,
		"-chardev", "socket,id=ctl,path=" + sock + ",server=on,wait=on",
		"-serial", "chardev:ctl",
	}
	if !b.Reboot {
		args = append(args, "-no-reboot")
	}
	vm.cmd = exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	qlog, err := os.Create(filepath.Join(b.Dir, "qemu.log"))
	if err != nil {
		return nil, err
	}
	vm.cmd.Stdout, vm.cmd.Stderr = qlog, qlog
	vm.cmd.WaitDelay = 5 * time.Second
	if err := vm.cmd.Start(); err != nil {
		qlog.Close()
		return nil, err
	}
	go func() { vm.exited <- vm.cmd.Wait(); qlog.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		vm.ctl, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			vm.Kill()
			return nil, fmt.Errorf("qemu did not open its control socket: %w (see %s)", err, filepath.Join(b.Dir, "qemu.log"))
		}
		select {
		case err := <-vm.exited:
			log, _ := os.ReadFile(filepath.Join(b.Dir, "qemu.log"))
			return nil, fmt.Errorf("qemu exited at start: %v: %s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	vm.Lines = bufio.NewReader(vm.ctl)
	return vm, nil
}

// Send writes one line to the guest.
func (vm *VM) Send(line string) error {
	_, err := io.WriteString(vm.ctl, line+"\n")
	return err
}

// Wait waits for QEMU to exit (the guest powers off), at most d.
func (vm *VM) Wait(d time.Duration) error {
	select {
	case err := <-vm.exited:
		return err
	case <-time.After(d):
		vm.Kill()
		return errors.New("qemu did not exit in time: killed")
	}
}

// Kill stops QEMU at once.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		_ = vm.cmd.Process.Kill()
	}
	if vm.ctl != nil {
		vm.ctl.Close()
	}
}

// ExtractResults unpacks the tar the guest wrote onto its results disk into dir.
func (vm *VM) ExtractResults(dir string) error {
	f, err := os.Open(vm.Results)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildInitrd appends to the image's initrd a second (gzip'd) cpio archive holding
// /handin.tar: the kernel unpacks both, and the initrd's init untars the hand-in over the root
// before systemd starts, so units handed in are part of the very first boot transaction.
func buildInitrd(base, handin, out string) error {
	var tb bytes.Buffer
	if err := tarTree(&tb, handin); err != nil {
		return fmt.Errorf("hand-in tar: %w", err)
	}
	var cb bytes.Buffer
	zw := gzip.NewWriter(&cb)
	if err := writeCpio(zw, "handin.tar", tb.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	baseData, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	// Each archive in the initramfs starts 4-byte aligned.
	for len(baseData)%4 != 0 {
		baseData = append(baseData, 0)
	}
	return os.WriteFile(out, append(baseData, cb.Bytes()...), 0o644)
}

// tarTree writes the regular files and symlinks of dir, owned by root, and no directory
// entries: extracting it must not change the mode or owner of the image's directories.
func tarTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: "./" + rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatGNU}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(b))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: only files and symlinks can be handed in", p)
		}
	}
	return tw.Close()
}

// writeCpio writes a newc cpio archive with one regular file and the trailer.
func writeCpio(w io.Writer, name string, data []byte) error {
	entry := func(name string, mode uint32, data []byte) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		buf := append([]byte(hdr), name...)
		buf = append(buf, 0)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, data...)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
		_, err := w.Write(buf)
		return err
	}
	if err := entry(name, 0o100644, data); err != nil {
		return err
	}
	return entry("TRAILER!!!", 0, nil)
}

// splitCheck parses "CHECK name STATUS detail...".
func splitCheck(line string) (name, status, detail string, ok bool) {
	f := strings.SplitN(strings.TrimPrefix(line, "CHECK "), " ", 3)
	if len(f) < 2 {
		return "", "", "", false
	}
	if len(f) == 3 {
		detail = f[2]
	}
	return f[0], f[1], detail, true
}
