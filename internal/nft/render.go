package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Render prints rs in nft's own syntax (loadable with `nft -f` for everything harden
// builds), one set element per line so differences are line differences. Counters print
// without their values, so a live table and a wanted one compare equal. nil renders as "".
func Render(rs *Ruleset) string {
	if rs == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", familyName(rs.Family), rs.Table)
	if rs.Flags != 0 {
		fmt.Fprintf(&b, "\tflags %s\n", tableFlags(rs.Flags))
	}
	for _, s := range sortedSets(rs) {
		renderSet(&b, s)
	}
	for _, c := range rs.Chains {
		renderChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func renderSet(b *strings.Builder, s *Set) {
	fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n", s.Name, s.KeyType.Name)
	if s.Interval {
		b.WriteString("\t\tflags interval\n")
	}
	if len(s.Elements) > 0 {
		b.WriteString("\t\telements = {\n")
		for _, r := range s.Elements {
			b.WriteString("\t\t\t")
			b.WriteString(formatRange(s.KeyType, r))
			b.WriteString(",\n")
		}
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t}\n")
}

func renderChain(b *strings.Builder, c *Chain) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Hook != nil {
		prio := int32(0)
		if c.Priority != nil {
			prio = int32(*c.Priority)
		}
		fmt.Fprintf(b, "\t\ttype %s hook %s priority %d; policy %s;\n",
			c.Type, hookName(*c.Hook), prio, policyName(c.Policy))
	}
	for _, r := range c.Rules {
		fmt.Fprintf(b, "\t\t%s\n", RenderRule(r))
	}
	b.WriteString("\t}\n")
}

// RenderRule prints one rule's expressions and comment in nft syntax.
func RenderRule(r *Rule) string {
	s := renderExprs(r.Exprs)
	if r.Comment != "" {
		s += " comment " + strconv.Quote(r.Comment)
	}
	return s
}

// operand is what an expression loaded into a register, for the comparison that follows.
type operand struct {
	name   string // "meta l4proto", "ip saddr", "th dport", "ct state", ...
	mask   []byte // set by a bitwise and
	format func([]byte) string
}

// renderExprs walks the expressions with a register file, printing a load and the
// comparison that uses it as one nft statement ("meta l4proto tcp"). Expressions it does not
// know print as their Go value, so even a foreign rule shows up as a difference.
func renderExprs(exprs []expr.Any) string {
	regs := map[uint32]operand{}
	var out []string
	l4 := ""
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				out = append(out, fmt.Sprintf("meta set key %d", e.Key))
				continue
			}
			regs[e.Register] = metaOperand(e.Key)
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				out = append(out, fmt.Sprintf("%T%+v", e, *e))
				continue
			}
			regs[e.DestRegister] = payloadOperand(e, l4)
		case *expr.Ct:
			if e.SourceRegister || e.Key != expr.CtKeySTATE {
				out = append(out, fmt.Sprintf("ct key %d", e.Key))
				continue
			}
			regs[e.Register] = operand{name: "ct state", format: ctStates}
		case *expr.Bitwise:
			op := regs[e.SourceRegister]
			op.mask = e.Mask
			if !allZero(e.Xor) {
				op.name = fmt.Sprintf("%s ^ 0x%x", op.name, e.Xor)
			}
			regs[e.DestRegister] = op
		case *expr.Cmp:
			op := regs[e.Register]
			stmt := renderCmp(op, e)
			if op.name == "meta l4proto" && e.Op == expr.CmpOpEq {
				l4 = stmt
			}
			out = append(out, stmt)
		case *expr.Lookup:
			op := regs[e.SourceRegister]
			neg := ""
			if e.Invert {
				neg = "!= "
			}
			out = append(out, fmt.Sprintf("%s %s@%s", op.name, neg, e.SetName))
		case *expr.Counter:
			out = append(out, "counter")
		case *expr.Limit:
			out = append(out, renderLimit(e))
		case *expr.Log:
			out = append(out, renderLog(e))
		case *expr.Verdict:
			out = append(out, renderVerdict(e))
		default:
			out = append(out, fmt.Sprintf("%T%+v", e, e))
		}
	}
	return strings.Join(out, " ")
}

