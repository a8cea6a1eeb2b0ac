package sshd

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/policy"
)

// Where sshd reads its configuration (machine paths, under env.Root).
const (
	MainConfig = "/etc/ssh/sshd_config"
	DropInDir  = "/etc/ssh/sshd_config.d"
	DropIn     = DropInDir + "/00-harden.conf"
)

// wanted is one keyword harden sets, with the policy field behind it.
type wanted struct {
	Key    string // as written, e.g. PermitRootLogin
	Value  string
	Reason string
	// Core keywords are the policy's SSH rules (no root, keys only): a
	// weaker value anywhere is critical. Extra settings only warn.
	Core bool
}

// settings are the drop-in's keywords in the order written: the policy's own rules first,
// then the session baseline, the crypto lines, and sshd.settings sorted by keyword. A
// sshd.settings keyword replaces a baseline line of the same name (an operator's explicit
// choice); the policy's own fields cannot be set there (policy validation refuses it).
func settings(p policy.SSHD, crypto []wanted) []wanted {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	root := "no"
	if p.PermitRootLogin {
		// Even when root may log in, only with a key: the policy has no
		// password logins at all.
		root = "prohibit-password"
	}
	out := []wanted{
		{Key: "PermitRootLogin", Value: root, Reason: "sshd.permit_root_login", Core: true},
		{Key: "PasswordAuthentication", Value: yesNo(p.PasswordAuthentication), Reason: "sshd.password_authentication", Core: true},
		{Key: "KbdInteractiveAuthentication", Value: yesNo(p.PasswordAuthentication), Reason: "sshd.password_authentication", Core: true},
		{Key: "PermitEmptyPasswords", Value: "no", Reason: "sshd (no empty passwords, ever)", Core: true},
		{Key: "PubkeyAuthentication", Value: "yes", Reason: "sshd (keys only)", Core: true},
		{Key: "MaxAuthTries", Value: fmt.Sprint(p.MaxAuthTries), Reason: "sshd.max_auth_tries", Core: true},
	}
	baseline := []wanted{
		{Key: "HostbasedAuthentication", Value: "no", Reason: "sshd (keys only)"},
		{Key: "IgnoreRhosts", Value: "yes", Reason: "sshd (keys only)"},
		{Key: "PermitUserEnvironment", Value: "no", Reason: "sshd (a user's environment must not change sshd's behaviour)"},
		{Key: "StrictModes", Value: "yes", Reason: "sshd (refuse keys others can write)"},
		{Key: "AllowTcpForwarding", Value: yesNo(p.AllowTCPForwarding), Reason: "sshd.allow_tcp_forwarding"},
		{Key: "AllowStreamLocalForwarding", Value: yesNo(p.AllowTCPForwarding), Reason: "sshd.allow_tcp_forwarding"},
		{Key: "PermitTunnel", Value: yesNo(p.AllowTCPForwarding), Reason: "sshd.allow_tcp_forwarding"},
		{Key: "GatewayPorts", Value: "no", Reason: "sshd (forwarded ports stay on loopback)"},
		{Key: "AllowAgentForwarding", Value: yesNo(p.AllowAgentForwarding), Reason: "sshd.allow_agent_forwarding"},
		{Key: "X11Forwarding", Value: yesNo(p.AllowX11Forwarding), Reason: "sshd.allow_x11_forwarding"},
		{Key: "LogLevel", Value: p.LogLevel, Reason: "sshd.log_level"},
		{Key: "LoginGraceTime", Value: seconds(p.LoginGraceTime.D()), Reason: "sshd.login_grace_time"},
		{Key: "MaxSessions", Value: fmt.Sprint(p.MaxSessions), Reason: "sshd.max_sessions"},
		{Key: "MaxStartups", Value: p.MaxStartups, Reason: "sshd.max_startups"},
		{Key: "ClientAliveInterval", Value: seconds(p.ClientAliveInterval.D()), Reason: "sshd.client_alive_interval"},
		{Key: "ClientAliveCountMax", Value: fmt.Sprint(p.ClientAliveCountMax), Reason: "sshd.client_alive_count_max"},
	}
	set := map[string]bool{}
	for k := range p.Settings {
		set[strings.ToLower(k)] = true
	}
	for _, w := range append(baseline, crypto...) {
		if !set[strings.ToLower(w.Key)] && w.Value != "" {
			out = append(out, w)
		}
	}
	keys := make([]string, 0, len(p.Settings))
	for k := range p.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, wanted{Key: k, Value: p.Settings[k], Reason: "sshd.settings." + k})
	}
	return out
}

// seconds writes a duration as sshd's whole seconds (sshd -T prints them so).
func seconds(d time.Duration) string { return fmt.Sprint(int64(d / time.Second)) }

// render is the drop-in's content.
func render(ws []wanted) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by harden from the policy's sshd section; changes here are overwritten.\n")
	b.WriteString("# sshd keeps the first value it reads for a keyword: this file sorts first in\n")
	b.WriteString("# sshd_config.d and is included at the top of sshd_config, so it wins.\n")
	for _, w := range ws {
		fmt.Fprintf(&b, "%s %s\n", w.Key, w.Value)
	}
	return b.Bytes()
}

