package kernel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/policy"
)

// fakeProcSys builds a /proc/sys tree under the env's root with every baseline key at an
// unhardened value, as plain files. Yama is left out (a kernel built without it), and a
// multi-value key is written with a tab as the kernel prints it.
func fakeProcSys(t testing.TB, env *engine.Env) {
	t.Helper()
	for _, s := range baseline() {
		if strings.Contains(s.Key, ".*.") || strings.HasPrefix(s.Key, "kernel.yama.") {
			continue
		}
		writeProc(t, env, s.Key, "7\n")
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, k := range ifaceKeys {
			if k.family == fam {
				for _, iface := range []string{"eth0", "lo"} {
					writeProc(t, env, "net."+fam+".conf."+iface+"."+k.name, "2\n")
				}
			}
		}
	}
	writeProc(t, env, "net.ipv4.ip_local_port_range", "32768\t60999\n")
	writeProc(t, env, "kernel.core_pattern", "core\n")
	writeProc(t, env, "fs.inotify.max_user_watches", "8192\n")
}

func writeProc(t testing.TB, env *engine.Env, key, value string) {
	t.Helper()
	enginetest.WriteFile(t, env, "/proc/sys/"+strings.ReplaceAll(key, ".", "/"), value)
}

func readProc(t *testing.T, env *engine.Env, key string) string {
	t.Helper()
	b, err := os.ReadFile(env.Root.Path("/proc/sys/" + strings.ReplaceAll(key, ".", "/")))
	require.NoError(t, err)
	return string(b)
}

func newEnv(t testing.TB, edit func(*policy.Policy)) *engine.Env {
	t.Helper()
	p := policy.Default()
	if edit != nil {
		edit(p)
	}
	env := enginetest.Env(t, p, nil)
	fakeProcSys(t, env)
	return env
}

func changeFor(rep *engine.Report, object string) *engine.Change {
	for _, c := range rep.Steps[0].Changes {
		if c.Object == object {
			return c
		}
	}
	return nil
}

func findingsWith(rep *engine.Report, id string) []*engine.Finding {
	var out []*engine.Finding
	for _, f := range rep.Steps[0].Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func TestPlanListsEveryKeyThatDiffers(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) {
		p.Kernel.Sysctl = map[string]string{
			"net.ipv4.ip_local_port_range": "32768   60999", // same as the kernel's, other spacing
			"kernel.core_pattern":          "|/bin/false",
		}
	})
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)

	byObject := map[string]*engine.Change{}
	for _, c := range plan.Changes {
		byObject[c.Object] = c
	}
	// One change per setting, not one per interface: all, default and every interface that
	// exists now (the glob), IPv6 too.
	c := byObject["sysctl net.ipv4.conf.{all,default,eth0,lo}.rp_filter"]
	require.NotNil(t, c, "%v", byObject)
	assert.Equal(t, "all=7 default=7 eth0=2 lo=2", c.Before)
	assert.Equal(t, "1", c.After)
	assert.Equal(t, "kernel.baseline", c.Reason)
	for _, obj := range []string{"sysctl net.ipv4.conf.{all,default,eth0,lo}.send_redirects",
		"sysctl net.ipv6.conf.{all,default,eth0,lo}.accept_redirects", "sysctl kernel.sysrq", "sysctl fs.protected_regular"} {
		assert.Contains(t, byObject, obj)
	}
	for obj := range byObject {
		assert.NotRegexp(t, `conf\.(all|default|eth0|lo)\.`, obj, "a per-interface line")
	}
	assert.Equal(t, "kernel.sysctl.kernel.core_pattern", byObject["sysctl kernel.core_pattern"].Reason)
	assert.NotContains(t, byObject, "sysctl net.ipv4.ip_local_port_range", "tab vs spaces must compare equal")

	for _, f := range []string{SysctlFile, LimitsFile, CoredumpFile, ModprobeFile} {
		require.Contains(t, byObject, f)
		assert.Equal(t, engine.ActionCreate, byObject[f].Action)
	}
	assert.Contains(t, byObject[SysctlFile].Diff, "+ kernel.kptr_restrict = 2")

	require.Len(t, plan.Findings, 1)
	assert.Equal(t, "kernel.sysctl-missing", plan.Findings[0].ID)
	assert.Equal(t, "sysctl kernel.yama.ptrace_scope", plan.Findings[0].Object)
	assert.Equal(t, engine.Info, plan.Findings[0].Severity)

	// Plan is read-only: nothing was written.
	assert.Equal(t, "7\n", readProc(t, env, "kernel.sysrq"))
	_, err = os.Stat(env.Root.Path(SysctlFile))
	assert.True(t, os.IsNotExist(err))
}

