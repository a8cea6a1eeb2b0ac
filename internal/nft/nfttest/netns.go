// Package nfttest makes throw-away network namespaces for firewall tests: a namespace per
// test (never the root namespace), veth pairs between them, code run inside one, and the
// `nft` tool's view of a namespace's ruleset.
package nfttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// RequireRoot skips the test unless it runs as root with nf_tables and `ip`/`nft` available.
func RequireRoot(t testing.TB) {
	t.Helper()
	need.Root(t, "creates network namespaces and loads nftables rules in them")
	need.Tool(t, "ip", "nft")
}

// NS is a network namespace created for one test and deleted at its end.
type NS struct {
	Name string
	t    testing.TB
}

// NewNS creates a namespace with a unique name (prefix + random) and loopback up.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	name := prefix + "-" + randHex(4)
	Run(t, "ip", "netns", "add", name)
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside the namespace and fails the test on error; it returns stdout.
func (ns *NS) Run(args ...string) string {
	ns.t.Helper()
	return Run(ns.t, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Try runs a command inside the namespace and returns its combined output and error.
func (ns *NS) Try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Ruleset returns `nft -j list ruleset` of the namespace: the state digest of the kernel's
// whole ruleset as nft itself sees it.
func (ns *NS) Ruleset() string {
	ns.t.Helper()
	return ns.Run("nft", "-j", "list", "ruleset")
}

// Do runs fn on an OS thread switched into the namespace, so sockets fn creates live there.
// The thread is switched back (or, if that fails, thrown away) before it serves other code.
func (ns *NS) Do(fn func()) {
	ns.t.Helper()
	done := make(chan struct{})
	var setupErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			setupErr = err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			setupErr = err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			setupErr = err
			return
		}
		fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // back home: the thread may serve others again
		}
	}()
	<-done
	require.NoError(ns.t, setupErr, "enter netns %s", ns.Name)
}

// Veth joins a and b with a veth pair and returns the interface names (a's side, b's side).
func Veth(t testing.TB, a, b *NS) (string, string) {
	t.Helper()
	id := randHex(4)
	ia, ib := "hva"+id, "hvb"+id
	Run(t, "ip", "link", "add", ia, "netns", a.Name, "type", "veth", "peer", "name", ib, "netns", b.Name)
	a.Run("ip", "link", "set", ia, "up")
	b.Run("ip", "link", "set", ib, "up")
	return ia, ib
}

// AddAddr adds an address to an interface in ns; IPv6 addresses skip duplicate address
// detection so they are usable at once.
func (ns *NS) AddAddr(dev, cidr string) {
	ns.t.Helper()
	args := []string{"ip", "addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	ns.Run(args...)
}

// Run runs a command and fails the test on error; it returns stdout.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random: %v", err))
	}
	return hex.EncodeToString(b)
}
