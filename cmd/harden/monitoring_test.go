package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/harden-dev/harden/assets"
	"github.com/harden-dev/harden/internal/alert"
	"github.com/harden-dev/harden/internal/alert/sink"
	"github.com/harden-dev/harden/internal/alert/spool"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/harden-dev/harden/internal/testutil/syncbuf"
)

// The Prometheus rules are tested with promtool over series that harden itself wrote in this
// test: the built binary applies policies to temp roots (a healthy run, a failing step, a
// broken policy, drift found by a recorded dry-run) and runs `harden watch` against webhook
// receivers that refuse or are gone. Each textfile is converted into promtool input series
// (see textfileSeries), so a metric or label renamed in the code breaks this test.

// machine files of one scenario: which textfiles a machine of the fleet shows.
type fleetMachine struct {
	name     string
	failure  string   // what went wrong, for the README's table
	produced string   // how the test produced it
	files    []series // its textfiles, converted
	alerts   []string // alert names expected to fire at the end
}

// series is one textfile's samples for promtool.
type series struct {
	text string // the textfile as harden wrote it
	// writtenAt is when, on the test's timeline (seconds from 0), the file was written;
	// live means the writer keeps rewriting it (a running watch), so its timestamps follow
	// the timeline.
	writtenAt int64
	live      bool
}

const (
	promStep  = time.Minute
	promSteps = 30 // the timeline: 0..30m
	evalLate  = 20 * time.Minute
	evalEarly = time.Minute
)

func TestPrometheusRulesOnHardensOwnSeries(t *testing.T) {
	requireRoot(t)
	promtool := need.Tool(t, "promtool")
	bin := builtBinary(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "harden.rules.yml")
	require.NoError(t, os.WriteFile(rules, assets.PrometheusRules, 0o644))
	out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput()
	require.NoError(t, err, "promtool check rules: %s", out)

	f := &fleet{t: t, bin: bin}
	okApply, okDry := f.apply(nil)
	failApply, _ := f.apply(func(root string) {
		// A step that fails for real: the accounts step cannot read a file it edits.
		require.NoError(t, os.MkdirAll(filepath.Join(root, "etc/security/pwquality.conf"), 0o755))
	})
	closedApply := f.failClosed()
	driftDry := f.drift()
	healthyWatch, stoppedWatch := f.watch(nil)
	refusingWatch, _ := f.watch(f.troubledSinks)

	fleet := []fleetMachine{
		{name: "vm-ok", failure: "none (a healthy machine)", produced: "apply and recorded dry-run on a converged root; watch delivering",
			files: []series{{text: okApply}, {text: okDry}, {text: healthyWatch, live: true}}},
		{name: "vm-fail-1", failure: "the last apply failed", produced: "apply on a root where a file the accounts step edits is a directory",
			files: []series{{text: failApply}, {text: healthyWatch, live: true}}, alerts: []string{"HardenRunFailed"}},
		{name: "vm-fail-2", files: []series{{text: failApply}, {text: healthyWatch, live: true}}, alerts: []string{"HardenRunFailed"}},
		{name: "vm-fail-3", files: []series{{text: failApply}, {text: healthyWatch, live: true}}, alerts: []string{"HardenRunFailed"}},
		{name: "vm-failclosed", failure: "the policy did not load: default firewall applied (fail closed)", produced: "apply with a policy that does not validate",
			files: []series{{text: closedApply}, {text: healthyWatch, live: true}}, alerts: []string{"HardenRunFailed", "HardenFailClosed"}},
		{name: "vm-drift", failure: "drift found by the daily dry-run", produced: "apply, then a file edited by hand, then `harden apply --dry-run --record`",
			files: []series{{text: okApply}, {text: driftDry}, {text: healthyWatch, live: true}}, alerts: []string{"HardenDrift"}},
		{name: "vm-stale", failure: "no run for over a day", produced: "the healthy apply's textfile, written 27 hours before the evaluation",
			files: []series{{text: okApply, writtenAt: -27 * 3600}, {text: healthyWatch, live: true}}, alerts: []string{"HardenRunStale"}},
		{name: "vm-watch-stopped", failure: "harden watch stopped", produced: "`harden watch` stopped with SIGTERM (it writes harden_watch_up 0)",
			files: []series{{text: okApply}, {text: stoppedWatch}}, alerts: []string{"HardenWatchDown"}},
		{name: "vm-watch-crashed", failure: "harden watch died (its textfile stops changing)", produced: "the running watch's textfile, no longer rewritten",
			files: []series{{text: okApply}, {text: healthyWatch}}, alerts: []string{"HardenWatchDown"}},
		{name: "vm-no-watch", failure: "harden watch never ran", produced: "an apply's textfile and no watch textfile",
			files: []series{{text: okApply}}, alerts: []string{"HardenWatchDown"}},
		{name: "vm-sinks", failure: "a sink refuses alerts (401: rotated secret), another is unreachable", produced: "`harden watch` with a webhook answering 401 and one on a closed port, an alert spooled 20 minutes earlier",
			files: []series{{text: okApply}, {text: refusingWatch, live: true}}, alerts: []string{"HardenAlertsRefused", "HardenWatchSpoolGrowing"}},
	}
	fleetWide := map[string][]map[string]string{"HardenStepFailingFleetWide": {{"step": "accounts"}}}

	testFile := filepath.Join(dir, "harden.rules.test.yml")
	require.NoError(t, os.WriteFile(testFile, promtoolTest(t, rules, fleet, fleetWide), 0o644))
	out, err = exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(testFile)
		t.Logf("test file:\n%s", b)
	}
	require.NoError(t, err, "promtool test rules: %s", out)
	assert.Contains(t, string(out), "SUCCESS")

	checkREADMETable(t, fleet, fleetWide)
}

