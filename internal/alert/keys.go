package alert

// Rule keys of the audit baseline (assets/audit/baseline.rules, loaded by the audit step).
// The rules below select events by these keys, so the two must agree: they are kept in this
// one place and TestKeysMatchTheBaseline checks every one against the embedded baseline.
var (
	// PrivEscKeys: execs that gain root (-C uid!=euid -F euid=0, key priv_esc) and execs of
	// su/sudo/pkexec/... by a logged-in user (perm=x, key priv_cmd). priv_setid is left out on
	// purpose: every sudo makes several set*id calls, so it would alert many times per sudo.
	PrivEscKeys = []string{"priv_esc", "priv_cmd"}
	// CriticalFileKeys: -p wa watches on files whose change alters who can log in or run
	// what. Keys of files the system writes by itself all day (logins, session: utmp/wtmp)
	// and of syscall rules (modules, time_change, hostname) are not critical-file keys.
	CriticalFileKeys = []string{
		"identity",      // /etc/passwd, shadow, group, gshadow, security/opasswd
		"sudoers",       // /etc/sudoers, sudoers.d
		"sshd_config",   // /etc/ssh/sshd_config, sshd_config.d
		"pam",           // /etc/pam.d
		"login_config",  // login.defs, nsswitch.conf, faillock.conf, pwquality.conf
		"cron",          // crontab, cron.*, /var/spool/cron
		"audit_config",  // /etc/audit, libaudit.conf (execs of the audit tools are not changes)
		"harden_policy", // /etc/harden
		"systemd",       // /etc/systemd/system
		"mac_policy",    // /etc/apparmor, apparmor.d
	}
)