func metaOperand(k expr.MetaKey) operand {
	switch k {
	case expr.MetaKeyNFPROTO:
		return operand{name: "meta nfproto", format: nfprotoName}
	case expr.MetaKeyL4PROTO:
		return operand{name: "meta l4proto", format: l4protoName}
	case expr.MetaKeyIIFNAME:
		return operand{name: "iifname", format: ifname}
	case expr.MetaKeyOIFNAME:
		return operand{name: "oifname", format: ifname}
	}
	return operand{name: fmt.Sprintf("meta key %d", k), format: hexBytes}
}

func payloadOperand(p *expr.Payload, l4 string) operand {
	type at struct {
		base        expr.PayloadBase
		offset, len uint32
	}
	switch (at{p.Base, p.Offset, p.Len}) {
	case at{expr.PayloadBaseNetworkHeader, 12, 4}:
		return operand{name: "ip saddr", format: addr}
	case at{expr.PayloadBaseNetworkHeader, 16, 4}:
		return operand{name: "ip daddr", format: addr}
	case at{expr.PayloadBaseNetworkHeader, 8, 16}:
		return operand{name: "ip6 saddr", format: addr}
	case at{expr.PayloadBaseNetworkHeader, 24, 16}:
		return operand{name: "ip6 daddr", format: addr}
	case at{expr.PayloadBaseTransportHeader, 0, 2}:
		return operand{name: "th sport", format: port}
	case at{expr.PayloadBaseTransportHeader, 2, 2}:
		return operand{name: "th dport", format: port}
	case at{expr.PayloadBaseTransportHeader, 0, 1}:
		switch l4 {
		case "meta l4proto icmp":
			return operand{name: "icmp type", format: decimal}
		case "meta l4proto ipv6-icmp":
			return operand{name: "icmpv6 type", format: decimal}
		}
	}
	bases := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh", expr.PayloadBaseTransportHeader: "th"}
	return operand{name: fmt.Sprintf("@%s,%d,%d", bases[p.Base], p.Offset*8, p.Len*8), format: hexBytes}
}

func renderCmp(op operand, c *expr.Cmp) string {
	ops := map[expr.CmpOp]string{expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ",
		expr.CmpOpLte: "<= ", expr.CmpOpGt: "> ", expr.CmpOpGte: ">= "}
	format := op.format
	if format == nil {
		format = hexBytes
	}
	// "ct state & (established|related) != 0" is how nft encodes "ct state established,related".
	if op.mask != nil && c.Op == expr.CmpOpNeq && allZero(c.Data) {
		return fmt.Sprintf("%s %s", op.name, format(op.mask))
	}
	name := op.name
	if op.mask != nil {
		name = fmt.Sprintf("%s & %s", name, format(op.mask))
	}
	return fmt.Sprintf("%s %s%s", name, ops[c.Op], format(c.Data))
}

func renderLimit(l *expr.Limit) string {
	units := map[expr.LimitTime]string{expr.LimitTimeSecond: "second", expr.LimitTimeMinute: "minute",
		expr.LimitTimeHour: "hour", expr.LimitTimeDay: "day", expr.LimitTimeWeek: "week"}
	s := "limit rate "
	if l.Over {
		s += "over "
	}
	what := "packets"
	if l.Type == expr.LimitTypePktBytes {
		what = "bytes"
		s += fmt.Sprintf("%d bytes/%s", l.Rate, units[l.Unit])
	} else {
		s += fmt.Sprintf("%d/%s", l.Rate, units[l.Unit])
	}
	if l.Burst != 0 {
		s += fmt.Sprintf(" burst %d %s", l.Burst, what)
	}
	return s
}

func renderLog(l *expr.Log) string {
	s := "log"
	if l.Key&(1<<unix.NFTA_LOG_PREFIX) != 0 {
		s += " prefix " + strconv.Quote(string(bytes.TrimRight(l.Data, "\x00")))
	}
	if l.Key&(1<<unix.NFTA_LOG_LEVEL) != 0 && l.Level != expr.LogLevelWarning {
		names := []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"}
		if int(l.Level) < len(names) {
			s += " level " + names[l.Level]
		}
	}
	if l.Key&(1<<unix.NFTA_LOG_GROUP) != 0 {
		s += fmt.Sprintf(" group %d", l.Group)
	}
	return s
}

