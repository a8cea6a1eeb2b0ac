package policy

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/auditrule"
)

// StepNames are the steps a policy can refer to (run.timeouts), in run order.
var StepNames = []string{"os", "firewall", "kernel", "sshd", "accounts", "audit", "packages", "clamav", "services"}

// FlyPrivateNetwork is the whole Fly 6PN range. "auto" resolves to the organisation's /48
// inside it at run time; validation uses the whole range as the outer bound.
var FlyPrivateNetwork = netip.MustParsePrefix("fdaa::/16")

// validator collects cross-field problems, each placed at the field's position.
type validator struct {
	p    *Policy
	errs Errors
}

func (v *validator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Pos: v.p.Where(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(field, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.errorf(field, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

// validate checks everything the decoder cannot: allowed values, ranges, and the rules
// that span fields (a private policy exposes nothing publicly).
func validate(p *Policy) Errors {
	v := &validator{p: p}
	if p.Version != 1 {
		v.errorf("version", "want version: 1, got %d", p.Version)
	}
	v.run()
	v.os()
	v.firewall()
	v.kernel()
	v.sshd()
	v.accounts()
	v.audit()
	v.packages()
	v.clamav()
	v.services()
	v.alerts()
	v.boot()
	return v.errs
}

func (v *validator) run() {
	r := v.p.Run
	v.oneOf("run.fail_on", r.FailOn, "none", "warning", "critical")
	if r.StepTimeout <= 0 {
		v.errorf("run.step_timeout", "must be more than 0")
	}
	for name := range r.Timeouts {
		if name == "freshclam" {
			// The step exists, but its one change (the download) runs under its own bound,
			// never cut by a step timeout: say where that bound is.
			v.errorf("run.timeouts.freshclam", "the signature update is bounded by clamav.freshclam.timeout (and retried per clamav.freshclam), not by a step timeout")
			continue
		}
		if !contains(StepNames, name) {
			v.errorf("run.timeouts."+name, "unknown step (steps: %s)", strings.Join(StepNames, ", "))
		}
	}
	for _, f := range []struct{ field, val string }{{"run.report", r.Report}, {"run.metrics", r.Metrics}} {
		if f.val != "" && !path.IsAbs(f.val) {
			v.errorf(f.field, "want an absolute path or \"\"")
		}
	}
}

func (v *validator) os() {
	o := v.p.OS
	if o.ID == "" {
		v.errorf("os.id", "required (the os-release ID, e.g. ubuntu)")
	}
	if o.MinVersion != "latest-lts" && !validVersion(o.MinVersion) {
		v.errorf("os.min_version", "want latest-lts or a version like 24.04, got %q", o.MinVersion)
	}
	if o.MinVersion == "latest-lts" && o.ID != "ubuntu" {
		v.errorf("os.min_version", "latest-lts is only known for ubuntu; give a version for %q", o.ID)
	}
}

func (v *validator) firewall() {
	f := v.p.Firewall
	v.oneOf("firewall.exposure", f.Exposure, "private", "public")
	v.oneOf("firewall.ping", f.Ping, "none", "private", "public")
	v.oneOf("firewall.forward", f.Forward, "accept", "drop")
	if f.Exposure == "private" && f.Ping == "public" {
		v.errorf("firewall.ping", "a private VM answers ping from the private networks at most")
	}
	if f.ProxyInterface == "" || len(f.ProxyInterface) > 15 {
		v.errorf("firewall.proxy_interface", "want an interface name of 1-15 characters")
	}
	private := v.privateNetworks()
	names := map[string]bool{}
	for i, r := range f.Allow {
		v.allowRule(fmt.Sprintf("firewall.allow[%d]", i), r, private, names)
	}
	v.sshReachable(private)
}

// privateNetworks returns the outer bound of the private networks for validation.
func (v *validator) privateNetworks() []netip.Prefix {
	var out []netip.Prefix
	if len(v.p.Firewall.PrivateNetworks) == 0 {
		v.errorf("firewall.private_networks", "required: [auto] or a list of CIDRs")
	}
	for i, s := range v.p.Firewall.PrivateNetworks {
		if s == "auto" {
			out = append(out, FlyPrivateNetwork)
			continue
		}
		p, err := ParseCIDR(s)
		if err != nil {
			v.errorf(fmt.Sprintf("firewall.private_networks[%d]", i), "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (v *validator) allowRule(at string, r AllowRule, private []netip.Prefix, names map[string]bool) {
	if !validName(r.Name) {
		v.errorf(at+".name", "want a short name of a-z, 0-9, _ . - (got %q)", r.Name)
	} else if names[r.Name] {
		v.errorf(at+".name", "duplicate allow rule name %q", r.Name)
	}
	names[r.Name] = true
	v.oneOf(at+".proto", r.Proto, "tcp", "udp")
	switch {
	case r.Port == 0 && r.Ports.IsZero():
		v.errorf(at, "give port or ports")
	case r.Port != 0 && !r.Ports.IsZero():
		v.errorf(at+".ports", "give port or ports, not both")
	case r.Port != 0 && (r.Port < 1 || r.Port > 65535):
		v.errorf(at+".port", "port %d out of range 1-65535", r.Port)
	}
	if strings.TrimSpace(r.Why) == "" {
		v.errorf(at+".why", "required: say why this port is open (it is printed by `harden policy doc`)")
	}
	v.allowSource(at, r, private)
}

func (v *validator) allowSource(at string, r AllowRule, private []netip.Prefix) {
	exposure := v.p.Firewall.Exposure
	switch r.From.Kind {
	case "":
		v.errorf(at+".from", "required: private, public, proxy or a list of CIDRs")
	case FromPublic:
		if exposure == "private" {
			v.errorf(at+".from", "a private policy exposes nothing to the public")
		}
	case FromProxy:
		if exposure == "private" {
			v.errorf(at+".from", "from: proxy (fly-proxy) is only for a public policy")
		}
	case FromCIDRs:
		if exposure != "private" {
			return
		}
		for _, c := range r.From.CIDRs {
			if !insideAny(c, private) {
				v.errorf(at+".from", "%s is outside the private networks of a private policy", c)
			}
		}
	}
}

func insideAny(c netip.Prefix, outer []netip.Prefix) bool {
	for _, o := range outer {
		if o.Addr().Is4() == c.Addr().Is4() && o.Bits() <= c.Bits() && o.Contains(c.Addr()) {
			return true
		}
	}
	return false
}

func (v *validator) kernel() {
	for k, val := range v.p.Kernel.Sysctl {
		switch {
		case !validSysctlKey(k):
			v.errorf("kernel.sysctl."+k, "not a sysctl key like net.ipv4.tcp_syncookies")
		case strings.ContainsAny(val, "\n\r") || strings.TrimSpace(val) == "":
			v.errorf("kernel.sysctl."+k, "want a one-line, non-empty value")
		case k == "fs.suid_dumpable" && !v.p.Kernel.CoreDumps && strings.TrimSpace(val) != "0":
			// Core dumps off means setuid programs do not dump either.
			v.errorf("kernel.sysctl."+k, "contradicts kernel.core_dumps: false (which sets it to 0)")
		}
	}
	for i, m := range v.p.Kernel.DisableModules {
		if !validModule(m) {
			v.errorf(fmt.Sprintf("kernel.disable_modules[%d]", i), "not a module name: %q", m)
		}
	}
}

// sshdOwnedKeys are set through their own policy fields, never through sshd.settings.
var sshdOwnedKeys = map[string]string{
	"permitrootlogin": "sshd.permit_root_login", "passwordauthentication": "sshd.password_authentication",
	"maxauthtries": "sshd.max_auth_tries", "kbdinteractiveauthentication": "sshd.password_authentication",
	"challengeresponseauthentication": "sshd.password_authentication", "pubkeyauthentication": "(always yes)",
	"include": "(not allowed)", "match": "(not allowed: Match blocks could undo the policy)",
	"allowtcpforwarding": "sshd.allow_tcp_forwarding", "allowstreamlocalforwarding": "sshd.allow_tcp_forwarding",
	"permittunnel": "sshd.allow_tcp_forwarding", "allowagentforwarding": "sshd.allow_agent_forwarding",
	"x11forwarding": "sshd.allow_x11_forwarding", "loglevel": "sshd.log_level",
	"logingracetime": "sshd.login_grace_time", "maxsessions": "sshd.max_sessions", "maxstartups": "sshd.max_startups",
	"clientaliveinterval": "sshd.client_alive_interval", "clientalivecountmax": "sshd.client_alive_count_max",
}

func (v *validator) sshd() {
	s := v.p.SSHD
	if s.MaxAuthTries < 1 || s.MaxAuthTries > 10 {
		v.errorf("sshd.max_auth_tries", "want 1-10, got %d", s.MaxAuthTries)
	}
	v.oneOf("sshd.log_level", s.LogLevel, "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3")
	v.oneOf("sshd.crypto", s.Crypto, "modern", "default")
	if s.LoginGraceTime <= 0 || s.LoginGraceTime.D() > 10*time.Minute {
		v.errorf("sshd.login_grace_time", "want more than 0 and at most 10m (0 would let unauthenticated connections stay for ever)")
	}
	if s.MaxSessions < 1 || s.MaxSessions > 100 {
		v.errorf("sshd.max_sessions", "want 1-100 (0 refuses every shell), got %d", s.MaxSessions)
	}
	if !validMaxStartups(s.MaxStartups) {
		v.errorf("sshd.max_startups", "want start or start:rate:full like 10:30:60, got %q", s.MaxStartups)
	}
	if s.ClientAliveInterval < 0 || (s.ClientAliveInterval.D()%time.Second) != 0 {
		v.errorf("sshd.client_alive_interval", "want whole seconds, 0 or more")
	}
	if s.ClientAliveCountMax < 0 {
		v.errorf("sshd.client_alive_count_max", "want 0 or more")
	}
	for k, val := range s.Settings {
		field := "sshd.settings." + k
		if owner, ok := sshdOwnedKeys[strings.ToLower(k)]; ok {
			v.errorf(field, "set this through %s", owner)
		} else if !validSSHDKey(k) {
			v.errorf(field, "not an sshd_config keyword")
		} else if strings.ContainsAny(val, "\n\r") || strings.TrimSpace(val) == "" {
			v.errorf(field, "want a one-line, non-empty value")
		}
	}
}

func (v *validator) accounts() {
	a := v.p.Accounts
	if a.Pwquality.Minlen < 8 {
		v.errorf("accounts.pwquality.minlen", "want at least 8, got %d", a.Pwquality.Minlen)
	}
	if a.Pwquality.Maxrepeat < 0 {
		v.errorf("accounts.pwquality.maxrepeat", "want 0 (off) or more")
	}
	v.oneOf("accounts.login_defs.encrypt_method", a.LoginDefs.EncryptMethod, "YESCRYPT", "SHA512")
	if !validUmask(a.LoginDefs.Umask) {
		v.errorf("accounts.login_defs.umask", "want an octal umask like 027, got %q", a.LoginDefs.Umask)
	}
	if a.LoginDefs.PassMinDays < 0 || a.LoginDefs.PassMaxDays < 1 || a.LoginDefs.PassMinDays > a.LoginDefs.PassMaxDays {
		v.errorf("accounts.login_defs", "want 0 <= pass_min_days <= pass_max_days, pass_max_days >= 1")
	}
}

func (v *validator) audit() {
	a := v.p.Audit
	v.oneOf("audit.failure", a.Failure, "silent", "printk", "panic")
	if a.BacklogLimit < 64 {
		v.errorf("audit.backlog_limit", "want at least 64, got %d", a.BacklogLimit)
	}
	if a.RateLimit < 0 || a.BacklogWaitTime < 0 {
		v.errorf("audit", "rate_limit and backlog_wait_time must not be negative")
	}
	for i, r := range a.Rules {
		if strings.TrimSpace(r) == "" || strings.ContainsAny(r, "\n\r") {
			v.errorf(fmt.Sprintf("audit.rules[%d]", i), "want one rule in auditctl syntax per item")
		} else if err := checkAuditRule(r); err != nil {
			// The parser's message names the offending word; the position is the item's.
			v.errorf(fmt.Sprintf("audit.rules[%d]", i), "%v", err)
		}
	}
}

// checkAuditRule checks a rule's syntax the way the audit step parses it, so that `harden
// policy validate` catches a bad rule, but nothing that depends on the machine: whether the
// users and groups it names exist, or the syscalls it names exist on this architecture, is
// the machine's fact, which the audit step reports for that rule (audit.rule-skipped) rather
// than failing the whole policy (and closing the machine down to the default firewall). So
// `policy validate` gives the same answer in a repository and on the VM. A syscall is
// accepted if any supported machine has it; -w paths are not looked at (file or directory
// only changes the encoding).
func checkAuditRule(text string) error {
	var first error
	for _, m := range []*auditrule.Machine{auditrule.HostMachine(), auditrule.MachineX86_64, auditrule.MachineAArch64} {
		p := &auditrule.Parser{Machine: m, IsDir: func(string) bool { return false },
			LookupUser: anyID, LookupGroup: anyID}
		_, err := p.ParseRule(text)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// anyID accepts any user or group name: which exist is the machine's business.
func anyID(string) (uint32, error) { return 0, nil }

func (v *validator) packages() {
	p := v.p.Packages
	for i, n := range p.Remove {
		if !validPackage(n) || strings.ContainsAny(n, "*?") {
			v.errorf(fmt.Sprintf("packages.remove[%d]", i), "not a package name: %q (no globs in remove)", n)
		}
	}
	for i, n := range p.Approved {
		if !validPackage(n) {
			v.errorf(fmt.Sprintf("packages.approved[%d]", i), "not a package name or glob: %q", n)
		}
	}
	if p.ApprovedFile != "" && !path.IsAbs(p.ApprovedFile) {
		v.errorf("packages.approved_file", "want an absolute path")
	}
	if p.Timeout <= 0 {
		v.errorf("packages.timeout", "must be more than 0")
	}
}

// forbiddenScanRoots hang or break a system under on-access scanning (clamav #546) or are
// not files at all.
var forbiddenScanRoots = []string{"/etc", "/usr", "/proc", "/sys", "/dev", "/run", "/boot", "/var/lib/clamav"}

// CheckOnAccessPath refuses a path clamonacc must not scan. The clamav step calls it again
// before writing clamd.conf, so a policy built in code cannot bypass validation.
func CheckOnAccessPath(p string) error {
	clean := path.Clean(p)
	switch {
	case !path.IsAbs(p):
		return fmt.Errorf("want an absolute path, got %q", p)
	case clean == "/":
		return fmt.Errorf("on-access scanning of / is refused by clamonacc and would hang the system")
	}
	for _, bad := range forbiddenScanRoots {
		if clean == bad || strings.HasPrefix(clean, bad+"/") {
			return fmt.Errorf("%s is under %s: on-access scanning there can hang the system", p, bad)
		}
	}
	if strings.ContainsAny(p, " \t\n\r") {
		return fmt.Errorf("%q contains blanks: clamd.conf values cannot", p)
	}
	return nil
}

func (v *validator) clamav() {
	c := v.p.ClamAV
	for i, p := range c.OnAccessPaths {
		field := fmt.Sprintf("clamav.on_access_paths[%d]", i)
		if err := CheckOnAccessPath(p); err != nil {
			v.errorf(field, "%v", err)
		}
	}
	for i, p := range c.ExcludePaths {
		if !path.IsAbs(p) || strings.ContainsAny(p, " \t\n\r") {
			v.errorf(fmt.Sprintf("clamav.exclude_paths[%d]", i), "want an absolute path without blanks, got %q", p)
		}
	}
	if c.Freshclam.Mirror != "" {
		v.url("clamav.freshclam.mirror", c.Freshclam.Mirror)
	}
	if c.Freshclam.Timeout <= 0 || c.Freshclam.MaxDBAge <= 0 {
		v.errorf("clamav.freshclam", "timeout and max_db_age must be more than 0")
	}
}

func (v *validator) services() {
	seen := map[string]bool{}
	for i, s := range v.p.Services.Allow {
		at := fmt.Sprintf("services.allow[%d]", i)
		if !validUnitName(s.Name) {
			v.errorf(at+".name", "want a unit name with its type, like ssh.service (got %q)", s.Name)
		} else if seen[s.Name] {
			v.errorf(at+".name", "duplicate unit %q", s.Name)
		}
		seen[s.Name] = true
		if strings.TrimSpace(s.Why) == "" {
			v.errorf(at+".why", "required: say why this unit runs (it is printed by `harden policy doc`)")
		}
		v.oneOf(at+".ensure", s.Ensure, "running", "enabled", "allowed")
	}
}

func (v *validator) alerts() {
	a := v.p.Alerts
	if a.SSHFailures.Threshold < 1 {
		v.errorf("alerts.ssh_failures.threshold", "want 1 or more")
	}
	if a.SSHFailures.Window <= 0 {
		v.errorf("alerts.ssh_failures.window", "must be more than 0")
	}
	for i, s := range a.Sinks {
		at := fmt.Sprintf("alerts.sinks[%d]", i)
		v.oneOf(at+".type", s.Type, "journal", "webhook", "alertmanager")
		switch s.Type {
		case "webhook", "alertmanager":
			v.url(at+".url", s.URL)
		case "journal":
			if s.URL != "" || s.SecretFile != "" {
				v.errorf(at, "a journal sink takes no url or secret_file")
			}
		}
		if s.SecretFile != "" && (s.Type != "webhook" || !path.IsAbs(s.SecretFile)) {
			v.errorf(at+".secret_file", "an absolute path, for webhook sinks only")
		}
	}
	if !path.IsAbs(a.Spool.Dir) {
		v.errorf("alerts.spool.dir", "want an absolute path")
	}
	if a.Spool.MaxAlerts < 10 {
		v.errorf("alerts.spool.max_alerts", "want at least 10")
	}
}

// FailClosedStep is the step whose failure always keeps the app from starting under
// `harden boot`, whatever boot.required_steps says.
const FailClosedStep = "firewall"

func (v *validator) boot() {
	b := v.p.Boot
	seen := map[string]bool{}
	for i, s := range b.RequiredSteps {
		at := fmt.Sprintf("boot.required_steps[%d]", i)
		switch {
		case !contains(StepNames, s):
			v.errorf(at, "unknown step %q (steps: %s)", s, strings.Join(StepNames, ", "))
		case seen[s]:
			v.errorf(at, "duplicate step %q", s)
		}
		seen[s] = true
	}
	if !seen[FailClosedStep] {
		v.errorf("boot.required_steps", "must include %s: an app never starts on a machine whose firewall could not be applied (fail closed)", FailClosedStep)
	}
	if b.StopTimeout <= 0 || b.StopTimeout.D() > 5*time.Minute {
		v.errorf("boot.stop_timeout", "want more than 0 and at most 5m (Fly's kill_timeout is at most 300s), got %s", b.StopTimeout)
	}
}

func (v *validator) url(field, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(field, "want an http(s) URL, got %q", s)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
