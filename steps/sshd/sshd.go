// Package sshd is the step that makes sshd refuse root and password logins and applies the
// session and crypto baseline: it writes /etc/ssh/sshd_config.d/00-harden.conf from the
// policy, makes sure sshd_config includes the drop-ins before anything else, validates every
// file with `sshd -t` while it is still staged (a file sshd rejects never reaches its name),
// proves the effective values with `sshd -T`, reloads sshd over D-Bus (through systemd's
// socket generator when ssh.socket is the listener), and shuts systemd-ssh-generator's
// AF_VSOCK and AF_UNIX listeners, which never cross the firewall, unless the policy allows
// them.
package sshd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/ownedunits"
	"github.com/harden-dev/harden/internal/systemd"
	"github.com/harden-dev/harden/internal/textdiff"
)

// Options configure the step.
type Options struct {
	// Systemd opens the connection used to reload sshd (nil: never reload,
	// reported as a finding).
	Systemd systemd.Opener
	// Binary is the sshd program (default /usr/sbin/sshd). It runs on the
	// host even under a test root: -f points it at a view of the root's config.
	Binary string
	// SSH is the ssh client (default /usr/bin/ssh), asked which algorithms this
	// OpenSSH supports (`ssh -Q`).
	SSH string
	// Keygen is ssh-keygen (default /usr/bin/ssh-keygen): host keys on a machine
	// that has none, throwaway keys to check an image tree.
	Keygen string
	// PrivsepDir is sshd's compiled-in privilege separation directory; `sshd
	// -t` and `-T` (before OpenSSH 9.6's -G) refuse to run without it. systemd
	// creates it (RuntimeDirectory=sshd) only while ssh.service runs; harden's
	// own units ask systemd for it too, and elsewhere (a run by hand while sshd
	// is stopped) harden creates it when it needs it, as a planned change.
	// Default /run/sshd.
	PrivsepDir string
	// Offline means the root is an image tree, not this machine: no host keys
	// are made in it (every clone would share them), and the crypto lines wait
	// for the machine's own sshd at its first boot (the builder's OpenSSH may
	// support other algorithms than the image's).
	Offline bool
}

// Step is the sshd step.
type Step struct {
	opts Options

	mu      sync.Mutex
	algos   algorithms    // `ssh -Q` answers, once per step
	dumpCfg bool          // whether sshd has -G (OpenSSH 9.6+), once dumpRun is closed
	dumpRun chan struct{} // the -G probe: nil until started, closed when done
	asked   bool          // the answers came from running the binaries (see ProbeRecord)
	loaded  bool          // ProbeRecord was tried

	answersKnown map[string]map[string]string // `sshd -T` answers from ProbeRecord
	answersUsed  map[string]map[string]string // the ones this run used, recorded by Record
	answersAsked bool                         // one of them came from running sshd
}

// New returns the sshd step.
func New(opts Options) *Step {
	if opts.Binary == "" {
		opts.Binary = "/usr/sbin/sshd"
	}
	if opts.SSH == "" {
		opts.SSH = "/usr/bin/ssh"
	}
	if opts.Keygen == "" {
		opts.Keygen = "/usr/bin/ssh-keygen"
	}
	if opts.PrivsepDir == "" {
		opts.PrivsepDir = "/run/sshd"
	}
	return &Step{opts: opts}
}

// Name implements engine.Step.
func (s *Step) Name() string { return "sshd" }

// OwnedUnits are the systemd units this step manages; the services step never masks them.
func OwnedUnits() []string { return ownedunits.Of("sshd") }

// probe is the connection `sshd -T -C` evaluates Match blocks for: root
// from an outside address, the login the policy most wants refused.
const probe = "user=root,host=harden-probe.invalid,addr=203.0.113.1"

const cmdTimeout = 10 * time.Second

