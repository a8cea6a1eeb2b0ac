package clamav

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/textdiff"
)

// setting is one key harden owns in a ClamAV config file.
type setting struct {
	key    string
	values []string // nil: the key must not be set
	isBool bool     // yes/no, true/false and 1/0 mean the same to clamd
	reason string   // policy field
}

// clamdSettings are the keys harden owns in clamd.conf. user is clamd's User (the exclude
// must name the user clamd scans as, or clamonacc would scan clamd's own reads forever).
func (s *Step) clamdSettings(c policy.ClamAV, user string) ([]setting, error) {
	var include []string
	for i, p := range c.OnAccessPaths {
		if err := policy.CheckOnAccessPath(p); err != nil {
			return nil, fmt.Errorf("clamav.on_access_paths[%d]: %w", i, err)
		}
		include = append(include, path.Clean(p))
	}
	var exclude []string
	for i, p := range c.ExcludePaths {
		if !path.IsAbs(p) || strings.ContainsAny(p, " \t\r\n") {
			return nil, fmt.Errorf("clamav.exclude_paths[%d]: want an absolute path without blanks, got %q", i, p)
		}
		exclude = append(exclude, path.Clean(p))
	}
	onAccess := len(include) > 0
	return []setting{
		{key: "OnAccessIncludePath", values: include, reason: "clamav.on_access_paths"},
		{key: "OnAccessExcludePath", values: exclude, reason: "clamav.exclude_paths"},
		// clamonacc refuses to start with a local clamd unless some exclude is set; clamd's
		// own user is the right one: its reads are the scans.
		{key: "OnAccessExcludeUname", values: when(onAccess, user), reason: "clamav.on_access_paths"},
		{key: "OnAccessPrevention", values: when(onAccess, yesNo(c.Prevention)), isBool: true, reason: "clamav.prevention"},
		// Scan files when they are created or moved into a watched directory, not only when
		// opened: the policy asks for scanning of creation and modification.
		{key: "OnAccessExtraScanning", values: when(onAccess, "yes"), isBool: true, reason: "clamav.on_access_paths"},
		// clamonacc refuses to watch the directory clamd writes its temporary files to
		// (default /tmp, which the policy watches): clamd's go to a directory of its own.
		{key: "TemporaryDirectory", values: when(onAccess, ClamdTempDir), reason: "clamav.on_access_paths"},
		// clamd runs VirusEvent through /bin/sh -c with CLAM_VIRUSEVENT_FILENAME and
		// CLAM_VIRUSEVENT_VIRUSNAME in the environment. The command is fixed text: the file
		// name (attacker-chosen) is never part of it.
		{key: "VirusEvent", values: []string{s.opts.HardenPath + " alert virus"}, reason: "clamav (detections alert at once)"},
	}, nil
}

// freshclamSettings are the keys harden owns in freshclam.conf. PrivateMirror overrides
// DatabaseMirror, DNSDatabaseInfo and ScriptedUpdates, so Debian's CDN lines can stay.
func freshclamSettings(c policy.ClamAV) []setting {
	return []setting{
		{key: "PrivateMirror", values: when(c.Freshclam.Mirror != "", strings.TrimRight(c.Freshclam.Mirror, "/")), reason: "clamav.freshclam.mirror"},
	}
}

// clamdUser is the user clamd runs as (clamd.conf User, Debian's default clamav).
func clamdUser(f *kvconf.File) string {
	if u := f.Get("User"); len(u) > 0 && u[len(u)-1] != "" {
		return u[len(u)-1]
	}
	return "clamav"
}