// fleet runs the built binary to produce textfiles.
type fleet struct {
	t   *testing.T
	bin string
}

// policyFile writes a root-owned policy (as harden requires) whose spool is a temp dir.
func (f *fleet) policyFile(extra string) string {
	dir := f.t.TempDir()
	require.NoError(f.t, os.Chmod(dir, 0o755))
	p := filepath.Join(dir, "policy.yaml")
	write(f.t, p, "version: 1\nalerts:\n  spool: {dir: "+filepath.Join(f.t.TempDir(), "spool")+", max_alerts: 100}\n"+extra, 0o600)
	return p
}

func (f *fleet) run(args ...string) (int, string) {
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(os.Environ(), "HARDEN_REFUSE_HOST_NETNS=1", "HARDEN_REFUSE_AUDIT_LOCK=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(f.t, err)
	}
	return code, out.String()
}

func (f *fleet) textfile(root, name string) string {
	b, err := os.ReadFile(filepath.Join(root, "var/lib/prometheus/node-exporter", name))
	require.NoError(f.t, err)
	return string(b)
}

// apply runs a real apply (os and accounts steps) on a fresh root, then a recorded dry-run.
func (f *fleet) apply(breakRoot func(root string)) (apply, dry string) {
	root := machine(f.t)
	if breakRoot != nil {
		breakRoot(root)
	}
	pol := f.policyFile("")
	code, out := f.run("apply", "--root", root, "--only", "os,accounts", "--policy", pol)
	if breakRoot == nil {
		require.Equal(f.t, 0, code, "the os step's stamp warning is below fail_on: %s", out)
		code, out = f.run("apply", "--dry-run", "--record", "--root", root, "--only", "os,accounts", "--policy", pol)
		require.Equal(f.t, 0, code, "converged: %s", out)
		return f.textfile(root, "harden.prom"), f.textfile(root, "harden-dryrun.prom")
	}
	require.Equal(f.t, 1, code, out)
	return f.textfile(root, "harden.prom"), ""
}

func (f *fleet) failClosed() string {
	root := machine(f.t)
	pol := f.policyFile("firewall: {exposure: wide-open}\n")
	code, out := f.run("apply", "--root", root, "--policy", pol)
	require.Equal(f.t, 1, code, out)
	require.Contains(f.t, out, "failing closed")
	return f.textfile(root, "harden.prom")
}

