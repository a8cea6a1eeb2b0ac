package firewall_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
	"github.com/harden-dev/harden/internal/install"
	"github.com/harden-dev/harden/internal/nft/nfttest"
	"github.com/harden-dev/harden/steps/firewall"
)

// debianNftablesConf is the head of Debian bookworm's /etc/nftables.conf as the nftables
// package ships it: it starts by flushing every table.
const debianNftablesConf = `#!/usr/sbin/nft -f

flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter;
	}
	chain forward {
		type filter hook forward priority filter;
	}
	chain output {
		type filter hook output priority filter;
	}
}
`

func finding(p *engine.Plan, id string) *engine.Finding {
	for _, f := range p.Findings {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// With nftables.service enabled (its config flushes the ruleset), the plan says how harden's
// table survives (the units `harden install` writes), or that it would not.
func TestNftablesServiceFlushIsOrderedAround(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	enginetest.WriteFile(t, env, firewall.NftablesConf, debianNftablesConf)
	require.NoError(t, os.MkdirAll(env.Root.Path("/etc/systemd/system/sysinit.target.wants"), 0o755))
	require.NoError(t, os.Symlink("/lib/systemd/system/nftables.service", env.Root.Path(firewall.NftablesEnabled)))
	step := firewall.New(firewall.Options{Offline: true})

	p, err := step.Plan(context.Background(), env)
	require.NoError(t, err)
	f := finding(p, "firewall.nftables-flush")
	require.NotNil(t, f, "enabled, flushing, and harden's units not installed")
	assert.Equal(t, engine.Critical, f.Severity)

	enginetest.WriteFile(t, env, install.Binary, "#!/bin/sh\n")
	require.NoError(t, os.Chmod(env.Root.Path(install.Binary), 0o755))
	_, err = install.Run(context.Background(), install.Options{Root: env.Root})
	require.NoError(t, err)
	p, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Nil(t, finding(p, "firewall.nftables-flush"))
	f = finding(p, "firewall.nftables-service")
	require.NotNil(t, f)
	assert.Contains(t, f.Message, "runs after it")

	// Disabled, or a config that does not flush: nothing to say.
	require.NoError(t, os.Remove(env.Root.Path(firewall.NftablesEnabled)))
	p, err = step.Plan(context.Background(), env)
	require.NoError(t, err)
	assert.Nil(t, finding(p, "firewall.nftables-service"))
}

// The flush itself, in a namespace: nftables.service's load removes harden's table; the
// drop-in's ExecStartPost (harden apply --only firewall) puts it back and leaves the other
// table alone. Loaded in boot order (nftables first, then harden-firewall), both stay.
func TestNftablesFlushInANamespace(t *testing.T) {
	nfttest.RequireRoot(t)
	ns := nfttest.NewNS(t, "hfnf")
	conf := filepath.Join(t.TempDir(), "nftables.conf")
	require.NoError(t, os.WriteFile(conf, []byte(debianNftablesConf), 0o644))
	env := enginetest.Env(t, nil, nil)
	step := firewall.New(firewall.Options{NetNS: ns.Name})

	enginetest.Converges(t, env, step)
	require.Contains(t, ns.Run("nft", "list", "tables"), "table inet harden")
	ns.Run("nft", "-f", conf) // what nftables.service's ExecStart does
	assert.NotContains(t, ns.Run("nft", "list", "tables"), "table inet harden", "the flush removes harden's table")

	dropIn, err := assets.Units.ReadFile("units/nftables.service.d/harden.conf")
	require.NoError(t, err)
	assert.Contains(t, string(dropIn), "\nExecStartPost=/usr/local/sbin/harden apply --only firewall\n")
	assert.Contains(t, string(dropIn), "\nExecReload=/usr/local/sbin/harden apply --only firewall\n")
	rep := enginetest.Converges(t, env, step) // what the drop-in's ExecStartPost does
	assert.Equal(t, engine.StatusChanged, rep.Steps[0].Status)
	tables := ns.Run("nft", "list", "tables")
	assert.Contains(t, tables, "table inet harden")
	assert.Contains(t, tables, "table inet filter", "nftables.conf's own table stays")
	assert.Equal(t, 2, strings.Count(tables, "table "))
}
