package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// LoadPolicy finds and loads the run's policy. explicit is --policy (a host path, used as
// given); without it the machine's policy is policy.DefaultPath under root, and without that
// file the embedded default. It returns the policy's name for reports.
//
// On error it returns the embedded default together with the error: the caller runs in
// fail-closed mode (firewall only, with the default) rather than leaving the machine open.
func LoadPolicy(root fsroot.Root, explicit string) (*policy.Policy, string, error) {
	path := explicit
	if path == "" {
		path = root.Path(policy.DefaultPath)
		if _, err := root.Stat(policy.DefaultPath); errors.Is(err, fs.ErrNotExist) {
			return policy.Default(), policy.EmbeddedName, nil
		}
	}
	p, err := policy.LoadFile(path, policy.CheckOwner)
	if err != nil {
		return policy.Default(), path, err
	}
	return p, path, nil
}

// SaveReport writes the report (JSON) and the Prometheus textfile to the paths the policy
// names, under root. A dry-run's files get a "-dryrun" suffix so the drift timer never
// overwrites the record of the last real apply.
func SaveReport(root fsroot.Root, p *policy.Policy, r *Report) error {
	var errs []error
	if p.Run.Report != "" {
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err == nil {
			errs = append(errs, root.WriteReport(reportPath(p.Run.Report, r.DryRun), b.Bytes(), 0o644))
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

// reportPath adds "-dryrun" before the extension of a dry-run's report.
func reportPath(path string, dryRun bool) string {
	if !dryRun {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-dryrun" + ext
}
