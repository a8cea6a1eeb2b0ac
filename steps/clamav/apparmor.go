package clamav

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Ubuntu confines clamd with AppArmor. Its profile lets clamd read @{HOME}, /tmp,
// /var/lib/clamav and mail spools, but not /srv, /opt or /var/tmp, which are among harden's
// default on-access paths: a scan by path there (clamdscan, clamonacc without fd passing)
// is denied. (clamonacc with --move, as the package runs it, passes clamd an open file
// descriptor, and AppArmor lets a profile use a file an unconfined process opened.) Nor may
// clamd run anything: VirusEvent, which clamd runs through /bin/sh -c, is denied, and with
// it every alert. The profile ends with `#include <local/usr.sbin.clamd>`, the place meant
// for site additions: harden keeps its own lines there (read rules for every on-access
// path; the shell and harden for VirusEvent, harden in a child profile of its own) and
// reloads the profile when they change.
const (
	ClamdProfile      = "/etc/apparmor.d/usr.sbin.clamd"
	ClamdLocalProfile = "/etc/apparmor.d/local/usr.sbin.clamd"
	// AppArmorEnabled is "Y" when the kernel runs AppArmor.
	AppArmorEnabled = "/sys/module/apparmor/parameters/enabled"
)

// The lines between these markers are harden's; everything else in the local file is the
// administrator's and stays as it is.
const (
	localBegin = "# harden: clamav.on_access_paths (clamd reads what clamonacc hands it). Managed by harden: edits between these lines are overwritten."
	localEnd   = "# end of harden's lines"
)

// planAppArmor extends clamd's local AppArmor override to every on-access path and reloads
// the profile. Nothing happens where clamd has no AppArmor profile (Debian without the
// profile, other distributions); a profile on a machine where AppArmor is off is written
// for the day it is on, with a finding.
func (s *Step) planAppArmor(env *engine.Env, p *engine.Plan, paths []string) error {
	if _, ok, err := env.Root.ReadFileIfExists(ClamdProfile); err != nil || !ok {
		return err
	}
	old, exists, err := env.Root.ReadFileIfExists(ClamdLocalProfile)
	if err != nil {
		return err
	}
	want := withHardenLines(string(old), localRules(paths, s.opts.HardenPath, env.Policy.Alerts.Spool.Dir))
	enforced, why := clamdConfined(env)
	if !enforced {
		p.Find(&engine.Finding{ID: "clamav.apparmor-off", Severity: engine.Info, Object: ClamdProfile,
			Message: why + ": clamd is not confined, and " + ClamdLocalProfile +
				" carries harden's rules for when it is", Reason: "clamav.on_access_paths"})
	}
	if exists && want == string(old) {
		return nil
	}
	live := enforced && !s.opts.Offline
	after := "read rules for " + strings.Join(paths, ", ") + "; VirusEvent may run " + s.opts.HardenPath
	if live {
		after += "; profile reloaded (apparmor_parser -r)"
	} else {
		after += "; loaded when AppArmor next loads the profile"
	}
	action := engine.ActionUpdate
	if !exists {
		action = engine.ActionCreate
	}
	p.Add(&engine.Change{Object: ClamdLocalProfile, Action: action, Diff: textdiff.Lines(string(old), want), After: after,
		Reason: "clamav.on_access_paths (AppArmor confines clamd)",
		Do: func(ctx context.Context) error {
			if _, err := env.Root.WriteFile(ClamdLocalProfile, []byte(want), 0o644); err != nil {
				return err
			}
			if !live {
				return nil
			}
			if err := reloadProfile(ctx, env); err != nil {
				// Put the old file back, so the next run sees the difference and tries again
				// rather than a file that claims what the kernel does not enforce.
				if exists {
					_, _ = env.Root.WriteFile(ClamdLocalProfile, old, 0o644)
				} else {
					_, _ = env.Root.Remove(ClamdLocalProfile)
				}
				return err
			}
			return nil
		}})
	return nil
}

// reloadProfile replaces the loaded clamd profile with the one on disk (and its cache), as
// the package's own postinst does; a running clamd moves to the new profile at once.
func reloadProfile(ctx context.Context, env *engine.Env) error {
	_, err := env.Exec.Run(ctx, command.Cmd{Name: "apparmor_parser", Args: []string{"-r", "-T", "-W", ClamdProfile}})
	if err != nil {
		return fmt.Errorf("reloading clamd's AppArmor profile: %w", err)
	}
	return nil
}