func TestApplyConvergesAndWritesFiles(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) {
		p.Kernel.Sysctl = map[string]string{"kernel.kptr_restrict": "1", "net.ipv4.ip_local_port_range": "1024\t65000"}
	})
	rep := enginetest.Converges(t, env, New(Options{}))
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)

	assert.Equal(t, "1\n", readProc(t, env, "net.ipv4.conf.eth0.rp_filter"))
	assert.Equal(t, "0\n", readProc(t, env, "net.ipv6.conf.lo.accept_source_route"))
	assert.Equal(t, "1\n", readProc(t, env, "kernel.kptr_restrict"), "policy overrides the baseline")
	assert.Equal(t, "1024 65000\n", readProc(t, env, "net.ipv4.ip_local_port_range"))
	assert.Equal(t, "0\n", readProc(t, env, "fs.suid_dumpable"))

	conf, err := os.ReadFile(env.Root.Path(SysctlFile))
	require.NoError(t, err)
	for _, line := range []string{"net.ipv4.conf.all.rp_filter = 1", "net.ipv4.conf.*.rp_filter = 1",
		"kernel.kptr_restrict = 1", "kernel.yama.ptrace_scope = 1", "net.ipv4.ip_local_port_range = 1024 65000"} {
		assert.Contains(t, string(conf), "\n"+line+"\n")
	}
	limits, err := os.ReadFile(env.Root.Path(LimitsFile))
	require.NoError(t, err)
	assert.Contains(t, string(limits), "\n* hard core 0\n")
	cd, err := os.ReadFile(env.Root.Path(CoredumpFile))
	require.NoError(t, err)
	assert.Contains(t, string(cd), "[Coredump]\nStorage=none\nProcessSizeMax=0\n")
	mp, err := os.ReadFile(env.Root.Path(ModprobeFile))
	require.NoError(t, err)
	for _, m := range env.Policy.Kernel.DisableModules {
		assert.Contains(t, string(mp), "\ninstall "+m+" /bin/false\nblacklist "+m+"\n")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	env := newEnv(t, nil)
	digest := func() string { return enginetest.TreeDigest(t, env.Root.Dir()) }
	rep := enginetest.DryRunChangesNothing(t, env, New(Options{}), digest)
	assert.Equal(t, engine.StatusPending, rep.Steps[0].Status)
	assert.NotNil(t, changeFor(rep, "sysctl kernel.sysrq"))
}

func TestReplacedFilesAreBackedUpAndDroppedOnesRemoved(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) { p.Kernel.CoreDumps = true; p.Kernel.DisableModules = nil })
	enginetest.WriteFile(t, env, SysctlFile, "kernel.sysrq = 1\n")
	enginetest.WriteFile(t, env, LimitsFile, "* hard core 0\n")
	enginetest.WriteFile(t, env, ModprobeFile, "install sctp /bin/false\n")

	rep := enginetest.Converges(t, env, New(Options{}))
	assert.Equal(t, engine.ActionUpdate, changeFor(rep, SysctlFile).Action)
	assert.Equal(t, engine.ActionDelete, changeFor(rep, LimitsFile).Action)
	assert.Equal(t, engine.ActionDelete, changeFor(rep, ModprobeFile).Action)
	assert.Nil(t, changeFor(rep, CoredumpFile), "absent and not wanted: nothing to do")
	for _, f := range []string{LimitsFile, ModprobeFile} {
		_, err := os.Stat(env.Root.Path(f))
		assert.True(t, os.IsNotExist(err), f)
	}
	backup := func(name string) string {
		b, err := os.ReadFile(env.Root.Path(filepath.Join(env.Root.BackupDir(), name)))
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "kernel.sysrq = 1\n", backup(SysctlFile))
	assert.Equal(t, "* hard core 0\n", backup(LimitsFile))
	assert.Equal(t, "install sctp /bin/false\n", backup(ModprobeFile))
	// With core dumps allowed the baseline still keeps setuid programs from dumping.
	assert.Equal(t, "0\n", readProc(t, env, "fs.suid_dumpable"))
}

// A kernel that refuses a value (EINVAL, EPERM for a setting locked until reboot) or
// silently keeps its own is reported, and the run still converges.
func TestRefusedValuesAreFindings(t *testing.T) {
	env := newEnv(t, nil)
	s := New(Options{})
	s.write = func(p, v string) error {
		switch {
		case strings.HasSuffix(p, "/kernel/unprivileged_bpf_disabled"):
			return &os.PathError{Op: "write", Path: p, Err: syscall.EPERM}
		case strings.HasSuffix(p, "/kernel/sysrq"):
			return nil // accepted, but the value stays
		}
		return writeSysctl(p, v)
	}
	rep := enginetest.Converges(t, env, s)

	c := changeFor(rep, "sysctl kernel.unprivileged_bpf_disabled")
	require.NotNil(t, c)
	assert.Equal(t, "1 (write refused: operation not permitted)", c.After)
	assert.Equal(t, "0 (read back 7)", changeFor(rep, "sysctl kernel.sysrq").After)

	refused := findingsWith(rep, "kernel.sysctl-refused")
	require.Len(t, refused, 2)
	objects := []string{refused[0].Object, refused[1].Object}
	assert.ElementsMatch(t, []string{"sysctl kernel.unprivileged_bpf_disabled", "sysctl kernel.sysrq"}, objects)
	assert.Equal(t, "1\n", readProc(t, env, "kernel.dmesg_restrict"), "other keys were still set")
}

