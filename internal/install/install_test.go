package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/systemd/systemdtest"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// linkingSystemd stands in for systemd in the logic tests: Enable makes the links the image
// path would (so the tree can be compared) and counts reloads.
type linkingSystemd struct {
	root    fsroot.Root
	reloads int
	enabled [][]string
}

func (l *linkingSystemd) Enable(ctx context.Context, names ...string) ([]systemd.FileChange, error) {
	l.enabled = append(l.enabled, names)
	changes, err := Run(ctx, Options{Root: l.root}) // the symlink path, on the same tree
	var out []systemd.FileChange
	for _, c := range changes {
		if c.Action == "link" {
			out = append(out, systemd.FileChange{Type: "symlink", Filename: c.Object})
		}
	}
	return out, err
}

func (l *linkingSystemd) DaemonReload(context.Context) error { l.reloads++; return nil }

func rootWithBinary(t *testing.T) fsroot.Root {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "usr/local/sbin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, Binary), []byte("#!/bin/sh\n"), 0o755))
	return fsroot.New(dir).WithBackupDir("/var/lib/harden/backup/test")
}

func TestInstallWritesAndEnablesUnits(t *testing.T) {
	root := rootWithBinary(t)
	changes, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)

	units, err := Units()
	require.NoError(t, err)
	for _, u := range units {
		b, err := os.ReadFile(root.Path("/etc/systemd/system/" + u.Name))
		require.NoError(t, err)
		assert.Equal(t, u.Data, b)
	}
	// The links systemctl enable would make, and no others (harden-audit.service is started
	// by its timer only).
	for link, target := range map[string]string{
		"sysinit.target.wants/harden-firewall.service":     "harden-firewall.service",
		"multi-user.target.wants/harden.service":           "harden.service",
		"multi-user.target.wants/harden-watch.service":     "harden-watch.service",
		"timers.target.wants/harden-audit.timer":           "harden-audit.timer",
		"multi-user.target.wants/harden-packages.service":  "harden-packages.service",
		"multi-user.target.wants/harden-freshclam.service": "harden-freshclam.service",
	} {
		got, err := os.Readlink(root.Path("/etc/systemd/system/" + link))
		require.NoError(t, err, link)
		assert.Equal(t, "/etc/systemd/system/"+target, got)
	}
	_, err = os.Lstat(root.Path("/etc/systemd/system/multi-user.target.wants/harden-audit.service"))
	assert.True(t, os.IsNotExist(err))
	tmpfiles, err := os.ReadFile(root.Path(TmpfilesPath))
	require.NoError(t, err)
	assert.Contains(t, string(tmpfiles), "/var/lib/harden/spool/inbox    0730 root clamav")
	assert.Len(t, changes, 1+len(units)+6)
}

// On a live machine the tmpfiles.d entry is applied at once (the inbox must exist before
// clamd's first detection), and only when it changed.
func TestInstallAppliesTmpfilesOnce(t *testing.T) {
	root := rootWithBinary(t)
	var applied []string
	opts := Options{Root: root, Tmpfiles: func(_ context.Context, file string) error {
		applied = append(applied, file)
		return nil
	}}
	_, err := Run(context.Background(), opts)
	require.NoError(t, err)
	_, err = Run(context.Background(), opts)
	require.NoError(t, err)
	assert.Equal(t, []string{root.Path(TmpfilesPath)}, applied)
}

func TestInstallIsIdempotent(t *testing.T) {
	root := rootWithBinary(t)
	_, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	before := enginetest.TreeDigest(t, root.Dir())
	changes, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	assert.Empty(t, changes)
	assert.Equal(t, before, enginetest.TreeDigest(t, root.Dir()))
}

func TestInstallDryRunChangesNothing(t *testing.T) {
	root := rootWithBinary(t)
	before := enginetest.TreeDigest(t, root.Dir())
	sd := &linkingSystemd{root: root}
	changes, err := Run(context.Background(), Options{Root: root, DryRun: true, Systemd: sd})
	require.NoError(t, err)
	assert.Len(t, changes, 15, "tmpfiles.d, 7 units and a drop-in, 6 links")
	assert.Zero(t, sd.reloads)
	assert.Empty(t, sd.enabled)
	assert.Equal(t, before, enginetest.TreeDigest(t, root.Dir()))
}

