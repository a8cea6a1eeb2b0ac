//go:build integration

package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// This file is the suite's table: which images it boots, which scenarios run on which image,
// and the checks each scenario must report there. To add a check: make guest/check.sh report
// it (CHECK name PASS|FAIL detail) and add its name here, to the scenario's boot and, if it
// only exists on one OS, to that image's extra checks. To add an image: a recipe directory
// under image/ (see integration/README.md) and an osImage below. A check the guest reports
// that is not listed here fails too, so the lists are the suite's documentation.

// osImage is one image recipe (a directory under image/) and what its boots need.
type osImage struct {
	Recipe string // image/<Recipe>: debian-12, ubuntu-26.04; /etc/os-release must say ID-VERSION_ID
	// PolicyOS replaces the company's OS requirement in the test policies (testdata/policy.yaml
	// and cloud-init.yaml's: os id ubuntu, min_version latest-lts) on an image that cannot
	// meet it. Empty on Ubuntu 26.04: there the policy is the company's.
	PolicyOS map[string]string
	// Extra are the checks this image reports on top of a scenario's, by scenario and boot.
	Extra map[string]map[int][]string
}

var (
	ubuntu2604 = osImage{
		Recipe: "ubuntu-26.04",
		Extra: map[string]map[int][]string{
			"baked": {
				1: {
					"apparmor-enforce",    // AppArmor on in the kernel, clamd's profile in enforce mode
					"apparmor-clamd",      // the running clamd is confined by it
					"sudo-rs",             // `sudo` is sudo-rs, as on Ubuntu server
					"sshd-generator",      // systemd 256+'s vsock/unix-local SSH sockets shut
					"audit-rules-service", // auditd 4's loader ran before harden, and survives the lock
					"os-release-data",     // latest-lts from distro-info-data's ubuntu.csv
					"clamav-apparmor-srv", // EICAR under /srv: missed without harden's AppArmor lines, blocked with them
					"firewall-ufw",        // an active ufw is reported with the ports it blocks
				},
				2: {"audit-rules-service"}, // the second boot: it loads and locks harden's rules itself
			},
		},
	}
	debian12 = osImage{
		Recipe: "debian-12",
		// The company policy rejects Debian (os.id-mismatch, critical): the Debian boots prove
		// the other steps on a second distribution, so their policy names the OS they run.
		PolicyOS: map[string]string{
			"id: ubuntu":              "id: debian",
			"min_version: latest-lts": `min_version: "12"`,
		},
	}
)

// images are every image the suite builds (TestImages builds and inspects each).
var images = []osImage{ubuntu2604, debian12}

// The checks every boot reports, whatever the scenario: the guest is the image the host built.
var everyBoot = []string{"image-os"}

// bakedChecks: harden baked into the image (install + stamp), the test policy, a reboot.
var bakedChecks = map[int][]string{
	1: {
		"harden-service", "last-run-json", "findings",
		"firewall-before-network", "nft-table",
		"sshd-effective", "sshd-baseline", "sshd-crypto", "sshd-socket",
		"audit-rules", "journal-records",
		"audit-locked", "services-masked", "services-owned", "system-running", "clamav-eicar", "converged",
		// boot order: the host gets SSH's banner while harden-freshclam.service's freshclam
		// still runs (it hangs on an unreachable mirror)
		"ssh-during-freshclam", "host-ssh-early",
		// a person's dry-run during that download neither waits for it nor starts another
		"dryrun-during-freshclam",
		// from the host, through the forwarded ports (hostProbe)
		"host-ssh-port", "host-closed-port", "host-ssh-password", "host-ssh-audit",
		// alerts: the guest's side, then the host's burst and the webhook receiver (hostAlerts)
		"watch-service", "ssh-burst", "alert-ssh-failures", "alert-critical-file",
		"alert-priv-esc", "alert-priv-esc-auth", "alert-priv-esc-sudo", "webhook-signature",
	},
	2: {"harden-service", "reboot-no-changes", "firewall-before-network", "nft-table", "audit-locked", "sysctl-reboot"},
}

// brokenChecks: a policy that does not load (fail closed), then a dry run with a good one.
var brokenChecks = map[int][]string{
	1: {"broken-exit-1", "broken-journal", "broken-default-firewall", "host-ssh-port", "host-closed-port", "dry-run"},
}

// cloudInitChecks: cloud-init.yaml as NoCloud user-data (with ssh_pwauth: true) on an image
// where harden is not installed.
var cloudInitChecks = map[int][]string{
	1: {
		"cloud-init-schema", "cloud-init-status", "cloud-init-policy", "cloud-init-install",
		"cloud-init-apply", "cloud-init-pwauth", "cloud-init-system",
		"host-ssh-port", "host-closed-port", "host-ssh-password", "host-ssh-audit",
	},
}

// goldenChecks: one boot of a golden image (harden baked in, `harden stamp` run on the image
// before it boots). TestGolden boots the same image twice and compares.
var goldenChecks = map[int][]string{
	1: {
		"harden-service", "golden-stamped", "golden-machine-id",
		"host-ssh-port", "host-closed-port", "host-ssh-password", "host-ssh-audit",
		"golden-host-keys", "golden-host-key",
	},
}

