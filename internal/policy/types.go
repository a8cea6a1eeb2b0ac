// Package policy is harden's policy schema (version 1): the Go types, the embedded default,
// a strict YAML loader whose errors carry file:line:col and the field path, and the
// cross-field rules that keep a policy from exposing a private VM.
//
// A policy file is laid over the embedded default: a section or key the file leaves out keeps
// the default's value, a list the file gives replaces the default's list whole.
package policy

// Policy is the whole schema. Field comments are the reference the README points to.
type Policy struct {
	Version  int      `yaml:"version"`
	Run      Run      `yaml:"run"`
	OS       OS       `yaml:"os"`
	Firewall Firewall `yaml:"firewall"`
	Kernel   Kernel   `yaml:"kernel"`
	SSHD     SSHD     `yaml:"sshd"`
	Accounts Accounts `yaml:"accounts"`
	Audit    Audit    `yaml:"audit"`
	Packages Packages `yaml:"packages"`
	ClamAV   ClamAV   `yaml:"clamav"`
	Services Services `yaml:"services"`
	Alerts   Alerts   `yaml:"alerts"`

	// source remembers where each field came from, for errors found after loading.
	source *source
}

// Run holds settings of the run itself rather than of the machine.
type Run struct {
	// FailOn: findings at or above this severity fail the run (exit 1): none | warning | critical.
	FailOn string `yaml:"fail_on"`
	// StepTimeout bounds each step's plan+apply; Timeouts overrides it per step name.
	StepTimeout Duration            `yaml:"step_timeout"`
	Timeouts    map[string]Duration `yaml:"timeouts,omitempty"`
	// Report is where the last run's JSON report is written ("" = not written).
	Report string `yaml:"report"`
	// Metrics is a node_exporter textfile-collector file ("" = not written).
	Metrics string `yaml:"metrics"`
}

// OS: the release the machine must run and how old its image may be.
type OS struct {
	ID string `yaml:"id"` // os-release ID, e.g. ubuntu
	// MinVersion is "latest-lts" (the newest Ubuntu LTS released by today) or a VERSION_ID like "24.04".
	MinVersion string `yaml:"min_version"`
	// MaxImageAge is the oldest acceptable image build stamp; 0 disables the check.
	MaxImageAge Duration `yaml:"max_image_age"`
}

// Firewall: the nftables input policy.
type Firewall struct {
	Exposure string `yaml:"exposure"` // private | public
	// PrivateNetworks: "auto" (the /48 of FLY_PRIVATE_IP, else fdaa::/16) or CIDRs.
	PrivateNetworks []string `yaml:"private_networks"`
	// ProxyInterface is where fly-proxy's IPv4 traffic arrives (from: proxy).
	ProxyInterface string `yaml:"proxy_interface"`
	// Ping: who may send ICMP/ICMPv6 echo requests: none | private | public.
	Ping string `yaml:"ping"`
	// LogDrops: log dropped packets (rate limited, prefix "harden-drop: ").
	LogDrops bool        `yaml:"log_drops"`
	Allow    []AllowRule `yaml:"allow"`
	// ClosePrivateSSH says, explicitly, that a private machine keeps tcp/22 closed to its
	// private networks. Without it such a policy is refused: `fly ssh console` and every
	// operator reach a private VM there, and losing it is a lockout.
	ClosePrivateSSH bool `yaml:"close_private_ssh"`
}

// AllowRule opens one port or port range to one kind of source. Why is required.
type AllowRule struct {
	Name  string    `yaml:"name"`
	Proto string    `yaml:"proto"`           // tcp | udp
	Port  int       `yaml:"port,omitempty"`  // one port, or
	Ports PortRange `yaml:"ports,omitempty"` // "8000-8100"
	From  Source    `yaml:"from"`            // private | public | proxy | [CIDR, ...]
	Why   string    `yaml:"why"`
}

// Kernel: sysctl values, core dumps and kernel modules that must not load.
type Kernel struct {
	// Baseline applies harden's hardened sysctl set; Sysctl adds to or overrides it.
	Baseline bool              `yaml:"baseline"`
	Sysctl   map[string]string `yaml:"sysctl,omitempty"`
	// CoreDumps false turns core dumps off (sysctl, limits, systemd-coredump).
	CoreDumps bool `yaml:"core_dumps"`
	// DisableModules are refused by modprobe (install /bin/false + blacklist).
	DisableModules []string `yaml:"disable_modules"`
}

// SSHD: settings written to sshd_config.d/00-harden.conf and proven with `sshd -T`.
type SSHD struct {
	PermitRootLogin        bool `yaml:"permit_root_login"`
	PasswordAuthentication bool `yaml:"password_authentication"`
	MaxAuthTries           int  `yaml:"max_auth_tries"`

	// The session baseline: forwarding is off unless allowed.
	// AllowTCPForwarding also governs AllowStreamLocalForwarding and PermitTunnel.
	AllowTCPForwarding   bool `yaml:"allow_tcp_forwarding"`
	AllowAgentForwarding bool `yaml:"allow_agent_forwarding"`
	AllowX11Forwarding   bool `yaml:"allow_x11_forwarding"`
	// LogLevel VERBOSE logs the fingerprint of the key each login used.
	LogLevel string `yaml:"log_level"`
	// Bounds on sessions and unauthenticated connections.
	LoginGraceTime      Duration `yaml:"login_grace_time"`
	MaxSessions         int      `yaml:"max_sessions"`
	MaxStartups         string   `yaml:"max_startups"` // start:rate:full, as sshd_config
	ClientAliveInterval Duration `yaml:"client_alive_interval"`
	ClientAliveCountMax int      `yaml:"client_alive_count_max"`
	// Crypto: "modern" restricts key exchange, ciphers, MACs and host key algorithms to
	// strong ones the installed sshd supports (post-quantum key exchange first);
	// "default" leaves sshd's own defaults.
	Crypto string `yaml:"crypto"`
	// AllowECDSAHostKey keeps offering an ECDSA (NIST curve) host key, for clients that
	// pinned only that key, while they learn the Ed25519 one.
	AllowECDSAHostKey bool `yaml:"allow_ecdsa_host_key"`
	// SystemdSSHGenerator allows systemd 256+'s systemd-ssh-generator, which binds sshd to
	// AF_VSOCK and /run/ssh-unix-local/socket: SSH that never crosses the firewall.
	SystemdSSHGenerator bool `yaml:"systemd_ssh_generator"`

	// Settings are further sshd_config keywords (e.g. Banner: /etc/issue.net).
	Settings map[string]string `yaml:"settings,omitempty"`
}

