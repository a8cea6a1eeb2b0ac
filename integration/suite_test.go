//go:build integration

// Package integration boots the test images (Ubuntu 26.04, the OS the company policy demands,
// and Debian 12) under QEMU (TCG) and proves on real systemd, auditd, sshd, nftables, AppArmor
// and ClamAV what the unit tests can only approximate. Run it with integration/run.sh (make
// integration). The guest reports one line per check: PASS, FAIL or SKIP with the reason. The
// host holds the list of checks each scenario must report on each image (scenarios.go): a
// missing check, an unlisted one, or a SKIP that is not on the allow-list fails the scenario.
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// hardenBinary is the static binary under test ($HARDEN_BIN, else ../bin/harden).
func hardenBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("HARDEN_BIN")
	if p == "" {
		p = "../bin/harden"
	}
	p, err := filepath.Abs(p)
	require.NoError(t, err)
	require.FileExists(t, p, "build it first: integration/run.sh does (CGO_ENABLED=0 go build -o bin/harden ./cmd/harden)")
	return p
}

func bootTimeout() time.Duration {
	if s := os.Getenv("HARDEN_VM_BOOT_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 8 * time.Minute
}

// artifactsDir keeps the console log, QEMU's log and the guest's results of a failed boot.
func artifactsDir(name string) string {
	base := os.Getenv("HARDEN_VM_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "harden-integration")
	}
	return filepath.Join(base, name)
}

type scenario struct {
	name    string  // baked | broken | cloud-init: guest/check.sh's case
	image   osImage // the image it boots
	policy  string  // file under testdata: /etc/harden/policy.yaml
	install bool    // harden install + stamp into the hand-in (harden baked into the image)
	decoy   bool    // an enabled unit that is not on the allowlist
	reboot  bool
	cloud   bool // a NoCloud seed from cloud-init.yaml; cloud-init enabled
	webhook bool // a webhook receiver on the host; its secret handed in as /etc/harden/webhook.secret
}

// handIn builds the tree the initrd copies over the image's root for this boot.
func handIn(t *testing.T, sc scenario, dir string, rcv *Receiver) {
	t.Helper()
	bin := hardenBinary(t)
	put := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, mode))
		require.NoError(t, os.Chmod(p, mode))
	}
	link := func(name, target string) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	put("usr/local/sbin/harden", read(bin), 0o755)
	put("usr/local/lib/harden-test/check.sh", read("guest/check.sh"), 0o755)
	put("etc/systemd/system/harden-check.service", read("guest/harden-check.service"), 0o644)
	link("etc/systemd/system/multi-user.target.wants/harden-check.service", "/etc/systemd/system/harden-check.service")
	put("etc/harden-test/scenario", []byte(sc.name+"\n"), 0o644)
	put("etc/harden-test/image", []byte(sc.image.Recipe+"\n"), 0o644)
	put("etc/harden-test/good-policy.yaml", policyFor(t, sc.image, read("testdata/policy.yaml")), 0o600)
	if sc.policy != "" {
		put("etc/harden/policy.yaml", policyFor(t, sc.image, read(filepath.Join("testdata", sc.policy))), 0o600)
	}
	if rcv != nil {
		// The policy's webhook sink reads it (secret_file); root's own, like a real one.
		put("etc/harden/webhook.secret", append(rcv.Secret, '\n'), 0o600)
	}
	if sc.decoy {
		// Where a package puts its units: the services step masks those (a unit file in
		// /etc would be deleted by a mask, so it reports those instead).
		put("usr/lib/systemd/system/harden-test-decoy.service", read("guest/harden-test-decoy.service"), 0o644)
		link("etc/systemd/system/multi-user.target.wants/harden-test-decoy.service", "/usr/lib/systemd/system/harden-test-decoy.service")
	}
	if sc.install {
		// What an image build does: the real `harden install` and `harden stamp` on the tree.
		for _, args := range [][]string{{"install", "--root", dir}, {"stamp", "--root", dir, "--image-id", "integration-" + sc.image.Recipe + "-" + sc.name}} {
			out, err := exec.Command(bin, args...).CombinedOutput()
			require.NoError(t, err, "harden %v: %s", args, out)
		}
	}
	if sc.cloud {
		put("var/lib/harden-seed/user-data", cloudUserData(t, sc.image, read("../cloud-init.yaml")), 0o600)
		put("var/lib/harden-seed/meta-data", []byte("instance-id: harden-integration-1\nlocal-hostname: harden-test\n"), 0o644)
	}
}

