// Package need is the one place a test says what it needs from the machine: root, a tool,
// a kernel feature, a service. On a laptop a missing need skips the test with the reason; with
// HARDEN_REQUIRE_PRIVILEGED=1 (set by .ci/run and `make test` as root) it fails the test
// instead, naming what is missing, so CI cannot go green by skipping.
//
// Tests never call t.Skip for a missing prerequisite themselves: TestNoRawSkips in this
// package fails on any t.Skip outside this file.
package need

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv turns every missing need into a test failure.
const RequireEnv = "HARDEN_REQUIRE_PRIVILEGED"

// Required reports whether a missing need fails the test (CI) rather than skipping it.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Missing stops the test because the machine lacks something it needs: a skip on a
// developer's machine, a failure under HARDEN_REQUIRE_PRIVILEGED=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("MISSING (%s=1 makes this a failure): %s", RequireEnv, msg)
	}
	t.Skip("missing: " + msg)
}

// Root needs euid 0; why says what the test does with it.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root: %s", why)
	}
}

// packageOf names the Debian package that ships a tool, for the message.
var packageOf = map[string]string{
	"alertmanager": "prometheus-alertmanager",
	"auditctl":     "auditd",
	"augenrules":   "auditd",
	"clamconf":     "clamav",
	"dbus-daemon":  "dbus-daemon",
	"dpkg":         "dpkg",
	"dpkg-query":   "dpkg",
	"freshclam":    "clamav-freshclam",
	"ip":           "iproute2",
	"nft":          "nftables",
	"promtool":     "prometheus",
	"sigtool":      "clamav",
	"ssh":          "openssh-client",
	"ssh-keygen":   "openssh-client",
	"sshd":         "openssh-server",
	"ssh-audit":    "ssh-audit",
	"strace":       "strace",
	"unshare":      "util-linux",
	"man":          "man-db",
}

// Tool needs every named program on PATH and returns the path of the first.
func Tool(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			pkg := packageOf[name]
			if pkg == "" {
				pkg = "see scripts/install-deps.sh"
			}
			Missing(t, "tool %s (Debian package %s; scripts/install-deps.sh installs it)", name, pkg)
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// File needs a path to exist; why says what it is.
func File(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s (%s): %v", path, why, err)
	}
}

// User needs a local account (e.g. clamav, which a package creates).
func User(t testing.TB, name, why string) {
	t.Helper()
	if _, err := exec.Command("id", "-u", name).Output(); err != nil {
		Missing(t, "user %s (%s)", name, why)
	}
}
