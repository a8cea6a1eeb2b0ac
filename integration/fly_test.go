//go:build integration

package integration

import (
	"context"
	"encoding/json"
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

	"github.com/harden-dev/harden/internal/policy"
	"github.com/harden-dev/harden/internal/testutil/need"
)

// The Fly scenarios boot the image the way a Fly Machine runs one: PID 1 is not systemd but
// flyinit (integration/flyinit, the suite's stand-in for Fly's init), which runs the image's
// entrypoint `harden boot -- APP` as its child. The checker (guest/fly-check.sh) runs next to
// it, as an operator's `fly ssh console` session would.

// TestFly: harden boot with a good policy: firewall before the app, helpers supervised,
// alerts, orphans, restarts, signals, shutdown with the app's status, power-off. On Ubuntu
// 26.04, the OS the company policy requires.
func TestFly(t *testing.T) {
	runFly(t, scenario{name: "fly", image: ubuntu2604, policy: "fly-policy.yaml", webhook: true}, flyChecks)
}

// TestFlyBrokenPolicy: a policy that does not load: the default firewall, no app, exit 1.
func TestFlyBrokenPolicy(t *testing.T) {
	runFly(t, scenario{name: "fly-broken", image: ubuntu2604, policy: "broken-policy.yaml", webhook: true}, flyBrokenChecks)
}

// The checks each Fly scenario must report (guest/fly-check.sh, and the host's probes).
var (
	flyChecks = []string{
		"image-os", "fly-no-systemd", "fly-app-started", "fly-app-child",
		"fly-host-allowed-before", "fly-host-closed-before", "fly-host-allowed-after", "fly-host-closed-after",
		"fly-supervised", "fly-services-step", "fly-sshd-host-keys", "fly-json-records",
		"fly-firewall-6pn", "fly-firewall-shell-same", "fly-ssh-console-6pn", "fly-auditd", "fly-clamav-eicar",
		"fly-sshd-no-password", "fly-ssh-burst", "fly-alert-ssh-failures", "fly-alert-critical-file",
		"fly-alert-virus", "fly-webhook-signature",
		"fly-orphan-reaped", "fly-clamd-restarted", "fly-signal-forwarding", "fly-shutdown", "fly-poweroff",
	}
	flyBrokenChecks = []string{
		"image-os", "fly-no-systemd", "fly-broken-exit", "fly-broken-app-not-started", "fly-broken-records",
		"fly-broken-default-firewall", "fly-host-allowed-broken", "fly-host-closed-broken", "fly-poweroff",
	}
)

// flyPorts: the allowed port (the app's, from fly-proxy) and one the policy does not open.
const flyAllowed, flyClosed = 8080, 9090

// flyRun is /fly/run.json: the machine config Fly's init reads, for flyinit.
func flyRun() []byte {
	cfg := map[string]any{
		"entrypoint": []string{"/usr/local/sbin/harden", "boot", "--"},
		"cmd":        []string{"/usr/local/lib/harden-test/fly-app.sh"},
		"env": map[string]string{
			"FLY_APP_NAME": "harden-test", "FLY_MACHINE_ID": "3d8d9e1c2a4b78", "FLY_REGION": "ams",
			"PRIMARY_REGION": "ams", "FLY_IMAGE_REF": "registry.fly.io/harden-test:integration",
			"FLY_VM_MEMORY_MB": "1024", "FLY_PROCESS_GROUP": "app",
		},
		"hostname": "3d8d9e1c2a4b78", "ipv4": "10.0.2.15/24", "gateway": "10.0.2.2",
		"private_ip": "fdaa:0:1:a7b:1::2", "private_bits": 64, "kill_timeout": 30,
		"checker":    []string{"/usr/local/lib/harden-test/fly-check.sh"},
		"ready_file": "/run/flyinit/checker-ready",
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return b
}

// buildFlyinit builds the stand-in for Fly's init, static.
func buildFlyinit(t *testing.T, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./flyinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "building flyinit: %s", b)
}