// LoadedProfiles lists the profiles the kernel holds, one "NAME (MODE)" per line.
const LoadedProfiles = "/sys/kernel/security/apparmor/profiles"

// clamdConfined reports whether the kernel confines clamd with its profile (loaded, in
// enforce or complain mode), and if not, why not. A kernel with AppArmor on but without the
// profile loaded (Debian 12 ships the profile with clamav-daemon, but nothing loads it unless
// the apparmor package is installed) leaves clamd unconfined: nothing to reload.
func clamdConfined(env *engine.Env) (bool, string) {
	b, ok, err := env.Root.ReadFileIfExists(AppArmorEnabled)
	switch {
	case err != nil:
		return false, err.Error()
	case !ok:
		return false, "the kernel has no AppArmor"
	case strings.TrimSpace(string(b)) != "Y":
		return false, "AppArmor is disabled on the kernel command line"
	}
	b, _, err = env.Root.ReadFileIfExists(LoadedProfiles)
	if err != nil {
		return false, err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, " ("); ok && name == "/usr/sbin/clamd" {
			return true, ""
		}
	}
	return false, "AppArmor runs, but clamd's profile is not loaded (is the apparmor package installed?)"
}

// VirusEventProfile is the child profile harden runs in when clamd's VirusEvent starts it
// (/usr/sbin/clamd//harden_virus_event): what `harden alert virus` needs, nothing more.
const VirusEventProfile = "harden_virus_event"

// localRules are harden's lines in clamd's local override: read rules for the on-access
// paths (the directory and everything under it); the shell VirusEvent runs through (in
// clamd's own profile: it can do no more than clamd), harden itself in its child profile,
// and that profile, which may read its binary, the policy and its stamp, check whether the
// watch runs (its lock), and spool the alert in the inbox, and nothing else (no network:
// the watch delivers from the spool).
func localRules(paths []string, hardenPath, spoolDir string) []string {
	var out []string
	for _, p := range paths {
		q := appArmorQuote(path.Clean(p))
		out = append(out, fmt.Sprintf(`"%s/" r,`, q), fmt.Sprintf(`"%s/**" r,`, q))
	}
	bin := appArmorQuote(path.Clean(hardenPath))
	spool := appArmorQuote(path.Clean(spoolDir))
	out = append(out,
		"/{,usr/}bin/{,da,ba}sh ix,",
		fmt.Sprintf(`"%s" Cx -> %s,`, bin, VirusEventProfile),
		"profile "+VirusEventProfile+" {",
		"  #include <abstractions/base>",
		fmt.Sprintf(`  "%s" mr,`, bin),
		"  @{PROC}/@{pid}/{cgroup,mountinfo} r,",
		"  @{sys}/fs/cgroup/** r,",
		"  /etc/harden/ r,",
		"  /etc/harden/** r,",
		"  /run/harden-watch/lock rk,",
		// clamd's log descriptor is inherited through the VirusEvent shell; harden never
		// writes it, and without a deny rule every virus event logs a denial for it.
		"  deny /var/log/clamav/** w,",
		fmt.Sprintf(`  "%s/inbox/" r,`, spool),
		fmt.Sprintf(`  "%s/inbox/*" rw,`, spool),
		"}",
	)
	return out
}

// appArmorQuote escapes what AppArmor reads as globbing, alternation or a variable, so a
// path is matched as written; the rule is quoted for blanks and commas.
func appArmorQuote(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`\"*?[]{}^@`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// withHardenLines returns the local file with harden's block replaced by rules (or appended
// when there is none yet); nothing outside the block changes.
func withHardenLines(old string, rules []string) string {
	block := localBegin + "\n" + strings.Join(rules, "\n") + "\n" + localEnd + "\n"
	start := strings.Index(old, localBegin)
	if start < 0 {
		if old != "" && !strings.HasSuffix(old, "\n") {
			old += "\n"
		}
		return old + block
	}
	rest := old[start:]
	end := strings.Index(rest, localEnd)
	if end < 0 {
		return old[:start] + block // a cut-off block: replaced whole
	}
	rest = strings.TrimPrefix(rest[end+len(localEnd):], "\n")
	return old[:start] + block + rest
}
