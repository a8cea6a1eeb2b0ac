package watch

import (
	"context"
	"errors"

	"github.com/harden-dev/harden/internal/alert/auditrec"
	"github.com/harden-dev/harden/internal/auditnl"
)

// NetlinkSource reads the kernel's audit multicast group (as a reader next to auditd, never
// as the audit daemon).
type NetlinkSource struct{ R *auditnl.Reader }

// Read implements Source.
func (s NetlinkSource) Read() (auditrec.Record, error) {
	r, err := s.R.Read()
	switch {
	case errors.Is(err, auditnl.ErrOverrun):
		return auditrec.Record{}, ErrOverrun
	case errors.Is(err, auditnl.ErrClosed):
		return auditrec.Record{}, errEOF
	case err != nil:
		return auditrec.Record{}, err
	}
	return auditrec.Parse(r.Type, string(r.Data))
}

// Close ends a blocked Read.
func (s NetlinkSource) Close() error { return s.R.Close() }

// StatusLost reads audit_status.lost (AUDIT_GET needs CAP_AUDIT_CONTROL).
type StatusLost struct{ C *auditnl.Conn }

// Lost implements LostCounter.
func (s StatusLost) Lost(ctx context.Context) (uint32, error) {
	st, err := s.C.GetStatus(ctx)
	if err != nil {
		return 0, err
	}
	return st.Lost, nil
}