// substitute replaces each key of subs once in doc, and fails the test when one is not there
// (the file changed under the test).
func substitute(t *testing.T, what string, doc []byte, subs map[string]string) []byte {
	t.Helper()
	s := string(doc)
	for old, new := range subs {
		require.Contains(t, s, old, "%s changed: update the test's substitution", what)
		s = strings.Replace(s, old, new, 1)
	}
	return []byte(s)
}

// policyFor is a test policy as the image's boots get it: the company's OS requirement, unless
// the image cannot meet it (osImage.PolicyOS).
func policyFor(t *testing.T, img osImage, doc []byte) []byte {
	t.Helper()
	if !strings.Contains(string(doc), "os:") {
		return doc // the broken policy has no os section
	}
	return substitute(t, "the test policy", doc, img.PolicyOS)
}

// cloudUserData is the operator's cloud-init.yaml as it is, except what the test VM cannot
// meet. Without these, harden apply would rightly exit 1 or shut the host out.
func cloudUserData(t *testing.T, img osImage, doc []byte) []byte {
	t.Helper()
	doc = substitute(t, "cloud-init.yaml", doc, map[string]string{
		// The signature databases: a tiny test .hdb only, so the clamav findings are critical.
		"      version: 1\n": "      version: 1\n      run:\n        fail_on: none\n",
		// QEMU's user network plays the private network (6PN): the host probes from 10.0.2.2.
		"private_networks: [auto]": "private_networks: [10.0.2.0/24]",
	})
	doc = substitute(t, "cloud-init.yaml", doc, img.PolicyOS)
	// cloud-init turns password logins on in its own sshd drop-in (50-cloud-init.conf);
	// harden's drop-in must still win, and the host proves it with a real ssh client.
	return append(doc, []byte("\n# Added by the integration suite.\nssh_pwauth: true\n")...)
}