// Plan implements engine.Step. It only reads: every directory, key and file it needs is a
// planned change, so a dry-run creates nothing anywhere.
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
	dirs, werr := walk(env.Root, MainConfig, 0)
	keys := hostKeys(env.Root, dirs)
	if !s.loaded && !s.opts.Offline {
		s.loaded = true
		s.loadProbes(env)
	}
	probed := s.probeDump(ctx, env) // runs beside planCrypto's ssh -Q queries
	crypto, err := s.planCrypto(ctx, env, p, keys)
	<-probed // done within Plan: the plan's context ends with it
	if err != nil {
		return nil, err
	}
	ws := settings(env.Policy.SSHD, crypto)
	want := render(ws)

	var writes []*engine.Change
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
		writes = append(writes, &engine.Change{Object: DropIn, Action: action, Before: before, After: "policy settings",
			Diff: textdiff.Lines(string(cur), string(want)), Reason: "sshd",
			Do: s.writeValidated(env, DropIn, want)})
	}
	if fixed, ok := fixInclude(main, env.Root.Dir()); !ok {
		writes = append(writes, &engine.Change{Object: MainConfig, Action: engine.ActionUpdate, Before: "drop-ins not read first",
			After: includeLine + " first", Diff: textdiff.Lines(string(main), string(fixed)),
			Reason: "sshd (00-harden.conf must be read first)", Do: s.writeValidated(env, MainConfig, fixed)})
	}
	prereqs, err := s.planPrereqs(ctx, env, keys, len(writes) > 0)
	if err != nil {
		return nil, err
	}
	for _, c := range append(prereqs, writes...) {
		p.Add(c)
	}
	gen := s.planGenerator(env, p)
	listenChanged := listenLines(cur) != listenLines(want)
	if err := s.planUnits(ctx, env, p, len(writes) > 0, listenChanged && len(writes) > 0, gen); err != nil {
		return nil, err
	}
	if !env.Policy.SSHD.PermitRootLogin && werr == nil {
		checkLoginKeys(env.Root, p, dirs)
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

// planCrypto returns the crypto lines the policy asks for, from what this OpenSSH supports.
func (s *Step) planCrypto(ctx context.Context, env *engine.Env, p *engine.Plan, keys []hostKey) ([]wanted, error) {
	pol := env.Policy.SSHD
	if pol.Crypto != "modern" {
		return nil, nil
	}
	if s.opts.Offline {
		p.Find(&engine.Finding{ID: "sshd.crypto-at-boot", Severity: engine.Info, Object: DropIn,
			Message: "image tree: the key exchange, cipher, MAC and host key algorithm lines are written at the machine's first boot, " +
				"from what its own sshd supports (this host's OpenSSH may support others)", Reason: "sshd.crypto"})
		return nil, nil
	}
	a, err := s.supported(ctx, env)
	if err != nil {
		p.Find(&engine.Finding{ID: "sshd.crypto-unknown", Severity: engine.Warning, Object: s.opts.SSH,
			Message: "cannot tell which algorithms this OpenSSH supports, crypto baseline not written: " + err.Error(), Reason: "sshd.crypto"})
		return nil, nil
	}
	var types []string
	for _, k := range keys {
		if k.Exists {
			types = append(types, k.Type)
		}
	}
	ws, keptECDSA := cryptoSettings(a, pol.AllowECDSAHostKey, types)
	if keptECDSA {
		p.Find(&engine.Finding{ID: "sshd.only-ecdsa-host-key", Severity: engine.Warning, Object: "host keys",
			Message: "the only host keys are ECDSA (NIST P-256): still offered, or nobody could connect; make an Ed25519 key (ssh-keygen -t ed25519)",
			Reason:  "sshd.allow_ecdsa_host_key"})
	} else if !pol.AllowECDSAHostKey {
		for _, k := range keys {
			if k.Exists && strings.HasPrefix(k.Type, "ecdsa-") {
				p.Find(&engine.Finding{ID: "sshd.ecdsa-host-key-not-offered", Severity: engine.Info, Object: k.Path,
					Message: "the ECDSA host key is kept on disk but no longer offered; a client that pinned only it sees a new host key " +
						"(OpenSSH 8.5+ clients learn the Ed25519 key on their next login before, UpdateHostKeys); sshd.allow_ecdsa_host_key: true keeps offering it",
					Reason: "sshd.allow_ecdsa_host_key"})
			}
		}
	}
	return ws, nil
}

// planPrereqs are the changes sshd -t and -T need before they can run: the privilege
// separation directory, and host keys on a machine that has none (sshd could not start
// without them either; an image tree gets none, see Offline).
func (s *Step) planPrereqs(ctx context.Context, env *engine.Env, keys []hostKey, writes bool) ([]*engine.Change, error) {
	var out []*engine.Change
	needRun := writes || !s.canDump(ctx, env)
	if _, err := os.Stat(s.opts.PrivsepDir); errors.Is(err, os.ErrNotExist) && needRun {
		dir := s.opts.PrivsepDir
		out = append(out, &engine.Change{Object: dir, Action: engine.ActionCreate, After: "directory, root, 0755",
			Reason: "sshd (sshd -t and -T need its privilege separation directory; systemd makes it only while ssh.service runs)",
			Do: func(context.Context) error {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				return os.Chmod(dir, 0o755)
			}})
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if !s.opts.Offline && !anyExists(keys) {
		root := env.Root.Dir()
		out = append(out, &engine.Change{Object: "/etc/ssh/ssh_host_*_key", Action: engine.ActionCreate,
			Before: "no host key", After: "host keys (ssh-keygen -A)",
			Reason: "sshd (cannot start or be checked without a host key)",
			Do: func(ctx context.Context) error {
				args := []string{"-A"}
				if !(root == "/" || root == "") {
					args = append(args, "-f", root)
				}
				_, err := env.Exec.Run(ctx, command.Cmd{Name: s.opts.Keygen, Args: args, Timeout: time.Minute})
				return err
			}})
	}
	return out, nil
}

// canDump reports whether sshd has -G (OpenSSH 9.6+): it prints the configuration without
// the privilege separation directory or host keys, so a converged plan creates nothing.
func (s *Step) canDump(ctx context.Context, env *engine.Env) bool {
	<-s.probeDump(ctx, env)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dumpCfg
}

// probeDump starts the -G probe once per step, in the background, and returns a channel
// closed when it is done. Plan starts it first thing, so that it runs while the `ssh -Q`
// queries do: each is a process start.
func (s *Step) probeDump(ctx context.Context, env *engine.Env) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dumpRun == nil {
		done := make(chan struct{})
		s.dumpRun = done
		go func() {
			_, err := env.Exec.Run(ctx, command.Cmd{Name: s.opts.Binary, Args: []string{"-G", "-T", "-f", "/dev/null"}, Timeout: cmdTimeout})
			s.mu.Lock()
			s.dumpCfg, s.asked = err == nil, true
			s.mu.Unlock()
			close(done)
		}()
	}
	return s.dumpRun
}

// checkArgs are the sshd arguments to check a view: -t (or -T) with -f, plus a throwaway
// host key when the root has none (an image tree).
func (s *Step) checkArgs(ctx context.Context, env *engine.Env, v *view, mode string) ([]string, error) {
	args := []string{mode}
	if mode == "-T" && s.canDump(ctx, env) {
		args = append(args, "-G")
	}
	args = append(args, "-f", v.main)
	if s.opts.Offline && !anyExists(hostKeys(env.Root, mustWalk(env))) {
		key, err := v.throwawayKey(ctx, env, s.opts.Keygen)
		if err != nil {
			return nil, err
		}
		args = append(args, "-h", key)
	}
	return args, nil
}

func mustWalk(env *engine.Env) []directive {
	d, _ := walk(env.Root, MainConfig, 0)
	return d
}

// writeValidated writes one config file through a staged temporary next to it: `sshd -t`
// checks the whole configuration as sshd will read it with the staged content in place, and
// only then is the file renamed over the old one. Killed at any point, the next sshd start
// reads the old file or the checked new one, never an unchecked one.
func (s *Step) writeValidated(env *engine.Env, name string, data []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := env.Root.WriteFileChecked(name, data, 0o644, func(staged string) error {
			content, err := os.ReadFile(staged)
			if err != nil {
				return err
			}
			v, err := newView(env.Root, map[string][]byte{name: content})
			if err != nil {
				return err
			}
			defer v.Close()
			args, err := s.checkArgs(ctx, env, v, "-t")
			if err != nil {
				return err
			}
			if err := s.sshd(ctx, env, nil, args...); err != nil {
				return fmt.Errorf("sshd -t rejected %s, not put in place: %w", name, err)
			}
			return nil
		})
		return err
	}
}

