// Package sshd is the step that makes sshd refuse root and password logins:
// it writes /etc/ssh/sshd_config.d/00-harden.conf from the policy, makes sure
// sshd_config includes the drop-ins before anything else, validates with
// `sshd -t` (a file that fails is rolled back, never left in place), proves
// the effective values with `sshd -T`, and reloads sshd over D-Bus.
package sshd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Options configure the step.
type Options struct {
	// Systemd opens the connection used to reload sshd (nil: never reload,
	// reported as a finding).
	Systemd systemd.Opener
	// Binary is the sshd program (default /usr/sbin/sshd). It runs on the
	// host even under a test root: -f points it at the root's config.
	Binary string
	// PrivsepDir is sshd's compiled-in privilege separation directory; `sshd
	// -t` and `-T` refuse to run without it. systemd creates it
	// (RuntimeDirectory=sshd) only while ssh.service runs, so harden creates
	// it too, as Debian's init script does. Default /run/sshd.
	PrivsepDir string
}

// Step is the sshd step.
type Step struct{ opts Options }

// New returns the sshd step.
func New(opts Options) *Step {
	if opts.Binary == "" {
		opts.Binary = "/usr/sbin/sshd"
	}
	if opts.PrivsepDir == "" {
		opts.PrivsepDir = "/run/sshd"
	}
	return &Step{opts: opts}
}

// Name implements engine.Step.
func (s *Step) Name() string { return "sshd" }

// probe is the connection `sshd -T -C` evaluates Match blocks for: root
// from an outside address, the login the policy most wants refused.
const probe = "user=root,host=harden-probe.invalid,addr=203.0.113.1"

const cmdTimeout = 10 * time.Second

// Plan implements engine.Step.
func (s *Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	main, ok, err := env.Root.ReadFileIfExists(MainConfig)
	if err != nil {
		return nil, err
	}
	if _, berr := os.Stat(s.opts.Binary); !ok || berr != nil {
		p.Find(&engine.Finding{ID: "sshd.not-installed", Severity: engine.Info, Object: MainConfig,
			Message: "sshd is not installed (no " + MainConfig + " or " + s.opts.Binary + "): nothing to harden", Reason: "sshd"})
		return p, nil
	}
	ws := settings(env.Policy.SSHD)
	want := render(ws)
	cur, _, err := env.Root.ReadFileIfExists(DropIn)
	if err != nil {
		return nil, err
	}
	if same, err := env.Root.Same(DropIn, want, 0o644); err != nil {
		return nil, err
	} else if !same {
		action, before := engine.ActionUpdate, "differs from policy"
		if cur == nil {
			action, before = engine.ActionCreate, ""
		}
		p.Add(&engine.Change{Object: DropIn, Action: action, Before: before, After: "policy settings",
			Diff: textdiff.Lines(string(cur), string(want)), Reason: "sshd",
			Do: s.writeValidated(env, DropIn, want)})
	}
	if fixed, ok := fixInclude(main, includeLine(env.Root)); !ok {
		p.Add(&engine.Change{Object: MainConfig, Action: engine.ActionUpdate, Before: "drop-ins not read first",
			After: "Include sshd_config.d/*.conf first", Diff: textdiff.Lines(string(main), string(fixed)),
			Reason: "sshd (00-harden.conf must be read first)", Do: s.writeValidated(env, MainConfig, fixed)})
	}
	if err := s.planReload(ctx, env, p); err != nil {
		return nil, err
	}
	if len(p.Changes) == 0 {
		// Nothing to write: prove what sshd will actually use.
		s.prove(ctx, env, p, ws)
	}
	return p, nil
}

// Apply implements engine.Step.
func (s *Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

// writeValidated writes one config file, runs `sshd -t` on the whole
// configuration, and puts the old file back (or removes the new one) when
// sshd rejects it, so a broken configuration never stays in place for the
// next sshd start.
func (s *Step) writeValidated(env *engine.Env, name string, data []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		old, existed, err := env.Root.ReadFileIfExists(name)
		if err != nil {
			return err
		}
		oldMode := os.FileMode(0o644)
		if fi, err := env.Root.Stat(name); err == nil {
			oldMode = fi.Mode().Perm()
		}
		if _, err := env.Root.WriteFile(name, data, 0o644); err != nil {
			return err
		}
		verr := s.sshd(ctx, env, nil, "-t", "-f", env.Root.Path(MainConfig))
		if verr == nil {
			return nil
		}
		var rerr error
		if existed {
			_, rerr = env.Root.WriteFile(name, old, oldMode)
		} else {
			_, rerr = env.Root.Remove(name)
		}
		if rerr != nil {
			return fmt.Errorf("sshd -t rejected %s (%w) and restoring the old file failed: %v", name, verr, rerr)
		}
		return fmt.Errorf("sshd -t rejected %s, old file restored: %w", name, verr)
	}
}

