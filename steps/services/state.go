package services

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/harden-dev/harden/internal/fsroot"
)

// StatePath records the masks harden made. It tells harden's masks from an
// administrator's (or a package's): only its own are undone when the policy
// later allows the unit.
const StatePath = "/var/lib/harden/services-masked.json"

type maskRecord struct {
	// Masked are the units harden masked, sorted.
	Masked []string `json:"masked"`
}

// records is the mask record of one plan, shared by the plan's Do
// functions, which add and remove names and write the file after each
// change so that a run cut short still remembers what it did.
type records struct {
	mu   sync.Mutex
	root fsroot.Root
	set  map[string]bool
}

func loadRecords(root fsroot.Root) (*records, error) {
	r := &records{root: root, set: map[string]bool{}}
	data, ok, err := root.ReadFileIfExists(StatePath)
	if err != nil || !ok {
		return r, err
	}
	var rec maskRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to forget harden's masks)", StatePath, err)
	}
	for _, n := range rec.Masked {
		r.set[n] = true
	}
	return r, nil
}

// names lists the recorded units.
func (r *records) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.set))
	for n := range r.set {
		out = append(out, n)
	}
	return out
}

func (r *records) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[name]
}

// update adds or removes name and writes the record.
func (r *records) update(name string, masked bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set[name] == masked {
		return nil
	}
	if masked {
		r.set[name] = true
	} else {
		delete(r.set, name)
	}
	rec := maskRecord{Masked: make([]string, 0, len(r.set))}
	for n := range r.set {
		rec.Masked = append(rec.Masked, n)
	}
	slices.Sort(rec.Masked)
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return r.root.WriteState(StatePath, append(data, '\n'), 0o644)
}
