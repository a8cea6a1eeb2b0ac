package auditnl

import (
	"encoding/binary"
	"fmt"
)

// Status is the kernel's struct audit_status.
type Status struct {
	Mask                  uint32
	Enabled               uint32 // 0 off, 1 on, 2 on and locked until reboot
	Failure               uint32 // 0 silent, 1 printk, 2 panic
	PID                   uint32 // the registered audit daemon, 0 if none
	RateLimit             uint32 // messages per second, 0 = no limit
	BacklogLimit          uint32
	Lost                  uint32
	Backlog               uint32
	FeatureBitmap         uint32
	BacklogWaitTime       uint32
	BacklogWaitTimeActual uint32
}

// Status mask bits (AUDIT_STATUS_*).
const (
	maskEnabled         uint32 = 0x01
	maskFailure         uint32 = 0x02
	maskRateLimit       uint32 = 0x08
	maskBacklogLimit    uint32 = 0x10
	maskBacklogWaitTime uint32 = 0x20
)

// Values of Status.Enabled and Status.Failure.
const (
	EnabledOff    uint32 = 0
	EnabledOn     uint32 = 1
	EnabledLocked uint32 = 2
	FailureSilent uint32 = 0
	FailurePrintk uint32 = 1
	FailurePanic  uint32 = 2
)

const statusSize = 11 * 4

func (s *Status) marshal() []byte {
	b := make([]byte, statusSize)
	ne := binary.NativeEndian
	for i, v := range []uint32{s.Mask, s.Enabled, s.Failure, s.PID, s.RateLimit, s.BacklogLimit,
		s.Lost, s.Backlog, s.FeatureBitmap, s.BacklogWaitTime, s.BacklogWaitTimeActual} {
		ne.PutUint32(b[4*i:], v)
	}
	return b
}

// unmarshalStatus reads as many fields as the kernel sent (older kernels
// send a shorter struct).
func unmarshalStatus(b []byte) (*Status, error) {
	if len(b) < 8*4 {
		return nil, fmt.Errorf("audit status: %d bytes, want at least 32", len(b))
	}
	var v [11]uint32
	for i := range v {
		if 4*i+4 <= len(b) {
			v[i] = binary.NativeEndian.Uint32(b[4*i:])
		}
	}
	return &Status{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]}, nil
}

// StatusUpdate lists the status values to change; nil means leave alone.
type StatusUpdate struct {
	Enabled         *uint32
	Failure         *uint32
	RateLimit       *uint32
	BacklogLimit    *uint32
	BacklogWaitTime *uint32
}

// Uint32 returns a pointer to v, for StatusUpdate literals.
func Uint32(v uint32) *uint32 { return &v }

// Features is the kernel's struct audit_features (GET_FEATURE reply).
type Features struct {
	Version, Mask, Features, Lock uint32
}

// LoginUIDImmutable reports whether loginuids can no longer be changed,
// and whether that setting is locked until reboot.
func (f *Features) LoginUIDImmutable() (on, locked bool) {
	const bit = 1 << 1 // AUDIT_FEATURE_TO_MASK(AUDIT_FEATURE_LOGINUID_IMMUTABLE=1)
	return f.Features&bit != 0, f.Lock&bit != 0
}
