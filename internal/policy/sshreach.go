package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The lockout rules: sshd must be reachable through the policy's own firewall, and a
// private machine keeps tcp/22 open to its private networks unless the policy says
// otherwise. Both are checked at validation, so `harden policy validate` refuses a policy
// that would cut SSH off at the next boot instead of the boot finding out.

// SSHListener is one place sshd listens, from sshd.settings Port and ListenAddress.
type SSHListener struct {
	Addr  netip.Addr // invalid: every address (no ListenAddress, or 0.0.0.0 / ::)
	Port  int
	Field string // the policy field it comes from, for errors
}

// SSHListeners returns where sshd will listen: each ListenAddress (with its own port or
// Port's), else every address on Port (22 when unset). Keywords are matched
// case-insensitively, as sshd does. A value that does not parse is returned as an error
// naming its field.
func (p *Policy) SSHListeners() ([]SSHListener, error) {
	// Unset, Port is sshd's default; errors point at where it would be set.
	port, portField := 22, "sshd.settings.Port"
	var listen []string
	listenField := ""
	for k, v := range p.SSHD.Settings {
		switch strings.ToLower(k) {
		case "port":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 65535 {
				return nil, &FieldError{Field: "sshd.settings." + k, Msg: fmt.Sprintf("want one port 1-65535, got %q", v)}
			}
			port, portField = n, "sshd.settings."+k
		case "listenaddress":
			// One address per line in sshd_config ("addr [rdomain name]"): the first field.
			if f := strings.Fields(v); len(f) > 0 {
				listen, listenField = f[:1], "sshd.settings."+k
			}
		}
	}
	if len(listen) == 0 {
		return []SSHListener{{Port: port, Field: portField}}, nil
	}
	var out []SSHListener
	for _, l := range listen {
		addr, lport, err := parseListenAddress(l, port)
		if err != nil {
			return nil, &FieldError{Field: listenField, Msg: err.Error()}
		}
		out = append(out, SSHListener{Addr: addr, Port: lport, Field: listenField})
	}
	return out, nil
}

// parseListenAddress reads sshd's ListenAddress forms: host, host:port, [v6]:port, v6.
// A host name cannot be judged here: it is refused, ListenAddress takes addresses in a
// policy harden has to prove reachable.
func parseListenAddress(s string, defPort int) (netip.Addr, int, error) {
	host, port := s, defPort
	if ap, err := netip.ParseAddrPort(s); err == nil {
		host, port = ap.Addr().String(), int(ap.Port())
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = strings.Trim(s, "[]")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("ListenAddress %q: want an IP address, optionally with :port", s)
	}
	if a.IsUnspecified() {
		a = netip.Addr{}
	}
	return a.Unmap(), port, nil
}

// sshReachable checks the two lockout rules.
func (v *validator) sshReachable(private []netip.Prefix) {
	ls, err := v.p.SSHListeners()
	if err != nil {
		fe := err.(*FieldError)
		v.errorf(fe.Field, "%s", fe.Msg)
		return
	}
	allowAt := "firewall.allow"
	for _, l := range ls {
		if l.Addr.IsValid() && l.Addr.IsLoopback() {
			v.errorf(l.Field, "sshd would listen only on loopback (%s): nobody could reach it from outside", l.Addr)
			continue
		}
		if v.reachable(l, private) {
			continue
		}
		where := "every address"
		if l.Addr.IsValid() {
			where = l.Addr.String()
		}
		sshdAt := v.p.Where(l.Field)
		if _, set := v.p.source.pos[l.Field]; !set {
			where += ", sshd's default Port 22"
		}
		msg := fmt.Sprintf("sshd would listen on tcp/%d (%s) but no rule of %s (%s) lets anyone reach it: the next boot would cut SSH off",
			l.Port, where, allowAt, v.p.Where(allowAt))
		if sshdAt.File != v.p.File() {
			// The listener comes from the default: place the error where the file made the
			// change, the allow list, and still name sshd's field.
			msg = fmt.Sprintf("no rule lets anyone reach sshd on tcp/%d (%s: %s, %s): the next boot would cut SSH off",
				l.Port, l.Field, where, sshdAt)
			v.errorf(allowAt, "%s", msg)
			continue
		}
		v.errorf(l.Field, "%s", msg)
	}
	if v.p.Firewall.Exposure == "private" && !v.p.Firewall.ClosePrivateSSH && !v.privateSSHOpen(private) {
		v.errorf(allowAt, "a private machine must keep tcp/22 open from the private networks (fly ssh console and operators reach it there); "+
			"add {name: ssh, proto: tcp, port: 22, from: private, why: ...} or set firewall.close_private_ssh: true (%s) to close it on purpose",
			v.p.Where("firewall.close_private_ssh"))
	}
}

// reachable reports whether some tcp allow rule covers the listener's port from a source
// of the listener's address family.
func (v *validator) reachable(l SSHListener, private []netip.Prefix) bool {
	for _, r := range v.p.Firewall.Allow {
		pr := r.PortRange()
		if r.Proto != "tcp" || int(pr.Lo) > l.Port || int(pr.Hi) < l.Port {
			continue
		}
		if !l.Addr.IsValid() {
			return true
		}
		for _, src := range v.sources(r, private) {
			if src.Addr().Is4() == l.Addr.Is4() {
				return true
			}
		}
	}
	return false
}

// sources are the prefixes an allow rule admits (public: both families; proxy: IPv4).
func (v *validator) sources(r AllowRule, private []netip.Prefix) []netip.Prefix {
	switch r.From.Kind {
	case FromPublic:
		return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	case FromProxy:
		return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	case FromPrivate:
		return private
	}
	return r.From.CIDRs
}

// privateSSHOpen reports whether some rule opens tcp/22 to all of the private networks.
func (v *validator) privateSSHOpen(private []netip.Prefix) bool {
	for _, r := range v.p.Firewall.Allow {
		pr := r.PortRange()
		if r.Proto != "tcp" || pr.Lo > 22 || pr.Hi < 22 {
			continue
		}
		switch r.From.Kind {
		case FromPrivate, FromPublic:
			return true
		case FromCIDRs:
			all := true
			for _, p := range private {
				if !insideAny(p, r.From.CIDRs) {
					all = false
				}
			}
			if all && len(private) > 0 {
				return true
			}
		}
	}
	return false
}
