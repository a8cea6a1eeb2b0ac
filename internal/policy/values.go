package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalarDecoder is implemented by the policy's own value types; the strict decoder calls it
// instead of its generic rules so each type owns its syntax and error message.
type scalarDecoder interface {
	decodeNode(n *yaml.Node) error
}

// Duration is a time.Duration written as Go durations plus a day unit: "14d", "10m", "1h30m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration accepts Go's duration syntax and a trailing whole-day count ("14d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 14d, 12h, 10m, 60s", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 14d, 12h, 10m, 60s", s)
	}
	return Duration(d), nil
}

func (d *Duration) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 14d or 10m")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// String prints whole days as "Nd" so `policy show` round-trips what people write.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", td/(24*time.Hour))
	}
	// time.Duration prints 10m as "10m0s" and 1h as "1h0m0s": drop the zero tails only.
	s := td.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes the duration as its string.
func (d Duration) MarshalYAML() (any, error) {
	if d == 0 {
		return "0s", nil
	}
	return d.String(), nil
}

// IsZero lets `omitempty` drop an unset duration.
func (d Duration) IsZero() bool { return d == 0 }

// PortRange is an inclusive port range, written "8000-8100" (or "8080").
type PortRange struct{ Lo, Hi uint16 }

// IsZero reports whether no range was given.
func (r PortRange) IsZero() bool { return r.Lo == 0 && r.Hi == 0 }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// MarshalYAML writes the range as its string.
func (r PortRange) MarshalYAML() (any, error) { return r.String(), nil }

func (r *PortRange) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf(`want a port range like "8000-8100"`)
	}
	lo, hi, isRange := strings.Cut(n.Value, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := parsePort(lo)
	h, err2 := parsePort(hi)
	if err1 != nil {
		return err1
	}
	if err2 != nil {
		return err2
	}
	if l > h {
		return fmt.Errorf("port range %q runs backwards", n.Value)
	}
	*r = PortRange{l, h}
	return nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range 1-65535", s)
	}
	return uint16(n), nil
}

// Source kinds of an allow rule's `from`.
const (
	FromPrivate = "private" // the private networks (6PN / WireGuard)
	FromPublic  = "public"  // any address
	FromProxy   = "proxy"   // IPv4 arriving on firewall.proxy_interface (fly-proxy)
	FromCIDRs   = "cidrs"   // the listed prefixes
)

// Source is an allow rule's `from`: a keyword, or a list of CIDRs.
type Source struct {
	Kind  string
	CIDRs []netip.Prefix
}

func (s *Source) decodeNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Value {
		case FromPrivate, FromPublic, FromProxy:
			*s = Source{Kind: n.Value}
			return nil
		}
		return fmt.Errorf("want private, public, proxy or a list of CIDRs, got %q", n.Value)
	case yaml.SequenceNode:
		out := Source{Kind: FromCIDRs}
		for _, item := range n.Content {
			p, err := ParseCIDR(item.Value)
			if err != nil {
				return &posError{line: item.Line, col: item.Column, err: err}
			}
			out.CIDRs = append(out.CIDRs, p)
		}
		if len(out.CIDRs) == 0 {
			return fmt.Errorf("empty CIDR list")
		}
		*s = out
		return nil
	}
	return fmt.Errorf("want private, public, proxy or a list of CIDRs")
}

// MarshalYAML writes the keyword or the CIDR list.
func (s Source) MarshalYAML() (any, error) {
	if s.Kind != FromCIDRs {
		return s.Kind, nil
	}
	out := make([]string, len(s.CIDRs))
	for i, p := range s.CIDRs {
		out[i] = p.String()
	}
	return out, nil
}

// ParseCIDR parses a prefix and refuses host bits, which usually mean a typo
// (10.1.2.3/8 was meant to be 10.1.2.3/32 or 10.0.0.0/8). A bare address is a /32 or /128.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q: host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}