func (f *fleet) drift() string {
	root := machine(f.t)
	pol := f.policyFile("")
	f.run("apply", "--root", root, "--only", "os,accounts", "--policy", pol)
	defs := filepath.Join(root, "etc/login.defs")
	b, err := os.ReadFile(defs)
	require.NoError(f.t, err)
	require.NoError(f.t, os.WriteFile(defs, regexp.MustCompile(`(?m)^PASS_MAX_DAYS.*$`).ReplaceAll(b, []byte("PASS_MAX_DAYS 99999")), 0o644))
	code, out := f.run("apply", "--dry-run", "--record", "--root", root, "--only", "os,accounts", "--policy", pol)
	require.Equal(f.t, 0, code, out)
	require.Contains(f.t, out, "8da6ef1676d0474699aa25edf036a32d", "the drift alert went to the journal")
	return f.textfile(root, "harden-dryrun.prom")
}

// troubledSinks are a webhook that refuses (401, as after a secret rotation) and one on a
// port nobody listens on, with an alert spooled 20 minutes ago that neither takes.
func (f *fleet) troubledSinks(spoolDir string) string {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "signature does not match", http.StatusUnauthorized)
	}))
	f.t.Cleanup(refusing.Close)
	// Port 1 (tcpmux): never an ephemeral port, so no other test's loopback server can take it
	// between here and the watch's first attempt (a freed port from net.Listen could be).
	gone := "http://127.0.0.1:1/hook"
	secret := filepath.Join(f.t.TempDir(), "secret")
	require.NoError(f.t, os.WriteFile(secret, []byte("old"), 0o600))
	names := []string{"journal", (&sink.Webhook{URL: refusing.URL}).Name(), (&sink.Webhook{URL: gone}).Name()}
	sp, err := spool.Open(spool.Options{Dir: spoolDir, MaxAlerts: 100, Sinks: names})
	require.NoError(f.t, err)
	then := time.Now().Add(-20 * time.Minute)
	a := alert.New(alert.KindCriticalFile, alert.Critical, then, then, "critical file /etc/shadow changed", map[string]string{"path": "/etc/shadow"})
	a.Context.Host = "vm-sinks"
	require.NoError(f.t, sp.Put(a))
	return fmt.Sprintf("  sinks:\n    - {type: webhook, url: %q, secret_file: %s}\n    - {type: webhook, url: %q, secret_file: %s}\n",
		refusing.URL, secret, gone, secret)
}

