package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/fsroot"
	"github.com/harden-dev/harden/internal/testutil/need"
)

func TestEmbeddedDefaultIsAPrivateVMWithSSHFromThePrivateNetwork(t *testing.T) {
	p := Default()
	assert.Equal(t, "private", p.Firewall.Exposure)
	require.Len(t, p.Firewall.Allow, 1)
	ssh := p.Firewall.Allow[0]
	assert.Equal(t, 22, ssh.Port)
	assert.Equal(t, "tcp", ssh.Proto)
	assert.Equal(t, FromPrivate, ssh.From.Kind)
	assert.False(t, p.SSHD.PermitRootLogin)
	assert.False(t, p.SSHD.PasswordAuthentication)
	assert.Equal(t, 14*24*time.Hour, p.OS.MaxImageAge.D())
	assert.True(t, p.IsEmbedded())
}

func TestFileOverlaysTheDefault(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
version: 1
sshd:
  max_auth_tries: 2
firewall:
  allow:
    - {name: web, proto: tcp, ports: "8000-8100", from: [fdaa:0:1::/48], why: "internal API"}
    - {name: ssh2, proto: tcp, port: 22, from: private, why: "SSH"}
`), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, p.SSHD.MaxAuthTries, "given key wins")
	assert.False(t, p.SSHD.PasswordAuthentication, "omitted key keeps the default")
	require.Len(t, p.Firewall.Allow, 2, "a given list replaces the default list")
	assert.Equal(t, PortRange{8000, 8100}, p.Firewall.Allow[0].PortRange())
	assert.Equal(t, []string{"auto"}, p.Firewall.PrivateNetworks)
	assert.Equal(t, "p.yaml", p.File())
	assert.Equal(t, Pos{File: "p.yaml", Line: 4, Col: 19}, p.Where("sshd.max_auth_tries"))
	assert.Equal(t, EmbeddedName, p.Where("os.id").File, "omitted fields point at the default")
	// The default itself was not changed by the overlay.
	assert.Equal(t, 3, Default().SSHD.MaxAuthTries)
}

func TestShowOutputIsItselfAValidPolicy(t *testing.T) {
	for _, src := range []string{string(mustRead(t, "../../assets/policy.yaml")), publicPolicy} {
		p, err := Parse("in.yaml", []byte(src), nil)
		require.NoError(t, err)
		out, err := p.YAML()
		require.NoError(t, err)
		again, err := Parse("shown.yaml", out, nil)
		require.NoError(t, err, "policy show output:\n%s", out)
		out2, err := again.YAML()
		require.NoError(t, err)
		assert.Equal(t, string(out), string(out2), "show is a fixed point")
	}
}

const publicPolicy = `
version: 1
firewall:
  exposure: public
  ping: public
  allow:
    - {name: http, proto: tcp, port: 8080, from: proxy, why: "fly.toml internal_port 8080 behind fly-proxy"}
    - {name: dns, proto: udp, port: 53, from: [10.0.0.0/8, "2001:db8::/32"], why: "resolver for the office"}
    - {name: ssh, proto: tcp, port: 22, from: private, why: "fly ssh console"}
`

// Each broken policy must be refused with its file, line, column and field.
func TestBrokenPoliciesNameFileLineColumnAndField(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"yaml syntax", "version: 1\nfirewall:\n  allow: [\n", "bad.yaml:3: YAML syntax"},
		{"unknown key", "version: 1\nsshd:\n  permit_root_logn: true\n", "bad.yaml:3:3: sshd.permit_root_logn: unknown key"},
		{"wrong type", "version: 1\nsshd:\n  max_auth_tries: three\n", `bad.yaml:3:19: sshd.max_auth_tries: want a whole number, got "three"`},
		{"missing why", "version: 1\nfirewall:\n  allow:\n    - name: ssh\n      proto: tcp\n      port: 22\n      from: private\n      why: \"  \"\n",
			"bad.yaml:8:12: firewall.allow[0].why: required"},
		{"missing why key", "version: 1\nfirewall:\n  allow:\n    - {name: ssh, proto: tcp, port: 22, from: private}\n",
			"bad.yaml:4:7: firewall.allow[0].why: required"},
		{"port 70000", "version: 1\nfirewall:\n  allow:\n    - {name: x, proto: tcp, port: 70000, from: private, why: w}\n",
			"bad.yaml:4:35: firewall.allow[0].port: port 70000 out of range"},
		{"bad range", "version: 1\nfirewall:\n  allow:\n    - {name: x, proto: tcp, ports: \"9-2\", from: private, why: w}\n",
			`bad.yaml:4:36: firewall.allow[0].ports: port range "9-2" runs backwards`},
		{"bad CIDR", "version: 1\nfirewall:\n  allow:\n    - name: x\n      proto: udp\n      port: 53\n      from:\n        - fdaa::/48\n        - 10.0.0.300/8\n      why: w\n",
			`bad.yaml:9:11: firewall.allow[0].from: bad CIDR "10.0.0.300/8"`},
		{"host bits", "version: 1\nfirewall:\n  private_networks: [10.1.2.3/8]\n",
			`bad.yaml:3:22: firewall.private_networks[0]: bad CIDR "10.1.2.3/8": host bits set (did you mean 10.0.0.0/8?)`},
		{"public port in private policy", "version: 1\nfirewall:\n  allow:\n    - {name: web, proto: tcp, port: 80, from: public, why: web}\n",
			"bad.yaml:4:47: firewall.allow[0].from: a private policy exposes nothing to the public"},
		{"public CIDR in private policy", "version: 1\nfirewall:\n  allow:\n    - {name: web, proto: tcp, port: 80, from: [0.0.0.0/0], why: web}\n",
			"bad.yaml:4:47: firewall.allow[0].from: 0.0.0.0/0 is outside the private networks"},
		{"proxy in private policy", "version: 1\nfirewall:\n  allow:\n    - {name: web, proto: tcp, port: 80, from: proxy, why: web}\n",
			"bad.yaml:4:47: firewall.allow[0].from: from: proxy (fly-proxy) is only for a public policy"},
		{"wrong version", "version: 2\n", "bad.yaml:1:10: version: want version: 1, got 2"},
		{"no version", "sshd: {max_auth_tries: 3}\n", "bad.yaml: version: want version: 1, got 0"},
		{"duplicate key", "version: 1\nsshd:\n  max_auth_tries: 3\n  max_auth_tries: 4\n", "bad.yaml:4:3: sshd.max_auth_tries: duplicate key"},
		{"bad duration", "version: 1\nos:\n  max_image_age: fortnight\n", `bad.yaml:3:18: os.max_image_age: invalid duration "fortnight"`},
		{"scan /etc", "version: 1\nclamav:\n  on_access_paths: [/home, /etc/ssh]\n", "bad.yaml:3:28: clamav.on_access_paths[1]: /etc/ssh is under /etc"},
		{"sshd owned key in settings", "version: 1\nsshd:\n  settings:\n    PasswordAuthentication: \"yes\"\n", "bad.yaml:4:29: sshd.settings.PasswordAuthentication: set this through sshd.password_authentication"},
		{"service without why", "version: 1\nservices:\n  allow:\n    - {name: cron.service, ensure: running}\n", "bad.yaml:4:7: services.allow[0].why: required"},
		{"unknown step timeout", "version: 1\nrun:\n  timeouts: {firewal: 1m}\n", "bad.yaml:3:23: run.timeouts.firewal: unknown step"},
		{"freshclam step timeout", "version: 1\nrun:\n  timeouts: {freshclam: 1m}\n", "bad.yaml:3:25: run.timeouts.freshclam: the signature update is bounded by clamav.freshclam.timeout"},
		{"empty file", "", "bad.yaml: empty policy"},
		{"sysctl vs core dumps", "version: 1\nkernel:\n  sysctl: {fs.suid_dumpable: \"2\"}\n",
			"bad.yaml:3:30: kernel.sysctl.fs.suid_dumpable: contradicts kernel.core_dumps: false"},
		{"empty sysctl value", "version: 1\nkernel:\n  sysctl: {kernel.sysrq: \" \"}\n",
			"kernel.sysctl.kernel.sysrq: want a one-line, non-empty value"},
		{"alias", "version: 1\nx: &a [1]\nos: *a\n", "bad.yaml:3:5: os: YAML aliases (*name) are not supported"},
		{"bad audit syscall", "version: 1\naudit:\n  rules:\n    - -a always,exit -F arch=b64 -S execve\n    - -a always,exit -F arch=b64 -S notasyscall -k x\n",
			`bad.yaml:5:7: audit.rules[1]: unknown syscall "notasyscall"`},
		{"bad audit field", "version: 1\naudit:\n  rules: [\"-a always,exit -F auidd>=1000 -S all\"]\n",
			`audit.rules[0]: -F auidd>=1000: unknown field "auidd"`},
		{"boot without the firewall", "version: 1\nboot:\n  required_steps: [audit]\n",
			"bad.yaml:3:19: boot.required_steps: must include firewall"},
		{"boot unknown step", "version: 1\nboot:\n  required_steps: [firewall, clamv]\n",
			`bad.yaml:3:30: boot.required_steps[1]: unknown step "clamv"`},
		{"boot stop timeout", "version: 1\nboot:\n  stop_timeout: 10m\n",
			"bad.yaml:3:17: boot.stop_timeout: want more than 0 and at most 5m"},
		{"boot sshd not a bool", "version: 1\nboot:\n  sshd: yes please\n",
			`bad.yaml:3:9: boot.sshd: want true or false`},
		{"audit control line", "version: 1\naudit:\n  rules: [\"-e 2\"]\n", `audit.rules[0]: "-e 2" is not a single audit rule`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse("bad.yaml", []byte(c.src), nil)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestAllErrorsAreReportedAtOnce(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("version: 1\nsshd:\n  bogus: 1\n  max_auth_tries: 0\nos:\n  idd: x\n"), nil)
	var errs Errors
	require.ErrorAs(t, err, &errs)
	assert.Len(t, errs, 2, "decode errors (two unknown keys) are reported together: %v", err)
}

func TestLoadFileRefusesFilesOthersCanWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		need.Root(t, "files must be owned by root to pass the check")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\n"), 0o644))
	_, err := LoadFile(path, CheckOwner)
	require.NoError(t, err)

	require.NoError(t, os.Chmod(path, 0o666))
	_, err = LoadFile(path, CheckOwner)
	require.ErrorContains(t, err, path+": refused: "+path+" is writable by group or others (mode 0666)")
	_, err = LoadFile(path, SkipOwner)
	require.NoError(t, err, "--content-only skips the owner check")

	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, os.Chown(path, 1000, 1000))
	_, err = LoadFile(path, CheckOwner)
	require.ErrorContains(t, err, "is owned by uid 1000, not root")

	require.NoError(t, os.Chown(path, 0, 0))
	require.NoError(t, os.Chmod(dir, 0o777))
	_, err = LoadFile(path, CheckOwner)
	require.ErrorContains(t, err, "refused: "+dir+" is writable by group or others")
}

// The check cannot be dodged with links: the file itself may not be a link (O_NOFOLLOW), a
// directory reached through a link is checked like any other, and what is read is the file
// that was checked. Under a root, a link to a policy on the build host is refused, not read.
func TestLoadRefusesLinksAndLinkedDirectoriesOthersCanWrite(t *testing.T) {
	need.Root(t, "files must be owned by root to pass the check")
	good := t.TempDir()
	require.NoError(t, os.Chmod(good, 0o755))
	real := filepath.Join(good, "real.yaml")
	require.NoError(t, os.WriteFile(real, []byte("version: 1\n"), 0o600))

	link := filepath.Join(good, "policy.yaml")
	require.NoError(t, os.Symlink(real, link))
	_, err := LoadFile(link, CheckOwner)
	require.ErrorContains(t, err, "is a symlink: refused")
	_, err = LoadFile(link, SkipOwner)
	require.NoError(t, err, "--content-only reads through a link")

	// /etc/harden -> a directory another user owns: refused though every path the operator
	// typed is root's.
	evil := t.TempDir()
	require.NoError(t, os.Chown(evil, 1000, 1000))
	require.NoError(t, os.WriteFile(filepath.Join(evil, "policy.yaml"), []byte("version: 1\n"), 0o600))
	etc := filepath.Join(good, "etc")
	require.NoError(t, os.Mkdir(etc, 0o755))
	require.NoError(t, os.Symlink(evil, filepath.Join(etc, "harden")))
	_, err = LoadFile(filepath.Join(etc, "harden", "policy.yaml"), CheckOwner)
	require.ErrorContains(t, err, "is owned by uid 1000, not root")

	// In an image tree, /etc/harden/policy.yaml -> the build host's policy: refused.
	tree := t.TempDir()
	require.NoError(t, os.Chmod(tree, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "etc", "harden"), 0o755))
	require.NoError(t, os.Symlink(real, filepath.Join(tree, DefaultPath)))
	_, err = LoadIn(fsroot.New(tree), DefaultPath, CheckOwner)
	require.ErrorContains(t, err, "is a symlink: refused")
	require.NoError(t, os.Remove(filepath.Join(tree, DefaultPath)))
	require.NoError(t, os.WriteFile(filepath.Join(tree, DefaultPath), []byte("version: 1\nfirewall: {exposure: public}\n"), 0o600))
	p, err := LoadIn(fsroot.New(tree), DefaultPath, CheckOwner)
	require.NoError(t, err)
	assert.Equal(t, "public", p.Firewall.Exposure)
	assert.Equal(t, DefaultPath, p.File(), "errors and reports name the machine's path")

	// A sticky directory owned by root (like /tmp) is fine; without the sticky bit it is not.
	sticky := t.TempDir()
	require.NoError(t, os.Chmod(sticky, os.ModeSticky|0o777))
	inner := filepath.Join(sticky, "d")
	require.NoError(t, os.Mkdir(inner, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(inner, "p.yaml"), []byte("version: 1\n"), 0o600))
	_, err = LoadFile(filepath.Join(inner, "p.yaml"), CheckOwner)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(sticky, 0o777))
	_, err = LoadFile(filepath.Join(inner, "p.yaml"), CheckOwner)
	require.ErrorContains(t, err, "refused: "+sticky+" is writable by group or others (mode 0777)")
}

func TestDocListsPortsAndServicesWithReasons(t *testing.T) {
	p, err := Parse("pub.yaml", []byte(publicPolicy), nil)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, p.WriteDoc(&b))
	doc := b.String()
	assert.Contains(t, doc, "| http | tcp | 8080 | proxy | fly.toml internal_port 8080 behind fly-proxy |")
	assert.Contains(t, doc, "| dns | udp | 53 | 10.0.0.0/8, 2001:db8::/32 | resolver for the office |")
	assert.Contains(t, doc, "| ssh.service | running | remote administration")
}

// The helpers harden boot supervises come from the policy alone, and the doc lists them as
// the machine's enabled services.
func TestBootServicesComeFromThePolicy(t *testing.T) {
	names := func(p *Policy) []string {
		var out []string
		for _, s := range p.BootServices() {
			out = append(out, s.Name)
		}
		return out
	}
	d := Default()
	assert.Equal(t, []string{"watch", "auditd", "freshclam", "clamd", "clamonacc"}, names(d), "no sshd unless asked")
	assert.True(t, d.BootRequires("firewall"))
	assert.False(t, d.BootRequires("audit"))

	p, err := Parse("p.yaml", []byte("version: 1\nboot:\n  sshd: true\n  required_steps: [audit, firewall]\nclamav:\n  on_access_paths: []\n"), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"watch", "auditd", "freshclam", "clamd", "sshd"}, names(p), "no clamonacc without on-access paths")
	assert.True(t, p.BootRequires("audit"))

	p, err = Parse("p.yaml", []byte("version: 1\nclamav:\n  enabled: false\n"), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"watch", "auditd"}, names(p))

	var b bytes.Buffer
	require.NoError(t, d.WriteDoc(&b))
	doc := b.String()
	assert.Contains(t, doc, "## Services under `harden boot` (no systemd)")
	assert.Contains(t, doc, "| clamd | always (restarted with back-off) | ClamAV's scanner; started once signatures are present | clamav.enabled |")
	assert.Contains(t, doc, "| auditd | always (restarted with back-off), when installed |")
	assert.Contains(t, doc, "| freshclam | once per boot (retried when it fails) |")
	assert.NotContains(t, doc, "| sshd |")
	assert.Contains(t, doc, "The app starts only when these steps succeeded: firewall.")
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"14d": 14 * 24 * time.Hour, "10m": 10 * time.Minute, "1h30m": 90 * time.Minute, "60s": time.Minute} {
		d, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d.D(), in)
	}
	for d, want := range map[time.Duration]string{14 * 24 * time.Hour: "14d", 10 * time.Minute: "10m", time.Hour: "1h", 10 * time.Second: "10s", 90 * time.Second: "1m30s"} {
		assert.Equal(t, want, Duration(d).String())
	}
	for _, bad := range []string{"", "x", "-1d", "1.5d", "-5m"} {
		_, err := ParseDuration(bad)
		assert.Error(t, err, bad)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// FuzzParse: any input either parses into a policy that validates again after a
// show round-trip, or gives placed errors; never a panic.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz-seed/*.yaml")
	for _, s := range seeds {
		f.Add(mustReadF(f, s))
	}
	f.Add([]byte(publicPolicy))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, nil)
		if err != nil {
			var errs Errors
			if !assert.ErrorAs(t, err, &errs) {
				return
			}
			for _, e := range errs {
				assert.True(t, strings.HasPrefix(e.Pos.String(), "fuzz.yaml") || strings.HasPrefix(e.Pos.String(), EmbeddedName), e.Error())
			}
			return
		}
		out, err := p.YAML()
		require.NoError(t, err)
		_, err = Parse("shown.yaml", out, nil)
		require.NoError(t, err, "shown policy must load again:\n%s", out)
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// Whether a user, group or syscall exists is the machine's fact, not the policy's: a rule
// naming an account this host lacks, or a syscall only another architecture has, validates
// the same here and on the VM (the audit step reports it for that rule). Syntax is still
// checked.
func TestAuditRulesValidateTheSameOnEveryMachine(t *testing.T) {
	for _, rule := range []string{
		"-a always,exit -F arch=b64 -S execve -F auid=no-such-user-anywhere -k x",
		"-a always,exit -F arch=b64 -S execve -F gid=no-such-group -k x",
		"-a always,exit -F arch=b64 -S open -k x",     // x86_64 has open(2), aarch64 does not
		"-a always,exit -F arch=b64 -S renameat -k x", // both
		"-w /no/such/dir/on/this/host -p wa -k x",
	} {
		_, err := Parse("p.yaml", []byte("version: 1\naudit:\n  rules:\n    - \""+rule+"\"\n"), nil)
		assert.NoError(t, err, rule)
	}
	for _, bad := range []string{
		"-a always,exit -S not_a_syscall_anywhere -k x",
		"-a sometimes,exit -k x",
		"-F auid=",
	} {
		_, err := Parse("p.yaml", []byte("version: 1\naudit:\n  rules:\n    - \""+bad+"\"\n"), nil)
		assert.ErrorContains(t, err, "p.yaml:4:7: audit.rules[0]", bad)
	}
}
