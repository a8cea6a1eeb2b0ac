package firewall

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/nft"
)

// GuardEnv, when set to 1, makes the step refuse to change the firewall of the namespace
// PID 1 lives in. `make test` and .ci/run set it: development and CI machines are reached
// over the network, and a test that forgot its own namespace must fail, not cut the machine
// off. Machines harden protects never set it.
const GuardEnv = "HARDEN_REFUSE_HOST_NETNS"

// startNetNS is the namespace this process started in, read before any test thread could
// setns() elsewhere. In a sandbox /proc/1/ns/net may be unreadable even to root, so this is
// the reference that always exists.
//
// It is read at process start only when the guard is on (tests, CI). Machines harden
// protects never set it, and there the stat of an nsfs file at every start is not only
// wasted: `harden alert virus` runs under clamd's AppArmor child profile, which denies it
// and logged a "disconnected path" denial at every detection. A guard turned on by a test's
// own getenv reads it on first use.
var startNetNS = func() func() (fileID, error) {
	if os.Getenv(GuardEnv) == "1" {
		id, err := nsID("/proc/self/ns/net")
		return func() (fileID, error) { return id, err }
	}
	return sync.OnceValues(func() (fileID, error) { return nsID("/proc/self/ns/net") })
}()

// refuseHostNetNS returns an error when the guard is on and netns is the namespace this
// process started in, or PID 1's.
func refuseHostNetNS(getenv func(string) string, netns string) error {
	if getenv(GuardEnv) != "1" {
		return nil
	}
	target := "/proc/thread-self/ns/net" // the namespace a socket opened now would be in
	if netns != "" {
		target = nft.NetNSPath(netns)
	}
	id, err := nsID(target)
	start, startErr := startNetNS()
	if err == nil {
		err = startErr
	}
	if err != nil {
		return fmt.Errorf("%s=1 and the target namespace cannot be checked: %w", GuardEnv, err)
	}
	pid1, pid1Err := nsID("/proc/1/ns/net")
	if id == start || (pid1Err == nil && id == pid1) {
		return fmt.Errorf("refusing to change the firewall of this machine's own network namespace (%s=1): use --netns", GuardEnv)
	}
	return nil
}

type fileID struct{ dev, ino uint64 }

func nsID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), st.Ino}, nil
}
