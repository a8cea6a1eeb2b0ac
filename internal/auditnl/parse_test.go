package auditnl

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func nlmsg(typ uint16, text string) []byte {
	b := make([]byte, 16+len(text))
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[16:], text)
	return b
}

// Records are not padded to 4 bytes; a datagram holding more than one message is split at
// the aligned boundaries, and text is copied out of the shared buffer.
func TestParseRecords(t *testing.T) {
	one := nlmsg(1300, "audit(1.2:3): arch=c000003e syscall=59\x00")
	pad := make([]byte, (len(one)+3)&^3-len(one))
	two := nlmsg(1320, "audit(1.2:3): ")
	buf := append(append(append([]byte{}, one...), pad...), two...)
	recs := parseRecords(buf, nil)
	assert.Equal(t, []Record{
		{Type: 1300, Data: []byte("audit(1.2:3): arch=c000003e syscall=59")},
		{Type: 1320, Data: []byte("audit(1.2:3): ")},
	}, recs)
	buf[16] = 'X'
	assert.Equal(t, byte('a'), recs[0].Data[0], "records do not alias the buffer")

	// A length past the end (never from a sane kernel) takes the rest, no panic.
	bad := nlmsg(1112, "audit(9.9:9): res=failed")
	binary.NativeEndian.PutUint32(bad, 4096)
	assert.Equal(t, "audit(9.9:9): res=failed", string(parseRecords(bad, nil)[0].Data))
	assert.Empty(t, parseRecords([]byte{1, 2, 3}, nil))
}
