package auditrule_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/auditrule"
)

// Key must tell rules apart exactly as their normalized kernel bytes do: the audit step
// keeps, deletes and de-duplicates rules by key. Every pair of corpus rules (and each rule
// with -A, a class bit and a changed string) is compared both ways.
func TestKeyMatchesNormalizedBytes(t *testing.T) {
	p := parserFor(nil)
	var rules []*auditrule.Rule
	for _, l := range readCorpus(t) {
		r, err := p.ParseRule(l.text)
		if err != nil {
			continue // the corpus holds lines auditctl refuses too
		}
		rules = append(rules, r)
		v := *r
		v.Prepend = !v.Prepend
		v.Mask[len(v.Mask)-1] ^= 0x80000000 // a syscall class bit: gone once listed (not on task)
		rules = append(rules, &v)
		for i, f := range r.Fields {
			if f.Str != "" {
				w := *r
				w.Fields = append([]auditrule.Field(nil), r.Fields...)
				w.Fields[i].Str += "x"
				rules = append(rules, &w)
				break
			}
		}
	}
	require.Greater(t, len(rules), 300)
	bytesOf := func(r *auditrule.Rule) string {
		b, err := r.Normalize().Marshal()
		require.NoError(t, err)
		return string(b)
	}
	keys, raw := make([]string, len(rules)), make([]string, len(rules))
	for i, r := range rules {
		keys[i], raw[i] = r.Key(), bytesOf(r)
	}
	for i := range rules {
		for j := range rules {
			if (keys[i] == keys[j]) != (raw[i] == raw[j]) {
				t.Fatalf("key and bytes disagree on\n%s\n%s", rules[i], rules[j])
			}
		}
	}
	assert.Equal(t, "", (&auditrule.Rule{Fields: make([]auditrule.Field, auditrule.MaxFields+1)}).Key(), "too many fields: no key")
}
