package os

import (
	"os"
	"path/filepath"
	"strings"
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

// readFixture returns a real distro-info-data ubuntu.csv (testdata/README.md says where
// each comes from).
func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

const (
	resoluteCSV = "ubuntu-2026.10.12-resolute.csv"   // Ubuntu 26.04's distro-info-data
	bookwormCSV = "ubuntu-0.58+deb12u6-bookworm.csv" // Debian 12's, which knows 26.04 too
)

func TestParseRealDistroInfo(t *testing.T) {
	for _, name := range []string{resoluteCSV, bookwormCSV} {
		rel, err := parseDistroInfo([]byte(readFixture(t, name)))
		require.NoError(t, err, name)
		var versions []string
		for _, r := range rel {
			versions = append(versions, r.Version)
		}
		assert.Equal(t, []string{"6.06", "8.04", "10.04", "12.04", "14.04", "16.04", "18.04", "20.04", "22.04", "24.04", "26.04"}, versions, name)
		assert.Equal(t, date(2026, 4, 23), rel[len(rel)-1].Released, name)
		// The embedded table agrees with the real data on every release it lists.
		for _, e := range UbuntuLTS {
			found := false
			for _, r := range rel {
				if r.Version == e.Version {
					found = true
					assert.Equal(t, r.Released, e.Released, "%s in %s", e.Version, name)
				}
			}
			assert.True(t, found, "%s in %s", e.Version, name)
		}
	}
}

// The machine's distro-info-data decides: an image whose data knows a newer LTS (here the
// real resolute file plus a 28.04 line, as distro-info-data will carry it) judges by it,
// and the built-in list, which ends at 26.04, is reported as outdated.
func TestLatestLTSFromTheMachinesReleaseData(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)
	enginetest.WriteFile(t, env, DistroInfoUbuntu, readFixture(t, resoluteCSV))
	assert.Empty(t, plan(t, env), "26.04 is the latest LTS by the real data, and the built-in list agrees")

	newer := readFixture(t, resoluteCSV) + "28.04 LTS,Future Release,future,2027-10-14,2028-04-20,2033-05-31,2033-05-31,2038-04-20,2043-04-30\n"
	enginetest.WriteFile(t, env, DistroInfoUbuntu, newer)
	f := plan(t, env)
	require.Contains(t, f, "os.lts-table-outdated", "the data knows 28.04, the built-in list does not")
	assert.Equal(t, engine.Info, f["os.lts-table-outdated"].Severity)
	assert.Contains(t, f["os.lts-table-outdated"].Message, "28.04")
	assert.NotContains(t, f, "os.version-too-old", "28.04 is not released on the test clock's day")

	env.Now = func() time.Time { return date(2028, 5, 1) }
	stamp(t, env, env.Now())
	f = plan(t, env)
	require.Contains(t, f, "os.version-too-old", "after 28.04's release, by the machine's data")
	assert.Contains(t, f["os.version-too-old"].Message, "older than 28.04")
	assert.Contains(t, f["os.version-too-old"].Message, DistroInfoUbuntu)

	// Without distro-info-data the built-in list is all there is.
	require.NoError(t, os.Remove(env.Root.Path(DistroInfoUbuntu)))
	f = plan(t, env)
	assert.NotContains(t, f, "os.version-too-old")
	assert.NotContains(t, f, "os.lts-table-outdated")
}

// Data older than the binary (an image built before 26.04 was in distro-info-data) does not
// hide an LTS the built-in list knows; the message names the source.
func TestOlderReleaseDataDoesNotHideANewerLTS(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	enginetest.WriteFile(t, env, "/etc/os-release", "ID=ubuntu\nVERSION_ID=24.04\n")
	old := readFixture(t, bookwormCSV)
	old = old[:strings.Index(old, "24.10,")] // as distro-info-data was before 24.10 was added
	enginetest.WriteFile(t, env, DistroInfoUbuntu, old)
	f := plan(t, env)
	require.Contains(t, f, "os.version-too-old")
	assert.Contains(t, f["os.version-too-old"].Message, "26.04, by harden's built-in list")
	assert.NotContains(t, f, "os.lts-table-outdated")
}

func TestUnreadableReleaseDataFallsBack(t *testing.T) {
	env := enginetest.Env(t, nil, nil)
	stamp(t, env, enginetest.Now)
	enginetest.WriteFile(t, env, "/etc/os-release", ubuntu2604)
	for _, bad := range []string{
		"",
		"version,codename,series\n26.04 LTS,Resolute Raccoon,resolute\n",
		"version,codename,series,created,release\n26.04 LTS,Resolute Raccoon,resolute,2025-10-09,April\n",
	} {
		enginetest.WriteFile(t, env, DistroInfoUbuntu, bad)
		f := plan(t, env)
		require.Contains(t, f, "os.release-data-unreadable", "%q", bad)
		assert.Equal(t, engine.Warning, f["os.release-data-unreadable"].Severity)
		assert.NotContains(t, f, "os.version-too-old", "the built-in list still judges 26.04")
	}
}
