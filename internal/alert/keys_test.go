package alert

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeysMatchTheBaseline: every key the rules select on is one the baseline sets, so a
// renamed key in the baseline cannot silently switch an alert off.
func TestKeysMatchTheBaseline(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "assets", "audit", "baseline.rules"))
	require.NoError(t, err)
	have := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)(?:-F key=|-k )(\S+)`).FindAllStringSubmatch(string(b), -1) {
		have[m[1]] = true
	}
	for _, k := range append(append([]string{}, PrivEscKeys...), CriticalFileKeys...) {
		assert.True(t, have[k], "key %q is not set by any baseline rule", k)
	}
}
