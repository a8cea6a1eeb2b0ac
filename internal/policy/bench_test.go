package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/harden-dev/harden/assets"
)

// BenchmarkParse is one policy load as `harden apply` pays it: the file parsed, laid over
// the embedded default, validated. The fuzzer (FuzzParse) runs this about twice per input;
// it ran ~100 inputs/s while every load re-parsed the default and copied it through YAML
// twice (~3 ms a load), and the 10,000-entry firewall policy is the fixed cost
// bench/firewall.sh compares with `nft -f`.
func BenchmarkParse(b *testing.B) {
	Default() // the embedded default is parsed once per process, as in a real run
	for _, c := range []struct{ name, src string }{
		{"embedded-default", string(assets.Policy)},
		{"public", publicPolicy},
		{"cidrs=10000", bigCIDRPolicy(10000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.src)))
			for b.Loop() {
				if _, err := Parse("bench.yaml", []byte(c.src), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDefault is what every command that needs the policy pays after the first: a
// copy of the parsed embedded default.
func BenchmarkDefault(b *testing.B) {
	Default()
	for b.Loop() {
		Default()
	}
}

// bigCIDRPolicy is a public policy with n single IPv4 sources of one port, 1,000 per allow
// rule: the shape bench/firewall.sh loads.
func bigCIDRPolicy(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nfirewall:\n  exposure: public\n  allow:\n")
	b.WriteString("    - {name: ssh, proto: tcp, port: 22, from: private, why: ssh}\n")
	for r := 0; r*1000 < n; r++ {
		fmt.Fprintf(&b, "    - name: https%d\n      proto: tcp\n      port: 443\n      why: partners\n      from:\n", r)
		for i := r * 1000; i < min(n, (r+1)*1000); i++ {
			fmt.Fprintf(&b, "        - 100.%d.%d.%d\n", 64+i/(128*256)%64, i/128%256, (i%128)*2)
		}
	}
	return b.String()
}
