package textdiff

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLines(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\n"
	assert.Equal(t, "  b\n  c\n- d\n+ D\n  e\n  f\n  g\n  h\n+ i\n", Lines(a, b))
	long := "1\n2\n3\n4\n5\n6\n7\n8\n9\n"
	assert.Equal(t, "- 1\n  2\n  3\n  ...\n  7\n  8\n- 9\n", Lines(long, "2\n3\n4\n5\n6\n7\n8\n"))
	assert.Equal(t, "", Lines(a, a))
	assert.Equal(t, "+ x\n+ y\n", Lines("", "x\ny\n"))
	assert.Equal(t, "- x\n", Lines("x\n", ""))
}

// referenceDiff is the plain LCS table the package used before it matched the common
// prefix outside the table and packed the table; diff must choose exactly as it did.
func referenceDiff(x, y []string) []op {
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []op
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			out = append(out, op{' ', x[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, op{'-', x[i]})
			i++
		default:
			out = append(out, op{'+', y[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, op{'-', x[i]})
	}
	for ; j < m; j++ {
		out = append(out, op{'+', y[j]})
	}
	return out
}

func TestDiffChoosesAsThePlainTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lines := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = string(rune('a' + r.IntN(4))) // few distinct lines: many ties
		}
		return out
	}
	for range 3000 {
		x := lines(r.IntN(25))
		y := append([]string(nil), x...)
		for range r.IntN(6) { // a few edits anywhere, as a config change makes
			k := r.IntN(len(y) + 1)
			switch r.IntN(3) {
			case 0:
				y = append(y[:k], append([]string{string(rune('a' + r.IntN(5)))}, y[k:]...)...)
			case 1:
				if k < len(y) {
					y = append(y[:k], y[k+1:]...)
				}
			default:
				if k < len(y) {
					y[k] = string(rune('a' + r.IntN(5)))
				}
			}
		}
		if r.IntN(2) == 0 {
			x = lines(r.IntN(25)) // and unrelated texts
		}
		require.Equal(t, referenceDiff(x, y), diff(x, y), "x=%q y=%q", x, y)
	}
}

// A text created or removed whole is written without the table, as the table would.
func TestLinesCreatedOrRemovedWhole(t *testing.T) {
	for _, text := range []string{"x", "x\n", "a\nb\n\nc\n", "\n", "\n\n", "a\n\n"} {
		assert.Equal(t, render(diff(nil, split(text)), 2), Lines("", text), "%q", text)
		assert.Equal(t, render(diff(split(text), nil), 2), Lines(text, ""), "%q", text)
	}
}

// BenchmarkLines is the accounts step's login.defs plan: a 400-line file with keys changed
// from line 150 on.
func BenchmarkLines(b *testing.B) {
	var a strings.Builder
	for i := range 400 {
		fmt.Fprintf(&a, "# comment line %d of a long configuration file\n", i)
	}
	before := a.String()
	after := strings.Replace(before, "line 150 ", "line 150 changed ", 1)
	after = strings.Replace(after, "line 390 ", "line 390 changed ", 1)
	for b.Loop() {
		Lines(before, after)
	}
}

func TestBound(t *testing.T) {
	var want strings.Builder
	for i := range 10 {
		want.WriteString(fmt.Sprintf("line %d\n", i))
	}
	d := Lines("keep\nold 1\nold 2\n", "keep\n"+want.String())
	// "  keep", "- old 1", "- old 2", then ten "+ line i".
	assert.Equal(t, d, Bound(d, 13), "a diff within the bound is kept whole")
	assert.Equal(t, d, Bound(d, 100))
	got := Bound(d, 4)
	assert.Equal(t, "  keep\n- old 1\n- old 2\n+ line 0\n  ... 9 more lines not shown (9 added, 0 removed)\n", got)
	assert.Equal(t, "  ... 13 more lines not shown (10 added, 2 removed)\n", Bound(d, 0))
	assert.Equal(t, "", Bound("", 3))
	assert.Equal(t, "+ no newline", Bound("+ no newline", 1))
}
