package install

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/harden-dev/harden/internal/fsroot"
)

// What makes one machine distinct from another. A golden image that carries them gives every
// clone the same SSH host key (a client cannot tell the machines apart, and one stolen image
// impersonates all of them), the same machine-id (journal, D-Bus and DHCP identities), the
// same random seed and the same credentials secret. `harden stamp` removes them; each
// machine makes its own at its first boot.
const (
	SSHDir           = "/etc/ssh"
	MachineID        = "/etc/machine-id"
	DBusMachineID    = "/var/lib/dbus/machine-id"
	RandomSeed       = "/var/lib/systemd/random-seed"
	CredentialSecret = "/var/lib/systemd/credential.secret"
)

// StampIdentity removes the machine's identity from an image tree:
//   - SSH host keys (/etc/ssh/ssh_host_*_key, .pub, -cert.pub). At first boot harden's sshd
//     step makes new ones (ssh-keygen -A) before it proves the configuration and before
//     sshd starts (harden.service is ordered before ssh.service, after Ubuntu's
//     sshd-keygen.service).
//   - /etc/machine-id, when it holds an ID, is emptied, not removed: systemd then makes a
//     new ID at boot and
//     writes it back, without treating the boot as a first boot (a missing file or
//     "uninitialized" would run systemd-firstboot, which prompts on the console, and enable
//     every unit its presets name).
//   - D-Bus's own copy of the machine-id, when it is a file rather than a link to
//     /etc/machine-id; systemd's random seed and credentials secret (made anew at boot).
//
// Nothing is backed up: a backup would be baked into the image just the same.
func StampIdentity(root fsroot.Root) ([]Change, error) {
	var changes []Change
	keys, err := hostKeys(root)
	if err != nil {
		return nil, err
	}
	for _, p := range append(keys, RandomSeed, CredentialSecret) {
		removed, err := removeIfExists(root, p)
		if err != nil {
			return changes, err
		}
		if removed {
			changes = append(changes, Change{Object: p, Action: "remove"})
		}
	}
	if fi, err := os.Lstat(root.Path(DBusMachineID)); err == nil && fi.Mode().IsRegular() {
		if err := os.Remove(root.Path(DBusMachineID)); err != nil {
			return changes, err
		}
		changes = append(changes, Change{Object: DBusMachineID, Action: "remove"})
	}
	emptied, err := emptyMachineID(root)
	if err != nil {
		return changes, err
	}
	if emptied {
		changes = append(changes, Change{Object: MachineID, Action: "empty"})
	}
	return changes, nil
}

// hostKeys lists the host key files in /etc/ssh, sorted.
func hostKeys(root fsroot.Root) ([]string, error) {
	entries, err := os.ReadDir(root.Path(SSHDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "ssh_host_") || e.IsDir() {
			continue
		}
		if strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "_key.pub") || strings.HasSuffix(n, "_key-cert.pub") {
			out = append(out, path.Join(SSHDir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

func removeIfExists(root fsroot.Root, p string) (bool, error) {
	err := os.Remove(root.Path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// emptyMachineID truncates a /etc/machine-id that holds an ID to zero bytes (mode 0444, as
// systemd makes it) and reports whether it did. An empty file, "uninitialized" (the image
// builder's choice of first-boot semantics) or no file at all (a partial tree) carry no ID
// and are left as they are.
func emptyMachineID(root fsroot.Root) (bool, error) {
	p := root.Path(MachineID)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		if id := strings.TrimSpace(string(b)); id == "" || id == "uninitialized" {
			return false, nil
		}
	default:
		if err := os.Remove(p); err != nil { // a link (out of the tree?): replaced, never followed
			return false, err
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o444)
	if err != nil {
		return false, err
	}
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}
