package need

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawSkip is a direct call of testing's skip functions.
var rawSkip = regexp.MustCompile(`\.(Skip|Skipf|SkipNow)\(`)

// allowMarker on the same line or the line above allows a raw skip that is not a missing
// prerequisite (say, a VM check the guest reports as not applicable, with its reason).
const allowMarker = "need:allowed-skip"

// TestNoRawSkips keeps every skip for a missing prerequisite in this package, where CI turns
// it into a failure. A t.Skip elsewhere would let CI go green without running the test.
func TestNoRawSkips(t *testing.T) {
	top := moduleRoot(t)
	var bad []string
	err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || filepath.Base(path) == "need.go" {
			return nil
		}
		bad = append(bad, rawSkipsIn(t, path, top)...)
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, bad, "use need.Missing/Root/Tool (internal/testutil/need), or mark a skip that is not a missing prerequisite with // %s: <why>", allowMarker)
}

func rawSkipsIn(t *testing.T, path, top string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if rawSkip.MatchString(line) && !strings.Contains(line, allowMarker) && !strings.Contains(prev, allowMarker) &&
			!strings.HasPrefix(strings.TrimSpace(line), "//") {
			rel, _ := filepath.Rel(top, path)
			out = append(out, rel+":"+strconv.Itoa(n)+": "+strings.TrimSpace(line))
		}
		prev = line
	}
	require.NoError(t, sc.Err())
	return out
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

// TestMissingFailsWhenRequired runs Missing in a child test process with the variable set
// and unset: the prerequisite check must fail in CI and skip elsewhere.
func TestMissingFailsWhenRequired(t *testing.T) {
	if os.Getenv("HARDEN_NEED_CHILD") == "1" {
		Tool(t, "harden-no-such-tool-xyz")
		return
	}
	for _, tc := range []struct {
		env  string
		want string
	}{{"1", "--- FAIL"}, {"", "--- SKIP"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingFailsWhenRequired$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "HARDEN_NEED_CHILD=1", RequireEnv+"="+tc.env)
		out, _ := cmd.CombinedOutput()
		assert.Contains(t, string(out), tc.want, "HARDEN_REQUIRE_PRIVILEGED=%q:\n%s", tc.env, out)
		assert.Contains(t, string(out), "harden-no-such-tool-xyz", "the message names what is missing")
	}
}
