// Package textdiff renders the difference between two small texts as unified-diff-like
// lines, for plans people read. Config files harden writes are tens of lines: a plain LCS
// table is clear and fast enough.
package textdiff

import (
	"strings"
)

// Lines returns the changed lines of a -> b with two lines of context, each prefixed
// "- ", "+ " or "  "; "" when the texts are equal.
func Lines(a, b string) string {
	if a == b {
		return ""
	}
	x, y := split(a), split(b)
	ops := diff(x, y)
	return render(ops, 2)
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

// diff computes an edit script from the longest common subsequence.
func diff(x, y []string) []op {
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
