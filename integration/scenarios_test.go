//go:build integration

package integration

import (
	"os"
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
			"baked": {1: {
				"apparmor-enforce", // AppArmor on in the kernel, clamd's profile in enforce mode
				"apparmor-clamd",   // the running clamd is confined by it
				"sudo-rs",          // `sudo` is sudo-rs, as on Ubuntu server
				"sshd-generator",   // systemd 256+'s vsock/unix-local SSH sockets shut
			}},
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
		"services-masked", "system-running", "clamav-eicar", "converged",
		// from the host, through the forwarded ports (hostProbe)
		"host-ssh-port", "host-closed-port", "host-ssh-password", "host-ssh-audit",
		// alerts: the guest's side, then the host's burst and the webhook receiver (hostAlerts)
		"watch-service", "ssh-burst", "alert-ssh-failures", "alert-critical-file",
		"alert-priv-esc", "alert-priv-esc-auth", "webhook-signature",
	},
	2: {"harden-service", "reboot-no-changes", "firewall-before-network", "nft-table"},
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
		"cloud-init-apply", "cloud-init-pwauth",
		"host-ssh-port", "host-closed-port", "host-ssh-password", "host-ssh-audit",
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

// cloud-init.yaml as NoCloud user-data on an image where harden is not installed.
func TestCloudInit(t *testing.T) {
	if os.Getenv("HARDEN_VM_CLOUD_INIT") == "0" {
		// Not a green light: a laptop skips, CI (HARDEN_REQUIRE_PRIVILEGED=1) fails.
		need.Missing(t, "the cloud-init boot (HARDEN_VM_CLOUD_INIT=0 turned it off)")
	}
	runSuite(t, "TestCloudInit")
}