// sshd runs the sshd binary and returns its stdout.
func (s *Step) sshd(ctx context.Context, env *engine.Env, stdin []byte, args ...string) error {
	_, err := s.run(ctx, env, stdin, args...)
	return err
}

func (s *Step) run(ctx context.Context, env *engine.Env, stdin []byte, args ...string) ([]byte, error) {
	if err := os.MkdirAll(s.opts.PrivsepDir, 0o755); err != nil {
		return nil, fmt.Errorf("privilege separation directory: %w", err)
	}
	res, err := env.Exec.Run(ctx, command.Cmd{Name: s.opts.Binary, Args: args, Stdin: stdin, Timeout: cmdTimeout})
	if err != nil {
		var ee *command.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %s", strings.Join(append([]string{s.opts.Binary}, args...), " "),
				strings.TrimSpace(string(res.Stderr)))
		}
		return nil, err
	}
	return res.Stdout, nil
}

// parseT reads `sshd -T` output: lower-case keyword, value; keywords that
// repeat (HostKey, AllowUsers) have their values joined by ", ".
func parseT(out []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == "" {
			continue
		}
		if prev, ok := m[k]; ok {
			v = prev + ", " + v
		}
		m[k] = v
	}
	return m
}

// prove compares what sshd will use for a root login from outside with what
// the drop-in says, both as printed by `sshd -T` so that sshd itself
// normalises values (30s -> 30). A keyword set earlier (a file read before
// the drop-in) or by a Match block wins over the drop-in: named as a finding.
func (s *Step) prove(ctx context.Context, env *engine.Env, p *engine.Plan, ws []wanted) {
	cfg := env.Root.Path(MainConfig)
	out, err := s.run(ctx, env, nil, "-T", "-f", cfg, "-C", probe)
	if err != nil {
		p.Find(&engine.Finding{ID: "sshd.config-invalid", Severity: engine.Critical, Object: MainConfig,
			Message: "sshd cannot read its configuration: " + err.Error(), Reason: "sshd"})
		return
	}
	eff := parseT(out)
	ref, err := s.reference(ctx, env, ws, eff["hostkey"])
	if err != nil {
		p.Find(&engine.Finding{ID: "sshd.config-invalid", Severity: engine.Critical, Object: DropIn,
			Message: "sshd rejects harden's own settings: " + err.Error(), Reason: "sshd.settings"})
		return
	}
	dirs, werr := walk(env.Root, MainConfig, 0)
	for _, w := range ws {
		k := strings.ToLower(w.Key)
		wantV, ok := ref[k]
		if !ok || eff[k] == wantV || (k == "permitrootlogin" && wantV == "prohibit-password" && eff[k] == "without-password") {
			continue
		}
		sev := engine.Warning
		if w.Core {
			sev = engine.Critical
		}
		src := "another file or a Match block"
		if werr == nil {
			src = source(dirs, k)
		}
		p.Find(&engine.Finding{ID: "sshd.setting-overridden", Severity: sev, Object: src,
			Message: fmt.Sprintf("sshd uses %s %s for root from outside, policy wants %s: overridden by %s",
				w.Key, eff[k], wantV, src), Reason: w.Reason})
	}
	if werr == nil {
		findMatches(p, dirs, ws, ref)
	}
}

// reference is what `sshd -T` prints for the drop-in's keywords. The
// policy's own keywords have known forms; extra settings are normalised by
// sshd itself (LoginGraceTime 1m -> 60), by running it on the drop-in alone
// with the same host keys. That second exec is skipped when there are no
// extra settings: it is half the step's cost on a converged boot.
func (s *Step) reference(ctx context.Context, env *engine.Env, ws []wanted, hostkeys string) (map[string]string, error) {
	ref := map[string]string{}
	extra := false
	for _, w := range ws {
		if w.Core {
			ref[strings.ToLower(w.Key)] = strings.ToLower(w.Value)
		} else {
			extra = true
		}
	}
	if !extra {
		return ref, nil
	}
	args := []string{"-T", "-f", "/dev/stdin", "-C", probe}
	for _, hk := range strings.Split(hostkeys, ", ") {
		if hk != "" {
			args = append(args, "-h", hk)
		}
	}
	out, err := s.run(ctx, env, render(ws), args...)
	if err != nil {
		return nil, err
	}
	return parseT(out), nil
}

