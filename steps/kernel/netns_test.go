package kernel

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// netKey keeps the privileged test to per-namespace keys. net.core.bpf_jit_harden is global
// (it exists only in the initial namespace) and is left out by name as well.
func netKey(name string) bool {
	return strings.HasPrefix(name, "net.ipv4.") || strings.HasPrefix(name, "net.ipv6.")
}

// The real kernel, real /proc/sys: net.* sysctls belong to the network namespace of the
// thread that opens them, so this test runs the step on a thread moved into a namespace it
// created, touching only net.ipv4/net.ipv6 keys. Files go to a temp root as always.
func TestNetKeysInFreshNetworkNamespace(t *testing.T) {
	need.Root(t, "creates a network namespace")
	need.Tool(t, "ip")
	ns := makeNetns(t)
	hostBefore := snapshot(t, "/proc/sys/net/ipv4/conf/all/rp_filter", "/proc/sys/net/ipv4/tcp_ecn",
		"/proc/sys/net/ipv6/conf/all/accept_redirects", "/proc/sys/net/ipv4/ip_local_port_range")

	p := policy.Default()
	p.Kernel.Sysctl = map[string]string{
		"net.ipv4.tcp_ecn":             "9",           // out of range: the kernel refuses it
		"net.ipv4.ip_local_port_range": "32768 61000", // read back with a tab
	}
	env := enginetest.Env(t, p, nil)
	step := New(Options{ProcSys: "/proc/sys", Keys: netKey})
	var wrote []string
	step.write = func(path, value string) error {
		if !strings.HasPrefix(path, "/proc/sys/net/ipv4/") && !strings.HasPrefix(path, "/proc/sys/net/ipv6/") {
			return fmt.Errorf("test guard: refusing to write %s", path)
		}
		wrote = append(wrote, path)
		return writeSysctl(fsroot.New("/"), path, value)
	}

	inNetns(t, ns, func() {
		rep := enginetest.Converges(t, env, step)
		require.NotEmpty(t, wrote)
		for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter",
			"net/ipv4/conf/lo/rp_filter", "net/ipv4/conf/hv0/rp_filter", "net/ipv6/conf/hv0/accept_redirects",
			"net/ipv4/conf/all/accept_redirects", "net/ipv4/conf/hv0/send_redirects"} {
			if strings.Contains(k, "hv0") && !exists("/proc/sys/net/ipv4/conf/hv0") {
				continue // no veth support: the interface was not made
			}
			b, err := os.ReadFile("/proc/sys/" + k)
			require.NoError(t, err, k)
			want := "0"
			if strings.HasSuffix(k, "rp_filter") {
				want = "1"
			}
			assert.Equal(t, want, strings.TrimSpace(string(b)), k)
		}
		assert.Equal(t, "1", strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/conf/all/log_martians")))
		assert.Equal(t, "32768\t61000", strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/ip_local_port_range")))

		refused := findingsWith(rep, "kernel.sysctl-refused")
		require.Len(t, refused, 1)
		assert.Equal(t, "sysctl net.ipv4.tcp_ecn", refused[0].Object)
		assert.Contains(t, refused[0].Message, "invalid argument")
	})

	assert.Equal(t, hostBefore, snapshot(t, "/proc/sys/net/ipv4/conf/all/rp_filter", "/proc/sys/net/ipv4/tcp_ecn",
		"/proc/sys/net/ipv6/conf/all/accept_redirects", "/proc/sys/net/ipv4/ip_local_port_range"),
		"the host's own namespace was touched")
}

// makeNetns creates a named namespace (deleted at cleanup) with a veth pair inside when the
// kernel has veth, so the "*" keys have a real interface to reach.
func makeNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "harden-kt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		need.Missing(t, "a network namespace (ip netns add): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "hv0", "type", "veth", "peer", "name", "hv1").CombinedOutput(); err != nil {
		t.Logf("no veth pair (%v: %s): testing all/default/lo only", err, out)
	}
	return ns
}

// inNetns runs fn on this goroutine's OS thread moved into ns, and moves it back after. If
// it cannot move back, the thread stays locked and Go discards it when the test ends.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	require.NoError(t, err)
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	require.NoError(t, err)
	defer target.Close()
	require.NoError(t, unix.Setns(int(target.Fd()), unix.CLONE_NEWNET))
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("could not return to the original network namespace: %v", err)
			return // keep the thread locked: it dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func snapshot(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			out[p] = string(b)
		}
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
