package sshd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/fsroot"
)

// hostKey is one HostKey file of the configuration (machine path).
type hostKey struct {
	Path   string
	Exists bool
	Type   string // first field of the .pub file (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256), or guessed from the name
}

// defaultHostKeys are the files sshd uses when no HostKey line is given.
var defaultHostKeys = []string{"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ed25519_key"}

// hostKeys lists the configured host keys (global HostKey lines, else sshd's defaults).
func hostKeys(root fsroot.Root, dirs []directive) []hostKey {
	var paths []string
	for _, d := range dirs {
		if d.Key == "hostkey" && d.Match == "" {
			p := strings.Trim(d.Value, `"`)
			if dir := root.Dir(); dir != "/" && strings.HasPrefix(p, dir+"/") {
				p = strings.TrimPrefix(p, dir) // written with the root's host path (tests, old harden)
			}
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		paths = defaultHostKeys
	}
	out := make([]hostKey, 0, len(paths))
	for _, p := range paths {
		k := hostKey{Path: p}
		if _, err := root.Stat(p); err == nil {
			k.Exists = true
		}
		if pub, ok, _ := root.ReadFileIfExists(p + ".pub"); ok {
			k.Type, _, _ = strings.Cut(strings.TrimSpace(string(pub)), " ")
		} else {
			switch base := path.Base(p); {
			case strings.Contains(base, "ed25519"):
				k.Type = "ssh-ed25519"
			case strings.Contains(base, "ecdsa"):
				k.Type = "ecdsa-sha2-nistp256"
			case strings.Contains(base, "rsa"):
				k.Type = "ssh-rsa"
			}
		}
		out = append(out, k)
	}
	return out
}

func anyExists(keys []hostKey) bool {
	for _, k := range keys {
		if k.Exists {
			return true
		}
	}
	return false
}

// throwawayKey makes a host key in the view's directory, for checking an image tree that
// has none (a golden image gets its keys at first boot). It is deleted with the view.
func (v *view) throwawayKey(ctx context.Context, env *engine.Env, keygen string) (string, error) {
	if v.dir == "" {
		return "", fmt.Errorf("no view directory for a throwaway host key")
	}
	key := filepath.Join(v.dir, "throwaway_host_ed25519_key")
	_, err := env.Exec.Run(ctx, command.Cmd{Name: keygen, Args: []string{"-q", "-t", "ed25519", "-N", "", "-C", "harden-check", "-f", key}, Timeout: time.Minute})
	return key, err
}

// checkLoginKeys warns, with root login off, when no other account could log in with a key:
// no account with a login shell has an authorized key, and there is no
// AuthorizedKeysCommand, AuthorizedPrincipalsFile/Command or TrustedUserCAKeys to let one in.
// The operator then sees the risk in the plan, before the reload.
func checkLoginKeys(root fsroot.Root, p *engine.Plan, dirs []directive) {
	first := map[string]string{}
	for _, d := range dirs {
		if d.Match != "" {
			continue
		}
		if _, seen := first[d.Key]; !seen {
			first[d.Key] = d.Value
		}
	}
	for _, k := range []string{"authorizedkeyscommand", "authorizedprincipalsfile", "authorizedprincipalscommand", "trustedusercakeys"} {
		if v, ok := first[k]; ok && !strings.EqualFold(v, "none") {
			return
		}
	}
	files := strings.Fields(first["authorizedkeysfile"])
	if len(files) == 0 {
		files = []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}
	}
	passwd, _, err := root.ReadFileIfExists("/etc/passwd")
	if err != nil {
		return
	}
	var users []string
	sc := bufio.NewScanner(bytes.NewReader(passwd))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[2] == "0" || !loginShell(f[6]) {
			continue
		}
		users = append(users, f[0])
		for _, pat := range files {
			if hasKey(root, expandTokens(pat, f[0], f[2], f[5])) {
				return
			}
		}
	}
	who := "no account other than root has a login shell"
	if len(users) > 0 {
		who = fmt.Sprintf("none of the accounts with a login shell (%s) has a key in %s", strings.Join(users, ", "), strings.Join(files, " "))
	}
	p.Find(&engine.Finding{ID: "sshd.no-login-key", Severity: engine.Warning, Object: "authorized keys",
		Message: "root login is off and " + who + ", and no AuthorizedKeysCommand, AuthorizedPrincipalsFile or TrustedUserCAKeys is set: " +
			"after sshd reloads, nobody can log in over OpenSSH (Fly's `fly ssh console` does not use it)",
		Reason: "sshd.permit_root_login"})
}

func loginShell(sh string) bool {
	switch path.Base(sh) {
	case "", "nologin", "false", "sync", "shutdown", "halt":
		return false
	}
	return true
}

// expandTokens applies sshd's AuthorizedKeysFile tokens; a relative path is under the home.
func expandTokens(pat, user, uid, home string) string {
	r := strings.NewReplacer("%%", "%", "%h", home, "%u", user, "%U", uid)
	p := r.Replace(pat)
	if !path.IsAbs(p) {
		p = path.Join(home, p)
	}
	return p
}

// hasKey reports whether an authorized_keys file holds at least one key line.
func hasKey(root fsroot.Root, file string) bool {
	data, ok, err := root.ReadFileIfExists(file)
	if err != nil || !ok {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}
