package clamav

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/passwd"
	"github.com/harden-dev/harden/internal/policy"
)

// InotifyWatchesPath is the kernel's per-user inotify watch limit. clamonacc's dynamic
// directory determination (needed for OnAccessExtraScanning and for subdirectories of the
// include paths) holds one watch per directory; when the limit is reached, new directories
// are silently not scanned. Kernels size the default by RAM: about 16k on a 2 GiB VM.
const InotifyWatchesPath = "/proc/sys/fs/inotify/max_user_watches"

// MinInotifyWatches is what clamonacc needs. The kernel step owns the setting: it writes
// it to sysctl.d and /proc/sys whenever on-access scanning is on (one owner, so a plan never
// lists the same sysctl twice); this step only checks that the policy leaves it high enough.
const MinInotifyWatches = policy.OnAccessInotifyWatches

const inotifySysctl = "fs.inotify.max_user_watches"

// planInotify reports what keeps clamonacc from watching every directory: a kernel without
// the limit file, or a policy whose kernel.sysctl sets the limit lower than clamonacc needs
// (the kernel step then applies the policy's value).
func planInotify(env *engine.Env, p *engine.Plan) error {
	_, ok, err := env.Root.ReadFileIfExists(InotifyWatchesPath)
	if err != nil {
		return err
	}
	if !ok {
		p.Find(&engine.Finding{ID: "clamav.inotify-unavailable", Severity: engine.Warning, Object: InotifyWatchesPath,
			Message: "the kernel has no inotify limit file: clamonacc cannot watch subdirectories", Reason: "clamav.on_access_paths"})
		return nil
	}
	v, set := env.Policy.Kernel.Sysctl[inotifySysctl]
	if n, err := strconv.Atoi(strings.TrimSpace(v)); set && (err != nil || n < MinInotifyWatches) {
		p.Find(&engine.Finding{ID: "clamav.inotify-watches-low", Severity: engine.Warning, Object: InotifyWatchesPath,
			Message: fmt.Sprintf("kernel.sysctl sets %s to %s; clamonacc needs about %d to watch every directory under the on-access paths",
				inotifySysctl, v, MinInotifyWatches),
			Reason: "kernel.sysctl." + inotifySysctl})
	}
	return nil
}

// checkMemory reports a machine too small for clamd with the full signatures: better a
// finding at boot than clamd killed by the OOM killer later. Fly tells the VM's size in
// FLY_VM_MEMORY_MB; elsewhere /proc/meminfo's MemTotal.
func checkMemory(env *engine.Env, p *engine.Plan) {
	min := env.Policy.ClamAV.MinMemoryMB
	if min <= 0 {
		return
	}
	mb, from := memoryMB(env)
	if mb <= 0 || mb >= min {
		return
	}
	p.Find(&engine.Finding{ID: "clamav.memory-too-small", Severity: engine.Critical, Object: from,
		Message: fmt.Sprintf("%d MiB of memory (%s); clamd needs %d MiB for the full signatures and would be killed: give the VM more memory",
			mb, from, min),
		Reason: "clamav.min_memory_mb"})
}

func memoryMB(env *engine.Env) (int, string) {
	if v := strings.TrimSpace(env.Getenv("FLY_VM_MEMORY_MB")); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n, "FLY_VM_MEMORY_MB"
		}
	}
	data, ok, err := env.Root.ReadFileIfExists("/proc/meminfo")
	if err != nil || !ok {
		return 0, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.Atoi(f[1])
			if err == nil {
				return kb / 1024, "/proc/meminfo"
			}
		}
	}
	return 0, ""
}

// QuarantineDir is where Debian's clamav-clamonacc.service moves infected files
// (`clamonacc --move=/root/quarantine`). clamonacc exits at start when it is missing, and
// nothing in the package creates it: without it there is no on-access scanning at all.
const QuarantineDir = "/root/quarantine"

// planQuarantine creates the quarantine directory, readable by root only (it holds malware).
func planQuarantine(env *engine.Env, p *engine.Plan) error {
	fi, err := env.Root.Stat(QuarantineDir)
	switch {
	case err == nil && fi.IsDir() && fi.Mode().Perm() == 0o700:
		return nil
	case err == nil && !fi.IsDir():
		p.Find(&engine.Finding{ID: "clamav.quarantine-not-a-directory", Severity: engine.Warning, Object: QuarantineDir,
			Message: QuarantineDir + " is not a directory: clamonacc cannot move infected files there and will not start",
			Reason:  "clamav.on_access_paths"})
		return nil
	case err != nil && !os.IsNotExist(err):
		return err
	}
	before := "absent"
	if err == nil {
		before = fi.Mode().Perm().String()
	}
	p.Add(&engine.Change{Object: QuarantineDir, Action: engine.ActionCreate, Before: before, After: "drwx------",
		Reason: "clamav.on_access_paths (clamonacc --move)",
		Do: func(context.Context) error {
			if err := env.Root.MkdirAll(QuarantineDir, 0o700); err != nil {
				return err
			}
			return env.Root.Chmod(QuarantineDir, 0o700)
		}})
	return nil
}

// ClamdTempDir is where clamd writes temporary files when on-access scanning is on (see
// TemporaryDirectory in clamdSettings). It belongs to clamd's user, mode 0700.
const ClamdTempDir = "/var/lib/clamav/tmp"

// planClamdTempDir creates ClamdTempDir owned by clamd's user.
func planClamdTempDir(env *engine.Env, p *engine.Plan, user string) error {
	uid, gid, err := lookupUser(env, user)
	if err != nil {
		return err
	}
	want := fmt.Sprintf("drwx------ %d:%d", uid, gid)
	before := "absent"
	if fi, err := env.Root.Stat(ClamdTempDir); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		before = fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
		if before == want {
			return nil
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	p.Add(&engine.Change{Object: ClamdTempDir, Action: engine.ActionCreate, Before: before, After: want,
		Reason: "clamav.on_access_paths (clamonacc will not watch clamd's temporary directory)",
		Do: func(context.Context) error {
			if err := env.Root.MkdirAll(ClamdTempDir, 0o700); err != nil {
				return err
			}
			if err := env.Root.Chmod(ClamdTempDir, 0o700); err != nil {
				return err
			}
			return env.Root.Chown(ClamdTempDir, uid, gid)
		}})
	return nil
}

// lookupUser reads uid and gid from /etc/passwd under the root (the root may be an image
// tree, so the C library's lookup would answer for the wrong machine).
func lookupUser(env *engine.Env, name string) (int, int, error) {
	uid, gid, err := passwd.LookupUser(env.Root, name)
	if err != nil {
		return 0, 0, fmt.Errorf("clamd's user: %w (is clamav-daemon installed?)", err)
	}
	return uid, gid, nil
}