func TestInstallRepairsDriftAndKeepsBackup(t *testing.T) {
	root := rootWithBinary(t)
	_, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	unit := "/etc/systemd/system/harden.service"
	require.NoError(t, os.WriteFile(root.Path(unit), []byte("[Service]\nExecStart=/bin/false\n"), 0o644))
	wants := root.Path("/etc/systemd/system/multi-user.target.wants/harden.service")
	require.NoError(t, os.Remove(wants))
	require.NoError(t, os.Symlink("/dev/null", wants))

	changes, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	assert.ElementsMatch(t, []Change{
		{Object: unit, Action: "update"},
		{Object: "/etc/systemd/system/multi-user.target.wants/harden.service", Action: "link"},
	}, changes)
	backup, err := os.ReadFile(root.Path("/var/lib/harden/backup/test" + unit))
	require.NoError(t, err)
	assert.Contains(t, string(backup), "/bin/false")
}

func TestInstallRefusesWithoutBinary(t *testing.T) {
	root := fsroot.New(t.TempDir())
	_, err := Run(context.Background(), Options{Root: root})
	require.ErrorContains(t, err, "/usr/local/sbin/harden is not an executable file")
	entries, _ := os.ReadDir(root.Dir())
	assert.Empty(t, entries, "nothing written")
}

func TestInstallRefusesRegularFileInWantsDir(t *testing.T) {
	root := rootWithBinary(t)
	p := root.Path("/etc/systemd/system/multi-user.target.wants/harden.service")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	_, err := Run(context.Background(), Options{Root: root})
	require.ErrorContains(t, err, "is not a symlink")
}

func TestUnitsAgreeOnBinary(t *testing.T) {
	units, err := Units()
	require.NoError(t, err)
	bin, err := unitsBinary(units)
	require.NoError(t, err, "every unit must run the same harden binary")
	assert.Equal(t, Binary, bin)
	_, err = unitsBinary(append(units, Unit{Name: "x.service", Data: []byte("[Service]\nExecStart=/usr/bin/harden apply\n")}))
	require.ErrorContains(t, err, "do not agree")
}

func TestInstallTargets(t *testing.T) {
	dirs, err := InstallTargets([]byte("[Unit]\nWantedBy=x.target\n[Install]\n# c\nWantedBy=a.target b.target\nRequiredBy = c.target\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"a.target.wants", "b.target.wants", "c.target.requires"}, dirs)
	_, err = InstallTargets([]byte("[Install]\nAlias=foo.service\n"))
	require.ErrorContains(t, err, "line 2: [Install] Alias=")
}

// The units' own contract (DESIGN.md, Boot): checked here so an edit of a unit that breaks
// the boot order fails a unit test, not only a VM boot.
func TestUnitsOrdering(t *testing.T) {
	units, err := Units()
	require.NoError(t, err)
	byName := map[string]string{}
	for _, u := range units {
		byName[u.Name] = string(u.Data)
	}
	fw := byName["harden-firewall.service"]
	assert.Contains(t, fw, "DefaultDependencies=no")
	assert.Contains(t, fw, "Before=network-pre.target")
	assert.Contains(t, fw, "ExecStart=/usr/local/sbin/harden apply --only firewall")
	h := byName["harden.service"]
	assert.Regexp(t, `(?m)^After=.*dbus\.service.*auditd\.service`, h)
	assert.Regexp(t, `(?m)^Before=.*ssh\.service`, h)
	assert.Contains(t, byName["harden-audit.service"], "harden apply --dry-run --detailed-exitcode --record")
	assert.Contains(t, byName["harden-audit.timer"], "OnCalendar=daily")
	assert.Contains(t, byName["harden-watch.service"], "ExecStart=/usr/local/sbin/harden watch")
	// systemd-analyze verify (when the host has it) catches syntax errors and unknown keys in
	// every unit. The binary is not installed on the test host: that complaint is expected.
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		var files []string
		for n, d := range byName {
			if strings.Contains(n, ".d/") {
				continue // a drop-in is not a unit of its own
			}
			files = append(files, filepath.Join(dir, n))
			require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(d), 0o644))
		}
		out, _ := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, files...)...).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.Contains(line, "Command /usr/local/sbin/harden is not executable") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
}

