package alert

// Rule keys of the audit baseline (assets/audit/baseline.rules, written by the audit step).
// The rules below select events by these keys, so the two must agree; they are kept in this
// one place, and a test compares them with the embedded baseline once it exists.
var (
	// PrivEscKeys mark execs that raise privileges (euid != uid) and execs of sudo, su, pkexec.
	PrivEscKeys = []string{"priv_esc"}
	// CriticalFileKeys mark writes and attribute changes (-p wa) of critical files.
	CriticalFileKeys = []string{
		"identity",     // /etc/passwd, shadow, group, gshadow, security/opasswd
		"sshd_config",  // /etc/ssh/sshd_config and sshd_config.d
		"sudoers",      // /etc/sudoers and sudoers.d
		"audit_config", // /etc/audit, the audit tools
		"pam",          // /etc/pam.d, /etc/security
		"harden",       // /etc/harden (the policy and the image stamp)
		"login_defs",   // /etc/login.defs
		"cron",         // /etc/crontab, cron.d, cron.*
		"systemd",      // unit files in /etc/systemd
	}
)
