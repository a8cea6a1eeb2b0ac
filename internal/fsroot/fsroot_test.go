package fsroot

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteIsAtomicBacksUpAndIsANoOpWhenSame(t *testing.T) {
	dir := t.TempDir()
	r := New(dir).WithBackupDir("/var/lib/harden/backup/run1")

	changed, err := r.WriteFile("/etc/ssh/sshd_config.d/00-harden.conf", []byte("A\n"), 0o600)
	require.NoError(t, err)
	assert.True(t, changed)
	got, err := os.ReadFile(filepath.Join(dir, "etc/ssh/sshd_config.d/00-harden.conf"))
	require.NoError(t, err)
	assert.Equal(t, "A\n", string(got))

	changed, err = r.WriteFile("/etc/ssh/sshd_config.d/00-harden.conf", []byte("A\n"), 0o600)
	require.NoError(t, err)
	assert.False(t, changed, "same content and mode: nothing written")
	_, err = os.Stat(filepath.Join(dir, "var/lib/harden/backup/run1"))
	assert.True(t, os.IsNotExist(err), "no backup when nothing was replaced")

	changed, err = r.WriteFile("/etc/ssh/sshd_config.d/00-harden.conf", []byte("B\n"), 0o644)
	require.NoError(t, err)
	assert.True(t, changed)
	backup, err := os.ReadFile(filepath.Join(dir, "var/lib/harden/backup/run1/etc/ssh/sshd_config.d/00-harden.conf"))
	require.NoError(t, err)
	assert.Equal(t, "A\n", string(backup), "the original is kept")
	fi, err := os.Stat(filepath.Join(dir, "etc/ssh/sshd_config.d/00-harden.conf"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	leftovers, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/sshd_config.d/.harden-tmp-*"))
	assert.Empty(t, leftovers)
}

func TestPathsStayUnderTheRoot(t *testing.T) {
	r := New("/tmp/root")
	assert.Equal(t, "/tmp/root/etc/passwd", r.Path("/../../etc/passwd"))
	_, err := r.ReadFile("etc/passwd")
	assert.ErrorContains(t, err, "not an absolute path")
}

func TestRemoveBacksUp(t *testing.T) {
	dir := t.TempDir()
	r := New(dir).WithBackupDir("/bk")
	_, err := r.WriteFile("/etc/audit/rules.d/old.rules", []byte("-w /x\n"), 0o640)
	require.NoError(t, err)
	removed, err := r.Remove("/etc/audit/rules.d/old.rules")
	require.NoError(t, err)
	assert.True(t, removed)
	b, err := r.ReadFile("/bk/etc/audit/rules.d/old.rules")
	require.NoError(t, err)
	assert.Equal(t, "-w /x\n", string(b))
	removed, err = r.Remove("/etc/audit/rules.d/old.rules")
	require.NoError(t, err)
	assert.False(t, removed)
}

func TestWriteStateMakesNoBackup(t *testing.T) {
	r := New(t.TempDir()).WithBackupDir("/backup")
	require.NoError(t, r.WriteState("/var/lib/harden/last-run.json", []byte("1"), 0o644))
	require.NoError(t, r.WriteState("/var/lib/harden/last-run.json", []byte("2"), 0o644))
	got, err := r.ReadFile("/var/lib/harden/last-run.json")
	require.NoError(t, err)
	require.Equal(t, "2", string(got))
	_, err = r.Stat("/backup")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// A report is replaced whole (rename), with its mode, no backup and no temporary file left.
func TestWriteReportReplacesWithoutBackup(t *testing.T) {
	r := New(t.TempDir()).WithBackupDir("/backup")
	require.NoError(t, r.WriteReport("/var/lib/harden/last-run.json", []byte("1"), 0o644))
	require.NoError(t, r.WriteReport("/var/lib/harden/last-run.json", []byte("22"), 0o640))
	got, err := r.ReadFile("/var/lib/harden/last-run.json")
	require.NoError(t, err)
	require.Equal(t, "22", string(got))
	fi, err := r.Stat("/var/lib/harden/last-run.json")
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm())
	entries, err := r.ReadDir("/var/lib/harden")
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")
	_, err = r.Stat("/backup")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Error(t, r.WriteReport("relative", nil, 0o644))
}

// The check sees the staged file, next to the target, under a name no *.conf glob
// reads; a refused file never reaches its name and leaves no temporary behind.
func TestWriteFileCheckedStagesBeforeTheRename(t *testing.T) {
	dir := t.TempDir()
	r := New(dir)
	name := "/etc/ssh/sshd_config.d/00-harden.conf"
	_, err := r.WriteFile(name, []byte("old\n"), 0o644)
	require.NoError(t, err)

	var staged string
	changed, err := r.WriteFileChecked(name, []byte("bad\n"), 0o644, func(p string) error {
		staged = p
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, "bad\n", string(data))
		cur, err := os.ReadFile(r.Path(name))
		require.NoError(t, err)
		assert.Equal(t, "old\n", string(cur), "the target is untouched while the check runs")
		return fs.ErrInvalid
	})
	assert.ErrorIs(t, err, fs.ErrInvalid)
	assert.True(t, changed)
	assert.Equal(t, filepath.Dir(r.Path(name)), filepath.Dir(staged), "staged next to the target")
	m, _ := filepath.Match("*.conf", filepath.Base(staged))
	assert.False(t, m, "sshd's Include glob must never read a staged file: %s", staged)
	got, err := os.ReadFile(r.Path(name))
	require.NoError(t, err)
	assert.Equal(t, "old\n", string(got))
	entries, err := os.ReadDir(filepath.Dir(r.Path(name)))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary left behind")

	_, err = r.WriteFileChecked(name, []byte("good\n"), 0o644, func(string) error { return nil })
	require.NoError(t, err)
	got, err = os.ReadFile(r.Path(name))
	require.NoError(t, err)
	assert.Equal(t, "good\n", string(got))
}
