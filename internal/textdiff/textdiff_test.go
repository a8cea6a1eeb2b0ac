package textdiff

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
