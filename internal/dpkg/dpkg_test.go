package dpkg

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// testdata/status is part of a Debian bookworm machine's /var/lib/dpkg/status (36 real
// stanzas) plus telnet, an i386 libc6 (multi-arch) and rsh-client with only its conffiles left.
func fixture(t *testing.T) string {
	data, err := os.ReadFile("testdata/status")
	require.NoError(t, err)
	return string(data)
}

func TestParseStatusFixture(t *testing.T) {
	pkgs, err := ParseStatus("status", []byte(fixture(t)))
	require.NoError(t, err)
	assert.Len(t, pkgs, 39)
	byKey := map[string]Pkg{}
	present := 0
	for _, p := range pkgs {
		byKey[p.Key()] = p
		if p.Present() {
			present++
		}
	}
	assert.Equal(t, 38, present, "rsh-client has only conffiles left")
	assert.Equal(t, "0.17+2.4-2", byKey["telnet:all"].Version)
	assert.Contains(t, byKey, "libc6:amd64")
	assert.Contains(t, byKey, "libc6:i386")
	assert.False(t, byKey["rsh-client:amd64"].Present())
}

func TestParseStatusErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Package: a\nStatus: install ok installed\nthis is not a field\n", "status:3"},
		{" leading continuation\n", "status:1"},
		{"Package: a\nStatus: installed\n", `status:2: Status "installed"`},
	} {
		_, err := ParseStatus("status", []byte(tc.in))
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// The machine's own status database, parsed by us and listed by dpkg-query, agree.
func TestParseStatusAgreesWithDpkgQuery(t *testing.T) {
	need.File(t, StatusPath, "dpkg's status database")
	need.Tool(t, "dpkg-query")
	data, err := os.ReadFile(StatusPath)
	require.NoError(t, err)
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}:${Architecture} ${Version} ${db:Status-Status}\n").Output()
	require.NoError(t, err)
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] != "not-installed" && f[2] != "config-files" {
			want[f[0]] = f[1]
		}
	}
	pkgs, err := ParseStatus(StatusPath, data)
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range pkgs {
		if p.Present() {
			got[p.Key()] = p.Version
		}
	}
	assert.Equal(t, want, got)
}

func TestCompareVersions(t *testing.T) {
	cases := [][2]string{
		{"1.0~rc1", "1.0"}, {"1.0", "1.0-1"}, {"1.0-1", "1.0-1ubuntu1"}, {"2.0", "1:0.1"},
		{"2.36-9+deb12u1", "2.36-9+deb12u13"}, {"1.2.3", "1.10"}, {"1.0a", "1.0+"}, {"0.17+2.4-2", "0.17+2.4-10"},
		{"3.0.11-1~deb12u2", "3.0.11-1~deb12u3"}, {"1:2.9", "1:2.10~beta"}, {"7.4p1-1", "7.4p1-1.1"}, {"1.0~~", "1.0~"},
	}
	dpkg, err := exec.LookPath("dpkg")
	for _, c := range cases {
		assert.Equal(t, -1, CompareVersions(c[0], c[1]), "%s < %s", c[0], c[1])
		assert.Equal(t, 1, CompareVersions(c[1], c[0]), "%s > %s", c[1], c[0])
		assert.Equal(t, 0, CompareVersions(c[0], c[0]))
		if err == nil { // dpkg itself agrees
			assert.NoError(t, exec.Command(dpkg, "--compare-versions", c[0], "lt", c[1]).Run(), "%s lt %s", c[0], c[1])
		}
	}
	assert.Equal(t, 0, CompareVersions("1.01", "1.1"))
	assert.Equal(t, 0, CompareVersions("0:1.0", "1.0"))
}

func TestIsInstalled(t *testing.T) {
	root := fsroot.New(t.TempDir())
	ok, err := IsInstalled(root, "telnet")
	require.NoError(t, err)
	assert.False(t, ok, "no database: nothing installed")

	require.NoError(t, os.MkdirAll(root.Path("/var/lib/dpkg"), 0o755))
	require.NoError(t, os.WriteFile(root.Path(StatusPath), []byte(fixture(t)), 0o644))
	for name, want := range map[string]bool{"telnet": true, "libc6": true, "rsh-client": false, "nosuch": false, "tel": false} {
		ok, err := IsInstalled(root, name)
		require.NoError(t, err)
		assert.Equal(t, want, ok, name)
	}
}

// The parser streams the file through a fixed buffer: a field line longer than the buffer,
// and a last line without a newline, read as if the file were held whole.
func TestParseStatusLongLinesAndNoFinalNewline(t *testing.T) {
	long := "Depends: " + strings.Repeat("libfoo (>= 1.0), ", scanBuffer/8)
	in := "Package: a\n" + long + "\nStatus: install ok installed\nVersion: " + strings.Repeat("9", scanBuffer+10) + "\n\n" +
		"Package: b\nDescription: x\n " + strings.Repeat("y", 3*scanBuffer) + "\nStatus: install ok installed\nVersion: 2"
	pkgs, err := ParseStatus("status", []byte(in))
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
	assert.Equal(t, strings.Repeat("9", scanBuffer+10), pkgs[0].Version)
	assert.Equal(t, Pkg{Name: "b", Version: "2", State: "installed"}, pkgs[1])

	_, err = ParseStatus("status", []byte(in+"\n"+strings.Repeat("z", 2*scanBuffer)+"\n"))
	require.ErrorContains(t, err, "status:11: want \"Field: value\"", "line numbers count long lines once")
}