func TestKeysFilterLimitsLiveKeysOnly(t *testing.T) {
	env := newEnv(t, nil)
	s := New(Options{Keys: func(name string) bool { return strings.HasPrefix(name, "net.") }})
	enginetest.Converges(t, env, s)
	assert.Equal(t, "7\n", readProc(t, env, "kernel.sysrq"), "filtered out: untouched")
	assert.Equal(t, "1\n", readProc(t, env, "net.ipv4.tcp_syncookies"))
	conf, err := os.ReadFile(env.Root.Path(SysctlFile))
	require.NoError(t, err)
	assert.Contains(t, string(conf), "\nkernel.sysrq = 0\n", "the file is whole")
}

func TestBaselineOffWritesOnlyWhatThePolicyNames(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) {
		p.Kernel.Baseline = false
		p.Kernel.CoreDumps = true
		p.ClamAV.Enabled = false
		p.Kernel.Sysctl = map[string]string{"kernel.sysrq": "176", "vm.nonexistent_key": "1"}
	})
	rep := enginetest.Converges(t, env, New(Options{}))
	require.Len(t, rep.Steps[0].Changes, 3) // file, kernel.sysrq, modprobe.d
	assert.Equal(t, "176\n", readProc(t, env, "kernel.sysrq"))
	assert.Equal(t, "7\n", readProc(t, env, "kernel.kptr_restrict"))
	missing := findingsWith(rep, "kernel.sysctl-missing")
	require.Len(t, missing, 1)
	assert.Equal(t, engine.Warning, missing[0].Severity, "a key the policy names itself")
}

func TestLoadedRefusedModuleIsAFinding(t *testing.T) {
	env := newEnv(t, func(p *policy.Policy) { p.Kernel.DisableModules = []string{"sctp", "nf-dummy"} })
	enginetest.WriteFile(t, env, "/proc/modules",
		"sctp 434176 4 - Live 0x0000000000000000\nnf_dummy 16384 0 - Live 0x0\next4 1 0 - Live 0x0\n")
	plan, err := New(Options{}).Plan(context.Background(), env)
	require.NoError(t, err)
	var mods []string
	for _, f := range plan.Findings {
		if f.ID == "kernel.module-loaded" {
			mods = append(mods, f.Object)
		}
	}
	assert.Equal(t, []string{"module sctp", "module nf-dummy"}, mods)
}

func TestResolveLiteralBeatsGlob(t *testing.T) {
	env := newEnv(t, nil)
	procSys := env.Root.Path("/proc/sys")
	got, err := resolve(procSys, []setting{
		{Key: "net.ipv4.conf.eth0.rp_filter", Value: "2"},
		{Key: "net.ipv4.conf.*.rp_filter", Value: "1"},
	}, nil)
	require.NoError(t, err)
	vals := map[string]string{}
	for _, l := range got {
		vals[l.Name] = l.Value
	}
	assert.Equal(t, map[string]string{"net.ipv4.conf.eth0.rp_filter": "2", "net.ipv4.conf.all.rp_filter": "1",
		"net.ipv4.conf.default.rp_filter": "1", "net.ipv4.conf.lo.rp_filter": "1"}, vals)

	assert.Equal(t, "net.ipv4.conf.eth0/100.rp_filter", dotted(procSys, filepath.Join(procSys, "net/ipv4/conf/eth0.100/rp_filter")))
}

func TestNoProcSysIsOneFinding(t *testing.T) {
	env := enginetest.Env(t, nil, nil) // an offline image: no /proc at all
	rep := enginetest.Converges(t, env, New(Options{}))
	require.Len(t, rep.Steps[0].Findings, 1)
	assert.Equal(t, "kernel.no-proc-sys", rep.Steps[0].Findings[0].ID)
	assert.NotNil(t, changeFor(rep, SysctlFile))
}

// On-access scanning needs many inotify watches; the kernel step persists the limit so it
// holds from early boot and a second boot changes nothing. Without ClamAV it is not touched.
func TestOnAccessScanningRaisesInotifyWatches(t *testing.T) {
	env := newEnv(t, nil)
	rep := enginetest.Converges(t, env, New(Options{}))
	c := changeFor(rep, "sysctl fs.inotify.max_user_watches")
	require.NotNil(t, c)
	assert.Equal(t, "clamav.on_access_paths", c.Reason)
	assert.Equal(t, "524288\n", readProc(t, env, "fs.inotify.max_user_watches"))
	conf, err := os.ReadFile(env.Root.Path(SysctlFile))
	require.NoError(t, err)
	assert.Contains(t, string(conf), "\nfs.inotify.max_user_watches = 524288\n")

	env = newEnv(t, func(p *policy.Policy) { p.ClamAV.Enabled = false })
	rep = enginetest.Converges(t, env, New(Options{}))
	assert.Nil(t, changeFor(rep, "sysctl fs.inotify.max_user_watches"))
}
