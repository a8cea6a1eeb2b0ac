// Package passwd reads the user and group databases (/etc/passwd, /etc/group) of a root as
// files. The root may be an image tree, where the C library (and os/user) would answer for
// the build host instead; and harden never needs NSS sources beyond these files: the
// accounts it looks up (clamav, root, login users) are local system accounts.
package passwd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/internal/fsroot"
)

// User is one line of /etc/passwd.
type User struct {
	Name     string
	UID, GID int
	Home     string
	Shell    string
}

// Users returns the users of /etc/passwd under root, in file order; a missing file is none.
// Lines that do not have the seven fields, or whose ids are not numbers, are skipped, as the
// C library skips them.
func Users(root fsroot.Root) ([]User, error) {
	data, _, err := root.ReadFileIfExists("/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []User
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]})
	}
	return out, nil
}

// LookupUser returns a user's uid and primary gid from /etc/passwd under root.
func LookupUser(root fsroot.Root, name string) (uid, gid int, err error) {
	users, err := Users(root)
	if err != nil {
		return 0, 0, err
	}
	for _, u := range users {
		if u.Name == name {
			return u.UID, u.GID, nil
		}
	}
	return 0, 0, fmt.Errorf("user %q is not in /etc/passwd", name)
}

// Groups returns the group names of /etc/group under root with their gids; a missing file
// is none.
func Groups(root fsroot.Root) (map[string]int, error) {
	data, _, err := root.ReadFileIfExists("/etc/group")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if gid, err := strconv.Atoi(f[2]); err == nil {
			out[f[0]] = gid
		}
	}
	return out, nil
}
