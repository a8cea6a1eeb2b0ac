package sshd

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/harden-dev/harden/internal/command"
	"github.com/harden-dev/harden/internal/engine"
)

// The crypto baseline is a preference list of patterns per sshd keyword: the installed
// OpenSSH's supported algorithms (`ssh -Q`) that match, in this order. Naming only what this
// sshd supports keeps an older sshd from refusing its config, and the patterns take a newer
// sshd's post-quantum hybrids with X25519 without a code change. Everything else is left
// out: NIST-curve key exchange and host keys (ssh-audit fails them), SHA-1 (ssh-rsa,
// hmac-sha1, group14-sha1, group-exchange-sha1), CBC, 64-bit-tag and encrypt-and-MAC MACs,
// and group-exchange (its moduli file carries 2048-bit groups).
var (
	strongKex = []string{
		"mlkem*x25519*",  // ML-KEM-768 + X25519, OpenSSH 9.9+, the default from 10.0
		"sntrup*x25519*", // Streamlined NTRU Prime + X25519, OpenSSH 8.5+
		"curve25519-sha256", "curve25519-sha256@libssh.org",
		"diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512",
	}
	strongCiphers = []string{
		"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
		"aes256-ctr", "aes192-ctr", "aes128-ctr",
	}
	strongMACs = []string{
		"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com",
	}
	strongHostKeyAlgs = []string{
		"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
		"sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
		"rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com",
		"rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com",
	}
	// ecdsaHostKeyAlgs are offered only with sshd.allow_ecdsa_host_key, or when the
	// machine has no other host key (never a config with no usable host key).
	ecdsaHostKeyAlgs = []string{"ecdsa-sha2-nistp*", "sk-ecdsa-sha2-nistp256*"}
)

// algorithms are what this OpenSSH supports, per `ssh -Q` query.
type algorithms map[string][]string

// queries are the `ssh -Q` names for the sshd keywords harden restricts.
var queries = map[string]string{
	"KexAlgorithms": "kex", "Ciphers": "cipher", "MACs": "mac", "HostKeyAlgorithms": "HostKeyAlgorithms",
}

// supported asks the ssh client (same OpenSSH build as sshd on Debian and Ubuntu) what it
// supports. The answer is kept for the life of the step: the binary does not change within
// a run, and a converged boot should not pay four execs per plan.
//
// The four queries run at once: each is a process start of the ssh client (~30 ms on a
// development VM, far more under TCG), and in a row they were most of a converged plan.
func (s *Step) supported(ctx context.Context, env *engine.Env) (algorithms, error) {
	s.mu.Lock()
	if s.algos != nil {
		defer s.mu.Unlock()
		return s.algos, nil
	}
	s.mu.Unlock()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		out   = algorithms{}
		first error
	)
	for kw, q := range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := env.Exec.Run(ctx, command.Cmd{Name: s.opts.SSH, Args: []string{"-Q", q}, Timeout: cmdTimeout})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("%s -Q %s: %w", s.opts.SSH, q, err)
				}
				return
			}
			out[kw] = strings.Fields(string(res.Stdout))
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.algos, s.asked = out, true
	return out, nil
}

// pick returns the supported names matching the patterns, in pattern order.
func pick(supported []string, patterns ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ps := range patterns {
		for _, p := range ps {
			for _, a := range supported {
				if ok, _ := path.Match(p, a); ok && !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// cryptoSettings are the crypto lines of the drop-in. keyTypes are the host key types the
// machine has (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...): when none of them can be
// offered without ECDSA, ECDSA stays offered and noECDSA reports it.
func cryptoSettings(a algorithms, allowECDSA bool, keyTypes []string) (ws []wanted, keptECDSA bool) {
	hostAlgs := [][]string{strongHostKeyAlgs}
	if allowECDSA || !hasNonECDSA(keyTypes) {
		hostAlgs = append(hostAlgs, ecdsaHostKeyAlgs)
		keptECDSA = !allowECDSA
	}
	for _, c := range []struct {
		kw       string
		patterns [][]string
	}{
		{"KexAlgorithms", [][]string{strongKex}},
		{"Ciphers", [][]string{strongCiphers}},
		{"MACs", [][]string{strongMACs}},
		{"HostKeyAlgorithms", hostAlgs},
	} {
		names := pick(a[c.kw], c.patterns...)
		if len(names) == 0 {
			// Nothing strong is supported: leave sshd's default rather than write a
			// line sshd would refuse.
			continue
		}
		ws = append(ws, wanted{Key: c.kw, Value: strings.Join(names, ","), Reason: "sshd.crypto"})
	}
	return ws, keptECDSA
}

// hasNonECDSA reports whether some host key can be offered without ECDSA. With no key
// known at all (sshd-keygen makes them at first boot: ed25519 and rsa among them) it is true.
func hasNonECDSA(keyTypes []string) bool {
	if len(keyTypes) == 0 {
		return true
	}
	for _, t := range keyTypes {
		if t == "ssh-ed25519" || t == "ssh-rsa" || strings.HasPrefix(t, "sk-ssh-ed25519") {
			return true
		}
	}
	return false
}