// sshd runs the sshd binary.
func (s *Step) sshd(ctx context.Context, env *engine.Env, stdin []byte, args ...string) error {
	_, err := s.run(ctx, env, stdin, args...)
	return err
}

func (s *Step) run(ctx context.Context, env *engine.Env, stdin []byte, args ...string) ([]byte, error) {
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

// parseT reads `sshd -T` output: keyword (lower-cased: OpenSSH 10.4+ prints some in mixed
// case), value; keywords that repeat (HostKey, AllowUsers) have their values joined by ", ".
func parseT(out []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		k = strings.ToLower(k)
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

// sameValue compares two `sshd -T` values: case-insensitively (keywords and their yes/no
// values change case across OpenSSH versions), and PermitRootLogin's old and new names for
// prohibit-password as one.
func sameValue(key, a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	norm := func(v string) string {
		if key == "permitrootlogin" && strings.EqualFold(v, "without-password") {
			return "prohibit-password"
		}
		return strings.ToLower(v)
	}
	return norm(a) == norm(b)
}

// prove compares what sshd will use for a root login from outside with what
// the drop-in says, both as printed by `sshd -T` so that sshd itself
// normalises values (30s -> 30). A keyword set earlier (a file read before
// the drop-in) or by a Match block wins over the drop-in: named as a finding.
func (s *Step) prove(ctx context.Context, env *engine.Env, p *engine.Plan, ws []wanted) {
	v, err := newView(env.Root, nil)
	if err != nil {
		p.Find(&engine.Finding{ID: "sshd.config-invalid", Severity: engine.Critical, Object: MainConfig,
			Message: "cannot read sshd's configuration: " + err.Error(), Reason: "sshd"})
		return
	}
	defer v.Close()
	args, err := s.checkArgs(ctx, env, v, "-T")
	if err == nil {
		args = append(args, "-C", probe)
		var key string
		if key, err = effectiveKey(env.Root, v, args); err == nil {
			var eff map[string]string
			eff, err = s.askT(ctx, env, key, nil, append(keywords(ws), "hostkey"), args...)
			if err == nil {
				s.compare(ctx, env, p, ws, eff)
				return
			}
		}
	}
	p.Find(&engine.Finding{ID: "sshd.config-invalid", Severity: engine.Critical, Object: MainConfig,
		Message: "sshd cannot read its configuration: " + err.Error(), Reason: "sshd"})
}

// accountFiles decide which groups the probe user (root) is in, for `Match Group`.
var accountFiles = []string{"/etc/passwd", "/etc/group"}

// effectiveKey is the answerKey of prove's question: the arguments with the view's
// (temporary) path as the machine's, every configuration file sshd reads, the account
// files, and the host keys.
func effectiveKey(root fsroot.Root, v *view, args []string) (string, error) {
	named := slices.Clone(args)
	for i, a := range named {
		if a == v.main {
			named[i] = MainConfig
		}
	}
	var inputs []configFile
	dirs, err := walkFiles(root, MainConfig, 0, func(file string, data []byte) {
		inputs = append(inputs, configFile{path: file, data: data})
	})
	if err != nil {
		return "", err
	}
	// `Match Group` is decided by the probe user's groups, which the files do not say.
	for _, f := range accountFiles {
		data, _, err := root.ReadFileIfExists(f)
		if err != nil {
			return "", err
		}
		inputs = append(inputs, configFile{path: f, data: data})
	}
	for _, k := range hostKeys(root, dirs) {
		id, err := identify(root.Path(k.Path))
		if err != nil {
			id = binaryID{} // absent or unreadable: sshd -T without -G fails on it, asked again
		}
		inputs = append(inputs, configFile{path: k.Path, data: fmt.Append(nil, id)})
	}
	return answerKey(named, nil, inputs), nil
}

// keywords are the lower-case sshd keywords of ws: what the step reads from `sshd -T`.
func keywords(ws []wanted) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = strings.ToLower(w.Key)
	}
	return out
}

func (s *Step) compare(ctx context.Context, env *engine.Env, p *engine.Plan, ws []wanted, eff map[string]string) {
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
		if !ok || sameValue(k, eff[k], wantV) {
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
// policy's own keywords have known forms; the others are normalised by
// sshd itself (LoginGraceTime 1m -> 60), by running it on the drop-in alone
// with the same host keys. The answer depends only on the binary, the drop-in and the
// arguments, so it is kept in ProbeRecord, as prove's is.
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
	args := []string{"-T"}
	if s.canDump(ctx, env) {
		args = append(args, "-G")
	}
	args = append(args, "-f", "/dev/stdin", "-C", probe)
	for _, hk := range strings.Split(hostkeys, ", ") {
		if hk != "" {
			args = append(args, "-h", hk)
		}
	}
	stdin := render(ws)
	normalised, err := s.askT(ctx, env, answerKey(args, stdin, nil), stdin, keywords(ws), args...)
	if err != nil {
		return nil, err
	}
	for k, v := range normalised {
		if _, core := ref[k]; !core {
			ref[k] = v
		}
	}
	return ref, nil
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
