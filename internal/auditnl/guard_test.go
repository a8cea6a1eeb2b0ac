package auditnl

import (
	"context"
	"errors"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The guard against locking the host must hold before anything is sent:
// the socket here cannot be opened, so a change that got past the guard
// would fail with errNoSocket instead of ErrRefused. No kernel is touched.
func TestSetStatusRefusesLockWithoutAllowLock(t *testing.T) {
	errNoSocket := errors.New("test: no socket")
	old := dial
	dial = func() (*netlink.Conn, error) { return nil, errNoSocket }
	t.Cleanup(func() { dial = old })
	ctx := context.Background()

	c := &Conn{}
	assert.ErrorIs(t, c.SetStatus(ctx, StatusUpdate{Enabled: Uint32(EnabledLocked)}), ErrRefused)
	assert.ErrorIs(t, c.SetStatus(ctx, StatusUpdate{Failure: Uint32(FailurePanic)}), ErrRefused)
	// Refused as a whole: nothing else in the same update is sent either.
	assert.ErrorIs(t, c.SetStatus(ctx, StatusUpdate{BacklogLimit: Uint32(10), Enabled: Uint32(EnabledLocked)}), ErrRefused)
	assert.ErrorIs(t, c.SetLoginUIDImmutable(ctx), ErrRefused)
	// Harmless values get past the guard (and then fail on the socket).
	assert.ErrorIs(t, c.SetStatus(ctx, StatusUpdate{Enabled: Uint32(EnabledOn)}), errNoSocket)

	// With AllowLock the request is let through to the (missing) socket.
	allowed := &Conn{opts: Options{AllowLock: true}}
	err := allowed.SetStatus(ctx, StatusUpdate{Enabled: Uint32(EnabledLocked)})
	require.Error(t, err)
	assert.ErrorIs(t, err, errNoSocket)
}

func TestSetStatusRejectsOutOfRange(t *testing.T) {
	c := &Conn{opts: Options{AllowLock: true}}
	assert.ErrorContains(t, c.SetStatus(context.Background(), StatusUpdate{Enabled: Uint32(3)}), "not 0, 1 or 2")
	assert.ErrorContains(t, c.SetStatus(context.Background(), StatusUpdate{Failure: Uint32(7)}), "not 0, 1 or 2")
}
