package sshd

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/engine"
)

// ProbeRecord keeps what this OpenSSH build answered to the step's probes (`ssh -Q` four
// times, `sshd -G`) and its `sshd -T` answers (the effective values for the configuration
// files as they are, and the drop-in's values alone, see prove and reference), for the
// binaries it asked. The probe answers only change with the binaries, the `sshd -T` ones
// with the binary and the exact bytes sshd reads (their key); asking again is seven process
// starts on every boot: ~1.8 s of a converged boot under TCG. A plan reads the record when
// both binaries are still the files it names (path, inode, size, modification and change
// times: a package upgrade replaces them); the step writes it (engine.Recorder) after any
// run that is not a dry-run and had to ask. A plan never writes, so a dry-run changes
// nothing. Without the crypto baseline (sshd.crypto: default) nothing is recorded.
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
	// Answers are `sshd -T` answers by question (answerKey), the keywords the step reads
	// from them only: the ones the last run used, so the record does not grow with every
	// configuration the machine ever had.
	Answers map[string]map[string]string `json:"answers,omitempty"`
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
	s.answersKnown = rec.Answers
	return true
}

// Record implements engine.Recorder: it writes the answers of the probes this step had to
// run. It is a cache: a failure to write it costs the next plan its probes, not this run its
// result, so it is not an error.
func (s *Step) Record(ctx context.Context, env *engine.Env) {
	s.mu.Lock()
	asked, algos, answers := s.asked || s.answersAsked, s.algos, s.answersUsed
	s.mu.Unlock()
	if !asked || algos == nil || s.opts.Offline {
		return
	}
	rec := probeRecord{Algorithms: algos, DumpConfig: s.canDump(ctx, env), Answers: answers}
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
		s.asked, s.answersAsked = false, false
		s.mu.Unlock()
	}
}

// answerKey names one `sshd -T` question: the arguments, stdin, and every input sshd reads
// that the binary's identity does not cover (prove: the bytes of each configuration file in
// the order sshd reads them, and the identity of each host key, which sshd loads without -G).
func answerKey(args []string, stdin []byte, inputs []configFile) string {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, a := range args {
		field([]byte(a))
	}
	field(stdin)
	for _, f := range inputs {
		field([]byte(f.path))
		field(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// configFile is one input of an `sshd -T` question: a configuration file as read, or a host
// key's identity.
type configFile struct {
	path string
	data []byte
}

// recall returns a recorded `sshd -T` answer, and remembers that this run used it.
func (s *Step) recall(key string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ans, ok := s.answersUsed[key]
	if !ok {
		ans, ok = s.answersKnown[key]
	}
	if ok {
		s.remember(key, ans, false)
	}
	return ans, ok
}

// remember keeps an `sshd -T` answer for this run and the record; s.mu is held.
func (s *Step) remember(key string, ans map[string]string, asked bool) {
	if s.answersUsed == nil {
		s.answersUsed = map[string]map[string]string{}
	}
	s.answersUsed[key] = ans
	s.answersAsked = s.answersAsked || asked
}

// askT runs `sshd -T` with args (and stdin) unless the record has the answer to the same
// question, and returns the values of keywords only.
func (s *Step) askT(ctx context.Context, env *engine.Env, key string, stdin []byte, keywords []string, args ...string) (map[string]string, error) {
	if ans, ok := s.recall(key); ok {
		return ans, nil
	}
	out, err := s.run(ctx, env, stdin, args...)
	if err != nil {
		return nil, err
	}
	all := parseT(out)
	ans := make(map[string]string, len(keywords))
	for _, k := range keywords {
		if v, ok := all[k]; ok {
			ans[k] = v
		}
	}
	s.mu.Lock()
	s.remember(key, ans, true)
	s.mu.Unlock()
	return ans, nil
}
