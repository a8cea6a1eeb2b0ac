package policy

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// Each loop in match.go accepts exactly what the regexp in its comment accepts: the table's
// edge cases and 20,000 random strings over the characters that matter to the patterns.
func TestMatchersAgreeWithRegexps(t *testing.T) {
	cases := []struct {
		re    string
		match func(string) bool
		seeds []string
	}{
		{`^[a-z0-9][a-z0-9_.-]{0,31}$`, validName, []string{"ssh", "a", strings.Repeat("a", 32), strings.Repeat("a", 33), "-a", "A", "web-1.x_y"}},
		{`^[0-9]+(\.[0-9]+)*$`, validVersion, []string{"24.04", "1", "", ".", "1.", ".1", "1..2", "a"}},
		{`^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$`, validSysctlKey, []string{"net.ipv4.conf.*.rp_filter", "kernel", "a.", ".a", "A.b", "a.B-*_"}},
		{`^[a-z0-9_-]+$`, validModule, []string{"dccp", "", "A", "a-b_c"}},
		{`^[A-Za-z][A-Za-z0-9]*$`, validSSHDKey, []string{"LoginGraceTime", "", "1a", "a1", "a-b"}},
		{`^[0-9]+(:[0-9]+:[0-9]+)?$`, validMaxStartups, []string{"10", "10:30:100", "10:30", "1::2", ":1:2", "1:2:3:4", ""}},
		{`^0?[0-7]{3}$`, validUmask, []string{"027", "0027", "00027", "28", "0778", "777", "0"}},
		{`^[a-z0-9*?][a-z0-9+.*?-]*(:[a-z0-9]+)?$`, validPackage, []string{"libc6:amd64", "lib*", "a:", ":a", "a:b:c", "g++", "?", "a:B", "-a"}},
		{`^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|device|slice|scope)$`, validUnitName,
			[]string{"ssh.service", ".service", "a.b.service", `dev-disk-by\x2dlabel.swap`, "getty@tty1.service", "a.servic", "a service", "a.automount", "x.mount.service"}},
	}
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := "az09AZ_.-*?+:@\\ /"
	suffixes := []string{"", ".service", ".mount", ".", ":amd64", ".04"}
	for _, c := range cases {
		re := regexp.MustCompile(c.re)
		inputs := append([]string(nil), c.seeds...)
		for range 20000 {
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			inputs = append(inputs, string(b)+suffixes[r.IntN(len(suffixes))])
		}
		for _, in := range inputs {
			if re.MatchString(in) != c.match(in) {
				t.Errorf("%s on %q: regexp %v, loop %v", c.re, in, re.MatchString(in), c.match(in))
			}
		}
	}
}
