package auditnl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const typeUser = 1005 // AUDIT_USER: a user-space message the kernel logs

// sendUser makes the kernel emit one USER record holding text (it needs
// CAP_AUDIT_WRITE and audit enabled).
func sendUser(t testing.TB, nl *netlink.Conn, text string) {
	t.Helper()
	_, err := nl.Send(netlink.Message{
		Header: netlink.Header{Type: typeUser, Flags: netlink.Request},
		Data:   append([]byte(text), 0),
	})
	require.NoError(t, err)
}

func enableAudit(t testing.TB, conn *auditnl.Conn) *netlink.Conn {
	t.Helper()
	ctx := context.Background()
	// Enough backlog that the kernel itself does not drop or throttle
	// what the test sends; hostaudit restores the host's values.
	require.NoError(t, conn.SetStatus(ctx, auditnl.StatusUpdate{
		Enabled: auditnl.Uint32(1), BacklogLimit: auditnl.Uint32(16384), RateLimit: auditnl.Uint32(0),
	}))
	nl, err := netlink.Dial(unix.NETLINK_AUDIT, nil)
	require.NoError(t, err)
	t.Cleanup(func() { nl.Close() })
	return nl
}

// readUntil reads records until one contains marker.
func readUntil(t testing.TB, r *auditnl.Reader, marker string) auditnl.Record {
	t.Helper()
	for {
		rec, err := r.Read()
		if errors.Is(err, auditnl.ErrOverrun) {
			continue
		}
		require.NoError(t, err)
		if bytes.Contains(rec.Data, []byte(marker)) {
			return rec
		}
	}
}

func TestReaderReceivesRecords(t *testing.T) {
	conn := hostaudit.Lock(t)
	nl := enableAudit(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := auditnl.NewReader(ctx)
	require.NoError(t, err)
	defer r.Close()

	marker := fmt.Sprintf("harden-reader-test-%d", time.Now().UnixNano())
	sendUser(t, nl, marker)
	rec := readUntil(t, r, marker)
	assert.Equal(t, uint16(typeUser), rec.Type)
	assert.True(t, bytes.HasPrefix(rec.Data, []byte("audit(")), "record text %q", rec.Data)
	assert.NotEqual(t, byte(0), rec.Data[len(rec.Data)-1], "trailing NUL must be trimmed")
	assert.Equal(t, uint64(0), r.Overruns())
	assert.GreaterOrEqual(t, r.Records(), uint64(1))
}

// A reader that does not keep up loses records; it must say so with
// ErrOverrun rather than pretend nothing happened.
func TestReaderReportsOverrun(t *testing.T) {
	conn := hostaudit.Lock(t)
	nl := enableAudit(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := auditnl.NewReader(ctx, auditnl.ReaderOptions{ReadBuffer: 4096})
	require.NoError(t, err)
	defer r.Close()

	// Far more than 4 KiB of records while nobody reads.
	for i := range 300 {
		sendUser(t, nl, fmt.Sprintf("harden-overrun-%d", i))
	}
	time.Sleep(200 * time.Millisecond)
	// kauditd delivers asynchronously: the first Read reports the overflow.
	_, err = r.Read()
	require.ErrorIs(t, err, auditnl.ErrOverrun)
	// The reader still works: a marker sent now (repeatedly, in case the
	// buffer is still full when one arrives) comes through.
	marker := fmt.Sprintf("harden-overrun-end-%d", time.Now().UnixNano())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				// Not sendUser: require must not run off the test goroutine.
				_, _ = nl.Send(netlink.Message{
					Header: netlink.Header{Type: typeUser, Flags: netlink.Request},
					Data:   append([]byte(marker), 0),
				})
			}
		}
	}()
	readUntil(t, r, marker)
	assert.GreaterOrEqual(t, r.Overruns(), uint64(1))
	assert.Less(t, r.Records(), uint64(301), "some records must have been dropped")
}

func TestReaderCloseAndCancelEndRead(t *testing.T) {
	if unix.Geteuid() != 0 {
		need.Missing(t, "CAP_AUDIT_READ: joining the audit multicast group")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := auditnl.NewReader(ctx)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := r.Read(); err != nil && !errors.Is(err, auditnl.ErrOverrun) {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, auditnl.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after the context was cancelled")
	}
	assert.NoError(t, r.Close(), "a second Close is harmless")
}

// BenchmarkReaderRead is the reader's cost per record, records already queued in the
// socket (the sender's cost is outside the timer). harden watch's budget is 10,000
// records/s in under 5% of a core: 5 µs per record.
func BenchmarkReaderRead(b *testing.B) {
	conn := hostaudit.Lock(b)
	nl := enableAudit(b, conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := auditnl.NewReader(ctx, auditnl.ReaderOptions{ReadBuffer: 64 << 20})
	require.NoError(b, err)
	defer r.Close()
	const batch = 2000
	msg := "op=bench acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=10.0.0.1 addr=10.0.0.1 terminal=ssh res=failed"
	b.StopTimer()
	n := 0
	for n < b.N {
		for range batch {
			sendUser(b, nl, msg)
		}
		time.Sleep(20 * time.Millisecond) // let kauditd deliver
		b.StartTimer()
		for range batch {
			if _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		n += batch
	}
	require.Zero(b, r.Overruns())
}
