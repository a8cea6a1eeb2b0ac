// Package auditkeys is the one list of the audit baseline's rule keys (the `-F key=` of every
// rule in assets/audit/baseline.rules): which event class of the policy each key belongs to,
// and which alert `harden watch` raises for an event under it.
//
// The audit step (which loads the baseline) and the alert rules (which select events by key)
// both read this list, so they cannot disagree. It lives under internal/ because a step must
// not import another step, and the alert code is not a step. The keys are also a contract
// with people searching with `ausearch -k KEY`: rename one only together with the baseline
// and docs/audit.md. Tests in steps/audit and internal/alert check every key against the
// embedded baseline, both ways.
package auditkeys

// Class is the policy's event class a key belongs to (docs/audit.md groups by it).
type Class string

// The event classes of the policy.
const (
	CriticalFiles Class = "critical files"
	Logins        Class = "SSH and logins"
	PrivEsc       Class = "privilege escalation"
	Config        Class = "configuration"
)

// Alert names the alert kind an event under a key raises. The values equal internal/alert's
// Kind values (a test there checks it); "" means the key is recorded, not alerted on.
type Alert string

// Alerts a key can raise.
const (
	NoAlert           Alert = ""
	AlertCriticalFile Alert = "critical-file"
	AlertPrivEsc      Alert = "priv-esc"
)

// The keys, as constants for code that names one.
const (
	Identity     = "identity"
	Sudoers      = "sudoers"
	SSHDConfig   = "sshd_config"
	PAM          = "pam"
	LoginConfig  = "login_config"
	Cron         = "cron"
	AuditConfig  = "audit_config"
	HardenPolicy = "harden_policy"

	LoginRecords = "logins"
	Session      = "session"

	PrivCmd   = "priv_cmd"
	PrivEscal = "priv_esc"
	PrivSetID = "priv_setid"

	TimeChange    = "time_change"
	Hostname      = "hostname"
	NetworkConfig = "network_config"
	Sysctl        = "sysctl"
	Modules       = "modules"
	Systemd       = "systemd"
	Mount         = "mount"
	MACPolicy     = "mac_policy"
)

// Key is one baseline key.
type Key struct {
	Name  string
	Class Class
	Alert Alert
	// What the baseline's rules under this key catch (docs/audit.md's table).
	What string
}

// All lists every baseline key, in docs/audit.md's order. Every baseline rule carries exactly
// one of them and each is used by at least one rule.
var All = []Key{
	{Identity, CriticalFiles, AlertCriticalFile, "writes to passwd, shadow, group, gshadow, security/opasswd"},
	{Sudoers, CriticalFiles, AlertCriticalFile, "sudoers, sudoers.d"},
	{SSHDConfig, CriticalFiles, AlertCriticalFile, "ssh/sshd_config, ssh/sshd_config.d"},
	{PAM, CriticalFiles, AlertCriticalFile, "pam.d"},
	{LoginConfig, CriticalFiles, AlertCriticalFile, "login.defs, nsswitch.conf, security/faillock.conf, security/pwquality.conf"},
	{Cron, CriticalFiles, AlertCriticalFile, "crontab, cron.d, cron.hourly/daily/weekly/monthly, /var/spool/cron"},
	// Running the audit tools is logged under this key too (perm=x); the alert rules skip
	// execs, so only changes to the files alert.
	{AuditConfig, CriticalFiles, AlertCriticalFile, "/etc/audit, libaudit.conf; running auditctl, auditd, augenrules"},
	{HardenPolicy, CriticalFiles, AlertCriticalFile, "/etc/harden (harden's own policy)"},

	// Files the system writes by itself at every login: recorded, never alerted on.
	{LoginRecords, Logins, NoAlert, "lastlog, faillog, /var/run/faillock"},
	{Session, Logins, NoAlert, "utmp, wtmp, btmp"},

	{PrivCmd, PrivEsc, AlertPrivEsc, "su, sudo, sudoedit, pkexec, newgrp, chsh, chfn run by a logged-in user (auid >= 1000)"},
	{PrivEscal, PrivEsc, AlertPrivEsc, "execve with euid 0 and uid != euid (a setuid-root program, or an exploit)"},
	// Every sudo makes several set*id calls: alerting here would alert several times per
	// sudo, which priv_cmd already covers once.
	{PrivSetID, PrivEsc, NoAlert, "setuid-family syscalls by a logged-in user's processes"},

	{TimeChange, Config, NoAlert, "adjtimex, settimeofday, clock_settime (stime on b32), /etc/localtime"},
	{Hostname, Config, NoAlert, "sethostname, setdomainname, /etc/hostname"},
	{NetworkConfig, Config, NoAlert, "/etc/hosts, /etc/network, /etc/netplan"},
	{Sysctl, Config, NoAlert, "/etc/sysctl.conf, /etc/sysctl.d"},
	{Modules, Config, NoAlert, "init_module, finit_module, delete_module, /etc/modprobe.d"},
	// Configuration by class, but a unit or enablement link written here runs as root at the
	// next boot, and AppArmor policy decides what confined services may do: both alert as
	// critical files.
	{Systemd, Config, AlertCriticalFile, "/etc/systemd/system (units, drop-ins, enablement links)"},
	{Mount, Config, NoAlert, "mount, umount, umount2 by a logged-in user"},
	{MACPolicy, Config, AlertCriticalFile, "/etc/apparmor, /etc/apparmor.d"},
}

// Names returns every key name, in All's order.
func Names() []string {
	out := make([]string, len(All))
	for i, k := range All {
		out[i] = k.Name
	}
	return out
}

// InClass returns the names of the keys of one event class.
func InClass(c Class) []string {
	var out []string
	for _, k := range All {
		if k.Class == c {
			out = append(out, k.Name)
		}
	}
	return out
}

// Alerting returns the names of the keys whose events raise alert a.
func Alerting(a Alert) []string {
	var out []string
	for _, k := range All {
		if a != NoAlert && k.Alert == a {
			out = append(out, k.Name)
		}
	}
	return out
}

// Lookup finds a key by name.
func Lookup(name string) (Key, bool) {
	for _, k := range All {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}
