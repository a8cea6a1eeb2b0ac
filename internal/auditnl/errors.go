package auditnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Error is a failed audit netlink request. It unwraps to the errno, so
// errors.Is(err, unix.EEXIST) works.
type Error struct {
	Op    string // "add rule", "delete rule", "set enabled", ...
	Errno unix.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("audit %s: %v%s", e.Op, e.Errno, hint(e.Op, e.Errno))
}

func (e *Error) Unwrap() error { return e.Errno }

// hint says what an errno usually means for the audit subsystem.
func hint(op string, errno unix.Errno) string {
	switch errno {
	case unix.EPERM:
		return " (needs CAP_AUDIT_CONTROL, or the audit configuration is locked with enabled 2 until reboot)"
	case unix.EEXIST:
		return " (the kernel already has this rule)"
	case unix.ENOENT:
		if op == "delete rule" {
			return " (no such rule in the kernel)"
		}
		if op == "add rule" {
			return " (a watched path's parent directory does not exist)"
		}
	case unix.EINVAL:
		return " (the kernel rejected the request as invalid)"
	case unix.ECONNREFUSED, unix.EPROTONOSUPPORT:
		return " (the kernel has no audit support)"
	}
	return ""
}

// IsExist reports whether err says the rule is already loaded.
func IsExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// IsNotExist reports whether err says there is no such rule.
func IsNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }

// IsPermission reports whether err is EPERM: no capability, or locked.
func IsPermission(err error) bool { return errors.Is(err, unix.EPERM) }

// ErrRefused is returned when a change could lock or panic the host and the
// client was not opened with the option that allows it.
var ErrRefused = errors.New("audit: refusing a change that cannot be undone until reboot (enabled 2, failure 2 or loginuid immutable); open the client with AllowLock to permit it")
