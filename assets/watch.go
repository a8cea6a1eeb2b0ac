package assets

import _ "embed"

// WatchUnit is harden-watch.service, the alert daemon's unit.
//
//go:embed units/harden-watch.service
var WatchUnit []byte

// Tmpfiles creates harden's state directories and the spool inbox clamd writes to
// (install as /usr/lib/tmpfiles.d/harden.conf).
//
//go:embed tmpfiles.d/harden.conf
var Tmpfiles []byte

// PrometheusRules are the alerting rules for harden's metrics (`harden prometheus-rules`;
// `harden install` writes them where node_exporter's textfile directory exists).
//
//go:embed monitoring/harden.rules.yml
var PrometheusRules []byte