// includeLine is the Include harden needs at the top of sshd_config, as the machine's sshd
// will read it: always /etc/ssh/sshd_config.d, also in an image tree under --root (sshd at
// the machine's boot knows nothing of the builder's path to the tree). Checks under a root
// read a staged copy whose paths point into the root (see view.go).
const includeLine = "Include " + DropInDir + "/*.conf"

// fixInclude returns sshd_config with the Include as its first directive, or ok=true when
// it already is (only comments, blank lines and other Include lines before it). A later copy
// of the same Include is dropped: the top one already reads those files. So is the same
// Include written with a builder's path to an image tree (rootDir + /etc/ssh/...), which
// earlier versions of harden wrote and which reads nothing on the machine.
func fixInclude(main []byte, rootDir string) (out []byte, ok bool) {
	lines := strings.SplitAfter(string(main), "\n")
	builders := ""
	if rootDir != "/" && rootDir != "" {
		builders = "Include " + strings.TrimSuffix(rootDir, "/") + DropInDir + "/*.conf"
	}
	stale := false
	for _, l := range lines {
		if builders != "" && sameInclude(l, builders) {
			stale = true
		}
	}
	for _, l := range lines {
		kw, _ := keyword(l)
		if kw == "" {
			continue
		}
		if strings.EqualFold(kw, "include") {
			if sameInclude(l, includeLine) && !stale {
				return main, true
			}
			continue
		}
		break
	}
	var b strings.Builder
	b.WriteString("# Added by harden: drop-ins first, so sshd_config.d/00-harden.conf wins.\n")
	b.WriteString(includeLine + "\n")
	for _, l := range lines {
		if sameInclude(l, includeLine) || (builders != "" && sameInclude(l, builders)) {
			continue
		}
		if strings.HasPrefix(l, "# Added by harden: drop-ins first") {
			continue
		}
		b.WriteString(l)
	}
	return []byte(b.String()), false
}

func sameInclude(line, include string) bool {
	return strings.Join(strings.Fields(line), " ") == include
}

// keyword returns a config line's keyword and arguments ("" for comments and
// blank lines). sshd also accepts "Keyword=value".
func keyword(line string) (string, string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", ""
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimSpace(strings.TrimLeft(line[i:], " \t="))
}

// directive is one keyword line of the configuration, in the order sshd
// reads it (Includes expanded in place).
type directive struct {
	File  string // machine path
	Line  int
	Key   string // lower case
	Value string
	Match string // the Match condition the line is under ("" = global)
}

// walk reads sshd_config and its Includes the way sshd does: Include globs
// expand in lexical order, relative paths are relative to /etc/ssh, and a
// Match block lasts until the next Match or the end of its file.
func walk(root fsroot.Root, file string, depth int) ([]directive, error) {
	return walkFiles(root, file, depth, nil)
}

// walkFiles is walk that also hands every file it reads, with its bytes, to read (nil: no
// one), in the order sshd reads them.
func walkFiles(root fsroot.Root, file string, depth int, read func(file string, data []byte)) ([]directive, error) {
	if depth > 16 {
		return nil, fmt.Errorf("%s: Include nested too deep", file)
	}
	data, ok, err := root.ReadFileIfExists(file)
	if err != nil || !ok {
		return nil, err
	}
	if read != nil {
		read(file, data)
	}
	var out []directive
	match := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		kw, args := keyword(sc.Text())
		switch strings.ToLower(kw) {
		case "":
			continue
		case "match":
			match = args
			if strings.EqualFold(args, "all") {
				match = ""
			}
			continue
		case "include":
			for _, pat := range strings.Fields(args) {
				files, err := expand(root, pat)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: Include %s: %w", file, n, pat, err)
				}
				for _, f := range files {
					sub, err := walkFiles(root, f, depth+1, read)
					if err != nil {
						return nil, err
					}
					for i := range sub {
						if sub[i].Match == "" {
							sub[i].Match = match
						}
					}
					out = append(out, sub...)
				}
			}
			continue
		}
		out = append(out, directive{File: file, Line: n, Key: strings.ToLower(kw), Value: args, Match: match})
	}
	return out, sc.Err()
}

// expand resolves an Include pattern to machine paths. A pattern written
// with the root's host prefix (as harden writes it under a test root) is
// mapped back into the root.
func expand(root fsroot.Root, pat string) ([]string, error) {
	if !filepath.IsAbs(pat) {
		pat = "/etc/ssh/" + pat
	}
	if dir := root.Dir(); dir != "/" && dir != "" && strings.HasPrefix(pat, dir+"/") {
		pat = strings.TrimPrefix(pat, dir)
	}
	host, err := filepath.Glob(root.Path(pat))
	if err != nil {
		return nil, err
	}
	sort.Strings(host)
	out := make([]string, 0, len(host))
	for _, h := range host {
		out = append(out, strings.TrimPrefix(h, strings.TrimSuffix(root.Dir(), "/")))
	}
	return out, nil
}
