package kernel

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// ifaceName is a loop (no regexp built at process start) that splits exactly as the
// regexp in its comment does.
func TestIfaceNameMatchesItsRegexp(t *testing.T) {
	re := regexp.MustCompile(`^(net\.ipv[46]\.conf)\.([^.]+)\.(.+)$`)
	inputs := []string{"net.ipv4.conf.eth0.rp_filter", "net.ipv6.conf.all.accept_redirects", "net.ipv4.conf.eth0",
		"net.ipv4.conf..x", "net.ipv4.conf.a.", "net.ipv5.conf.a.b", "net.ipv4.conf.a.b.c", "kernel.sysrq", "net.ipv4.confx.a.b", ""}
	r := rand.New(rand.NewPCG(7, 8))
	parts := []string{"net", "ipv4", "ipv6", "conf", "eth0", ".", "..", "a", "rp_filter", "x.y"}
	for range 20000 {
		s := ""
		for range r.IntN(8) {
			s += parts[r.IntN(len(parts))]
			if r.IntN(2) == 0 {
				s += "."
			}
		}
		inputs = append(inputs, s, "net.ipv4.conf."+s)
	}
	for _, in := range inputs {
		m := re.FindStringSubmatch(in)
		f, i, s, ok := ifaceName(in)
		if ok != (m != nil) || (ok && (f != m[1] || i != m[2] || s != m[3])) {
			t.Fatalf("%q: regexp %q, loop %q %q %q %v", in, m, f, i, s, ok)
		}
	}
}
