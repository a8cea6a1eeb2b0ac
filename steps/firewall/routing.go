package firewall

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/nft"
)

// forwardingKeys are the sysctls that make a machine route: Docker and Tailscale set them.
var forwardingKeys = []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"}

// forwarding returns the forwarding sysctls that are on in netns ("" = this namespace), as
// sysctl names. /proc/sys/net shows the namespace of the thread that reads it, so for
// another namespace the read happens on a thread moved there (and never used again).
func forwarding(netns string) ([]string, error) {
	read := func() ([]string, error) {
		var on []string
		for _, k := range forwardingKeys {
			b, err := os.ReadFile("/proc/sys/" + k)
			if os.IsNotExist(err) {
				continue // no IPv6 in this kernel
			}
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(string(b)) != "0" {
				on = append(on, strings.ReplaceAll(k, "/", "."))
			}
		}
		return on, nil
	}
	if netns == "" {
		return read()
	}
	type result struct {
		on  []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Not unlocked: the thread ends with this goroutine instead of going back to the
		// scheduler in another network namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(nft.NetNSPath(netns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{err: fmt.Errorf("network namespace %s: %w", netns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering network namespace %s: %w", netns, err)}
			return
		}
		on, err := read()
		done <- result{on, err}
	}()
	r := <-done
	return r.on, r.err
}

// forwardDropped returns how many packets the forward chain of the kernel's table counted
// before its drop policy dropped them (0 without such a chain).
func forwardDropped(have *nft.Ruleset) uint64 {
	if have == nil {
		return 0
	}
	for _, c := range have.Chains {
		if c.Name != "forward" {
			continue
		}
		for _, r := range c.Rules {
			if r.Comment != ForwardDropComment {
				continue
			}
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					return ctr.Packets
				}
			}
		}
	}
	return 0
}

// planRouting reports a machine that routes while the policy drops what it routes: the
// forwarding sysctls are on (Docker, Tailscale, a router set them), or the forward chain
// has already dropped packets. With the default (forward: accept) there is nothing to say.
func (s *Step) planRouting(env *engine.Env, p *engine.Plan, have *nft.Ruleset) {
	if env.Policy.Firewall.Forward != "drop" {
		return
	}
	on, err := s.forwarding(s.opts.NetNS)
	if err != nil {
		env.Log.Warnf("firewall: cannot read the forwarding sysctls: %v", err)
	}
	if len(on) > 0 {
		p.Find(&engine.Finding{ID: "firewall.forward-drop-routing", Severity: engine.Warning, Object: Object + " chain forward",
			Message: fmt.Sprintf("this machine routes (%s = 1) but firewall.forward is drop: routed traffic (Docker's bridge and published ports, Tailscale) is dropped",
				strings.Join(on, ", ")),
			Reason: "firewall.forward"})
	}
	if n := forwardDropped(have); n > 0 {
		p.Find(&engine.Finding{ID: "firewall.forward-dropped", Severity: engine.Warning, Object: Object + " chain forward",
			Message: fmt.Sprintf("%d routed packet(s) dropped by the forward chain (firewall.forward: drop)", n),
			Reason:  "firewall.forward"})
	}
}
