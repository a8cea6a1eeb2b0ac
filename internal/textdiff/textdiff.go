// Package textdiff renders the difference between two small texts as unified-diff-like
// lines, for plans people read. Config files harden writes are tens of lines: a plain LCS
// table is clear and fast enough.
package textdiff

import (
	"fmt"
	"math"
	"strings"
)

// Lines returns the changed lines of a -> b with two lines of context, each prefixed
// "- ", "+ " or "  "; "" when the texts are equal.
func Lines(a, b string) string {
	if a == b {
		return ""
	}
	// A file created or removed whole: every line changed, no table needed (the firewall's
	// first plan renders a 10,000-element table this way).
	if a == "" {
		return prefixLines("+ ", b)
	}
	if b == "" {
		return prefixLines("- ", a)
	}
	x, y := split(a), split(b)
	ops := diff(x, y)
	return render(ops, 2)
}

// prefixLines is render's output when every line has the same kind.
func prefixLines(prefix, s string) string {
	s = strings.TrimSuffix(s, "\n")
	var b strings.Builder
	b.Grow(len(s) + (strings.Count(s, "\n")+1)*(len(prefix)+1))
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString(prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

type op struct {
	kind byte // ' ', '-', '+'
	line string
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diff computes an edit script from the longest common subsequence. Lines both texts start
// with are matched without the table (the walk below would match them first anyway, so
// the script is the same), and the table of the rest is one flat slice of the smallest
// integer that holds its values: a 400-line login.defs with edits from line 150 on costs
// ~130 KB, not 1.3 MB.
func diff(x, y []string) []op {
	var out []op
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		out = append(out, op{' ', x[p]})
		p++
	}
	x, y = x[p:], y[p:]
	if len(x) < math.MaxUint16 && len(y) < math.MaxUint16 {
		return walk(out, x, y, lcsTable[uint16](x, y))
	}
	return walk(out, x, y, lcsTable[uint32](x, y))
}

// lcsTable returns the lengths of the longest common subsequences of every pair of
// suffixes: entry i*(len(y)+1)+j is that of x[i:] and y[j:].
func lcsTable[T uint16 | uint32](x, y []string) []T {
	n, m := len(x), len(y)
	w := m + 1
	lcs := make([]T, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		row, next := lcs[i*w:(i+1)*w], lcs[(i+1)*w:(i+2)*w]
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				row[j] = next[j+1] + 1
			} else {
				row[j] = max(next[j], row[j+1])
			}
		}
	}
	return lcs
}

// walk appends the edit script of x -> y to out, choosing as the table says.
func walk[T uint16 | uint32](out []op, x, y []string, lcs []T) []op {
	n, m := len(x), len(y)
	w := m + 1
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			out = append(out, op{' ', x[i]})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
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

// render keeps changed lines and `context` unchanged lines around them; "..." marks a gap.
func render(ops []op, context int) string {
	keep := make([]bool, len(ops))
	for i, o := range ops {
		if o.kind == ' ' {
			continue
		}
		for k := max(0, i-context); k <= min(len(ops)-1, i+context); k++ {
			keep[k] = true
		}
	}
	var b strings.Builder
	gap := false
	for i, o := range ops {
		if !keep[i] {
			gap = true
			continue
		}
		if gap && b.Len() > 0 {
			b.WriteString("  ...\n")
		}
		gap = false
		b.WriteByte(o.kind)
		b.WriteByte(' ')
		b.WriteString(o.line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Bound keeps the first limit lines of a diff and replaces the rest with one line that counts
// what was left out, so that a plan people read (and the report, and a unit's journal)
// stays readable when a change touches thousands of lines: a 10,000-entry allow list
// created at every boot. The object itself (the file, `nft list table`) has the rest.
func Bound(diff string, limit int) string {
	cut := 0
	for range limit {
		i := strings.IndexByte(diff[cut:], '\n')
		if i < 0 {
			return diff
		}
		cut += i + 1
	}
	rest := diff[cut:]
	if rest == "" {
		return diff
	}
	var lines, added, removed int
	for line := range strings.SplitSeq(strings.TrimSuffix(rest, "\n"), "\n") {
		lines++
		switch {
		case strings.HasPrefix(line, "+ "):
			added++
		case strings.HasPrefix(line, "- "):
			removed++
		}
	}
	return diff[:cut] + fmt.Sprintf("  ... %d more lines not shown (%d added, %d removed)\n", lines, added, removed)
}
