// Package firewall is harden's firewall step: it owns exactly the nftables table
// `inet harden` (default-deny input with the policy's justified allow rules) and replaces it
// whole, in one netlink transaction, whenever the kernel's copy differs from the policy.
package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/ifaddrs"
	"github.com/harden-dev/harden/internal/nft"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Object is how plans and the change log name the table.
const Object = "nft table inet harden"

// Options are the handles only this step needs.
type Options struct {
	// NetNS is the network namespace to work in: "" for the current one, a name under
	// /run/netns, or a path. Tests and `harden apply --netns` use it.
	NetNS string
	// Offline: harden works on a directory tree (--root), not on this machine; the firewall
	// has no files, so the step only says it did nothing rather than change this machine's.
	Offline bool
	// Addrs lists the addresses on the namespace's interfaces, for `private_networks: [auto]`
	// without FLY_PRIVATE_IP (nil: read them from the kernel, in NetNS).
	Addrs func() ([]netip.Addr, error)
}

// Step is the firewall step. Its netlink connection is opened in Plan and in the change's
// Do, never in New, so building the step list costs nothing.
type Step struct {
	opts Options
	// forwarding reads the forwarding sysctls of a namespace (tests replace it).
	forwarding func(netns string) ([]string, error)
	// last caches the ruleset built for one policy: the runner plans again right after
	// Apply to verify, and building 10,000 entries twice is wasted work.
	last struct {
		policy  *policy.Policy
		machine string
		rs      *nft.Ruleset
		warning string
	}
}

// New returns the firewall step.
func New(o Options) *Step { return &Step{opts: o, forwarding: forwarding} }

// Name is the step's name in --only and reports.
func (s *Step) Name() string { return "firewall" }

// Plan reads the kernel's table back and compares it, rendered as nft text, with the
// table the policy wants (rendering only when the models differ). No difference, no
// change. Plan changes nothing.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	if s.opts.Offline {
		p := &engine.Plan{}
		p.Find(&engine.Finding{ID: "firewall.offline", Severity: engine.Info, Object: Object,
			Message: "harden works on a tree (--root), not on this machine: this machine's firewall is left alone (use --netns to aim at a namespace)",
			Reason:  "firewall"})
		planNftablesService(env.Root, p)
		return p, nil
	}
	want, warning, err := s.build(env)
	if err != nil {
		return nil, err
	}
	p := &engine.Plan{}
	if warning != "" {
		p.Find(&engine.Finding{ID: "firewall.private-ip-invalid", Severity: engine.Warning,
			Object: "FLY_PRIVATE_IP", Message: warning, Reason: "firewall.private_networks"})
	}
	have, ufwOn, err := s.read()
	if err != nil {
		return nil, err
	}
	ufw, err := readUFW(env.Root, ufwOn)
	if err != nil {
		return nil, err
	}
	if f := ufwFinding(ufw, env.Policy.Firewall); f != nil {
		p.Find(f)
	}
	s.planRouting(env, p, have)
	planNftablesService(env.Root, p)
	// The cheap comparison first: a converged table is equal element for element, and
	// rendering 10,000 set elements twice only to find the texts equal cost ~10 ms.
	if nft.Equal(have, want) {
		return p, nil
	}
	haveText, wantText := nft.Render(have), nft.Render(want)
	if haveText == wantText {
		return p, nil
	}
	action := engine.ActionUpdate
	if have == nil {
		action = engine.ActionCreate
	}
	p.Add(&engine.Change{
		Object: Object,
		Action: action,
		Before: describe(have, digestOf(want)),
		After:  describe(want, ""),
		Diff:   diff(haveText, wantText),
		Reason: "firewall",
		Do: func(ctx context.Context) error {
			if err := refuseHostNetNS(env.Getenv, s.opts.NetNS); err != nil {
				return err
			}
			return s.replace(want)
		},
	})
	return p, nil
}