// watch runs the real `harden watch` (it reads the host's audit multicast group; its alerts
// go to the journal sink, stderr here) and returns its textfile while it runs and after
// SIGTERM. With sinks set, it returns the running file once the refusal is dead-lettered.
func (f *fleet) watch(sinks func(spoolDir string) string) (running, stopped string) {
	spoolDir := filepath.Join(f.t.TempDir(), "spool")
	textDir := f.t.TempDir()
	extra := ""
	if sinks != nil {
		extra = sinks(spoolDir)
	}
	pdir := f.t.TempDir()
	require.NoError(f.t, os.Chmod(pdir, 0o755))
	pol := filepath.Join(pdir, "policy.yaml")
	write(f.t, pol, "version: 1\nrun: {metrics: "+filepath.Join(textDir, "harden.prom")+"}\nalerts:\n  spool: {dir: "+spoolDir+", max_alerts: 100}\n"+extra, 0o600)
	cmd := exec.Command(f.bin, "watch", "--policy", pol, "--lock", filepath.Join(f.t.TempDir(), "lock"))
	var logs syncbuf.Buffer // read for messages while the process still writes it
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(f.t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	prom := filepath.Join(textDir, "harden-watch.prom")
	read := func() string { b, _ := os.ReadFile(prom); return string(b) }
	ready := func() bool { return strings.Contains(read(), "harden_watch_up 1") }
	if sinks != nil {
		ready = func() bool {
			m := read()
			// At least one: the watch reads the host's audit stream, so a test running beside
			// this one (a critical-file write in internal/alert/watch) can add alerts that the
			// refusing sink dead-letters too.
			return regexp.MustCompile(`harden_watch_dead_letter_alerts\{sink="webhook-[0-9a-f]+"\} [1-9]`).MatchString(m) &&
				regexp.MustCompile(`harden_watch_spool_oldest_alert_age_seconds 1[0-9]{3}`).MatchString(m)
		}
	}
	require.Eventually(f.t, ready, 60*time.Second, 100*time.Millisecond, "harden watch: %s\n%s", logs.String(), read())
	running = read()
	require.NoError(f.t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(f.t, cmd.Wait(), logs.String())
	stopped = read()
	require.Contains(f.t, stopped, "harden_watch_up 0\n")
	return running, stopped
}

// textfileSeries converts one textfile into promtool input series for a machine: every
// sample keeps its name and labels and gains the scrape's instance and job, and holds its
// value over the timeline, as node_exporter serves a file until it is rewritten. Absolute
// times (*_timestamp_seconds) are moved onto the test's timeline: written at writtenAt, or,
// for a file its writer keeps rewriting, following the timeline (harden_watch's
// last-update stamp; its start stamp stays).
func textfileSeries(t *testing.T, instance string, s series) map[string]string {
	out := map[string]string{}
	var base float64
	for _, line := range strings.Split(s.text, "\n") {
		if v, ok := strings.CutPrefix(line, "harden_last_run_timestamp_seconds{"); ok {
			base, _ = strconv.ParseFloat(v[strings.Index(v, " ")+1:], 64)
		}
		if v, ok := strings.CutPrefix(line, "harden_watch_last_update_timestamp_seconds "); ok {
			base, _ = strconv.ParseFloat(v, 64)
		}
	}
	require.NotZero(t, base, "no timestamp in %q", s.text)
	sc := bufio.NewScanner(strings.NewReader(s.text))
	sample := regexp.MustCompile(`^([a-z_]+)(?:\{(.*)\})? (\S+)$`)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sample.FindStringSubmatch(line)
		require.NotNil(t, m, "not a textfile sample: %q", line)
		name, labels, value := m[1], m[2], m[3]
		v, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err, line)
		lbl := fmt.Sprintf(`instance=%q,job="node"`, instance)
		if labels != "" {
			lbl = labels + "," + lbl
		}
		vals := fmt.Sprintf("%g+0x%d", v, promSteps)
		if strings.HasSuffix(name, "_timestamp_seconds") {
			at := float64(s.writtenAt) + (v - base)
			if s.live && name == "harden_watch_last_update_timestamp_seconds" {
				vals = fmt.Sprintf("0+%dx%d", int(promStep.Seconds()), promSteps)
			} else {
				vals = fmt.Sprintf("%g+0x%d", at, promSteps)
			}
		}
		out[name+"{"+lbl+"}"] = vals
	}
	return out
}

type promAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// promtoolTest writes promtool's test file: the fleet's series, and at two evaluation times
// every rule's expected alerts (an empty list where none may fire), with the annotations
// rendered from the rules the way Prometheus renders {{ $labels.x }}.
func promtoolTest(t *testing.T, rulesFile string, fleet []fleetMachine, fleetWide map[string][]map[string]string) []byte {
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(assets.PrometheusRules, &rf))
	type input struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var inputs []input
	for _, m := range fleet {
		all := map[string]string{}
		for _, s := range m.files {
			for k, v := range textfileSeries(t, m.name, s) {
				all[k] = v
			}
		}
		keys := make([]string, 0, len(all))
		for k := range all {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			inputs = append(inputs, input{Series: k, Values: all[k]})
		}
	}
	tmpl := regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \}\}`)
	render := func(ann, labels map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range ann {
			require.NotContains(t, tmpl.ReplaceAllString(v, ""), "{{", "annotations may use {{ $labels.x }} only")
			out[k] = tmpl.ReplaceAllStringFunc(v, func(s string) string { return labels[tmpl.FindStringSubmatch(s)[1]] })
		}
		return out
	}
	// The labels each firing alert has: its expression's output labels plus the rule's.
	exprLabels := func(alertname, machine string) map[string]string {
		l := map[string]string{"instance": machine, "job": "node"}
		switch alertname {
		case "HardenRunFailed", "HardenFailClosed":
			l["dry_run"] = "false"
		case "HardenDrift":
			l["dry_run"] = "true"
		}
		return l
	}
	type alertTest struct {
		EvalTime  string      `yaml:"eval_time"`
		Alertname string      `yaml:"alertname"`
		ExpAlerts []promAlert `yaml:"exp_alerts"`
	}
	var tests []alertTest
	for _, eval := range []time.Duration{evalEarly, evalLate} {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exp := []promAlert{}
				add := func(l map[string]string) {
					for k, v := range r.Labels {
						l[k] = v
					}
					exp = append(exp, promAlert{ExpLabels: l, ExpAnnotations: render(r.Annotations, l)})
				}
				// An alert with a "for" is not firing yet at the early evaluation.
				if eval == evalEarly && r.For != "" {
					tests = append(tests, alertTest{EvalTime: eval.String(), Alertname: r.Alert, ExpAlerts: exp})
					continue
				}
				for _, m := range fleet {
					for _, a := range m.alerts {
						if a == r.Alert {
							l := exprLabels(a, m.name)
							if a == "HardenAlertsRefused" {
								l["sink"] = refusedSink(t, m)
							}
							add(l)
						}
					}
				}
				for _, l := range fleetWide[r.Alert] {
					c := map[string]string{}
					for k, v := range l {
						c[k] = v
					}
					add(c)
				}
				tests = append(tests, alertTest{EvalTime: eval.String(), Alertname: r.Alert, ExpAlerts: exp})
			}
		}
	}
	doc := map[string]any{
		"rule_files":          []string{rulesFile},
		"evaluation_interval": promStep.String(),
		"tests": []map[string]any{{
			"interval":        promStep.String(),
			"input_series":    inputs,
			"alert_rule_test": tests,
		}},
	}
	b, err := yaml.Marshal(doc)
	require.NoError(t, err)
	return b
}

// refusedSink is the sink label of the machine's dead-letter series that is above zero.
func refusedSink(t *testing.T, m fleetMachine) string {
	re := regexp.MustCompile(`harden_watch_dead_letter_alerts\{sink="([^"]+)"\} [1-9]`)
	for _, s := range m.files {
		if g := re.FindStringSubmatch(s.text); g != nil {
			return g[1]
		}
	}
	t.Fatalf("%s: no dead letters in its textfiles", m.name)
	return ""
}

// checkREADMETable: the README's table of which alert fires for which failure is this
// test's fleet (HARDEN_UPDATE_README=1 rewrites it).
func checkREADMETable(t *testing.T, fleet []fleetMachine, fleetWide map[string][]map[string]string) {
	var b strings.Builder
	b.WriteString("| failure | produced in the test by | alerts firing |\n|---|---|---|\n")
	for _, m := range fleet {
		if m.failure == "" {
			continue
		}
		alerts := "none"
		if len(m.alerts) > 0 {
			alerts = "`" + strings.Join(m.alerts, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.failure, m.produced, alerts)
	}
	for name, sets := range fleetWide {
		for _, l := range sets {
			fmt.Fprintf(&b, "| the %s step failed on 3 machines at once | the failing apply above, on vm-fail-1..3 | `HardenRunFailed` on each, `%s` (step=%s) |\n", l["step"], name, l["step"])
		}
	}
	const begin, end = "<!-- alert-table: generated by TestPrometheusRulesOnHardensOwnSeries -->\n", "<!-- end alert-table -->\n"
	readme := "../../README.md"
	cur, err := os.ReadFile(readme)
	require.NoError(t, err)
	i, j := bytes.Index(cur, []byte(begin)), bytes.Index(cur, []byte(end))
	want := begin + b.String() + end
	if os.Getenv("HARDEN_UPDATE_README") == "1" && i >= 0 && j > i {
		out := string(cur[:i]) + want + string(cur[j+len(end):])
		require.NoError(t, os.WriteFile(readme, []byte(out), 0o644))
		return
	}
	require.True(t, i >= 0 && j > i, "README.md has no alert table between %q and %q", begin, end)
	assert.Equal(t, want, string(cur[i:j+len(end)]), "README's alert table differs from the test's fleet (HARDEN_UPDATE_README=1 rewrites it)")
}
