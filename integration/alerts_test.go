//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/internal/policy"
)

// alertWait bounds how long the receiver may take to get each alert after the burst.
const alertWait = 90 * time.Second

// sshBurstUsers: one failed connection each. Real attackers mix valid accounts (root: login
// denied by policy) with guessed names; sshd audits both, the latter as invalid users.
var sshBurstUsers = []string{"root", "admin", "harden-nosuch", "root", "ubuntu", "debian"}

// hostAlerts answers "HOST alerts": the guest has written /etc/shadow and checked that
// harden-watch runs; the harness now fails SSH logins from outside, more than the policy's
// threshold, and waits for the webhook to have both alerts.
func hostAlerts(t *testing.T, vm *VM, rcv *Receiver, line string) []string {
	if rcv == nil {
		return []string{"CHECK alert-ssh-failures FAIL the guest asked for the alert checks in a scenario without a webhook receiver"}
	}
	pol, err := policy.LoadFile("testdata/policy.yaml", policy.SkipOwner)
	if err != nil {
		return []string{"CHECK alert-ssh-failures FAIL the test policy: " + err.Error()}
	}
	threshold := pol.Alerts.SSHFailures.Threshold
	var out []string
	out = append(out, sshBurst(t, vm.SSHPort, threshold))

	sshAlert, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "ssh-failures" && a.Attrs["addr"] == "10.0.2.2"
	})
	count, _ := strconv.Atoi(sshAlert.Attrs["count"])
	switch {
	case !ok:
		out = append(out, fmt.Sprintf("CHECK alert-ssh-failures FAIL no ssh-failures alert for 10.0.2.2 within %s; %s", alertWait, rcv.Summary()))
	case count <= threshold:
		out = append(out, fmt.Sprintf("CHECK alert-ssh-failures FAIL count %q is not above the threshold %d: %s", sshAlert.Attrs["count"], threshold, sshAlert.Summary))
	default:
		out = append(out, fmt.Sprintf("CHECK alert-ssh-failures PASS webhook got %q (addr %s, count %d, users %s)",
			sshAlert.Summary, sshAlert.Attrs["addr"], count, sshAlert.Attrs["users"]))
	}

	fileAlert, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "critical-file" && strings.Contains(a.Attrs["path"], "/etc/shadow")
	})
	if ok {
		out = append(out, fmt.Sprintf("CHECK alert-critical-file PASS webhook got %q (key %s, path %s)", fileAlert.Summary, fileAlert.Attrs["key"], fileAlert.Attrs["path"]))
	} else {
		out = append(out, fmt.Sprintf("CHECK alert-critical-file FAIL no critical-file alert naming /etc/shadow within %s; %s", alertWait, rcv.Summary()))
	}

	// The guest ran su as nobody with a wrong password before asking for this probe.
	escAlert, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "priv-esc" && strings.Contains(a.Attrs["exe"], "su")
	})
	if ok {
		out = append(out, fmt.Sprintf("CHECK alert-priv-esc PASS webhook got %q (exe %s, auid %s, result %s)",
			escAlert.Summary, escAlert.Attrs["exe"], escAlert.Attrs["auid"], escAlert.Attrs["result"]))
	} else {
		out = append(out, fmt.Sprintf("CHECK alert-priv-esc FAIL no priv-esc alert for su within %s; %s", alertWait, rcv.Summary()))
	}

	// ... and sudo with a wrong password: the failed authentication itself (USER_AUTH
	// res=failed from PAM), not only the exec.
	authAlert, ok := rcv.Wait(alertWait, func(a Received) bool {
		return a.Kind == "priv-esc" && a.Attrs["result"] == "failed"
	})
	if ok {
		out = append(out, fmt.Sprintf("CHECK alert-priv-esc-auth PASS webhook got %q (record %s, exe %s)",
			authAlert.Summary, authAlert.Attrs["record"], authAlert.Attrs["exe"]))
	} else {
		out = append(out, fmt.Sprintf("CHECK alert-priv-esc-auth FAIL no failed-authentication priv-esc alert within %s; %s", alertWait, rcv.Summary()))
	}

	if rej := rcv.Rejected(); len(rej) > 0 {
		out = append(out, fmt.Sprintf("CHECK webhook-signature FAIL %d requests refused, first: %s", len(rej), rej[0]))
	} else {
		out = append(out, "CHECK webhook-signature PASS every delivery carried a valid X-Harden-Signature; "+rcv.Summary())
	}
	return out
}

// sshBurst makes len(sshBurstUsers) separate connections with a throw-away key the guest does
// not know (the policy allows keys only), each of which must fail authentication.
func sshBurst(t *testing.T, port, threshold int) string {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "harden-test-burst", "-f", key).CombinedOutput(); err != nil {
		return fmt.Sprintf("CHECK ssh-burst FAIL ssh-keygen: %v: %s", err, out)
	}
	if len(sshBurstUsers) <= threshold {
		return fmt.Sprintf("CHECK ssh-burst FAIL the burst (%d) must exceed the policy's threshold %d", len(sshBurstUsers), threshold)
	}
	start := time.Now()
	denied := 0
	var odd []string
	for _, user := range sshBurstUsers {
		cmd := exec.Command("ssh", "-p", strconv.Itoa(port), "-i", key,
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=40", "-o", "LogLevel=ERROR",
			"-F", os.DevNull, user+"@127.0.0.1", "true")
		out, err := cmd.CombinedOutput()
		switch {
		case err == nil:
			return fmt.Sprintf("CHECK ssh-burst FAIL a login as %s with an unknown key succeeded", user)
		case strings.Contains(string(out), "Permission denied"):
			denied++
		default:
			odd = append(odd, user+": "+lastLine(string(out)))
		}
	}
	if denied != len(sshBurstUsers) {
		return fmt.Sprintf("CHECK ssh-burst FAIL %d of %d connections denied; others: %s", denied, len(sshBurstUsers), strings.Join(odd, "; "))
	}
	return fmt.Sprintf("CHECK ssh-burst PASS %d failed public-key logins from the host (users %s) in %s; threshold %d",
		denied, strings.Join(sshBurstUsers, ","), time.Since(start).Round(time.Second), threshold)
}