// Apply makes the one planned change: the whole-table replace.
func (s *Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

// build returns the wanted ruleset, reusing the last one for the same policy and machine
// (FLY_PRIVATE_IP and addresses: the only inputs of BuildFor besides the policy).
func (s *Step) build(env *engine.Env) (*nft.Ruleset, string, error) {
	m, err := s.machine(env)
	if err != nil {
		return nil, "", err
	}
	key := fmt.Sprint(m)
	if s.last.rs != nil && s.last.policy == env.Policy && s.last.machine == key {
		return s.last.rs, s.last.warning, nil
	}
	rs, warning, err := BuildFor(env.Policy.Firewall, m)
	if err != nil {
		return nil, "", err
	}
	s.last.policy, s.last.machine, s.last.rs, s.last.warning = env.Policy, key, rs, warning
	return rs, warning, nil
}

// machine gathers what `auto` is resolved from. The interfaces are read only when the policy
// says auto: a policy of CIDRs never depends on them.
func (s *Step) machine(env *engine.Env) (Machine, error) {
	m := Machine{FlyPrivateIP: env.Getenv("FLY_PRIVATE_IP")}
	if !slices.Contains(env.Policy.Firewall.PrivateNetworks, "auto") {
		return m, nil
	}
	list := s.opts.Addrs
	if list == nil {
		list = func() ([]netip.Addr, error) { return interfaceAddrs(s.opts.NetNS) }
	}
	addrs, err := list()
	if err != nil {
		return m, fmt.Errorf("private_networks: auto: reading this machine's addresses: %w", err)
	}
	m.Addrs = addrs
	return m, nil
}

func interfaceAddrs(netns string) ([]netip.Addr, error) {
	list, err := ifaddrs.List(netns)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		out = append(out, a.Prefix.Addr())
	}
	return out, nil
}

// read returns harden's table as the kernel has it, and whether ufw's chains are loaded
// next to it (see ufw.go).
func (s *Step) read() (*nft.Ruleset, bool, error) {
	c, err := nft.Open(s.opts.NetNS)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	rs, err := nft.Read(c, TableName, Family)
	if err != nil {
		return nil, false, err
	}
	ufw, err := ufwLoaded(c)
	return rs, ufw, err
}

// replace opens a fresh connection for every attempt: google/nftables keeps a marshalling
// error on its Conn forever.
func (s *Step) replace(rs *nft.Ruleset) error {
	c, err := nft.Open(s.opts.NetNS)
	if err != nil {
		return err
	}
	defer c.Close()
	return nft.Replace(c, rs)
}

// describe summarises a table in one line; wantDigest marks a table that carries the
// wanted digest but differs from it (someone edited it by hand).
func describe(rs *nft.Ruleset, wantDigest string) string {
	if rs == nil {
		return "absent"
	}
	rules, elems := rs.Counts()
	d := digestOf(rs)
	s := fmt.Sprintf("%d rules, %d set elements", rules, elems)
	switch {
	case d == "":
		s += ", not made by harden or hand-edited"
	case d == wantDigest:
		s += ", hand-edited (sha256:" + d + ")"
	default:
		s += " (sha256:" + d + ")"
	}
	return s
}

// maxLCSCells bounds the line-diff table (rows x columns). Beyond it (tables with
// thousands of set elements) the plan lists removed and added lines without context, which
// is linear and still readable.
const maxLCSCells = 4_000_000

func diff(have, want string) string {
	a, b := strings.Count(have, "\n"), strings.Count(want, "\n")
	if (a+1)*(b+1) <= maxLCSCells {
		return textdiff.Lines(have, want)
	}
	return bagDiff(have, want)
}

// bagDiff prints lines only in have as "- " and lines only in want as "+ " (as multisets).
func bagDiff(have, want string) string {
	a, b := strings.Split(have, "\n"), strings.Split(want, "\n")
	var out strings.Builder
	for _, l := range onlyIn(a, b) {
		out.WriteString("- " + l + "\n")
	}
	for _, l := range onlyIn(b, a) {
		out.WriteString("+ " + l + "\n")
	}
	return out.String()
}

// onlyIn returns the lines of x not matched by a line of y, in x's order.
func onlyIn(x, y []string) []string {
	count := map[string]int{}
	for _, l := range y {
		count[l]++
	}
	var out []string
	for _, l := range x {
		if count[l] > 0 {
			count[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}
