package firewall

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

// Debian's and Ubuntu's nftables.service runs `nft -f /etc/nftables.conf` at boot (and on
// reload), and the packaged file starts with `flush ruleset`: every table goes, harden's
// too. harden install orders harden-firewall.service after it and adds a drop-in that puts
// harden's table back right after every load.
const (
	NftablesConf    = "/etc/nftables.conf"
	NftablesEnabled = "/etc/systemd/system/sysinit.target.wants/nftables.service"
	NftablesDropIn  = "/etc/systemd/system/nftables.service.d/harden.conf"
	firewallUnit    = "/etc/systemd/system/harden-firewall.service"
)

// planNftablesService says, when nftables.service is enabled and its ruleset flushes
// everything, how harden's table survives it, or that it would not.
func planNftablesService(root fsroot.Root, p *engine.Plan) {
	if _, err := root.Lstat(NftablesEnabled); err != nil {
		return
	}
	conf, ok, _ := root.ReadFileIfExists(NftablesConf)
	if !ok || !flushesRuleset(conf) {
		return
	}
	dropIn, _, _ := root.ReadFileIfExists(NftablesDropIn)
	unit, _, _ := root.ReadFileIfExists(firewallUnit)
	reapplies := bytes.Contains(dropIn, []byte("ExecStartPost=/usr/local/sbin/harden apply --only firewall"))
	ordered := bytes.Contains(unit, []byte("After=nftables.service"))
	if reapplies && ordered {
		p.Find(&engine.Finding{ID: "firewall.nftables-service", Severity: engine.Info, Object: "nftables.service",
			Message: "nftables.service is enabled and " + NftablesConf + " starts with `flush ruleset`: harden-firewall.service runs after it, " +
				"and " + NftablesDropIn + " puts table inet harden back after every load, so the flush never leaves the machine open",
			Reason: "firewall"})
		return
	}
	p.Find(&engine.Finding{ID: "firewall.nftables-flush", Severity: engine.Critical, Object: "nftables.service",
		Message: "nftables.service is enabled and " + NftablesConf + " starts with `flush ruleset`, which removes table inet harden at boot or reload; " +
			"harden's units do not order around it: run `harden install`",
		Reason: "firewall"})
}

// flushesRuleset reports whether an nft script flushes the whole ruleset.
func flushesRuleset(conf []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := strings.Join(strings.Fields(sc.Text()), " ")
		if line == "flush ruleset" || strings.HasPrefix(line, "flush ruleset ") || strings.HasPrefix(line, "flush ruleset;") {
			return true
		}
	}
	return false
}
