package os

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/engine/enginetest"
)

const ubuntu2604 = `PRETTY_NAME="Ubuntu 26.04 LTS"
NAME="Ubuntu"
VERSION_ID="26.04"
ID=ubuntu
ID_LIKE=debian
`

func plan(t *testing.T, env *engine.Env) map[string]*engine.Finding {
	t.Helper()
	p, err := New().Plan(t.Context(), env)
	require.NoError(t, err)
	require.Empty(t, p.Changes, "the os step never changes anything")
	out := map[string]*engine.Finding{}
	for _, f := range p.Findings {
		out[f.ID] = f
	}
	return out
}

func stamp(t *testing.T, env *engine.Env, built time.Time) {
	enginetest.WriteFile(t, env, StampPath, "BUILD_TIME="+built.Format(time.RFC3339)+"\nIMAGE_ID=test\n")
}

func TestCurrentUbuntuAndFreshImageHaveNoFindings(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)
	stamp(t, env, enginetest.Now.Add(-3*24*time.Hour))
	assert.Empty(t, plan(t, env))
}

func TestLatestLTSFollowsTheClock(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	enginetest.WriteFile(t, env, "/usr/lib/os-release", "ID=ubuntu\nVERSION_ID=24.04\nPRETTY_NAME='Ubuntu 24.04.3 LTS'\n")

	f := plan(t, env)["os.version-too-old"]
	require.NotNil(t, f, "24.04 after 26.04's release must be too old")
	assert.Equal(t, engine.Critical, f.Severity)
	assert.Contains(t, f.Message, "26.04")

	// The day before 26.04 was released, 24.04 was the latest LTS.
	env.Now = func() time.Time { return time.Date(2026, 4, 22, 12, 0, 0, 0, time.UTC) }
	stamp(t, env, env.Now())
	assert.Empty(t, plan(t, env))
}

func TestExplicitMinVersionAndWrongOS(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	env.Policy.OS.MinVersion = "26.10"
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)
	assert.Contains(t, plan(t, env), "os.version-too-old")

	enginetest.WriteFile(t, env, "/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
	f := plan(t, env)["os.id-mismatch"]
	require.NotNil(t, f)
	assert.Contains(t, f.Message, "bookworm")
}

func TestNoOSReleaseIsCritical(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	assert.Equal(t, engine.Critical, plan(t, env)["os.release-unknown"].Severity)
}

func TestImageAge(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)

	assert.Contains(t, plan(t, env), "os.image-stamp-missing")

	// Ubuntu cloud images' own record is used when harden's stamp is absent.
	enginetest.WriteFile(t, env, cloudBuildInfo, "build_name: server\nserial: 20261101.1\n")
	f := plan(t, env)["os.image-too-old"]
	require.NotNil(t, f)
	assert.Contains(t, f.Message, "22d ago")

	stamp(t, env, enginetest.Now.Add(-15*24*time.Hour))
	f = plan(t, env)["os.image-too-old"]
	require.NotNil(t, f, "a 15-day-old image is too old under max_image_age 14d")
	assert.Equal(t, engine.Warning, f.Severity)
	assert.Equal(t, StampPath, f.Object)

	stamp(t, env, enginetest.Now.Add(-14*24*time.Hour+time.Minute))
	assert.Empty(t, plan(t, env), "harden's stamp wins over build.info and 14d minus a minute is fine")

	stamp(t, env, enginetest.Now.Add(48*time.Hour))
	assert.Contains(t, plan(t, env), "os.image-from-future")

	enginetest.WriteFile(t, env, StampPath, "BUILD_TIME=yesterday\n")
	f = plan(t, env)["os.image-stamp-missing"]
	require.NotNil(t, f)
	assert.Contains(t, f.Message, `"yesterday"`)

	env.Policy.OS.MaxImageAge = 0
	assert.Empty(t, plan(t, env), "max_image_age 0 disables the check")
}

func TestCompareVersions(t *testing.T) {
	assert.Equal(t, -1, compareVersions("24.04", "26.04"))
	assert.Equal(t, 0, compareVersions("26.04", "26.04"))
	assert.Equal(t, 1, compareVersions("26.10", "26.04"))
	assert.Equal(t, -1, compareVersions("12", "12.1"))
	assert.Equal(t, 0, compareVersions("12", "12.0"))
}

func TestStepIsReadOnlyAndConverged(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)
	enginetest.DryRunChangesNothing(t, env, New(), func() string { return enginetest.TreeDigest(t, env.Root.Dir()) })
	rep := enginetest.Converges(t, env, New())
	assert.Equal(t, engine.StatusOK, rep.Steps[0].Status)
}
