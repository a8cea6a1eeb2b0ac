package sshd_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// privateRunEnv marks the test process that runs in its own mount namespace.
const privateRunEnv = "HARDEN_SSHD_TEST_PRIVATE_RUN"

// TestMain runs the sshd tests, as root, in a mount namespace of their own with an empty
// tmpfs on /run. sshd -t and -T insist on the compiled-in privilege separation directory
// /run/sshd (systemd makes it only while ssh.service runs): the tests make their own there,
// so they pass on a machine that never ran sshd and leave the machine's /run as it was.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 || os.Getenv(privateRunEnv) == "1" {
		os.Exit(m.Run())
	}
	script := `mount -t tmpfs -o mode=0755 harden-sshd-test /run && exec "$0" "$@"`
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script}, os.Args...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), privateRunEnv+"=1")
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "sshd tests: cannot make a private /run (unshare --mount, util-linux): %v\n", err)
		os.Exit(2)
	}
}
