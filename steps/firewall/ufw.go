package firewall

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/policy"
)

// ufw is Ubuntu's own firewall front end (installed, not enabled, on Ubuntu servers). When
// it is active next to `table inet harden`, every packet passes two vetoes: a port the
// policy allows stays closed if ufw drops it, and nothing in harden's plan says so. harden
// does not touch ufw (the services step masks ufw.service unless the policy allows it); it
// reports it, with the ports ufw would block, read the way ufw itself keeps its state.
const (
	ufwConf       = "/etc/ufw/ufw.conf"               // ENABLED=yes: ufw-init loads it at boot
	ufwDefaults   = "/etc/default/ufw"                // DEFAULT_INPUT_POLICY, IPV6
	ufwUserRules  = "/etc/ufw/user.rules"             // `ufw allow ...` as "### tuple ###" lines
	ufwUser6Rules = "/etc/ufw/user6.rules"            // the same for IPv6
	ufwUnitMask   = "/etc/systemd/system/ufw.service" // a link to /dev/null: masked
	ufwChain4     = "ufw-user-input"                  // ufw's chains in the kernel (iptables-nft)
	ufwChain6     = "ufw6-user-input"
)

// ufwState is what ufw's files and the kernel say.
type ufwState struct {
	loaded  bool // ufw's chains are in this namespace's ruleset now
	enabled bool // ENABLED=yes and ufw.service not masked: ufw loads at the next boot
	policy  string
	ipv6    bool
	rules   map[string][]ufwRule // "IPv4", "IPv6"
}

// ufwRule is one input rule of ufw's user rules that applies to every source: the rules
// that decide whether a port is open for the sources the policy allows.
type ufwRule struct {
	accept bool // allow or limit; otherwise deny or reject
	proto  string
	ports  []portRange
}

type portRange struct{ lo, hi uint16 }

// readUFW reads ufw's state; nil when ufw is neither loaded nor enabled.
func readUFW(root fsroot.Root, loaded bool) (*ufwState, error) {
	conf, ok, err := root.ReadFileIfExists(ufwConf)
	if err != nil {
		return nil, err
	}
	st := &ufwState{loaded: loaded, rules: map[string][]ufwRule{}}
	if ok {
		v := kvconf.Parse(conf, kvconf.Equals).Get("ENABLED")
		st.enabled = len(v) > 0 && strings.EqualFold(unquote(v[len(v)-1]), "yes") && !unitMasked(root, ufwUnitMask)
	}
	if !st.loaded && !st.enabled {
		return nil, nil
	}
	st.policy, st.ipv6 = "DROP", true
	if d, ok, err := root.ReadFileIfExists(ufwDefaults); err != nil {
		return nil, err
	} else if ok {
		f := kvconf.Parse(d, kvconf.Equals)
		if v := f.Get("DEFAULT_INPUT_POLICY"); len(v) > 0 {
			st.policy = strings.ToUpper(unquote(v[len(v)-1]))
		}
		if v := f.Get("IPV6"); len(v) > 0 {
			st.ipv6 = strings.EqualFold(unquote(v[len(v)-1]), "yes")
		}
	}
	files := map[string]string{"IPv4": ufwUserRules}
	if st.ipv6 {
		files["IPv6"] = ufwUser6Rules
	}
	for family, name := range files {
		b, _, err := root.ReadFileIfExists(name)
		if err != nil {
			return nil, err
		}
		st.rules[family] = parseUFWRules(string(b))
	}
	return st, nil
}

// unitMasked reports a unit masked under /etc (a symlink to /dev/null).
func unitMasked(root fsroot.Root, name string) bool {
	target, err := os.Readlink(root.Path(name))
	return err == nil && target == "/dev/null"
}

func unquote(s string) string { return strings.Trim(strings.TrimSpace(s), `"'`) }

// parseUFWRules reads the "### tuple ###" lines ufw writes into user.rules: action, proto,
// dport, dst, sport, src, [dapp, sapp,] direction[_iface] [comment=hex]. Only input rules
// for any source, destination and source port, on every interface, are kept: a rule with
// any of those narrowed opens (or closes) a port for some packets only, so it does not make
// a port open for everyone the policy allows.
func parseUFWRules(text string) []ufwRule {
	var out []ufwRule
	for _, line := range strings.Split(text, "\n") {
		t, ok := strings.CutPrefix(line, "### tuple ###")
		if !ok {
			continue
		}
		if i := strings.Index(t, " comment="); i >= 0 {
			t = t[:i]
		}
		f := strings.Fields(t)
		if len(f) != 7 && len(f) != 9 {
			continue
		}
		action, proto, dport, dst, sport, src, dir := f[0], f[1], f[2], f[3], f[4], f[5], f[len(f)-1]
		if strings.HasPrefix(action, "route:") || dir != "in" || sport != "any" || !anyAddr(dst) || !anyAddr(src) {
			continue
		}
		action, _, _ = strings.Cut(action, "_") // allow_log, deny_log-all
		ports, ok := parsePorts(dport)
		if !ok {
			continue
		}
		out = append(out, ufwRule{accept: action == "allow" || action == "limit", proto: proto, ports: ports})
	}
	return out
}