func flyHandIn(t *testing.T, sc scenario, dir string, rcv *Receiver) {
	t.Helper()
	put := func(p string, data []byte, mode os.FileMode) {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, data, mode))
		require.NoError(t, os.Chmod(full, mode))
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	put("usr/local/sbin/harden", read(hardenBinary(t)), 0o755)
	flyinit := filepath.Join(t.TempDir(), "flyinit")
	buildFlyinit(t, flyinit)
	put("usr/local/sbin/flyinit", read(flyinit), 0o755)
	put("fly/run.json", flyRun(), 0o644)
	put("usr/local/lib/harden-test/fly-app.sh", read("guest/fly-app.sh"), 0o755)
	put("usr/local/lib/harden-test/fly-check.sh", read("guest/fly-check.sh"), 0o755)
	put("etc/harden-test/scenario", []byte(sc.name+"\n"), 0o644)
	put("etc/harden-test/image", []byte(sc.image.Recipe+"\n"), 0o644)
	put("etc/harden/policy.yaml", policyFor(t, sc.image, read(filepath.Join("testdata", sc.policy))), 0o600)
	if rcv != nil {
		put("etc/harden/webhook.secret", append(rcv.Secret, '\n'), 0o600)
	}
}

// runFly boots one Fly scenario, turns every CHECK line into a subtest, and fails when a
// check of want is missing or one that is not listed is reported (as run does).
func runFly(t *testing.T, sc scenario, want []string) {
	need.Tool(t, "ssh", "ssh-keygen", "busybox")
	img := testImage(t, sc.image.Recipe)
	work := t.TempDir()
	rcv, err := StartReceiver()
	require.NoError(t, err)
	defer rcv.Close()
	hand := filepath.Join(work, "handin")
	flyHandIn(t, sc, hand, rcv)

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout())
	defer cancel()
	start := time.Now()
	vm, err := Start(ctx, Boot{Image: img, HandIn: hand, Dir: work, WebhookPort: rcv.Port,
		Append: "init=/usr/local/sbin/flyinit", Forward: []int{flyClosed}})
	require.NoError(t, err)
	defer vm.Kill()

	const boot = 1
	got := map[int]map[string]string{boot: {}}
	failed, done := false, false
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
	check := func(lines ...string) {
		for _, l := range lines {
			failed = report(t, boot, got, l) || failed
		}
	}
	for !done {
		select {
		case <-ctx.Done():
			t.Errorf("%s: timed out after %s", sc.name, bootTimeout())
			failed, done = true, true
		case l, ok := <-lineCh:
			switch {
			case !ok:
				t.Errorf("%s: the guest's control channel closed before DONE", sc.name)
				failed, done = true, true
			case strings.HasPrefix(l, "CHECK "):
				check(l)
			case strings.HasPrefix(l, "FIGURE "):
				name, value, _ := strings.Cut(strings.TrimPrefix(l, "FIGURE "), " ")
				recordFigure(t, sc, name, value)
			case strings.HasPrefix(l, "HOST fly-probe"):
				check(flyProbe(vm, l)...)
				require.NoError(t, vm.Send("HOST-DONE"))
			case strings.HasPrefix(l, "HOST alerts-fly"):
				check(flyAlerts(t, vm, rcv)...)
				require.NoError(t, vm.Send("HOST-DONE"))
			case l == "DONE":
				done = true
			case strings.HasPrefix(l, "HELLO"):
				t.Logf("%s after %s", l, time.Since(start).Round(time.Second))
			default:
				t.Logf("guest: %s", l)
			}
		}
	}
	// flyinit powers the VM off once the entrypoint and the checker have exited: QEMU exits
	// by itself (-no-reboot), nobody kills it.
	if err := vm.Wait(60 * time.Second); err != nil {
		check(fmt.Sprintf("CHECK fly-poweroff FAIL QEMU did not exit by itself after DONE: %v", err))
	} else {
		check("CHECK fly-poweroff PASS the entrypoint exited, flyinit powered the VM off, QEMU exited")
	}
	recordFigure(t, sc, "total-s", fmt.Sprintf("%.0f", time.Since(start).Seconds()))
	failed = judgeRequired(t, map[int][]string{boot: want}, got) || failed
	_ = vm.ExtractResults(filepath.Join(work, "results"))
	if failed || t.Failed() || os.Getenv("HARDEN_VM_KEEP") != "" {
		keep := artifactsDir(sc.image.Recipe + "-" + sc.name)
		_ = os.RemoveAll(keep)
		_ = os.MkdirAll(filepath.Dir(keep), 0o755)
		if err := exec.Command("cp", "-a", work, keep).Run(); err == nil {
			_ = os.Remove(filepath.Join(keep, "initrd-with-handin.img"))
			_ = os.Remove(filepath.Join(keep, "results.tar"))
			t.Logf("console log, qemu log and the guest's results kept in %s", keep)
		}
	}
}

