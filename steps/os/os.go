// Package os is the os step: it checks that the machine runs the release the policy asks for
// and that its image is recent enough. Patches arrive by rebuilding the image, not by apt at
// boot, so an old image is an unpatched machine. The step only reports: it has nothing it
// could change.
package os

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
)

// Step is the os step.
type Step struct{}

// New returns the os step.
func New() *Step { return &Step{} }

// Name implements engine.Step.
func (*Step) Name() string { return "os" }

// Apply implements engine.Step: the os step never plans changes.
func (*Step) Apply(context.Context, *engine.Env, *engine.Plan) error { return nil }

// Plan implements engine.Step.
func (*Step) Plan(_ context.Context, env *engine.Env) (*engine.Plan, error) {
	p := &engine.Plan{}
	rel, err := readOSRelease(env)
	if err != nil {
		return nil, err
	}
	if err := checkRelease(p, env, rel); err != nil {
		return nil, err
	}
	checkImage(p, env)
	return p, nil
}

// checkRelease compares os-release with os.id and os.min_version.
func checkRelease(p *engine.Plan, env *engine.Env, rel map[string]string) error {
	want := env.Policy.OS
	if rel == nil {
		p.Find(&engine.Finding{ID: "os.release-unknown", Severity: engine.Critical, Object: "/etc/os-release",
			Message: "no os-release file: the OS cannot be identified", Reason: "os.id"})
		return nil
	}
	id, ver := rel["ID"], rel["VERSION_ID"]
	if want.ID != "" && id != want.ID {
		p.Find(&engine.Finding{ID: "os.id-mismatch", Severity: engine.Critical, Object: "/etc/os-release",
			Message: fmt.Sprintf("OS is %q (%s), policy requires %q", id, rel["PRETTY_NAME"], want.ID), Reason: "os.id"})
		return nil
	}
	min, why, err := minVersion(want.MinVersion, id, env, p)
	if err != nil {
		return err
	}
	if min == "" {
		if want.MinVersion != "" {
			p.Find(&engine.Finding{ID: "os.release-unknown", Severity: engine.Warning, Object: "/etc/os-release",
				Message: fmt.Sprintf("cannot judge %s %s against %q: %s", id, ver, want.MinVersion, why), Reason: "os.min_version"})
		}
		return nil
	}
	if compareVersions(ver, min) < 0 {
		p.Find(&engine.Finding{ID: "os.version-too-old", Severity: engine.Critical, Object: "/etc/os-release",
			Message: fmt.Sprintf("%s %s is older than %s (%s)", id, ver, min, why), Reason: "os.min_version"})
	}
	return nil
}

// minVersion resolves os.min_version to a version, with a short explanation. latest-lts
// reads the machine's release data (and reports on the built-in list) only when asked.
func minVersion(spec, id string, env *engine.Env, p *engine.Plan) (string, string, error) {
	if spec != "latest-lts" {
		return spec, "os.min_version " + spec, nil
	}
	if id != "ubuntu" {
		return "", "latest-lts is only known for ubuntu", nil
	}
	rel, err := loadReleases(env, p)
	if err != nil {
		return "", "", err
	}
	rel.checkTable(p)
	now := env.Now()
	latest, from := rel.latestLTS(now)
	if latest == "" {
		return "", "no LTS release before " + now.Format("2006-01-02") + " is known", nil
	}
	return latest, "the latest LTS on " + now.Format("2006-01-02") + " is " + latest + ", by " + from, nil
}

// compareVersions compares dotted numeric versions ("24.04" < "26.04", "12" < "12.1").
// Non-numeric parts compare as 0, which errs towards "too old".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		x, y := part(as, i), part(bs, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func part(s []string, i int) int {
	if i >= len(s) {
		return 0
	}
	n, _ := strconv.Atoi(s[i])
	return n
}
