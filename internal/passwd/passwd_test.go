package passwd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/fsroot"
)

func tree(t *testing.T, files map[string]string) fsroot.Root {
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return fsroot.New(dir)
}

// The tree's accounts are read, never the build host's: clamav is 64 in the image whatever
// the host says, and a line without seven fields or with a non-numeric id is skipped.
func TestLooksUpInTheTree(t *testing.T) {
	root := tree(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\nbroken:x:1\nbad:x:a:b:::\nclamav:x:64:71::/var/lib/clamav:/bin/false\n",
		"etc/group":  "root:x:0:\nclamav:x:71:\nodd\nadm:x:4:syslog\n",
	})
	uid, gid, err := LookupUser(root, "clamav")
	require.NoError(t, err)
	assert.Equal(t, []int{64, 71}, []int{uid, gid})
	_, _, err = LookupUser(root, "broken")
	assert.ErrorContains(t, err, `user "broken" is not in /etc/passwd`)
	users, err := Users(root)
	require.NoError(t, err)
	require.Len(t, users, 2)
	assert.Equal(t, User{Name: "clamav", UID: 64, GID: 71, Home: "/var/lib/clamav", Shell: "/bin/false"}, users[1])
	groups, err := Groups(root)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"root": 0, "clamav": 71, "adm": 4}, groups)
}

func TestMissingFilesAreEmpty(t *testing.T) {
	root := tree(t, nil)
	users, err := Users(root)
	require.NoError(t, err)
	assert.Empty(t, users)
	groups, err := Groups(root)
	require.NoError(t, err)
	assert.Empty(t, groups)
	_, _, err = LookupUser(root, "root")
	assert.Error(t, err)
}
