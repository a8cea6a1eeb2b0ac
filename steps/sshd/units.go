package sshd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/systemd"
)

// systemd 256+'s systemd-ssh-generator binds sshd, at every boot and daemon-reload, to
// AF_VSOCK port 22 (in a VM with vsock), to /run/ssh-unix-local/socket (always), to
// /run/host/unix-export/ssh (in a container) and to whatever systemd.ssh_listen= or the
// ssh.listen credential names. None of these crosses nftables.
//
// harden shuts them by masking the generator itself: an empty file of the same name in
// /etc/systemd/system-generators overrides it (systemd.generator(7)). Of the ways to do it,
// this one
//   - survives reboot (a file under /etc) and is idempotent (the file is there or not);
//   - covers every listener the generator makes, including ones added by a credential;
//   - works in an image tree under --root, where there is no D-Bus to mask units with;
//   - needs no kernel command line (systemd.ssh_auto=no lives in the boot loader, which
//     harden does not own: cloud images, direct kernel boot and Fly all set it differently).
//
// Masking the generated sockets instead would leave the generator running and a new
// listener (ssh.listen) unmasked.
const generatorMask = "/etc/systemd/system-generators/systemd-ssh-generator"

var generatorPaths = []string{
	"/usr/lib/systemd/system-generators/systemd-ssh-generator",
	"/lib/systemd/system-generators/systemd-ssh-generator",
}

// generatorSockets are the sockets systemd-ssh-generator writes.
var generatorSockets = []string{"sshd-vsock.socket", "sshd-unix-local.socket", "sshd-unix-export.socket", "sshd-extra.socket"}

// genPlan is what planGenerator decided.
type genPlan struct {
	changed bool // the mask was created or removed: systemd must re-run its generators
	off     bool // the policy shuts the generator's sockets
}

// planGenerator masks systemd-ssh-generator, or removes harden's mask when the policy allows
// the generator.
func (s *Step) planGenerator(env *engine.Env, p *engine.Plan) genPlan {
	g := genPlan{off: !env.Policy.SSHD.SystemdSSHGenerator}
	installed := false
	for _, path := range generatorPaths {
		if _, err := env.Root.Stat(path); err == nil {
			installed = true
		}
	}
	mask := maskState(env)
	switch {
	case g.off && installed && mask != maskEmpty && mask != maskDevNull:
		g.changed = true
		p.Add(&engine.Change{Object: generatorMask, Action: engine.ActionCreate,
			Before: "systemd-ssh-generator binds sshd to AF_VSOCK and /run/ssh-unix-local/socket, which bypass the firewall",
			After:  "masked (an empty file overrides the generator)", Reason: "sshd.systemd_ssh_generator",
			Do: func(context.Context) error {
				_, err := env.Root.WriteFile(generatorMask, nil, 0o644)
				return err
			}})
	case !g.off && mask == maskEmpty:
		g.changed = true
		p.Add(&engine.Change{Object: generatorMask, Action: engine.ActionDelete, Before: "masked", After: "systemd-ssh-generator runs",
			Reason: "sshd.systemd_ssh_generator (allowed)", Do: func(context.Context) error {
				_, err := env.Root.Remove(generatorMask)
				return err
			}})
	case !g.off && mask == maskDevNull:
		p.Find(&engine.Finding{ID: "sshd.generator-masked", Severity: engine.Info, Object: generatorMask,
			Message: "systemd-ssh-generator is masked by a link to /dev/null that harden did not make; left alone",
			Reason:  "sshd.systemd_ssh_generator"})
	}
	return g
}

type maskKind int

const (
	maskNone maskKind = iota
	maskEmpty
	maskDevNull
	maskOther // a real generator of the same name: an admin's override
)

func maskState(env *engine.Env) maskKind {
	fi, err := env.Root.Lstat(generatorMask)
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return maskNone
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if t, err := os.Readlink(env.Root.Path(generatorMask)); err == nil && t == "/dev/null" {
			return maskDevNull
		}
		return maskOther
	}
	if fi.Mode().IsRegular() && fi.Size() == 0 {
		return maskEmpty
	}
	return maskOther
}

// genReloadReason is why systemd reloads after the generator mask changed.
const genReloadReason = "sshd.systemd_ssh_generator (re-run generators without systemd-ssh-generator)"