func anyAddr(a string) bool { return a == "0.0.0.0/0" || a == "::/0" || a == "any" }

// parsePorts reads ufw's port field: any, 22, 80,443, 60000:61000, or a mix.
func parsePorts(s string) ([]portRange, bool) {
	if s == "any" {
		return []portRange{{1, 65535}}, true
	}
	var out []portRange
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err1 := strconv.ParseUint(a, 10, 16)
		hi := lo
		var err2 error
		if isRange {
			hi, err2 = strconv.ParseUint(b, 10, 16)
		}
		if err1 != nil || err2 != nil || lo == 0 || hi < lo {
			return nil, false
		}
		out = append(out, portRange{uint16(lo), uint16(hi)})
	}
	return out, true
}

// blocked returns the parts of [lo, hi] on proto that ufw drops or rejects, for one family:
// ufw's user rules in order (the first that matches a packet decides), then its default
// input policy.
func (st *ufwState) blocked(family, proto string, lo, hi uint16) []portRange {
	undecided := []portRange{{lo, hi}}
	var closed []portRange
	for _, r := range st.rules[family] {
		if r.proto != proto && r.proto != "any" {
			continue
		}
		for _, pr := range r.ports {
			var hit []portRange
			undecided, hit = cut(undecided, pr)
			if !r.accept {
				closed = append(closed, hit...)
			}
		}
	}
	if st.policy != "ACCEPT" {
		closed = append(closed, undecided...)
	}
	sort.Slice(closed, func(i, j int) bool { return closed[i].lo < closed[j].lo })
	return closed
}

// cut removes c from the ranges in rs and returns what is left and what was removed.
func cut(rs []portRange, c portRange) (left, removed []portRange) {
	for _, r := range rs {
		if c.hi < r.lo || c.lo > r.hi {
			left = append(left, r)
			continue
		}
		if r.lo < c.lo {
			left = append(left, portRange{r.lo, c.lo - 1})
		}
		if r.hi > c.hi {
			left = append(left, portRange{c.hi + 1, r.hi})
		}
		removed = append(removed, portRange{max(r.lo, c.lo), min(r.hi, c.hi)})
	}
	return left, removed
}

func (r portRange) String() string {
	if r.lo == r.hi {
		return strconv.Itoa(int(r.lo))
	}
	return fmt.Sprintf("%d-%d", r.lo, r.hi)
}

// ufwFinding is the finding for an active ufw, or nil when ufw is not active. It names every
// port of the policy's allow rules that ufw would block, per family.
func ufwFinding(st *ufwState, f policy.Firewall) *engine.Finding {
	if st == nil {
		return nil
	}
	var blocked []string
	for _, r := range f.Allow {
		lo, hi := uint16(r.Port), uint16(r.Port)
		if r.Port == 0 {
			lo, hi = r.Ports.Lo, r.Ports.Hi
		}
		var families, ranges []string
		for _, family := range []string{"IPv4", "IPv6"} {
			if family == "IPv6" && !st.ipv6 {
				continue // ufw leaves IPv6 alone: nothing of it blocks there
			}
			if b := st.blocked(family, r.Proto, lo, hi); len(b) > 0 {
				families = append(families, family)
				ranges = append(ranges, joinRanges(b))
			}
		}
		switch {
		case len(families) == 0:
		case len(families) == 1 || ranges[0] == ranges[1]:
			blocked = append(blocked, fmt.Sprintf("%s/%s (%s) on %s", r.Proto, ranges[0], r.Name, strings.Join(families, " and ")))
		default:
			blocked = append(blocked, fmt.Sprintf("%s/%s (%s): %s on IPv4, %s on IPv6", r.Proto, portRange{lo, hi}, r.Name, ranges[0], ranges[1]))
		}
	}
	var why []string
	if st.loaded {
		why = append(why, "its chains are loaded")
	}
	if st.enabled {
		why = append(why, "ENABLED=yes in "+ufwConf)
	}
	msg := fmt.Sprintf("ufw is active (%s): every packet passes ufw and table inet harden, and a port is open only if both let it in. ",
		strings.Join(why, ", "))
	sev := engine.Info
	if len(blocked) > 0 {
		sev = engine.Warning
		msg += "ufw (default input policy " + st.policy + ") would block ports the policy allows: " + strings.Join(blocked, "; ") + ". "
	} else {
		msg += "ufw lets every port the policy allows through. "
	}
	msg += "Turn ufw off (`ufw disable`; the services step masks ufw.service unless services.allow lists it) so the policy is the one firewall."
	return &engine.Finding{ID: "firewall.ufw-active", Severity: sev, Object: "ufw", Message: msg, Reason: "firewall.allow"}
}

func joinRanges(rs []portRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ufwLoaded reports whether ufw's chains are in the namespace's ruleset (ufw drives
// iptables-nft on Ubuntu, whose tables nft lists; iptables-legacy tables are not seen, and
// then ufw.conf's ENABLED tells).
func ufwLoaded(c *nft.Conn) (bool, error) {
	chains, err := c.ListChains()
	if err != nil {
		return false, err
	}
	for _, ch := range chains {
		if ch.Name == ufwChain4 || ch.Name == ufwChain6 {
			return true, nil
		}
	}
	return false, nil
}
