package clamav

import (
	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/kvconf"
)

// StampCleanup removes what must not be baked into an image: freshclam.dat (a UUID every VM
// would share and the build machine's CDN cool-down) and harden's freshclam record (the
// build machine's last attempt). `harden stamp` calls it. No backup is kept: a backup would
// be baked into the image just the same. It returns the paths removed.
func StampCleanup(root fsroot.Root) ([]string, error) {
	dbDir := DefaultDBDir
	if data, ok, err := root.ReadFileIfExists(FreshclamConf); err == nil && ok {
		dbDir = dbDirOf(kvconf.Parse(data, kvconf.Space))
	}
	var removed []string
	for _, p := range []string{freshclamDatPath(dbDir), StatePath} {
		gone, err := root.RemoveNoBackup(p)
		if err != nil {
			return removed, err
		}
		if gone {
			removed = append(removed, p)
		}
	}
	return removed, nil
}

// dbDirOf is freshclam.conf's DatabaseDirectory (the last one wins, as in clamd's parser).
func dbDirOf(f *kvconf.File) string {
	if v := f.Get("DatabaseDirectory"); len(v) > 0 && v[len(v)-1] != "" {
		return v[len(v)-1]
	}
	return DefaultDBDir
}