// planUnits plans what systemd must do after the files changed:
//   - a daemon-reload when Port/ListenAddress changed on a socket-activated sshd (Ubuntu's
//     sshd-socket-generator turns them into ssh.socket's ListenStream=), then a restart of
//     ssh.socket so it listens there;
//   - a daemon-reload when the generator mask changed: queued for the services step's
//     reload when that step runs after this one, made here when it does not;
//   - a stop of every generator socket still listening when the policy shuts them;
//   - try-reload-or-restart of ssh.service: reloaded if it runs, left alone if not (a
//     socket-activated sshd starts with the new config on its next connection).
func (s *Step) planUnits(ctx context.Context, env *engine.Env, p *engine.Plan, configChanged, listenChanged bool, gen genPlan) error {
	if !configChanged && !gen.changed && !gen.off {
		return nil
	}
	if s.opts.Systemd == nil {
		if configChanged {
			p.Find(&engine.Finding{ID: "sshd.not-reloaded", Severity: engine.Warning, Object: "unit ssh.service",
				Message: "no systemd connection configured: sshd not reloaded", Reason: "sshd"})
		}
		return nil
	}
	m, err := s.opts.Systemd(ctx)
	if errors.Is(err, systemd.ErrNoSystemd) {
		if configChanged || gen.changed {
			p.Find(&engine.Finding{ID: "sshd.not-reloaded", Severity: engine.Info, Object: "unit ssh.service",
				Message: "no systemd: sshd not reloaded (a running sshd keeps its old settings until restarted; the generator mask holds from the next boot)", Reason: "sshd"})
		}
		return nil
	}
	if err != nil {
		return err
	}
	names := append([]string{"ssh.service", "sshd.service", "ssh.socket"}, generatorSockets...)
	units, err := m.ListUnits(ctx, names...)
	if err != nil {
		return err
	}
	byName := map[string]systemd.Unit{}
	for _, u := range units {
		byName[u.Name] = u
	}
	socket := byName["ssh.socket"]
	socketActive := socket.Exists() && socket.Active()

	relisten := configChanged && listenChanged && socketActive
	switch {
	case relisten:
		// ssh.socket restarts right after: it must already have the new ListenStream=.
		p.Add(&engine.Change{Object: "systemd manager (daemon-reload)", Action: engine.ActionReload,
			Reason: "sshd.settings (sshd-socket-generator turns Port/ListenAddress into ssh.socket's ListenStream=)",
			Do:     func(ctx context.Context) error { return m.DaemonReload(ctx) }})
	case gen.changed && env.Runs("services"):
		// Nothing here waits for the generators to run again (the sockets are stopped
		// below), so the services step's one reload serves: a first boot pays one
		// daemon-reload, not two (12-15 s each under TCG).
		why := genReloadReason
		p.Add(&engine.Change{Object: "systemd manager (daemon-reload)", Action: engine.ActionQueue,
			After: "made by the services step, with its own", Reason: why,
			Do: func(context.Context) error {
				env.Restarts.RequestReload(why)
				return nil
			}})
	case gen.changed:
		p.Add(&engine.Change{Object: "systemd manager (daemon-reload)", Action: engine.ActionReload, Reason: genReloadReason,
			Do: func(ctx context.Context) error { return m.DaemonReload(ctx) }})
	}
	if relisten {
		p.Add(&engine.Change{Object: "unit ssh.socket", Action: engine.ActionRestart, Before: "old listen addresses",
			After: "Port/ListenAddress of sshd_config", Reason: "sshd.settings",
			Do: func(ctx context.Context) error {
				_, err := m.Restart(ctx, "ssh.socket")
				return err
			}})
	}
	if gen.off {
		var active []string
		for _, n := range generatorSockets {
			if u, ok := byName[n]; ok && u.Active() {
				active = append(active, n)
			}
		}
		sort.Strings(active)
		for _, n := range active {
			name := n
			p.Add(&engine.Change{Object: "unit " + name, Action: engine.ActionStop, Before: "listening (SSH that bypasses the firewall)",
				After: "stopped", Reason: "sshd.systemd_ssh_generator",
				Do: func(ctx context.Context) error {
					_, err := m.Stop(ctx, name)
					return err
				}})
		}
	}
	if !configChanged {
		return nil
	}
	for _, n := range []string{"ssh.service", "sshd.service"} {
		u, ok := byName[n]
		if !ok || !u.Exists() || !(u.Active() || socketActive) {
			continue
		}
		name := n
		p.Add(&engine.Change{Object: "unit " + name, Action: engine.ActionReload, Before: "old settings",
			After: "new settings (try-reload-or-restart)", Reason: "sshd", Do: func(ctx context.Context) error {
				_, err := m.TryReloadOrRestart(ctx, name)
				return err
			}})
		break
	}
	return nil
}

// listenLines are a drop-in's Port, ListenAddress and AddressFamily lines: what decides
// where sshd (or ssh.socket, through the generator) listens.
func listenLines(data []byte) string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		kw, args := keyword(sc.Text())
		switch strings.ToLower(kw) {
		case "port", "listenaddress", "addressfamily":
			out = append(out, strings.ToLower(kw)+" "+args)
		}
	}
	return strings.Join(out, "\n")
}