// flyProbe answers "HOST fly-probe phase=before|after|broken" from outside the VM: the
// allowed port must answer (before: the checker's listener, after: the app's), the closed
// one must give nothing (slirp accepts the host's connection whatever the guest does, so
// "nothing" is the absence of a response).
func flyProbe(vm *VM, line string) []string {
	phase := strings.TrimPrefix(strings.Fields(line)[2], "phase=")
	open := httpGet(vm.HTTPPort)
	closed := httpGet(vm.Forwarded[flyClosed])
	want := map[string]string{"before": "harden-test-pre", "after": "harden-test-app", "broken": ""}[phase]
	var out []string
	name := "fly-host-allowed-" + phase
	switch {
	case want == "" && open == "":
		out = append(out, fmt.Sprintf("CHECK %s PASS port %d gives nothing: the embedded default firewall opens no app port", name, flyAllowed))
	case want != "" && strings.Contains(open, want):
		out = append(out, fmt.Sprintf("CHECK %s PASS port %d answers from the host with %q", name, flyAllowed, want))
	default:
		out = append(out, fmt.Sprintf("CHECK %s FAIL port %d: want %q, got %q", name, flyAllowed, want, open))
	}
	if closed == "" {
		out = append(out, fmt.Sprintf("CHECK fly-host-closed-%s PASS port %d (listening, not allowed) gives nothing", phase, flyClosed))
	} else {
		out = append(out, fmt.Sprintf("CHECK fly-host-closed-%s FAIL port %d answered %q", phase, flyClosed, closed))
	}
	return out
}

// httpGet returns what a GET / on the forwarded port returns within a few seconds.
func httpGet(port int) string {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	var all []byte
	buf := make([]byte, 1024)
	for len(all) < 4096 {
		n, err := c.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			break
		}
	}
	return strings.TrimSpace(string(all))
}

// flyAlerts proves sshd under harden boot (boot.sshd) refuses passwords, makes a burst of
// failed SSH logins from the host, and waits at the webhook receiver for the alerts: the
// burst (ssh-failures), the guest's write to /etc/shadow (critical-file) and its EICAR file
// (virus: clamd's VirusEvent, through the inbox and harden watch).
func flyAlerts(t *testing.T, vm *VM, rcv *Receiver) []string {
	out := []string{strings.Replace(sshPasswordProbe(vm.SSHPort), "CHECK host-ssh-password", "CHECK fly-sshd-no-password", 1)}
	pol, err := policy.LoadFile("testdata/fly-policy.yaml", policy.SkipOwner)
	if err != nil {
		return append(out, "CHECK fly-alert-ssh-failures FAIL the fly policy: "+err.Error())
	}
	threshold := pol.Alerts.SSHFailures.Threshold
	out = append(out, strings.Replace(sshBurst(t, vm.SSHPort, threshold), "CHECK ssh-burst", "CHECK fly-ssh-burst", 1))
	ssh, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "ssh-failures" && a.Attrs["addr"] == "10.0.2.2"
	})
	if count, _ := strconv.Atoi(ssh.Attrs["count"]); ok && count > threshold {
		out = append(out, fmt.Sprintf("CHECK fly-alert-ssh-failures PASS webhook got %q (count %d > %d)", ssh.Summary, count, threshold))
	} else {
		out = append(out, fmt.Sprintf("CHECK fly-alert-ssh-failures FAIL no ssh-failures alert above %d for 10.0.2.2 within %s; %s", threshold, alertWait, rcv.Summary()))
	}
	file, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "critical-file" && strings.Contains(a.Attrs["path"], "/etc/shadow")
	})
	if ok {
		out = append(out, fmt.Sprintf("CHECK fly-alert-critical-file PASS webhook got %q (key %s)", file.Summary, file.Attrs["key"]))
	} else {
		out = append(out, fmt.Sprintf("CHECK fly-alert-critical-file FAIL no critical-file alert for /etc/shadow within %s; %s", alertWait, rcv.Summary()))
	}
	virus, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "virus" && strings.Contains(a.Attrs["virus"], "EICAR")
	})
	if ok {
		out = append(out, fmt.Sprintf("CHECK fly-alert-virus PASS webhook got %q", virus.Summary))
	} else {
		out = append(out, fmt.Sprintf("CHECK fly-alert-virus FAIL no virus alert within %s; %s", alertWait, rcv.Summary()))
	}
	if rej := rcv.Rejected(); len(rej) > 0 {
		out = append(out, fmt.Sprintf("CHECK fly-webhook-signature FAIL %d requests refused, first: %s", len(rej), rej[0]))
	} else {
		out = append(out, "CHECK fly-webhook-signature PASS every delivery carried a valid signature; "+rcv.Summary())
	}
	return out
}
