package packages

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/engine"
)

// snapshot is the package set saved at the end of a run.
type snapshot struct {
	Saved    time.Time         `json:"saved"`
	Image    string            `json:"image,omitempty"` // the image build stamp then
	Packages map[string]string `json:"packages"`        // name:arch -> version
}

func readSnapshot(env *engine.Env) (*snapshot, error) {
	data, ok, err := env.Root.ReadFileIfExists(SnapshotPath)
	if err != nil || !ok {
		return nil, err
	}
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		// A damaged snapshot is replaced by a fresh baseline rather than blocking the step;
		// the log says so (the deltas of this run are lost, not invented).
		env.Log.Warnf("%s: unreadable, starting a new baseline: %v", SnapshotPath, err)
		return nil, nil
	}
	return &s, nil
}

func imageStamp(env *engine.Env) string {
	data, _, _ := env.Root.ReadFileIfExists(ImageStampPath)
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSpace(line)
	if len(line) > 100 {
		line = line[:100]
	}
	return line
}

func setOf(installed []Pkg) map[string]string {
	m := make(map[string]string, len(installed))
	for _, p := range installed {
		m[p.Key()] = p.Version
	}
	return m
}

func saveSnapshot(env *engine.Env, installed []Pkg) error {
	data, err := json.MarshalIndent(snapshot{Saved: env.Now().UTC(), Image: imageStamp(env), Packages: setOf(installed)}, "", " ")
	if err != nil {
		return err
	}
	return env.Root.WriteState(SnapshotPath, append(data, '\n'), 0o644)
}

// planUpdateLog compares the package set with the last run's. Each package installed,
// removed, upgraded or downgraded since is its own change, so each reaches the journal as
// one entry with stable fields (HARDEN_OBJECT=package openssl:amd64, HARDEN_ACTION=upgraded,
// HARDEN_BEFORE/AFTER = versions) that an auditor can search; a final change saves the new
// set. Changes and not findings: saving the set is what harden changes, and once saved the
// next plan is empty (findings would repeat every run). Plan stays read-only: nothing is
// saved until Apply.
//
// Packages being purged in this run are logged by their purge changes; the snapshot is then
// saved after the purge, so they are not logged again as removed at the next run.
func planUpdateLog(env *engine.Env, p *engine.Plan, installed []Pkg, purging map[string]bool) error {
	prev, err := readSnapshot(env)
	if err != nil {
		return err
	}
	cur, image := setOf(installed), imageStamp(env)
	if prev == nil {
		p.Add(&engine.Change{Object: SnapshotPath, Action: engine.ActionCreate,
			After:  describe(len(cur)-len(purging), image),
			Reason: "packages (update log baseline)"})
		return nil
	}
	deltas := diffSets(prev.Packages, cur)
	if len(deltas) == 0 && prev.Image == image && len(purging) == 0 {
		return nil
	}
	p.Add(deltas...)
	p.Add(&engine.Change{Object: SnapshotPath, Action: engine.ActionUpdate,
		Before: describe(len(prev.Packages), prev.Image), After: describe(len(cur)-len(purging), image),
		Diff:   summary(deltas),
		Reason: "packages (update log)"})
	return nil
}

func describe(n int, image string) string {
	s := fmt.Sprintf("%d packages", n)
	if image != "" {
		s += ", image " + image
	}
	return s
}

// diffSets lists what changed between two package sets, in name order.
func diffSets(prev, cur map[string]string) []*engine.Change {
	keys := make([]string, 0, len(prev)+len(cur))
	for k := range prev {
		keys = append(keys, k)
	}
	for k := range cur {
		if _, ok := prev[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []*engine.Change
	for _, k := range keys {
		was, had := prev[k]
		now, has := cur[k]
		c := &engine.Change{Object: "package " + k, Before: was, After: now, Reason: "packages (update log)"}
		switch {
		case !had:
			c.Action = ActionInstalled
		case !has:
			c.Action = ActionRemoved
		case was == now:
			continue
		case CompareVersions(now, was) > 0:
			c.Action = ActionUpgraded
		default:
			c.Action = ActionDowngraded
		}
		out = append(out, c)
	}
	return out
}

func summary(deltas []*engine.Change) string {
	var b strings.Builder
	for _, c := range deltas {
		fmt.Fprintf(&b, "%s %s %s -> %s\n", c.Action, strings.TrimPrefix(c.Object, "package "), orNone(c.Before), orNone(c.After))
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
