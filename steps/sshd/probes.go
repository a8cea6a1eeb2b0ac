package sshd

import (
	"context"
	"encoding/json"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/internal/engine"
)

// ProbeRecord keeps what this OpenSSH build answered to the step's probes (`ssh -Q` four
// times, `sshd -G`), for the binaries it asked. The answers only change with the binaries,
// and asking again is five process starts on every boot: ~1 s of a converged boot under
// TCG. A plan reads the record when both binaries are still the files it names (path,
// inode, size, modification and change times: a package upgrade replaces them); Apply
// writes it after a plan that had to ask. A plan never writes, so a dry-run changes
// nothing; a machine whose OpenSSH changed asks on every plan until its next apply.
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
	return true
}

// saveProbes records the answers of probes this step ran. It is a cache: a failure to
// write it costs the next plan its probes, not this run its result, so it is not an error.
func (s *Step) saveProbes(ctx context.Context, env *engine.Env) {
	s.mu.Lock()
	asked, algos := s.asked, s.algos
	s.mu.Unlock()
	if !asked || algos == nil || s.opts.Offline {
		return
	}
	rec := probeRecord{Algorithms: algos, DumpConfig: s.canDump(ctx, env)}
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
	_ = env.Root.WriteState(ProbeRecord, append(data, '\n'), 0o644)
}