// unitKeys parses a unit file into section.Key -> values (every line of a repeated key).
func unitKeys(data string) map[string][]string {
	out := map[string][]string{}
	section := ""
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			out[section+"."+k] = append(out[section+"."+k], strings.Fields(v)...)
		}
	}
	return out
}

// Boot order: SSH waits for harden.service only, which neither waits for the network nor
// runs freshclam or dpkg; those have units SSH does not wait for (freshclam after
// network-online.target); the alert daemon starts on its own, not after harden.service;
// a signal to harden.service or harden-packages.service reaches harden alone.
func TestBootOrderNeverHoldsUpSSH(t *testing.T) {
	units, err := Units()
	require.NoError(t, err)
	keys := map[string]map[string][]string{}
	for _, u := range units {
		keys[u.Name] = unitKeys(string(u.Data))
	}
	for name, k := range keys {
		if name != "harden.service" {
			assert.NotContains(t, k["Unit.Before"], "ssh.service", "%s: SSH must not wait for it", name)
			assert.NotContains(t, k["Unit.Before"], "ssh.socket", name)
		}
	}
	h := keys["harden.service"]
	assert.Contains(t, h["Unit.Before"], "ssh.service", "sshd starts with harden's configuration")
	assert.NotContains(t, h["Unit.After"], "network-online.target")
	assert.NotContains(t, h["Unit.Wants"], "network-online.target")
	assert.Equal(t, []string{"/usr/local/sbin/harden", "apply", "--skip", "packages,freshclam"}, h["Service.ExecStart"])
	assert.Equal(t, []string{"mixed"}, h["Service.KillMode"])

	f := keys["harden-freshclam.service"]
	assert.Contains(t, f["Unit.After"], "network-online.target")
	assert.Contains(t, f["Unit.Wants"], "network-online.target")
	assert.Equal(t, []string{"/usr/local/sbin/harden", "freshclam"}, f["Service.ExecStart"])
	assert.Equal(t, []string{"exec"}, f["Service.Type"], "the boot does not wait for retries")

	pk := keys["harden-packages.service"]
	assert.Subset(t, pk["Unit.After"], []string{"harden.service", "ssh.service"})
	assert.Equal(t, []string{"/usr/local/sbin/harden", "apply", "--only", "packages", "--lock-wait", "30m"}, pk["Service.ExecStart"])
	assert.Equal(t, []string{"mixed"}, pk["Service.KillMode"])

	w := keys["harden-watch.service"]
	assert.NotContains(t, w["Unit.After"], "harden.service", "alerting is on while harden runs")
	assert.NotContains(t, w["Unit.After"], "network-online.target")

}

func TestStamp(t *testing.T) {
	root := fsroot.New(t.TempDir())
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.FixedZone("x", 3600))
	changes, err := Stamp(root, now, "img-42")
	require.NoError(t, err)
	assert.Equal(t, []Change{{StampFile, "write"}}, changes)
	b, err := os.ReadFile(root.Path(StampFile))
	require.NoError(t, err)
	assert.Equal(t, "BUILD_TIME=2026-11-23T11:00:00Z\nIMAGE_ID=img-42\n", string(b))
	built, id, err := ReadStamp(root)
	require.NoError(t, err)
	assert.True(t, built.Equal(now))
	assert.Equal(t, "img-42", id)

	again, err := Stamp(root, now, "img-42")
	require.NoError(t, err)
	assert.Empty(t, again, "same stamp: nothing written")

	_, err = Stamp(root, now, "bad\nid")
	require.ErrorContains(t, err, "image id")
}

// The live-machine path: enable over D-Bus, then one daemon-reload; nothing the second time.
func TestInstallLiveEnablesThenReloads(t *testing.T) {
	root := rootWithBinary(t)
	sd := &linkingSystemd{root: root}
	changes, err := Run(context.Background(), Options{Root: root, Systemd: sd})
	require.NoError(t, err)
	assert.Len(t, changes, 15) // tmpfiles.d, 7 units and a drop-in, 6 links
	assert.Equal(t, [][]string{{"harden-audit.timer", "harden-firewall.service", "harden-freshclam.service", "harden-packages.service",
		"harden-watch.service", "harden.service"}}, sd.enabled,
		"every unit with an [Install] section, in one call; harden-audit.service only through its timer")
	assert.Equal(t, 1, sd.reloads)

	changes, err = Run(context.Background(), Options{Root: root, Systemd: sd})
	require.NoError(t, err)
	assert.Empty(t, changes)
	assert.Equal(t, 1, sd.reloads, "no reload when nothing changed")
}