// allowedSkips: checks that may report SKIP, with the reason they must give (a prefix of the
// detail). Empty on purpose: every harden step is in the binary and every check applies on the
// images it is listed for. A check that does not apply to an image is left off that image's
// list instead of skipping. Add an entry only for a reason outside the suite's control, with
// a comment saying why it cannot be a PASS or FAIL.
var allowedSkips = map[string]string{}

// required is the set of checks a scenario must report on its image, by boot.
func required(sc scenario) map[int][]string {
	var base map[int][]string
	switch sc.name {
	case "baked":
		base = bakedChecks
	case "broken":
		base = brokenChecks
	case "cloud-init":
		base = cloudInitChecks
	case "golden":
		base = goldenChecks
	}
	out := map[int][]string{}
	for boot, names := range base {
		out[boot] = append(append(append([]string{}, everyBoot...), names...), sc.image.Extra[sc.name][boot]...)
	}
	return out
}

func baked(img osImage) scenario {
	return scenario{name: "baked", image: img, policy: "policy.yaml", install: true, decoy: true, reboot: true, webhook: true}
}

func broken(img osImage) scenario {
	return scenario{name: "broken", image: img, policy: "broken-policy.yaml", install: true}
}

func cloudInit(img osImage) scenario {
	return scenario{name: "cloud-init", image: img, cloud: true}
}

func golden(img osImage) scenario {
	return scenario{name: "golden", image: img, policy: "policy.yaml", install: true, golden: true}
}

// suite is every (test, image) pair, in the order CI runs them; TestMain reads it to start the
// image builds the selected tests need, at once.
var suite = []struct {
	test string
	sc   scenario
}{
	{"TestBaked", baked(ubuntu2604)},
	{"TestBaked", baked(debian12)},
	{"TestBrokenPolicy", broken(ubuntu2604)},
	{"TestCloudInit", cloudInit(ubuntu2604)},
	{"TestGolden", golden(ubuntu2604)},
}

func runSuite(t *testing.T, test string) {
	for _, s := range suite {
		if s.test == test {
			t.Run(s.sc.image.Recipe, func(t *testing.T) { run(t, s.sc) })
		}
	}
}

// Boot 1+2 (same disk): harden baked in (install + stamp), the test policy; then a reboot.
// On Ubuntu 26.04 and on Debian 12.
func TestBaked(t *testing.T) { runSuite(t, "TestBaked") }

// A policy that does not load: fail closed, exit 1; then a dry run on the unhardened machine.
func TestBrokenPolicy(t *testing.T) { runSuite(t, "TestBrokenPolicy") }

// A golden image booted twice, each time from the unchanged image file: `harden stamp` left no
// host key and no machine-id in it, so each boot makes its own, and SSH answers with the new
// key. The two boots must differ in both.
func TestGolden(t *testing.T) {
	for _, s := range suite {
		if s.test != "TestGolden" {
			continue
		}
		t.Run(s.sc.image.Recipe, func(t *testing.T) {
			var keys, ids []string
			for i := 1; i <= 2; i++ {
				sc := s.sc
				sc.onCheck = func(name, status, detail string) {
					switch {
					case name == "golden-host-key" && status == "PASS":
						keys = append(keys, fieldOf(detail, "fingerprint="))
					case name == "golden-machine-id" && status == "PASS":
						ids = append(ids, fieldOf(detail, "machine-id="))
					}
				}
				t.Run(fmt.Sprintf("boot-%d", i), func(t *testing.T) { run(t, sc) })
			}
			if len(keys) != 2 || len(ids) != 2 {
				t.Fatalf("want a host key and a machine-id from each boot, got keys %v, machine-ids %v", keys, ids)
			}
			if keys[0] == keys[1] {
				t.Errorf("both boots of the image have host key %s: every clone would share it", keys[0])
			} else {
				t.Logf("host keys: %s, then %s", keys[0], keys[1])
			}
			if ids[0] == ids[1] {
				t.Errorf("both boots of the image have machine-id %s", ids[0])
			}
		})
	}
}

// fieldOf returns the word after prefix in a check's detail ("fingerprint=SHA256:...").
func fieldOf(detail, prefix string) string {
	for _, f := range strings.Fields(detail) {
		if v, ok := strings.CutPrefix(f, prefix); ok {
			return strings.TrimRight(v, ";,")
		}
	}
	return ""
}

// cloud-init.yaml as NoCloud user-data on an image where harden is not installed.
func TestCloudInit(t *testing.T) {
	if os.Getenv("HARDEN_VM_CLOUD_INIT") == "0" {
		// Not a green light: a laptop skips, CI (HARDEN_REQUIRE_PRIVILEGED=1) fails.
		need.Missing(t, "the cloud-init boot (HARDEN_VM_CLOUD_INIT=0 turned it off)")
	}
	runSuite(t, "TestCloudInit")
}
