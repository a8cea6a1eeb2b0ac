package systemd

import (
	"context"
	"errors"
	"sync"
)

// Opener returns the Manager a step should use. Steps take an Opener in their
// constructor and call it in Plan, so a run limited to other steps (the
// firewall at early boot) never touches D-Bus, and tests hand in a fake or a
// connection to a private bus.
type Opener func(ctx context.Context) (Manager, error)

// Shared returns an Opener that connects on first use and then hands every
// caller (the sshd and services steps) the same connection for the rest of
// the process. "No systemd" is remembered too: it does not change within a
// run, and retrying would only repeat the connect timeout. Other errors are
// not remembered, so a later step may try again.
func Shared(opts Options) Opener {
	var (
		mu   sync.Mutex
		conn Manager
		none error
	)
	return func(ctx context.Context) (Manager, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case conn != nil:
			return conn, nil
		case none != nil:
			return nil, none
		}
		c, err := Connect(ctx, opts)
		if err != nil {
			if errors.Is(err, ErrNoSystemd) {
				none = err
			}
			return nil, err
		}
		conn = c
		return conn, nil
	}
}