// TestInstallOverRealDBus: go-systemd's client, a real dbus-daemon and systemdtest's fake
// systemd (which knows harden's units as disabled unit files): EnableUnitFiles and Reload
// go over the wire.
func TestInstallOverRealDBus(t *testing.T) {
	bus := systemdtest.StartBus(t)
	var specs []systemdtest.UnitSpec
	for _, n := range []string{"harden.service", "harden-firewall.service", "harden-watch.service", "harden-audit.timer", "harden-audit.service",
		"harden-packages.service", "harden-freshclam.service"} {
		specs = append(specs, systemdtest.UnitSpec{Name: n, FileState: "disabled", Path: "/etc/systemd/system/" + n})
	}
	fake := systemdtest.NewFake(t, bus, specs)
	conn, err := systemd.Connect(context.Background(), systemd.Options{Address: bus.Address})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	root := rootWithBinary(t)
	changes, err := Run(context.Background(), Options{Root: root, Systemd: conn})
	require.NoError(t, err)
	assert.Equal(t, "enabled", fake.FileState("harden.service"))
	assert.Equal(t, "enabled", fake.FileState("harden-audit.timer"))
	assert.Equal(t, "disabled", fake.FileState("harden-audit.service"))
	assert.Equal(t, 1, fake.Reloads())
	var links int
	for _, c := range changes {
		if c.Action == "link" {
			links++
		}
	}
	assert.Equal(t, 6, links)

	changes, err = Run(context.Background(), Options{Root: root, Systemd: conn})
	require.NoError(t, err)
	assert.Empty(t, changes, "second install: units the same, systemd reports no new links")
	assert.Equal(t, 1, fake.Reloads())
}

// An image tree whose unit directory and .wants directory are absolute links (to where they
// would be on the build host): install writes and links inside the tree, and the build host's
// files are untouched. The same for stamp's files.
func TestInstallAndStampStayInsideTheTree(t *testing.T) {
	root := rootWithBinary(t)
	host := t.TempDir() // stands for the build host's /etc/systemd/system and /etc/harden
	require.NoError(t, os.WriteFile(filepath.Join(host, "harden.service"), []byte("host unit\n"), 0o644))
	require.NoError(t, os.MkdirAll(root.Path("/etc/systemd"), 0o755))
	require.NoError(t, os.Symlink(host, root.Path("/etc/systemd/system")))
	require.NoError(t, os.Symlink(host, root.Path("/etc/harden")))
	require.NoError(t, os.MkdirAll(root.Path("/var/lib"), 0o755))
	require.NoError(t, os.Symlink(host, root.Path("/var/lib/clamav")))
	require.NoError(t, os.WriteFile(filepath.Join(host, "freshclam.dat"), []byte("host state\n"), 0o644))
	before := enginetest.TreeDigest(t, host)

	_, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	_, err = Stamp(root, time.Now(), "img-1")
	require.NoError(t, err)

	assert.Equal(t, before, enginetest.TreeDigest(t, host), "install or stamp touched the build host")
	unit, err := root.ReadFile("/etc/systemd/system/harden.service")
	require.NoError(t, err)
	assert.NotEqual(t, "host unit\n", string(unit))
	_, err = os.Stat(filepath.Join(root.Dir(), host, "harden.service"))
	assert.NoError(t, err, "the unit is in the tree, where the link leads inside it")
}

// harden's units are harden's: a unit someone else came to own is rewritten root:root 0644.
func TestInstallTakesUnitsBack(t *testing.T) {
	need.Root(t, "chown a file to another user")
	root := rootWithBinary(t)
	_, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	unit := root.Path("/etc/systemd/system/harden.service")
	require.NoError(t, os.Chown(unit, 1000, 1000))
	changes, err := Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	assert.Equal(t, []Change{{Object: "/etc/systemd/system/harden.service", Action: "update"}}, changes)
	fi, err := os.Stat(unit)
	require.NoError(t, err)
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid)
	changes, err = Run(context.Background(), Options{Root: root})
	require.NoError(t, err)
	assert.Empty(t, changes)
}
