package kernel

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Files the step owns whole. Every one says at its top that harden manages it.
const (
	// systemd-sysctl applies sysctl.d files of all directories in the order of their names,
	// the last setting winning: the name sorts after every vendor and admin file (Debian's
	// /usr/lib/sysctl.d/99-protect-links.conf would otherwise reset fs.protected_fifos at
	// the next boot, and the machine would drift on every reboot).
	SysctlFile   = "/etc/sysctl.d/99-zz-harden.conf"
	LimitsFile   = "/etc/security/limits.d/60-harden.conf"
	CoredumpFile = "/etc/systemd/coredump.conf.d/60-harden.conf"
	ModprobeFile = "/etc/modprobe.d/harden.conf"
)

const managed = "# Managed by harden: edits are overwritten on every run; change the policy instead.\n"

// renderSysctl is the sysctl.d file: systemd-sysctl applies it early at boot (before harden
// runs, and to interfaces as they appear), so the values hold even on a boot where harden
// fails. "" means no file.
func renderSysctl(settings []setting) string {
	if len(settings) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(managed)
	b.WriteString("# Sources: kernel.baseline, kernel.sysctl, kernel.core_dumps.\n")
	lastWhy := ""
	for _, s := range settings {
		why := s.Why
		if why == "" {
			why = "Set by the policy (" + s.Reason + ")."
		}
		if why != lastWhy {
			fmt.Fprintf(&b, "\n# %s\n", why)
			lastWhy = why
		}
		fmt.Fprintf(&b, "%s = %s\n", s.Key, s.Value)
	}
	return b.String()
}

func renderLimits(k policy.Kernel) string {
	if k.CoreDumps {
		return ""
	}
	return managed + "# kernel.core_dumps: false: no process may write a core dump (memory holds secrets).\n" +
		"* hard core 0\n"
}

func renderCoredump(k policy.Kernel) string {
	if k.CoreDumps {
		return ""
	}
	return managed + "# kernel.core_dumps: false: systemd-coredump keeps nothing, not even a journal entry's worth.\n" +
		"[Coredump]\nStorage=none\nProcessSizeMax=0\n"
}

// renderModprobe refuses each module: "install X /bin/false" makes every modprobe (also the
// kernel's automatic request when a program opens an SCTP socket) fail; "blacklist X" stops
// alias-based loading and tells a reader the intent.
func renderModprobe(k policy.Kernel) string {
	if len(k.DisableModules) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(managed)
	b.WriteString("# kernel.disable_modules: network protocols and filesystems this machine never needs;\n")
	b.WriteString("# each is attack surface the kernel would otherwise load on demand.\n")
	for _, m := range k.DisableModules {
		fmt.Fprintf(&b, "install %s /bin/false\nblacklist %s\n", m, m)
	}
	return b.String()
}

// planFile adds the change that makes name hold want ("" = absent), if any.
func planFile(env *engine.Env, p *engine.Plan, name, want, reason string) error {
	cur, exists, err := env.Root.ReadFileIfExists(name)
	if err != nil {
		return err
	}
	switch {
	case want == "" && !exists:
		return nil
	case want == "":
		p.Add(&engine.Change{Object: name, Action: engine.ActionDelete, Before: lines(cur), After: "absent",
			Diff: textdiff.Lines(string(cur), ""), Reason: reason,
			Do: func(context.Context) error { _, err := env.Root.Remove(name); return err }})
		return nil
	}
	// harden owns these files: content, mode and owner (root:root) are all its to set, so
	// a file someone else came to own is reported here and taken back.
	d, err := env.Root.Check(name, []byte(want), 0o644)
	if err != nil || d.Same() {
		return err
	}
	action, before, after := engine.ActionUpdate, lines(cur), lines([]byte(want))
	if !exists {
		action, before = engine.ActionCreate, "absent"
	} else if !d.Content {
		uid, gid := env.Root.Owner()
		before, after = d.String(), fmt.Sprintf("mode 0644, owner %d:%d", uid, gid)
	}
	p.Add(&engine.Change{Object: name, Action: action, Before: before, After: after,
		Diff: textdiff.Lines(string(cur), want), Reason: reason,
		Do: func(context.Context) error { _, err := env.Root.WriteOwned(name, []byte(want), 0o644); return err }})
	return nil
}

func lines(b []byte) string {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return fmt.Sprintf("%d lines", n)
}
