package policy

import (
	"fmt"
	"io"
	"strings"
)

// WriteDoc prints the policy's "documented and justified" view as Markdown: every open port
// and every allowed service with the reason the policy gives. It is generated from the policy
// itself so the documentation cannot drift from what is enforced.
func (p *Policy) WriteDoc(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Exposure of this machine\n\nPolicy: `%s`. Exposure: **%s**; private networks: %s.\n",
		p.File(), p.Firewall.Exposure, strings.Join(p.Firewall.PrivateNetworks, ", "))
	fmt.Fprintf(&b, "Inbound is denied by default; only these ports are open.\n\n")
	b.WriteString("## Open ports\n\n| name | proto | port | from | why |\n|---|---|---|---|---|\n")
	for _, r := range p.Firewall.Allow {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", cell(r.Name), r.Proto, r.PortSpec(), cell(r.From.String()), cell(r.Why))
	}
	if len(p.Firewall.Allow) == 0 {
		b.WriteString("| (none) | | | | |\n")
	}
	b.WriteString("\n## Allowed services\n\nEvery other enabled unit, except the essential ones harden never masks, is masked.\n\n")
	b.WriteString("| unit | ensure | why |\n|---|---|---|\n")
	for _, s := range p.Services.Allow {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(s.Name), s.Ensure, cell(s.Why))
	}
	b.WriteString("\n## Services under `harden boot` (no systemd)\n\n")
	b.WriteString("Where `harden boot -- APP` is the entrypoint (a Fly Machine, whose PID 1 is Fly's own init), " +
		"these are the machine's enabled services: harden starts and supervises exactly these, then the app. " +
		"No unit is masked: there is no systemd.\n\n")
	b.WriteString("| program | runs | why | policy field |\n|---|---|---|---|\n")
	for _, s := range p.BootServices() {
		runs := "always (restarted with back-off)"
		if s.Once {
			runs = "once per boot (retried when it fails)"
		}
		if s.IfInstalled {
			runs += ", when installed"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.Name, runs, cell(s.Why), s.Field)
	}
	fmt.Fprintf(&b, "\nThe app starts only when these steps succeeded: %s.\n", strings.Join(p.bootRequired(), ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// bootRequired lists the steps that block the app, the firewall first.
func (p *Policy) bootRequired() []string {
	out := []string{FailClosedStep}
	for _, s := range p.Boot.RequiredSteps {
		if s != FailClosedStep {
			out = append(out, s)
		}
	}
	return out
}

// PortSpec prints the rule's port or range.
func (r AllowRule) PortSpec() string {
	if r.Port != 0 {
		return fmt.Sprint(r.Port)
	}
	return r.Ports.String()
}

// PortRange returns the rule's ports as a range whichever way they were written.
func (r AllowRule) PortRange() PortRange {
	if r.Port != 0 {
		return PortRange{uint16(r.Port), uint16(r.Port)}
	}
	return r.Ports
}

func (s Source) String() string {
	if s.Kind != FromCIDRs {
		return s.Kind
	}
	parts := make([]string, len(s.CIDRs))
	for i, c := range s.CIDRs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// cell keeps a value from breaking the Markdown table.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
