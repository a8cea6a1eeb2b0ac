// Package assets holds the files harden carries inside its binary: the default policy, and
// (added by the steps that own them) the audit baseline, systemd units and ClamAV settings.
package assets

import "embed"

// Policy is the embedded default policy: a private VM reachable over SSH from the private
// network only. It is also the fail-closed firewall when the machine's policy cannot be loaded.
//
//go:embed policy.yaml
var Policy []byte

// AuditBaseline is the audit step's baseline rule set (policy audit.baseline), in auditctl
// rules-file syntax. Its keys are listed in internal/auditkeys.
//
//go:embed audit/baseline.rules
var AuditBaseline []byte

// Units are the systemd units `harden install` writes to /etc/systemd/system (units/*).
//
//go:embed units
var Units embed.FS