// run boots one scenario and turns every CHECK line into a subtest: PASS, FAIL or SKIP. The
// scenario fails when a required check is missing or skipped without an allowed reason, or
// when the guest reports a check the scenario does not list.
func run(t *testing.T, sc scenario) {
	// The host probes, the SSH burst and the webhook relay use them.
	need.Tool(t, "ssh", "ssh-keygen", "ssh-audit", "busybox")
	img := testImage(t, sc.image.Recipe)
	work := t.TempDir()
	hand := filepath.Join(work, "handin")
	var rcv *Receiver
	if sc.webhook {
		var err error
		rcv, err = StartReceiver()
		require.NoError(t, err)
		defer rcv.Close()
	}
	handIn(t, sc, hand, rcv)
	appendArgs := "cloud-init=disabled"
	if sc.cloud {
		appendArgs = "ds=nocloud;s=file:///var/lib/harden-seed/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout())
	defer cancel()
	start := time.Now()
	qb := Boot{Image: img, HandIn: hand, Dir: work, Reboot: sc.reboot, Append: appendArgs}
	if rcv != nil {
		qb.WebhookPort = rcv.Port
	}
	vm, err := Start(ctx, qb)
	require.NoError(t, err)
	defer vm.Kill()

	failed := false
	done := false
	boot := 0
	want := required(sc)
	got := map[int]map[string]string{} // boot -> check -> status
	lineCh := make(chan string)
	go func() {
		defer close(lineCh)
		for {
			l, err := vm.Lines.ReadString('\n')
			if l = strings.TrimRight(l, "\r\n"); l != "" {
				lineCh <- l
			}
			if err != nil {
				return
			}
		}
	}()
	for !done {
		select {
		case <-ctx.Done():
			t.Errorf("%s: boot timed out after %s", sc.name, bootTimeout())
			failed, done = true, true
		case l, ok := <-lineCh:
			if !ok {
				if !done {
					t.Errorf("%s: the guest's control channel closed before DONE", sc.name)
					failed = true
				}
				done = true
				break
			}
			switch {
			case strings.HasPrefix(l, "CHECK "):
				if report(t, boot, got, l) {
					failed = true
				}
			case strings.HasPrefix(l, "FIGURE "):
				name, value, _ := strings.Cut(strings.TrimPrefix(l, "FIGURE "), " ")
				recordFigure(t, sc, fmt.Sprintf("boot%d/%s", boot, name), value)
			case strings.HasPrefix(l, "HOST "):
				var checks []string
				if strings.HasPrefix(l, "HOST alerts") {
					checks = hostAlerts(t, vm, rcv, l)
				} else {
					checks = hostProbe(vm, l)
				}
				for _, c := range checks {
					if report(t, boot, got, c) {
						failed = true
					}
				}
				require.NoError(t, vm.Send("HOST-DONE"))
			case l == "DONE":
				done = true
			case strings.HasPrefix(l, "HELLO"):
				t.Logf("%s after %s", l, time.Since(start).Round(time.Second))
				for _, f := range strings.Fields(l) {
					if v, ok := strings.CutPrefix(f, "boot="); ok {
						boot, _ = strconv.Atoi(v)
					}
				}
				if got[boot] != nil {
					t.Errorf("boot %d announced twice", boot)
				}
				got[boot] = map[string]string{}
			default:
				t.Logf("guest: %s", l)
			}
		}
	}
	if err := vm.Wait(30 * time.Second); err != nil {
		t.Logf("qemu: %v", err)
	}
	recordFigure(t, sc, "total-s", fmt.Sprintf("%.0f", time.Since(start).Seconds()))
	if judgeRequired(t, want, got) {
		failed = true
	}
	_ = vm.ExtractResults(filepath.Join(work, "results"))
	if failed || t.Failed() || os.Getenv("HARDEN_VM_KEEP") != "" {
		keep := artifactsDir(sc.image.Recipe + "-" + sc.name)
		_ = os.RemoveAll(keep)
		_ = os.MkdirAll(filepath.Dir(keep), 0o755)
		if err := exec.Command("cp", "-a", work, keep).Run(); err == nil {
			_ = os.Remove(filepath.Join(keep, "initrd-with-handin.img"))
			_ = os.Remove(filepath.Join(keep, "results.tar"))
			t.Logf("console log, qemu log and the guest's results (journal, report) kept in %s", keep)
		}
	}
}

// report turns one CHECK line into a subtest (boot<N>/<name>), records its status for the
// required-check judgement, and reports whether it failed. A SKIP passes only with an allowed
// reason (allowedSkips).
func report(t *testing.T, boot int, got map[int]map[string]string, line string) bool {
	name, status, detail, ok := splitCheck(line)
	if !ok {
		t.Errorf("malformed check line %q", line)
		return true
	}
	if got[boot] == nil {
		got[boot] = map[string]string{}
	}
	if _, dup := got[boot][name]; dup {
		t.Errorf("boot %d reported check %s twice", boot, name)
	}
	got[boot][name] = status
	failed := false
	t.Run(fmt.Sprintf("boot%d/%s", boot, name), func(t *testing.T) {
		switch status {
		case "PASS":
			t.Log(detail)
		case "SKIP":
			reason, allowed := allowedSkips[name]
			if !allowed || !strings.HasPrefix(detail, reason) {
				failed = true
				t.Errorf("SKIP is not allowed for this check (allowedSkips in scenarios_test.go): %s", detail)
				return
			}
			t.Skip(detail) // need:allowed-skip: on the host's explicit allow-list (allowedSkips)
		default:
			failed = true
			t.Error(detail)
		}
	})
	return failed
}

// judgeRequired fails the scenario for every required check the guest did not report, and
// for every check it reported that the scenario does not list (the lists in scenarios_test.go
// are the suite's record of what each scenario proves on each image).
func judgeRequired(t *testing.T, want map[int][]string, got map[int]map[string]string) bool {
	failed := false
	for boot, names := range want {
		for _, name := range names {
			if _, ok := got[boot][name]; !ok {
				t.Errorf("boot %d: required check %s was not reported", boot, name)
				failed = true
			}
		}
	}
	for boot, checks := range got {
		listed := map[string]bool{}
		for _, name := range want[boot] {
			listed[name] = true
		}
		for name := range checks {
			if !listed[name] {
				t.Errorf("boot %d: check %s is not on this scenario's list (scenarios_test.go): add it there", boot, name)
				failed = true
			}
		}
	}
	return failed
}

// hostProbe answers "HOST probe expect-ssh=open|closed": from outside the VM, through the
// forwarded ports. slirp accepts the host's connection even when the guest drops the SYN, so
// "closed" means no application data, not a refused connect.
func hostProbe(vm *VM, line string) []string {
	args := map[string]string{}
	for _, f := range strings.Fields(line)[2:] {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	var out []string
	banner := readBanner(vm.SSHPort, nil)
	switch {
	case args["expect-ssh"] == "open" && strings.HasPrefix(banner, "SSH-2.0-"):
		out = append(out, "CHECK host-ssh-port PASS allowed port 22 answers from the host: "+banner)
	case args["expect-ssh"] == "closed" && banner == "":
		out = append(out, "CHECK host-ssh-port PASS port 22 gives no data (embedded default firewall: private networks only)")
	default:
		out = append(out, fmt.Sprintf("CHECK host-ssh-port FAIL want %s, got banner %q", args["expect-ssh"], banner))
	}
	got := readBanner(vm.HTTPPort, []byte("GET / HTTP/1.0\r\n\r\n"))
	if got == "" {
		out = append(out, "CHECK host-closed-port PASS port 8080 (listening, not allowed) gives no data")
	} else {
		out = append(out, fmt.Sprintf("CHECK host-closed-port FAIL port 8080 answered %q", got))
	}
	if args["expect-ssh"] == "open" {
		out = append(out, sshPasswordProbe(vm.SSHPort), sshAuditProbe(vm.SSHPort))
	}
	return out
}

// readBanner connects, optionally sends a request, and returns the first line received
// within a few seconds ("" if none).
func readBanner(port int, req []byte) string {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	if len(req) > 0 {
		_, _ = c.Write(req)
	}
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	return strings.TrimSpace(strings.SplitN(string(buf[:n]), "\n", 2)[0])
}

// sshPasswordProbe asks the real OpenSSH client which methods the server offers a would-be
// password login; "password" or "keyboard-interactive" among them is a failure.
func sshPasswordProbe(port int) string {
	cmd := exec.Command("ssh", "-v", "-p", strconv.Itoa(port),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no",
		"-o", "ConnectTimeout=20", "root@127.0.0.1", "true")
	out, err := cmd.CombinedOutput()
	var methods string
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "Authentications that can continue:"); i >= 0 {
			methods = strings.TrimSpace(l[i+len("Authentications that can continue:"):])
		}
	}
	switch {
	case err == nil:
		return "CHECK host-ssh-password FAIL a login as root without a key succeeded"
	case methods == "":
		return fmt.Sprintf("CHECK host-ssh-password FAIL could not read the server's methods: %s", lastLine(string(out)))
	case strings.Contains(methods, "password") || strings.Contains(methods, "keyboard-interactive"):
		return "CHECK host-ssh-password FAIL the server offers " + methods
	default:
		return "CHECK host-ssh-password PASS password login refused by a real ssh client; server offers only " + methods
	}
}

// sshAuditProbe judges the VM's sshd from outside with ssh-audit: any "[fail]" line (weak
// key exchange, host key, cipher or MAC) is a failure. Bookworm's ssh-audit 2.5.0 does not know
// OpenSSH 10's ML-KEM key exchange: it lists it as unknown, which is not a failure.
func sshAuditProbe(port int) string {
	out, _ := exec.Command("ssh-audit", "-n", "-t", "20", "-p", strconv.Itoa(port), "127.0.0.1").CombinedOutput()
	var fails []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[fail]") {
			fails = append(fails, strings.Join(strings.Fields(l), " "))
		}
	}
	switch {
	case len(fails) > 0:
		return "CHECK host-ssh-audit FAIL " + strings.Join(fails, "; ")
	case !strings.Contains(string(out), "(kex)"):
		return "CHECK host-ssh-audit FAIL ssh-audit read no algorithms: " + lastLine(string(out))
	default:
		return "CHECK host-ssh-audit PASS ssh-audit reports no failure"
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
