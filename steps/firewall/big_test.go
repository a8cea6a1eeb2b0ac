package firewall_test

import (
	"fmt"
	"strings"
)

// BigPolicy is a public policy with n allow entries: n single-address IPv4 sources of TCP
// 443 (spread over rules of 1,000 sources each) plus SSH from the private network. The
// addresses are not adjacent, so none merge and the set really holds n ranges.
func BigPolicy(n int) string {
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
