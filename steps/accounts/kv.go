package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/harden-dev/harden/internal/engine"
	"github.com/harden-dev/harden/internal/kvconf"
	"github.com/harden-dev/harden/internal/textdiff"
)

// want is one key a file must hold. Values nil removes the key; [""] writes it bare (a flag
// like pwquality's enforce_for_root).
type want struct {
	Key    string
	Values []string
	Reason string
}

// planKV adds one change per key of name that differs from wants, keeping every other line
// of the file as it is. The changes share a single write of the whole file: the first Do
// writes it (one backup of the original, one atomic rename), the others find it done. Per-key
// changes are what an auditor reads in the journal ("PASS_MAX_DAYS 99999 -> 365").
func planKV(env *engine.Env, p *engine.Plan, name string, syntax kvconf.Syntax, wants []want) error {
	cur, exists, err := env.Root.ReadFileIfExists(name)
	if err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if exists {
		fi, err := env.Root.Stat(name)
		if err != nil {
			return err
		}
		perm = fi.Mode().Perm() // login.defs and pwquality.conf keep the mode they have
	}
	f := kvconf.Parse(cur, syntax)
	var changes []*engine.Change
	for _, w := range wants {
		before := show(f.Get(w.Key))
		changed, err := f.Set(w.Key, w.Values...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if changed {
			changes = append(changes, &engine.Change{Object: name + ": " + w.Key, Action: engine.ActionSet,
				Before: before, After: show(w.Values), Reason: w.Reason})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	next := f.Bytes()
	changes[0].Diff = textdiff.Lines(string(cur), string(next))
	write := writeOnce(env, name, cur, exists, next, perm)
	for _, c := range changes {
		c.Do = write
	}
	p.Add(changes...)
	return nil
}

// writeOnce returns a Do that writes next the first time it is called. It refuses when the
// file changed since it was planned (a package upgrade in between): the plan no longer
// describes what the write would do.
func writeOnce(env *engine.Env, name string, planned []byte, existed bool, next []byte, perm fs.FileMode) func(context.Context) error {
	var once sync.Once
	var err error
	return func(context.Context) error {
		once.Do(func() {
			cur, exists, rerr := env.Root.ReadFileIfExists(name)
			switch {
			case rerr != nil:
				err = rerr
			case exists != existed || !bytes.Equal(cur, planned):
				err = errors.New(name + " changed since it was planned; not overwriting it")
			default:
				_, err = env.Root.WriteFile(name, next, perm)
			}
		})
		return err
	}
}

// show is a key's values for Before/After: "absent", "present" for a bare flag, or the values.
func show(values []string) string {
	switch {
	case len(values) == 0:
		return "absent"
	case len(values) == 1 && values[0] == "":
		return "present"
	}
	return strings.Join(values, ", ")
}
