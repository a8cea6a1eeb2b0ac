package audit

// Keys of the baseline rules (assets/audit/baseline.rules). They are a contract with
// `harden watch`, which raises alerts on them, and with people searching with
// `ausearch -k`: change one only together with the baseline and docs/audit.md.
const (
	// Critical files.
	KeyIdentity     = "identity"      // passwd, shadow, group, gshadow, opasswd
	KeySudoers      = "sudoers"       // sudoers, sudoers.d
	KeySSHDConfig   = "sshd_config"   // sshd_config, sshd_config.d
	KeyPAM          = "pam"           // pam.d
	KeyLoginConfig  = "login_config"  // login.defs, nsswitch.conf, faillock.conf, pwquality.conf
	KeyCron         = "cron"          // crontab, cron.*, /var/spool/cron
	KeyAuditConfig  = "audit_config"  // /etc/audit, libaudit.conf, running auditctl/auditd/augenrules
	KeyHardenPolicy = "harden_policy" // /etc/harden

	// SSH and login records.
	KeyLogins  = "logins"  // lastlog, faillog, faillock
	KeySession = "session" // utmp, wtmp, btmp

	// Privilege escalation.
	KeyPrivCmd   = "priv_cmd"   // su, sudo, sudoedit, pkexec, newgrp, chsh, chfn run by a person
	KeyPrivEsc   = "priv_esc"   // execve with euid 0 and uid != euid (setuid-root programs)
	KeyPrivSetID = "priv_setid" // setuid-family syscalls by a person's processes

	// System configuration.
	KeyTimeChange    = "time_change"    // clock syscalls, /etc/localtime
	KeyHostname      = "hostname"       // sethostname/setdomainname, /etc/hostname
	KeyNetworkConfig = "network_config" // /etc/hosts, /etc/network, /etc/netplan
	KeySysctl        = "sysctl"         // /etc/sysctl.conf, /etc/sysctl.d
	KeyModules       = "modules"        // init_module, finit_module, delete_module, modprobe.d
	KeySystemd       = "systemd"        // /etc/systemd/system
	KeyMount         = "mount"          // mount/umount by a person
	KeyMACPolicy     = "mac_policy"     // AppArmor policy
)

// Key groups, by the event classes of the policy. Every baseline rule has exactly one key,
// and every key is in exactly one group.
var (
	CriticalFileKeys = []string{KeyIdentity, KeySudoers, KeySSHDConfig, KeyPAM, KeyLoginConfig,
		KeyCron, KeyAuditConfig, KeyHardenPolicy}
	LoginKeys   = []string{KeyLogins, KeySession}
	PrivEscKeys = []string{KeyPrivCmd, KeyPrivEsc, KeyPrivSetID}
	ConfigKeys  = []string{KeyTimeChange, KeyHostname, KeyNetworkConfig, KeySysctl, KeyModules,
		KeySystemd, KeyMount, KeyMACPolicy}
)

// AllKeys lists every baseline key.
func AllKeys() []string {
	var all []string
	for _, g := range [][]string{CriticalFileKeys, LoginKeys, PrivEscKeys, ConfigKeys} {
		all = append(all, g...)
	}
	return all
}