// Accounts: password quality and login.defs.
type Accounts struct {
	Pwquality Pwquality `yaml:"pwquality"`
	LoginDefs LoginDefs `yaml:"login_defs"`
}

// Pwquality mirrors /etc/security/pwquality.conf keys.
type Pwquality struct {
	Minlen         int  `yaml:"minlen"`
	Dcredit        int  `yaml:"dcredit"`
	Ucredit        int  `yaml:"ucredit"`
	Lcredit        int  `yaml:"lcredit"`
	Ocredit        int  `yaml:"ocredit"`
	Maxrepeat      int  `yaml:"maxrepeat"`
	Dictcheck      bool `yaml:"dictcheck"`
	EnforceForRoot bool `yaml:"enforce_for_root"`
}

// LoginDefs mirrors /etc/login.defs keys.
type LoginDefs struct {
	EncryptMethod string `yaml:"encrypt_method"` // YESCRYPT | SHA512
	PassMaxDays   int    `yaml:"pass_max_days"`
	PassMinDays   int    `yaml:"pass_min_days"`
	PassWarnAge   int    `yaml:"pass_warn_age"`
	Umask         string `yaml:"umask"`
}

// Audit: kernel audit rules and status.
type Audit struct {
	Baseline        bool     `yaml:"baseline"` // the embedded rule set for the policy's event classes
	Rules           []string `yaml:"rules"`    // extra rules, auditctl syntax, one per item
	BacklogLimit    int      `yaml:"backlog_limit"`
	BacklogWaitTime int      `yaml:"backlog_wait_time"` // in jiffies, as auditctl --backlog_wait_time
	RateLimit       int      `yaml:"rate_limit"`        // messages/s, 0 = unlimited
	Failure         string   `yaml:"failure"`           // silent | printk | panic
	Immutable       bool     `yaml:"immutable"`         // lock with -e 2 once loaded
}

// Packages: what must go and what may stay.
type Packages struct {
	Remove []string `yaml:"remove"`
	// Approved names or globs; anything else installed is a finding. Empty: no audit.
	Approved     []string `yaml:"approved"`
	ApprovedFile string   `yaml:"approved_file"` // one name or glob per line, added to Approved
	Timeout      Duration `yaml:"timeout"`       // bound on package removal
}

// OnAccessInotifyWatches is the fs.inotify.max_user_watches value on-access scanning needs:
// clamonacc watches every directory under the on-access paths, and the kernel's default
// (8192 on many kernels) runs out on a real /home. A watch costs about 1 KiB of kernel
// memory only when used. The kernel step persists it; the clamav step checks it.
const OnAccessInotifyWatches = 524288

// ClamAV: on-access scanning and signature updates.
type ClamAV struct {
	Enabled       bool      `yaml:"enabled"`
	OnAccessPaths []string  `yaml:"on_access_paths"`
	ExcludePaths  []string  `yaml:"exclude_paths"`
	Prevention    bool      `yaml:"prevention"` // block access to infected files (fanotify permission events)
	MinMemoryMB   int       `yaml:"min_memory_mb"`
	Freshclam     Freshclam `yaml:"freshclam"`
}

// Freshclam: signature updates at boot.
type Freshclam struct {
	Mirror   string   `yaml:"mirror"`     // private mirror URL; "" = the ClamAV CDN
	Timeout  Duration `yaml:"timeout"`    // freshclam never runs longer
	MaxDBAge Duration `yaml:"max_db_age"` // older signatures (by build time) are a finding
}

// Services: the allowlist of units.
type Services struct {
	Allow []ServiceRule `yaml:"allow"`
}

// ServiceRule allows one unit, says why, and what harden ensures about it.
type ServiceRule struct {
	Name   string `yaml:"name"`
	Why    string `yaml:"why"`
	Ensure string `yaml:"ensure"` // running | enabled | allowed
}

// Alerts: `harden watch` rules and where alerts go.
type Alerts struct {
	SSHFailures SSHFailures `yaml:"ssh_failures"`
	Sinks       []Sink      `yaml:"sinks"`
	Spool       Spool       `yaml:"spool"`
}

// SSHFailures: alert when one source fails more than Threshold times within Window.
type SSHFailures struct {
	Threshold int      `yaml:"threshold"`
	Window    Duration `yaml:"window"`
}

// Sink is one alert destination.
type Sink struct {
	Type       string   `yaml:"type"` // journal | webhook | alertmanager
	URL        string   `yaml:"url,omitempty"`
	SecretFile string   `yaml:"secret_file,omitempty"` // webhook HMAC-SHA256 key
	Timeout    Duration `yaml:"timeout,omitempty"`
}

// Spool is the durable queue alerts pass through before delivery.
type Spool struct {
	Dir       string `yaml:"dir"`
	MaxAlerts int    `yaml:"max_alerts"`
}
