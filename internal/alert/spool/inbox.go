package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/internal/alert"
)

// InboxDir is the inbox under a spool directory. clamd runs VirusEvent as its own user, which
// cannot write the root-only spool; it drops the alert here instead (mode 0730 root:clamav:
// the group can create files but not list or read the others'), and the watch moves it in.
func InboxDir(spoolDir string) string { return filepath.Join(spoolDir, "inbox") }

// maxInboxFile bounds what the watch reads from an unprivileged writer.
const maxInboxFile = 64 << 10

// WriteInbox drops an alert into the inbox durably (same temp-file-and-rename as the spool,
// inside the inbox itself since the writer can use no other directory).
func WriteInbox(spoolDir string, a *alert.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	dir := InboxDir(spoolDir)
	// 0644: the watch is root without CAP_DAC_OVERRIDE (its unit keeps only the audit
	// capabilities), so a 0600 file of clamav's would be unreadable to it. Nobody else can
	// reach the file: the inbox (0730) cannot be searched by others.
	err = writeDurable(dir, dir, a.ID+".json", b, 0o644)
	if errors.Is(err, fs.ErrPermission) {
		// The file is fsynced and renamed into place; only the directory fsync needs read
		// access to the inbox, which its writers deliberately lack (0730: they must not list
		// each other's alerts). The alert is there for the watch.
		if _, statErr := os.Stat(filepath.Join(dir, a.ID+".json")); statErr == nil {
			return nil
		}
	}
	return err
}

// IngestInbox spools the alerts waiting in the inbox and removes them. The writer is not
// trusted: accept checks and rewrites each alert (kind, context) and may refuse it; refused
// and unreadable files are removed with an error so they cannot wedge the inbox.
func (s *Spool) IngestInbox(accept func(*alert.Alert) error) (int, []error) {
	dir := InboxDir(s.dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, []error{fmt.Errorf("inbox: %w", err)}
	}
	n := 0
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".json") {
			continue // temp files being written (".json.123") and anything else
		}
		p := filepath.Join(dir, name)
		a, err := readInboxFile(p)
		if errors.Is(err, fs.ErrPermission) {
			// Never drop an alert we could not read: keep it for a watch that can.
			errs = append(errs, fmt.Errorf("inbox %s: %w", name, err))
			continue
		}
		if err == nil {
			err = accept(a)
		}
		if err == nil {
			err = s.Put(a) // spooled before the inbox file goes: a crash repeats, never loses
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("inbox %s: %w", name, err))
		} else {
			n++
		}
		os.Remove(p)
	}
	return n, errs
}

func readInboxFile(p string) (*alert.Alert, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInboxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInboxFile {
		return nil, fmt.Errorf("larger than %d bytes", maxInboxFile)
	}
	var a alert.Alert
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
