package sshd

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ssh -Q answers of OpenSSH 9.2 (this host, Debian 12) and of 10.2 (Ubuntu 26.04: 9.2's
// plus ML-KEM and the sntrup name without @openssh.com, from OpenSSH's kex-names.c), plus
// made-up future names to show the patterns take a newer hybrid and refuse a NIST one.
var (
	kex92  = strings.Fields("diffie-hellman-group1-sha1 diffie-hellman-group14-sha1 diffie-hellman-group14-sha256 diffie-hellman-group16-sha512 diffie-hellman-group18-sha512 diffie-hellman-group-exchange-sha1 diffie-hellman-group-exchange-sha256 ecdh-sha2-nistp256 ecdh-sha2-nistp384 ecdh-sha2-nistp521 curve25519-sha256 curve25519-sha256@libssh.org sntrup761x25519-sha512@openssh.com")
	kex102 = append(append([]string{}, kex92[:len(kex92)-1]...), "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256")
	hostKA = strings.Fields("ssh-ed25519 ssh-ed25519-cert-v01@openssh.com sk-ssh-ed25519@openssh.com ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 ssh-dss ssh-rsa ssh-rsa-cert-v01@openssh.com rsa-sha2-256 rsa-sha2-512")
	macs   = strings.Fields("hmac-sha1 hmac-sha2-256 hmac-sha2-512 umac-64@openssh.com umac-128@openssh.com hmac-sha1-etm@openssh.com hmac-sha2-256-etm@openssh.com hmac-sha2-512-etm@openssh.com umac-64-etm@openssh.com umac-128-etm@openssh.com")
	cipher = strings.Fields("3des-cbc aes128-cbc aes256-cbc aes128-ctr aes192-ctr aes256-ctr aes128-gcm@openssh.com aes256-gcm@openssh.com chacha20-poly1305@openssh.com")
)

func lines(ws []wanted) map[string]string {
	m := map[string]string{}
	for _, w := range ws {
		m[w.Key] = w.Value
	}
	return m
}

func TestCryptoFollowsWhatThisOpenSSHSupports(t *testing.T) {
	ws, kept := cryptoSettings(algorithms{"KexAlgorithms": kex102, "Ciphers": cipher, "MACs": macs, "HostKeyAlgorithms": hostKA}, false, []string{"ssh-ed25519", "ecdsa-sha2-nistp256"})
	assert.False(t, kept)
	l := lines(ws)
	assert.Equal(t, "mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group18-sha512,diffie-hellman-group16-sha512",
		l["KexAlgorithms"], "OpenSSH 10's post-quantum key exchange first")
	assert.Equal(t, "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr", l["Ciphers"])
	assert.Equal(t, "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com", l["MACs"])
	assert.Equal(t, "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,rsa-sha2-512,rsa-sha2-256", l["HostKeyAlgorithms"])
	for _, v := range l {
		for _, weak := range []string{"nistp", "sha1", "cbc", "umac-64", "ssh-rsa", "ssh-dss", "group14", "group-exchange"} {
			assert.NotContains(t, v, weak)
		}
	}

	// An older sshd (9.2) is never handed a name it does not know.
	ws, _ = cryptoSettings(algorithms{"KexAlgorithms": kex92}, false, nil)
	l = lines(ws)
	assert.Equal(t, "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group18-sha512,diffie-hellman-group16-sha512", l["KexAlgorithms"])
	assert.NotContains(t, l, "Ciphers", "nothing supported: no line, sshd keeps its default rather than refusing an empty list")

	// A newer sshd's X25519 hybrid is taken, a NIST hybrid is not.
	ws, _ = cryptoSettings(algorithms{"KexAlgorithms": append(append([]string{}, kex102...), "mlkem1024x25519-sha384", "mlkem768nistp256-sha256")}, false, nil)
	assert.True(t, strings.HasPrefix(lines(ws)["KexAlgorithms"], "mlkem768x25519-sha256,mlkem1024x25519-sha384,sntrup"), lines(ws)["KexAlgorithms"])
	assert.NotContains(t, lines(ws)["KexAlgorithms"], "nistp")
}

// ECDSA host keys: off by default, kept on request, and kept when they are all the machine
// has (dropping them would leave sshd no host key to offer: nobody could connect).
func TestECDSAHostKeyPolicy(t *testing.T) {
	a := algorithms{"HostKeyAlgorithms": hostKA}
	ws, _ := cryptoSettings(a, true, []string{"ssh-ed25519"})
	assert.Contains(t, lines(ws)["HostKeyAlgorithms"], "ecdsa-sha2-nistp256")
	ws, kept := cryptoSettings(a, false, []string{"ecdsa-sha2-nistp256"})
	assert.True(t, kept)
	assert.Contains(t, lines(ws)["HostKeyAlgorithms"], "ecdsa-sha2-nistp256")
	ws, kept = cryptoSettings(a, false, []string{"ssh-rsa", "ecdsa-sha2-nistp256"})
	assert.False(t, kept)
	assert.NotContains(t, lines(ws)["HostKeyAlgorithms"], "ecdsa")
	assert.Contains(t, lines(ws)["HostKeyAlgorithms"], "rsa-sha2-512", "the RSA key stays usable, signed with SHA-2")
}

// OpenSSH 10.4+ prints some `sshd -T` keywords capitalised, and the current name of
// PermitRootLogin's prohibit-password.
func TestSshdTKeywordsCaseInsensitive(t *testing.T) {
	m := parseT([]byte("PermitRootLogin prohibit-password\npasswordauthentication no\nKexAlgorithms mlkem768x25519-sha256\nHostKey /a\nhostkey /b\n"))
	require.Equal(t, "prohibit-password", m["permitrootlogin"])
	assert.Equal(t, "no", m["passwordauthentication"])
	assert.Equal(t, "mlkem768x25519-sha256", m["kexalgorithms"])
	assert.Equal(t, "/a, /b", m["hostkey"])
	assert.True(t, sameValue("permitrootlogin", "without-password", "prohibit-password"))
	assert.True(t, sameValue("x11forwarding", "No", "no"))
	assert.False(t, sameValue("passwordauthentication", "yes", "no"))
}

func TestFixIncludeWritesTheMachinePath(t *testing.T) {
	out, ok := fixInclude([]byte("Include /img/root/etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n"), "/img/root")
	assert.False(t, ok, "a builder's path to the image reads nothing on the machine")
	assert.Equal(t, "# Added by harden: drop-ins first, so sshd_config.d/00-harden.conf wins.\nInclude /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n", string(out))
	_, ok = fixInclude(out, "/img/root")
	assert.True(t, ok)
}
