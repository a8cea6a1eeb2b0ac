package kernel

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// ubuntuTree is Ubuntu 26.04's /usr/lib/sysctl.d, as procps, systemd and apparmor ship it
// (testdata/README.md).
const ubuntuTree = "testdata/ubuntu-26.04"

// freshKernelProcSys builds a /proc/sys with every key that Ubuntu's files or harden's baseline
// name, for the interfaces all, default, lo and eth0, each holding the value a fresh kernel
// boots with (not harden's: the reboot must be what sets them).
func freshKernelProcSys(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	put := func(key, value string) {
		p := filepath.Join(dir, strings.ReplaceAll(key, ".", "/"))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(value+"\n"), 0o644))
	}
	ipv4 := map[string]string{"rp_filter": "0", "accept_redirects": "1", "secure_redirects": "1",
		"send_redirects": "1", "accept_source_route": "0", "log_martians": "0"}
	for _, iface := range []string{"all", "default", "lo", "eth0"} {
		for k, v := range ipv4 {
			put("net.ipv4.conf."+iface+"."+k, v)
		}
		for _, k := range []string{"accept_redirects", "accept_source_route", "use_tempaddr"} {
			put("net.ipv6.conf."+iface+"."+k, "1")
		}
	}
	for key, v := range map[string]string{
		"net.ipv4.tcp_syncookies": "1", "net.ipv4.icmp_echo_ignore_broadcasts": "1",
		"net.core.bpf_jit_harden": "0", "net.core.default_qdisc": "pfifo_fast",
		"kernel.kptr_restrict": "0", "kernel.dmesg_restrict": "0", "kernel.unprivileged_bpf_disabled": "2",
		"kernel.yama.ptrace_scope": "0", "kernel.sysrq": "16", "kernel.randomize_va_space": "2",
		"kernel.printk": "7\t4\t1\t7", "kernel.pid_max": "32768", "kernel.core_pattern": "|/bin/false",
		"kernel.apparmor_restrict_unprivileged_userns":     "0",
		"kernel.apparmor_restrict_unprivileged_unconfined": "0",
		"fs.protected_hardlinks":                           "0",
		"fs.protected_symlinks":                            "0",
		"fs.protected_fifos":                               "0",
		"fs.protected_regular":                             "0",
		"fs.suid_dumpable":                                 "2",
		"fs.inotify.max_user_watches":                      "8192",
		"vm.max_map_count":                                 "65530",
		"vm.mmap_min_addr":                                 "4096",
		"harden-test-not-the-kernel":                       "yes", // the marker the script checks
	} {
		put(key, v)
	}
	return dir
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	}))
}

// bootSysctl runs the real systemd-sysctl, as systemd-sysctl.service does at every boot,
// over the tree's sysctl.d directories and the fake /proc/sys: a private mount namespace
// puts them where the binary looks. The script refuses to run unless the fake tree is in
// place (its marker file), so the host's kernel is never written.
func bootSysctl(t *testing.T, root, procSys string) string {
	t.Helper()
	bin := ""
	for _, p := range []string{"/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		need.Missing(t, "systemd-sysctl (package systemd)")
	}
	need.Tool(t, "unshare", "mount")
	for _, d := range []string{"/etc/sysctl.d", "/usr/lib/sysctl.d"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	empty := t.TempDir()
	script := `set -e
mount --bind "$1/etc/sysctl.d" /etc/sysctl.d
mount --bind "$1/usr/lib/sysctl.d" /usr/lib/sysctl.d
for d in /run/sysctl.d /usr/local/lib/sysctl.d; do
	if [ -d "$d" ]; then mount --bind "$3" "$d"; fi
done
mount --bind "$2" /proc/sys
test -f /proc/sys/harden-test-not-the-kernel
"$4"
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", root, procSys, empty, bin)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		need.Missing(t, "mount namespaces (unshare --mount): %s", out)
	}
	require.NoError(t, err, "systemd-sysctl: %s", out)
	return string(out)
}

// Ubuntu 26.04 ships its own sysctl settings in /usr/lib/sysctl.d/55-*.conf (rp_filter 2,
// kptr_restrict 1, sysrq 176, ...). After harden has applied its baseline, a reboot (the
// real systemd-sysctl over Ubuntu's real files and harden's) leaves every value where
// harden put it: the next boot's plan is empty. Without this, harden would change the same
// values back on every boot.
func TestUbuntuSysctlFilesConvergeAcrossReboot(t *testing.T) {
	need.Root(t, "mounts in a private mount namespace")
	env := enginetest.Env(t, nil, nil)
	copyTree(t, ubuntuTree, env.Root.Dir())
	sysDir := freshKernelProcSys(t)
	step := New(Options{ProcSys: sysDir})

	first := enginetest.Converges(t, env, step)
	require.NotZero(t, first.ChangeCount())
	targets, err := resolve(procSys{root: fsroot.New("/"), dir: sysDir}, desired(env.Policy), nil)
	require.NoError(t, err)
	applied := map[string]string{}
	for _, l := range targets {
		rel, _ := filepath.Rel(sysDir, l.Path)
		applied[rel] = l.Value
	}
	require.Len(t, applied, len(targets))
	require.Contains(t, applied, "net/ipv4/conf/eth0/rp_filter")

	// The reboot: a fresh kernel, then systemd-sysctl.
	sysDir2 := freshKernelProcSys(t)
	out := bootSysctl(t, env.Root.Dir(), sysDir2)
	booted := readAll(t, sysDir2)
	for key, v := range applied {
		assert.Equal(t, v, booted[key], "%s after reboot (systemd-sysctl said: %s)", key, out)
	}
	assert.Equal(t, "2", booted["net/ipv6/conf/all/use_tempaddr"], "Ubuntu's own keys still apply")
	// Ubuntu's own values, where harden has none, still apply (harden overrides only its keys).
	assert.Equal(t, "1048576", booted["vm/max_map_count"])
	assert.Equal(t, "65536", booted["vm/mmap_min_addr"])
	for k, want := range map[string]string{"kernel/kptr_restrict": "2", "kernel/sysrq": "0",
		"net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/default/rp_filter": "1", "net/ipv4/conf/eth0/rp_filter": "1"} {
		assert.Equal(t, want, booted[k], "%s: harden's value beats Ubuntu's 55-*.conf", k)
	}

	env2 := enginetest.Env(t, nil, nil)
	env2.Root = env.Root
	p, err := New(Options{ProcSys: sysDir2}).Plan(t.Context(), env2)
	require.NoError(t, err)
	assert.Empty(t, p.Changes, "the boot after harden's run plans nothing")
}

// readAll maps every file under dir (a fake /proc/sys) to its trimmed content.
func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = strings.TrimSpace(string(b))
		return err
	}))
	return out
}
