package accounts

import (
	"fmt"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
)

// Account databases the step reads. It never edits them: locking or deleting an account is
// a decision for a person (it may be a break-glass account), so these are findings.
const (
	PasswdFile = "/etc/passwd"
	ShadowFile = "/etc/shadow"
)

// checkAccounts reports accounts anyone could log in to without a password, and accounts
// other than root with UID 0 (root in all but name, a classic backdoor).
func checkAccounts(env *engine.Env, p *engine.Plan) error {
	shadow, _, err := env.Root.ReadFileIfExists(ShadowFile)
	if err != nil {
		return err
	}
	forEachEntry(shadow, func(lineNo int, f []string) {
		// name:password:...; "" is no password, while "!", "*" or "!hash" are locked.
		if len(f) >= 2 && f[1] == "" {
			p.Find(&engine.Finding{ID: "accounts.empty-password", Severity: engine.Critical, Object: "account " + f[0],
				Message: fmt.Sprintf("account %s has an empty password field (%s line %d): it may log in without a password (passwd -l %s)",
					f[0], ShadowFile, lineNo, f[0]),
				Reason: "accounts"})
		}
	})
	passwd, _, err := env.Root.ReadFileIfExists(PasswdFile)
	if err != nil {
		return err
	}
	forEachEntry(passwd, func(lineNo int, f []string) {
		if len(f) >= 3 && f[2] == "0" && f[0] != "root" {
			p.Find(&engine.Finding{ID: "accounts.extra-uid0", Severity: engine.Critical, Object: "account " + f[0],
				Message: fmt.Sprintf("account %s has UID 0 (%s line %d): only root may", f[0], PasswdFile, lineNo),
				Reason:  "accounts"})
		}
	})
	return nil
}

// forEachEntry calls fn with the colon-separated fields of each account line (1-based line
// numbers). NIS "+"/"-" compat lines and comments are not accounts.
func forEachEntry(b []byte, fn func(lineNo int, fields []string)) {
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fn(i+1, strings.Split(line, ":"))
	}
}