func renderVerdict(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

func formatRange(t nftables.SetDatatype, r Range) string {
	switch t.Name {
	case nftables.TypeIPAddr.Name, nftables.TypeIP6Addr.Name:
		from, _ := netip.AddrFromSlice(r.From)
		to, _ := netip.AddrFromSlice(r.To)
		if p, ok := asPrefix(from, to); ok {
			if p.IsSingleIP() {
				return p.Addr().String()
			}
			return p.String()
		}
		return from.String() + "-" + to.String()
	case nftables.TypeInetService.Name:
		if bytes.Equal(r.From, r.To) {
			return port(r.From)
		}
		return port(r.From) + "-" + port(r.To)
	}
	if bytes.Equal(r.From, r.To) {
		return decimal(r.From)
	}
	return decimal(r.From) + "-" + decimal(r.To)
}

// asPrefix reports whether [from, to] is exactly one CIDR prefix: from and to agree on
// the first bits, then from has only zeros and to only ones.
func asPrefix(from, to netip.Addr) (netip.Prefix, bool) {
	f, t := from.As16(), to.As16()
	if from.BitLen() != to.BitLen() {
		return netip.Prefix{}, false
	}
	i := 16 - from.BitLen()/8
	n := 0
	for ; i < 16 && f[i] == t[i]; i++ {
		n += 8
	}
	if i < 16 {
		x := f[i] ^ t[i] // must be 0..01..1, set in t and clear in f
		if x&(x+1) != 0 || f[i]&x != 0 {
			return netip.Prefix{}, false
		}
		n += 8 - bits.OnesCount8(x)
		for i++; i < 16; i++ {
			if f[i] != 0 || t[i] != 0xff {
				return netip.Prefix{}, false
			}
		}
	}
	return netip.PrefixFrom(from, n), true
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprintf("family%d", f)
}

func tableFlags(f uint32) string {
	if f == unix.NFT_TABLE_F_DORMANT {
		return "dormant"
	}
	return fmt.Sprintf("0x%x", f)
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook%d", h)
}

func policyName(p nftables.ChainPolicy) string {
	if p == nftables.ChainPolicyDrop {
		return "drop"
	}
	return "accept"
}

func nfprotoName(b []byte) string {
	switch {
	case len(b) == 1 && b[0] == unix.NFPROTO_IPV4:
		return "ipv4"
	case len(b) == 1 && b[0] == unix.NFPROTO_IPV6:
		return "ipv6"
	}
	return hexBytes(b)
}

func l4protoName(b []byte) string {
	if len(b) == 1 {
		switch b[0] {
		case unix.IPPROTO_TCP:
			return "tcp"
		case unix.IPPROTO_UDP:
			return "udp"
		case unix.IPPROTO_ICMP:
			return "icmp"
		case unix.IPPROTO_ICMPV6:
			return "ipv6-icmp"
		}
	}
	return hexBytes(b)
}

// ifname prints an interface name; a comparison shorter than 16 bytes is a prefix match,
// which nft writes with a trailing '*' (the classic "lo" bug matching "lo*").
func ifname(b []byte) string {
	name := string(bytes.TrimRight(b, "\x00"))
	if len(b) < unix.IFNAMSIZ {
		name += "*"
	}
	return strconv.Quote(name)
}

func addr(b []byte) string {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return hexBytes(b)
	}
	return a.String()
}

func port(b []byte) string {
	if len(b) != 2 {
		return hexBytes(b)
	}
	return strconv.Itoa(int(binary.BigEndian.Uint16(b)))
}

func decimal(b []byte) string {
	if len(b) == 1 {
		return strconv.Itoa(int(b[0]))
	}
	return hexBytes(b)
}

func ctStates(b []byte) string {
	if len(b) != 4 {
		return hexBytes(b)
	}
	v := binaryutil.NativeEndian.Uint32(b)
	names := []struct {
		bit  uint32
		name string
	}{{expr.CtStateBitINVALID, "invalid"}, {expr.CtStateBitESTABLISHED, "established"},
		{expr.CtStateBitRELATED, "related"}, {expr.CtStateBitNEW, "new"}, {expr.CtStateBitUNTRACKED, "untracked"}}
	var out []string
	for _, n := range names {
		if v&n.bit != 0 {
			out = append(out, n.name)
			v &^= n.bit
		}
	}
	if v != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("0x%x", v))
	}
	return strings.Join(out, ",")
}

func hexBytes(b []byte) string { return fmt.Sprintf("0x%x", b) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