func when(ok bool, v string) []string {
	if !ok {
		return nil
	}
	return []string{v}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// planClamd plans clamd.conf. It returns nil (and a finding) when clamav-daemon is not
// installed: harden configures ClamAV, the image installs it.
func (s *Step) planClamd(env *engine.Env, p *engine.Plan) (*kvconf.File, error) {
	data, ok, err := env.Root.ReadFileIfExists(ClamdConf)
	if err != nil || !ok {
		if err == nil {
			p.Find(&engine.Finding{ID: "clamav.not-installed", Severity: engine.Critical, Object: ClamdConf,
				Message: "clamd.conf is missing: clamav-daemon is not installed (the policy requires on-access scanning)", Reason: "clamav.enabled"})
		}
		return nil, err
	}
	f := kvconf.Parse(data, kvconf.Space)
	settings, err := s.clamdSettings(env.Policy.ClamAV, clamdUser(f))
	if err != nil {
		return nil, err
	}
	c, err := planFile(env, ClamdConf, data, f, settings)
	if err != nil || c == nil {
		return f, err
	}
	write := c.Do
	c.Do = func(ctx context.Context) error {
		if err := write(ctx); err != nil {
			return err
		}
		for _, u := range restartUnits {
			env.Restarts.Request(u, "clamd.conf changed: "+c.After)
		}
		if len(env.Steps) > 0 && !env.Runs("services") {
			env.Log.Warnf("clamd.conf changed; clamd and clamonacc are restarted by the services step, which this run does not run")
		}
		return nil
	}
	p.Add(c)
	if len(env.Steps) > 0 && !env.Runs("services") {
		// The restarts are the services step's, and this run does not run it
		// (`--only clamav`): say so, or a running clamd silently keeps its old settings.
		p.Find(&engine.Finding{ID: "clamav.restart-not-run", Severity: engine.Warning, Object: "unit " + strings.Join(restartUnits, ", unit "),
			Message: "clamd.conf changes, but the services step, which restarts clamd and clamonacc, is not part of this run: " +
				"a running clamd keeps its old settings until `harden apply --only services` or its next start", Reason: "clamav"})
	}
	return f, nil
}

func (s *Step) planFreshclamConf(env *engine.Env, p *engine.Plan) (*kvconf.File, error) {
	data, ok, err := env.Root.ReadFileIfExists(FreshclamConf)
	if err != nil || !ok {
		if err == nil {
			p.Find(&engine.Finding{ID: "clamav.freshclam-not-installed", Severity: engine.Critical, Object: FreshclamConf,
				Message: "freshclam.conf is missing: clamav-freshclam is not installed, signatures cannot be updated", Reason: "clamav.freshclam"})
		}
		return nil, err
	}
	f := kvconf.Parse(data, kvconf.Space)
	c, err := planFile(env, FreshclamConf, data, f, freshclamSettings(env.Policy.ClamAV))
	if c != nil {
		p.Add(c)
	}
	return f, err
}

// planFile applies settings to f and, when the file changes, returns one change that writes
// it. One change per file (not per key) because the file is written once, atomically: clamd
// never sees half of harden's settings. Before/After name the keys; Diff shows the lines.
func planFile(env *engine.Env, name string, data []byte, f *kvconf.File, settings []setting) (*engine.Change, error) {
	var keys, reasons, before, after []string
	for _, st := range settings {
		cur := f.Get(st.key)
		if same(cur, st.values, st.isBool) {
			continue
		}
		if _, err := f.Set(st.key, st.values...); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		keys = append(keys, st.key)
		before = append(before, show(st.key, cur))
		after = append(after, show(st.key, st.values))
		if !contains(reasons, st.reason) {
			reasons = append(reasons, st.reason)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	out := f.Bytes()
	perm := fs.FileMode(0o644)
	if fi, err := env.Root.Stat(name); err == nil {
		perm = fi.Mode().Perm() // Debian's freshclam.conf is 0444: keep it
	}
	return &engine.Change{
		Object: name, Action: engine.ActionUpdate,
		Before: strings.Join(before, "; "), After: strings.Join(after, "; "),
		Diff:   textdiff.Lines(string(data), string(out)),
		Reason: strings.Join(reasons, ", "),
		Do: func(context.Context) error {
			_, err := env.Root.WriteFile(name, out, perm)
			return err
		},
	}, nil
}

func show(key string, values []string) string {
	if len(values) == 0 {
		return key + " (unset)"
	}
	return key + " " + strings.Join(values, ",")
}

// same compares a key's current values with the wanted ones; booleans compare by meaning so
// Debian's "true" is not rewritten to "yes" on every boot.
func same(cur, want []string, isBool bool) bool {
	if len(cur) != len(want) {
		return false
	}
	for i := range cur {
		a, b := cur[i], want[i]
		if isBool {
			a, b = normBool(a), normBool(b)
		}
		if a != b {
			return false
		}
	}
	return true
}

func normBool(v string) string {
	switch strings.ToLower(v) {
	case "yes", "true", "1", "on":
		return "yes"
	case "no", "false", "0", "off":
		return "no"
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
