package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// LoadPolicy finds and loads the run's policy. explicit is --policy (a host path, used as
// given); without it the machine's policy is policy.DefaultPath inside root, and without
// that file the embedded default. It returns the policy's name for reports: the machine's
// path, never the build host's path to an image tree (the report is written into the tree).
// Anything at DefaultPath, even a dangling link, counts as a policy: it is loaded or refused,
// never silently replaced by the default.
//
// On error it returns the embedded default together with the error: the caller runs in
// fail-closed mode (firewall only, with the default) rather than leaving the machine open.
func LoadPolicy(root fsroot.Root, explicit string) (*policy.Policy, string, error) {
	if explicit != "" {
		p, err := policy.LoadFile(explicit, policy.CheckOwner)
		if err != nil {
			return policy.Default(), explicit, err
		}
		return p, explicit, nil
	}
	if _, err := root.Lstat(policy.DefaultPath); errors.Is(err, fs.ErrNotExist) {
		return policy.Default(), policy.EmbeddedName, nil
	}
	p, err := policy.LoadIn(root, policy.DefaultPath, policy.CheckOwner)
	if err != nil {
		return policy.Default(), policy.DefaultPath, err
	}
	return p, policy.DefaultPath, nil
}

// SaveReport writes the report (JSON) and the Prometheus textfile to the paths the policy
// names, under root. A dry-run's files get a "-dryrun" suffix so the drift timer never
// overwrites the record of the last real apply.
//
// A run that left steps out (--only, --skip: at boot harden.service, harden-packages.service
// and harden-freshclam.service each run some of the steps) keeps, for each step it did not
// run, that step's last result from the report it replaces (marked with the run it comes
// from), so the report and the metrics describe every step, not only the last unit's.
func SaveReport(root fsroot.Root, p *policy.Policy, r *Report) error {
	if p.Run.Report != "" {
		r = carryOver(root, reportPath(p.Run.Report, r.DryRun), r)
	}
	var errs []error
	if p.Run.Report != "" {
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err == nil {
			// Not world-readable: the report holds every change's diff, the audit rules
			// among them, which /etc/audit/rules.d keeps 0640.
			errs = append(errs, root.WriteReport(reportPath(p.Run.Report, r.DryRun), b.Bytes(), ReportPerm))
		}
	}
	if p.Run.Metrics != "" {
		var b bytes.Buffer
		if err := r.WriteMetrics(&b); err == nil {
			errs = append(errs, root.WriteReport(reportPath(p.Run.Metrics, r.DryRun), b.Bytes(), 0o644))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// ReportPerm is the report's mode. The metrics textfile stays 0644: node_exporter reads it
// as its own user, and it holds counts, not diffs.
const ReportPerm = 0o640

// reportPath adds "-dryrun" before the extension of a dry-run's report.
func reportPath(path string, dryRun bool) string {
	if !dryRun {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-dryrun" + ext
}

// carryOver returns r with the steps it skipped filled in from the report at name, when that
// report has them. A fail-closed run carries nothing over: its other steps did not run
// because the policy did not load, and the report must say so.
func carryOver(root fsroot.Root, name string, r *Report) *Report {
	if r.FailClosed {
		return r
	}
	data, ok, err := root.ReadFileIfExists(name)
	if err != nil || !ok {
		return r
	}
	var prev Report
	if json.Unmarshal(data, &prev) != nil {
		return r
	}
	last := map[string]*StepReport{}
	for _, s := range prev.Steps {
		if s.Status != StatusSkipped {
			if s.FromRun == "" {
				s.FromRun = prev.RunID
			}
			last[s.Name] = s
		}
	}
	merged := *r
	merged.Steps = make([]*StepReport, len(r.Steps))
	for i, s := range r.Steps {
		merged.Steps[i] = s
		if p, ok := last[s.Name]; ok && s.Status == StatusSkipped {
			merged.Steps[i] = p
		}
	}
	merged.restatus()
	return &merged
}
