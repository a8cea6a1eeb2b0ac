// Package accounts is the "accounts" step: password quality (pwquality.conf, and whether PAM
// uses it at all), login.defs defaults for new passwords and files, and findings for
// accounts that need no password or are root under another name.
//
// Both files are edited key by key (internal/kvconf): Debian's comments, the keys harden
// does not own and their order stay as they were, so a package upgrade's diff stays readable.
package accounts

import (
	"context"
	"strconv"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/policy"
)

// Files the step edits.
const (
	PwqualityFile = "/etc/security/pwquality.conf"
	LoginDefsFile = "/etc/login.defs"
)

// loginDefsSyntax is login.defs: "KEY value", new keys tab-separated like Debian's own lines.
var loginDefsSyntax = kvconf.Syntax{NewSep: "\t\t"}

// Hash costs harden pins with the method. YESCRYPT_COST_FACTOR 5 is libxcrypt's default:
// pinned so a lowered value in an image is put back. SHA512 gets 65536 rounds, 13 times
// shadow's default of 5000, for images that cannot use yescrypt.
const (
	yescryptCost = "5"
	shaRounds    = "65536"
)

// Step is the accounts step.
type Step struct{}

// New returns the accounts step.
func New() *Step { return &Step{} }

// Name is the step's name in policies, reports and --only.
func (*Step) Name() string { return "accounts" }

// Plan compares the two files with the policy and reads the account databases. It only reads.
func (*Step) Plan(ctx context.Context, env *engine.Env) (*engine.Plan, error) {
	a := env.Policy.Accounts
	p := &engine.Plan{}
	if err := planKV(env, p, PwqualityFile, kvconf.Equals, pwqualityWants(a.Pwquality)); err != nil {
		return nil, err
	}
	if err := planKV(env, p, LoginDefsFile, loginDefsSyntax, loginDefsWants(a.LoginDefs)); err != nil {
		return nil, err
	}
	if err := checkPwqualityInUse(env, p, a.Pwquality); err != nil {
		return nil, err
	}
	if err := checkAccounts(env, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Apply writes each file once with all its planned keys.
func (*Step) Apply(ctx context.Context, env *engine.Env, p *engine.Plan) error {
	return engine.ApplyChanges(ctx, p)
}

func pwqualityWants(q policy.Pwquality) []want {
	const r = "accounts.pwquality."
	num := func(key string, v int) want {
		return want{Key: key, Values: []string{strconv.Itoa(v)}, Reason: r + key}
	}
	dict := "0"
	if q.Dictcheck {
		dict = "1"
	}
	// enforce_for_root is a bare flag: present to enforce, absent not to.
	root := want{Key: "enforce_for_root", Reason: r + "enforce_for_root"}
	if q.EnforceForRoot {
		root.Values = []string{""}
	}
	return []want{
		num("minlen", q.Minlen), num("dcredit", q.Dcredit), num("ucredit", q.Ucredit),
		num("lcredit", q.Lcredit), num("ocredit", q.Ocredit), num("maxrepeat", q.Maxrepeat),
		{Key: "dictcheck", Values: []string{dict}, Reason: r + "dictcheck"},
		root,
	}
}

func loginDefsWants(l policy.LoginDefs) []want {
	const r = "accounts.login_defs."
	one := func(key, v, reason string) want { return want{Key: key, Values: []string{v}, Reason: r + reason} }
	w := []want{one("ENCRYPT_METHOD", l.EncryptMethod, "encrypt_method")}
	// The cost keys of the method in use; the other method's keys are left as they are.
	if l.EncryptMethod == "YESCRYPT" {
		w = append(w, one("YESCRYPT_COST_FACTOR", yescryptCost, "encrypt_method"))
	} else {
		w = append(w, one("SHA_CRYPT_MIN_ROUNDS", shaRounds, "encrypt_method"), one("SHA_CRYPT_MAX_ROUNDS", shaRounds, "encrypt_method"))
	}
	return append(w,
		one("PASS_MAX_DAYS", strconv.Itoa(l.PassMaxDays), "pass_max_days"),
		one("PASS_MIN_DAYS", strconv.Itoa(l.PassMinDays), "pass_min_days"),
		one("PASS_WARN_AGE", strconv.Itoa(l.PassWarnAge), "pass_warn_age"),
		one("UMASK", l.Umask, "umask"),
	)
}
