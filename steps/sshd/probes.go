package sshd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/engine"
)

// ProbeRecord keeps what this OpenSSH build answered to the step's probes (`ssh -Q` four
// times, `sshd -G`) and how it normalised the drop-in's own values (`sshd -T` of the
// drop-in alone, see reference), for the binaries it asked. The answers only change with
// the binaries, and asking again is six process starts on every boot: ~1.4 s of a
// converged boot under TCG. A plan reads the record when both binaries are still the files
// it names (path, inode, size, modification and change times: a package upgrade replaces
// them); the step writes it (engine.Recorder) after any run that is not a dry-run and had
// to ask. A plan never writes, so a dry-run changes nothing.
const ProbeRecord = "/var/lib/harden/openssh-probes.json"

// binaryID names one version of a file.
type binaryID struct {
	Path    string `json:"path"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
}

func identify(path string) (binaryID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return binaryID{}, err
	}
	return binaryID{Path: path, Ino: st.Ino, Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano()}, nil
}

type probeRecord struct {
	SSH        binaryID   `json:"ssh"`
	SSHD       binaryID   `json:"sshd"`
	Algorithms algorithms `json:"algorithms"`
	DumpConfig bool       `json:"dump_config"` // sshd -G works
	// References are reference()'s answers by referenceKey: only the ones the last run
	// used, so the record does not grow with every drop-in the machine ever had.
	References map[string]map[string]string `json:"references,omitempty"`
}

// loadProbes takes the probes' answers from the record when it was made for these binaries,
// and reports whether it did.
func (s *Step) loadProbes(env *engine.Env) bool {
	data, ok, err := env.Root.ReadFileIfExists(ProbeRecord)
	if err != nil || !ok {
		return false
	}
	var rec probeRecord
	if json.Unmarshal(data, &rec) != nil || len(rec.Algorithms) != len(queries) {
		return false // unreadable or from another version of harden: ask again
	}
	sshID, err1 := identify(s.opts.SSH)
	sshdID, err2 := identify(s.opts.Binary)
	if err1 != nil || err2 != nil || rec.SSH != sshID || rec.SSHD != sshdID {
		return false
	}
	done := make(chan struct{})
	close(done)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.algos, s.dumpCfg, s.dumpRun = rec.Algorithms, rec.DumpConfig, done
	s.refsKnown = rec.References
	return true
}

// Record implements engine.Recorder: it writes the answers of the probes this step had to
// run. It is a cache: a failure to write it costs the next plan its probes, not this run its
// result, so it is not an error.
func (s *Step) Record(ctx context.Context, env *engine.Env) {
	s.mu.Lock()
	asked, algos, refs := s.asked || s.refsAsked, s.algos, s.refsUsed
	s.mu.Unlock()
	if !asked || algos == nil || s.opts.Offline {
		return
	}
	rec := probeRecord{Algorithms: algos, DumpConfig: s.canDump(ctx, env), References: refs}
	var err1, err2 error
	rec.SSH, err1 = identify(s.opts.SSH)
	rec.SSHD, err2 = identify(s.opts.Binary)
	if err1 != nil || err2 != nil {
		return
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if env.Root.WriteState(ProbeRecord, append(data, '\n'), 0o644) == nil {
		s.mu.Lock()
		s.asked, s.refsAsked = false, false
		s.mu.Unlock()
	}
}

// referenceKey names one reference() question: the sshd arguments and the drop-in text.
func referenceKey(args []string, stdin []byte) string {
	h := sha256.New()
	for _, a := range args {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	h.Write(stdin)
	return hex.EncodeToString(h.Sum(nil))
}

// recall returns a recorded reference() answer, and remembers that this run used it.
func (s *Step) recall(key string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.refsUsed[key]
	if !ok {
		ref, ok = s.refsKnown[key]
	}
	if ok {
		s.remember(key, ref, false)
	}
	return ref, ok
}

// remember keeps a reference() answer for this run and the record; s.mu is held.
func (s *Step) remember(key string, ref map[string]string, asked bool) {
	if s.refsUsed == nil {
		s.refsUsed = map[string]map[string]string{}
	}
	s.refsUsed[key] = ref
	s.refsAsked = s.refsAsked || asked
}
