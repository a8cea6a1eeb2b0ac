package kernel

// setting is one sysctl harden wants: a dotted key (a "*" segment matches every entry of that
// directory, as in sysctl.d(5)), its value, why it is there, and the policy field asking.
type setting struct {
	Key    string
	Value  string
	Why    string
	Reason string
}

// Reasons (policy fields) a setting can come from.
const (
	reasonBaseline  = "kernel.baseline"
	reasonCoreDumps = "kernel.core_dumps"
)

// ifaceKeys are the per-interface network settings of the baseline. Each is written for
// "all", for "default" (interfaces created later) and for "*" (interfaces that exist now),
// because the kernel combines "all" with the interface's own value, and not always the safe
// way: rp_filter takes the maximum (Ubuntu's systemd sets every interface to 2, loose, which
// beats all=1), accept_redirects/secure_redirects/send_redirects are ORed on a host that does
// not forward, and IPv6 ignores "all" for most keys.
var ifaceKeys = []struct{ family, name, value, why string }{
	{"ipv4", "rp_filter", "1",
		"Strict reverse-path filtering: drop packets whose source address would not be routed back out of the interface they came in on (spoofed sources)."},
	{"ipv4", "accept_redirects", "0",
		"Ignore ICMP redirects: anyone on the path could rewrite this host's routes and put itself in the middle."},
	{"ipv6", "accept_redirects", "0",
		"Ignore ICMPv6 redirects, for the same reason as IPv4."},
	{"ipv4", "secure_redirects", "0",
		"Ignore redirects even from the listed gateways: their source address is as easy to forge."},
	{"ipv4", "send_redirects", "0",
		"This host is not a router: it never tells others to change their routes."},
	{"ipv4", "accept_source_route", "0",
		"Drop source-routed packets: the sender would choose the path around filters."},
	{"ipv6", "accept_source_route", "0",
		"Drop source-routed IPv6 packets (routing header type 0), for the same reason."},
	{"ipv4", "log_martians", "1",
		"Log packets with impossible source addresses: evidence of spoofing or misrouting."},
}

// globalKeys are the rest of the baseline; each comment is the reason written into the file.
var globalKeys = []setting{
	{Key: "net.ipv4.tcp_syncookies", Value: "1",
		Why: "SYN cookies keep accepting connections while a SYN flood fills the backlog."},
	{Key: "net.ipv4.icmp_echo_ignore_broadcasts", Value: "1",
		Why: "Do not answer broadcast pings: smurf amplification."},
	{Key: "kernel.kptr_restrict", Value: "2",
		Why: "Hide kernel addresses in /proc from everyone: they defeat KASLR for exploits."},
	{Key: "kernel.dmesg_restrict", Value: "1",
		Why: "Only privileged users read the kernel log (addresses, hardware, other users' events)."},
	{Key: "kernel.unprivileged_bpf_disabled", Value: "1",
		Why: "No eBPF for unprivileged users, a frequent local privilege escalation path (1 holds until reboot)."},
	{Key: "net.core.bpf_jit_harden", Value: "2",
		Why: "Blind constants in JIT-compiled BPF for every user: stops JIT spraying."},
	{Key: "kernel.yama.ptrace_scope", Value: "1",
		Why: "A process may ptrace only its descendants: a compromised process cannot read another's memory (ssh-agent, shells)."},
	{Key: "fs.protected_hardlinks", Value: "1",
		Why: "No hard links to files the user does not own: classic /tmp and setuid link attacks."},
	{Key: "fs.protected_symlinks", Value: "1",
		Why: "Do not follow other users' symlinks in sticky world-writable directories (/tmp races)."},
	{Key: "fs.protected_fifos", Value: "2",
		Why: "Do not open other users' FIFOs in sticky world-writable directories with O_CREAT (spoofed pipes)."},
	{Key: "fs.protected_regular", Value: "2",
		Why: "Do not open other users' regular files in sticky world-writable directories with O_CREAT."},
	{Key: "fs.suid_dumpable", Value: "0",
		Why: "Setuid programs never dump core: their memory holds secrets (shadow hashes, keys)."},
	{Key: "kernel.randomize_va_space", Value: "2",
		Why: "Full address space layout randomisation (stack, mmap, brk)."},
	{Key: "kernel.sysrq", Value: "0",
		Why: "No magic SysRq keys from a console or serial line (reboot, kill all). Root's /proc/sysrq-trigger still works."},
}

// baseline returns harden's hardened sysctl set, in the order it is written and applied.
func baseline() []setting {
	var out []setting
	for _, k := range ifaceKeys {
		for _, scope := range []string{"all", "default", "*"} {
			out = append(out, setting{
				Key:    "net." + k.family + ".conf." + scope + "." + k.name,
				Value:  k.value,
				Why:    k.why,
				Reason: reasonBaseline,
			})
		}
	}
	for _, s := range globalKeys {
		s.Reason = reasonBaseline
		out = append(out, s)
	}
	return out
}
