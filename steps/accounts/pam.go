package accounts

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/policy"
)

// Paths the step reads to judge whether password quality is enforced at all.
const (
	PAMPasswordFile = "/etc/pam.d/common-password"
	DpkgStatusFile  = "/var/lib/dpkg/status"
	pwqualityPkg    = "libpam-pwquality"
)

// checkPwqualityInUse reports when pwquality.conf would be dead letters: the package is not
// installed, the PAM password stack does not call pam_pwquality, or the module's arguments
// override the policy (arguments win over pwquality.conf). Editing PAM stacks is left to
// pam-auth-update, which owns them on Debian and Ubuntu.
func checkPwqualityInUse(env *engine.Env, p *engine.Plan, want policy.Pwquality) error {
	installed, err := dpkgInstalled(env, pwqualityPkg)
	if err != nil {
		return err
	}
	if !installed {
		p.Find(&engine.Finding{ID: "accounts.pwquality-not-installed", Severity: engine.Warning, Object: "package " + pwqualityPkg,
			Message: pwqualityPkg + " is not installed: password quality is not checked (install it in the image)",
			Reason:  "accounts.pwquality"})
	}
	stack, exists, err := env.Root.ReadFileIfExists(PAMPasswordFile)
	if err != nil {
		return err
	}
	args, found := findModule(stack, "password", "pam_pwquality.so")
	if !found {
		why := "does not call pam_pwquality"
		if !exists {
			why = "does not exist"
		}
		p.Find(&engine.Finding{ID: "accounts.pam-pwquality-missing", Severity: engine.Warning, Object: PAMPasswordFile,
			Message: fmt.Sprintf("%s %s: new passwords are not checked (pam-auth-update --enable pwquality)", PAMPasswordFile, why),
			Reason:  "accounts.pwquality"})
		return nil
	}
	for _, a := range overridingArgs(args, want) {
		p.Find(&engine.Finding{ID: "accounts.pam-pwquality-args", Severity: engine.Warning, Object: PAMPasswordFile,
			Message: fmt.Sprintf("pam_pwquality argument %s overrides pwquality.conf", a), Reason: "accounts.pwquality"})
	}
	return nil
}

// findModule returns the arguments of the first active line of the given type that calls
// module (by file name, with or without a directory), and whether there is one.
func findModule(stack []byte, typ, module string) ([]string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(stack))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := pamFields(line)
		if len(f) < 3 || strings.TrimPrefix(f[0], "-") != typ {
			continue
		}
		if path.Base(f[2]) == module {
			return f[3:], true
		}
	}
	return nil, false
}

// pamFields splits a PAM line into blank-separated words, keeping a bracketed control
// ("[success=1 default=ignore]") as one word.
func pamFields(line string) []string {
	var out []string
	for {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			return out
		}
		end := strings.IndexAny(line, " \t")
		if line[0] == '[' {
			if i := strings.IndexByte(line, ']'); i >= 0 {
				end = i + 1
			}
		}
		if end < 0 {
			end = len(line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
}

// overridingArgs lists module arguments that set a policy key to another value.
func overridingArgs(args []string, w policy.Pwquality) []string {
	dict := 0
	if w.Dictcheck {
		dict = 1
	}
	policyVal := map[string]int{"minlen": w.Minlen, "dcredit": w.Dcredit, "ucredit": w.Ucredit, "lcredit": w.Lcredit,
		"ocredit": w.Ocredit, "maxrepeat": w.Maxrepeat, "dictcheck": dict}
	var out []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		pv, owned := policyVal[k]
		if !ok || !owned {
			continue
		}
		if n, err := strconv.Atoi(v); err != nil || n != pv {
			out = append(out, fmt.Sprintf("%s (policy: %d)", a, pv))
		}
	}
	return out
}

// dpkgInstalled reads dpkg's status file directly (no dpkg-query fork): a stanza for pkg
// whose Status ends in "installed".
func dpkgInstalled(env *engine.Env, pkg string) (bool, error) {
	b, _, err := env.Root.ReadFileIfExists(DpkgStatusFile)
	if err != nil {
		return false, err
	}
	// Jump to each "Package: pkg" line and read its stanza up to the blank line ending it:
	// the file is megabytes on a full system and only one stanza matters.
	head := []byte("Package: " + pkg + "\n")
	for i := 0; ; {
		j := bytes.Index(b[i:], head)
		if j < 0 {
			return false, nil
		}
		at := i + j
		i = at + len(head)
		if at > 0 && b[at-1] != '\n' {
			continue // "Package: foo" inside another field
		}
		stanza := b[i:]
		if end := bytes.Index(stanza, []byte("\n\n")); end >= 0 {
			stanza = stanza[:end]
		}
		for line := range bytes.Lines(stanza) {
			if v, ok := bytes.CutPrefix(line, []byte("Status: ")); ok && bytes.HasSuffix(bytes.TrimSpace(v), []byte(" installed")) {
				return true, nil
			}
		}
	}
}