// source names the first place outside harden's drop-in that sets key,
// preferring a Match block (which overrides even a value read earlier).
func source(dirs []directive, key string) string {
	var global string
	for _, d := range dirs {
		if d.Key != key || d.File == DropIn {
			continue
		}
		at := fmt.Sprintf("%s:%d", d.File, d.Line)
		if d.Match != "" {
			return at + " (Match " + d.Match + ")"
		}
		if global == "" {
			global = at
		}
	}
	if global == "" {
		return "a file read before " + DropIn
	}
	return global
}

// findMatches reports Match blocks that set a policy keyword to another
// value: for connections matching them the policy does not hold, even when
// the probe above (root from outside) does not match.
func findMatches(p *engine.Plan, dirs []directive, ws []wanted, ref map[string]string) {
	byKey := map[string]wanted{}
	for _, w := range ws {
		byKey[strings.ToLower(w.Key)] = w
	}
	for _, d := range dirs {
		w, ok := byKey[d.Key]
		if !ok || d.Match == "" || strings.EqualFold(d.Value, w.Value) {
			continue
		}
		sev := engine.Warning
		if w.Core {
			sev = engine.Critical
		}
		p.Find(&engine.Finding{ID: "sshd.match-overrides", Severity: sev, Object: fmt.Sprintf("%s:%d", d.File, d.Line),
			Message: fmt.Sprintf("Match %s in %s:%d sets %s %s (policy: %s) for the connections it matches",
				d.Match, d.File, d.Line, w.Key, d.Value, w.Value), Reason: w.Reason})
	}
}

// planReload plans a reload of sshd when a file changes and sshd runs, and
// warns when the policy sets the listening address on a socket-activated
// sshd (Ubuntu's ssh.socket: Port and ListenAddress there come from the
// socket unit, not from sshd_config).
func (s *Step) planReload(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	_, port := env.Policy.SSHD.Settings["Port"]
	_, listen := env.Policy.SSHD.Settings["ListenAddress"]
	if len(p.Changes) == 0 && !port && !listen {
		return nil
	}
	if s.opts.Systemd == nil {
		p.Find(&engine.Finding{ID: "sshd.not-reloaded", Severity: engine.Warning, Object: "unit ssh.service",
			Message: "no systemd connection configured: sshd not reloaded", Reason: "sshd"})
		return nil
	}
	m, err := s.opts.Systemd(ctx)
	if errors.Is(err, systemd.ErrNoSystemd) {
		if len(p.Changes) > 0 {
			p.Find(&engine.Finding{ID: "sshd.not-reloaded", Severity: engine.Info, Object: "unit ssh.service",
				Message: "no systemd: sshd not reloaded (a running sshd keeps its old settings until restarted)", Reason: "sshd"})
		}
		return nil
	}
	if err != nil {
		return err
	}
	units, err := m.ListUnits(ctx, "ssh.service", "sshd.service", "ssh.socket")
	if err != nil {
		return err
	}
	for _, u := range units {
		switch {
		case u.Name == "ssh.socket" && u.Active() && (port || listen):
			p.Find(&engine.Finding{ID: "sshd.socket-activated", Severity: engine.Warning, Object: "unit ssh.socket",
				Message: "sshd is socket-activated (ssh.socket): Port/ListenAddress in sshd_config are not used; set ListenStream= in an ssh.socket drop-in",
				Reason:  "sshd.settings"})
		case u.Name != "ssh.socket" && u.Active() && len(p.Changes) > 0:
			name := u.Name
			p.Add(&engine.Change{Object: "unit " + name, Action: engine.ActionReload, Before: "old settings",
				After: "new settings", Reason: "sshd", Do: func(ctx context.Context) error {
					_, err := m.ReloadOrRestart(ctx, name)
					return err
				}})
			return nil
		}
	}
	return nil
}
