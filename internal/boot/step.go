package boot

import (
	"context"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/policy"
)

// servicesStep is the services step under harden boot. There is no systemd, so no unit to
// mask or start: the machine's services are the programs harden boot supervises, and those
// are exactly the policy's (policy.BootServices). The step reports that set, and each
// program that will not run and why, before any of them starts; it changes nothing.
type servicesStep struct {
	plan func(*policy.Policy) []planned
}

func (*servicesStep) Name() string { return "services" }

func (s *servicesStep) Plan(_ context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	var runs []string
	for _, pl := range s.plan(env.Policy) {
		name := pl.svc.Name
		if pl.skip != "" {
			p.Find(&engine.Finding{ID: "services.boot-not-started", Severity: pl.sev, Object: name,
				Message: fmt.Sprintf("%s will not run: %s", name, pl.skip), Reason: pl.svc.Field})
			continue
		}
		switch {
		case pl.gate != nil && pl.svc.Once:
			name += " (once, in the background, when " + pl.gateWhat + ")"
		case pl.gate != nil:
			name += " (once " + pl.gateWhat + ")"
		case pl.svc.Once:
			name += " (once, in the background)"
		}
		runs = append(runs, name)
	}
	p.Find(&engine.Finding{ID: "services.boot-supervised", Severity: engine.Info, Object: "harden boot",
		Message: "harden boot supervises exactly the policy's services: " + orNone(strings.Join(runs, ", ")) +
			"; no unit is masked (no systemd)",
		Reason: "boot"})
	if units := env.Policy.Services.Allow; len(units) > 0 {
		var names []string
		for _, u := range units {
			names = append(names, u.Name)
		}
		p.Find(&engine.Finding{ID: "services.units-not-applicable", Severity: engine.Info, Object: "services.allow",
			Message: fmt.Sprintf("services.allow names systemd units (%s); under harden boot there is no systemd: boot.sshd runs sshd, the rest comes from the policy",
				strings.Join(names, ", ")),
			Reason: "services.allow"})
	}
	return p, nil
}

func (*servicesStep) Apply(context.Context, *engine.Env, *engine.Plan) error { return nil }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
