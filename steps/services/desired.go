package services

import (
	"fmt"
	"path"
	"strings"

	"github.com/harden-dev/harden/internal/ownedunits"
	"github.com/harden-dev/harden/internal/policy"
)

// What harden ensures about a unit it keeps (policy services.allow[].ensure).
const (
	EnsureRunning = "running" // enabled and started
	EnsureEnabled = "enabled" // enabled (starts at next boot)
	EnsureAllowed = "allowed" // only: never masked
)

// want is one unit the machine may keep, with what harden ensures about it
// and the policy field (or built-in rule) that asks for it.
type want struct {
	Name   string
	Ensure string
	Reason string
	// Why is the policy's justification, for messages.
	Why string
	// Optional units are harden's own: missing on a machine where
	// `harden install` has not run is worth an info, not a warning.
	Optional bool
}

// harden's own units (written by `harden install`). harden.service and
// harden-firewall.service are oneshots that run at boot: enabled, never
// started from here (harden.service is the process running this step).
var hardenUnits = []want{
	{Name: "harden-firewall.service", Ensure: EnsureEnabled, Why: "applies the firewall before the network is up"},
	{Name: "harden.service", Ensure: EnsureEnabled, Why: "applies the policy at boot"},
	{Name: "harden-packages.service", Ensure: EnsureEnabled, Why: "removes packages at boot, after SSH is up"},
	{Name: "harden-freshclam.service", Ensure: EnsureEnabled, Why: "updates the ClamAV signatures once the network is up"},
	{Name: "harden-watch.service", Ensure: EnsureRunning, Why: "raises alerts from audit events"},
	{Name: "harden-audit.timer", Ensure: EnsureRunning, Why: "daily drift check"},
}

// desired is the allowlist: the policy's services.allow, the units other
// steps of the same policy need or manage themselves, and the trigger units (socket, path, timer)
// that only activate an allowed unit. Keyed by unit name; the first rule for
// a name wins, so an explicit services.allow entry beats a derived one.
func desired(p *policy.Policy) (map[string]want, []string) {
	out := map[string]want{}
	var order []string
	add := func(w want) {
		if _, ok := out[w.Name]; ok {
			return
		}
		out[w.Name] = w
		order = append(order, w.Name)
	}
	for i, r := range p.Services.Allow {
		ensure := r.Ensure
		if ensure == "" {
			ensure = EnsureAllowed
		}
		add(want{Name: r.Name, Ensure: ensure, Why: r.Why, Reason: fmt.Sprintf("services.allow[%d]", i)})
	}
	if p.Audit.Baseline || len(p.Audit.Rules) > 0 {
		add(want{Name: "auditd.service", Ensure: EnsureRunning, Why: "records the audit events the policy asks for", Reason: "audit"})
	}
	if p.ClamAV.Enabled {
		add(want{Name: "clamav-daemon.service", Ensure: EnsureRunning, Why: "ClamAV scanner", Reason: "clamav.enabled"})
		add(want{Name: "clamav-clamonacc.service", Ensure: EnsureRunning, Why: "ClamAV on-access scanning", Reason: "clamav.enabled"})
	}
	for _, w := range hardenUnits {
		w.Reason, w.Optional = "harden's own unit", true
		add(w)
	}
	// Units another step manages itself (ownedunits): never masked as "not listed", and
	// unmasked if an older harden masked them. Their state is the owning step's business.
	for _, step := range ownedunits.Steps() {
		for _, u := range ownedunits.Of(step) {
			add(want{Name: u, Ensure: EnsureAllowed, Why: "managed by the " + step + " step", Reason: "managed by the " + step + " step"})
		}
	}
	// Triggers of an allowed unit: ssh.socket for ssh.service (Ubuntu starts
	// sshd through it), clamav-daemon.socket, the service a timer runs. They
	// can only start the unit the policy already allows.
	for _, name := range append([]string(nil), order...) {
		w := out[name]
		stem := strings.TrimSuffix(name, path.Ext(name))
		for _, ext := range []string{".service", ".socket", ".path", ".timer"} {
			add(want{Name: stem + ext, Ensure: EnsureAllowed, Why: "activates " + name,
				Reason: "trigger of " + name + " (" + w.Reason + ")"})
		}
	}
	return out, order
}

// lookup finds the rule that allows name: the name itself, or for a
// template (foo@.service) any allowed instance of it, or for an instance
// (foo@bar.service) its allowed template.
func lookup(allow map[string]want, name string) (want, bool) {
	if w, ok := allow[name]; ok {
		return w, true
	}
	if t := template(name); t != name {
		if w, ok := allow[t]; ok {
			return w, true
		}
	}
	if strings.HasSuffix(strings.TrimSuffix(name, path.Ext(name)), "@") {
		for n, w := range allow {
			if template(n) == name {
				return w, true
			}
		}
	}
	return want{}, false
}

// template maps foo@bar.service to foo@.service; other names map to
// themselves.
func template(name string) string {
	at := strings.IndexByte(name, '@')
	if at < 0 {
		return name
	}
	return name[:at+1] + path.Ext(name)
}

// essential are units harden never masks even when the policy forgets them:
// masking any of them can leave a machine that does not boot, cannot be
// reached, or keeps no logs. Patterns are path.Match globs, matched against
// the name and, for instances, the template name.
var essential = []string{
	// systemd's own units: journald and its sockets, logind, udevd,
	// networkd, resolved, timesyncd, fsck, remount, tmpfiles, ...
	"systemd-*",
	// Grouping and bookkeeping units: masking a target breaks ordering.
	"*.target", "*.slice", "*.scope", "*.device", "-.mount",
	"init.scope",
	// The bus everything (including harden) talks over.
	"dbus.service", "dbus.socket", "dbus-broker.service",
	// Consoles: the way in when the network is gone.
	"getty@*", "serial-getty@*", "console-getty.service", "container-getty@*",
	"getty-static.service", "autovt@*",
	"emergency.*", "rescue.*",
	// Users' managers and runtime dirs.
	"user@*", "user-runtime-dir@*",
	// Networking.
	"NetworkManager*", "networking.service", "ifup@*", "ifupdown*", "netplan-*",
	// cloud-init brings up the network and the keys on cloud images.
	"cloud-init*", "cloud-config.*", "cloud-final.*",
	// Early boot: storage, keyboard/console, boot loader's success record
	// (without it Ubuntu's GRUB waits at a menu after the next reboot).
	"lvm2-*", "dm-event.*", "blk-availability.service", "multipathd.*", "mdmonitor*",
	"keyboard-setup.service", "console-setup.service", "setvtrgb.service", "kmod*",
	"plymouth*", "grub-*",
	// Security and time: AppArmor confinement, clock sync for audit
	// timestamps.
	"apparmor.service", "chrony.service", "chronyd.service", "ntp.service", "ntpsec.service",
}

// isEssential reports whether name is in the never-mask set.
func isEssential(name string) bool {
	for _, n := range []string{name, template(name)} {
		for _, p := range essential {
			if ok, _ := path.Match(p, n); ok {
				return true
			}
		}
	}
	return false
}
