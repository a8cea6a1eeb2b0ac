package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/testutil/need"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// builtBinary builds cmd/harden once for the tests that must run the real program: as
// another user, or called back by a shell's completion.
func builtBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "harden-cli-test-")
		if binErr != nil {
			return
		}
		// World-readable and searchable: the non-root test runs it as nobody.
		if binErr = os.Chmod(binDir, 0o755); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "harden"), ".").CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("go build: %s", out)
		}
	})
	require.NoError(t, binErr)
	return filepath.Join(binDir, "harden")
}

// commands walks the tree of a fresh root: every command a user can name.
func commands(t *testing.T) []*cobra.Command {
	var out []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		out = append(out, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	root.InitDefaultHelpCmd() // cobra adds these two when it executes
	root.InitDefaultCompletionCmd()
	walk(root)
	require.Greater(t, len(out), 15)
	return out
}

func pathArgs(c *cobra.Command) []string { return strings.Fields(c.CommandPath())[1:] }

// Every command answers -h and --help on stdout with exit 0, and its help lists every flag
// it takes (GNU style: --name).
func TestEveryCommandHasHelpListingAllItsFlags(t *testing.T) {
	for _, c := range commands(t) {
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := harden(t, append(pathArgs(c), h)...)
			assert.Equal(t, 0, code, "%s %s: %s", c.CommandPath(), h, errs)
			assert.Empty(t, errs, c.CommandPath())
			assert.Contains(t, out, "Usage:", c.CommandPath())
			c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
				assert.Contains(t, out, "--"+f.Name, "%s --help does not list --%s", c.CommandPath(), f.Name)
			})
		}
	}
	// The flags the old usage text left out are there.
	_, out, _ := harden(t, "apply", "--help")
	for _, f := range []string{"--root DIR", "--netns NAME", "--lock FILE", "--lock-wait DURATION", "--record", "--detailed-exitcode", "--only STEP"} {
		assert.Contains(t, out, f)
	}
	assert.NotContains(t, out, "Usage of harden apply", "Go's flag package is gone")
	_, out, _ = harden(t, "policy", "validate", "--help")
	assert.Contains(t, out, "--content-only")
	_, out, _ = harden(t, "install", "--help")
	assert.Contains(t, out, "--no-dbus")
	_, out, _ = harden(t, "stamp", "--help")
	assert.Contains(t, out, "--image-id")
}

// `harden` alone, and a group alone, print their usage to stderr and exit 2.
func TestNoCommandIsAUsageError(t *testing.T) {
	for _, args := range [][]string{nil, {"policy"}, {"alert"}} {
		code, out, errs := harden(t, args...)
		assert.Equal(t, 2, code, args)
		assert.Empty(t, out, args)
		assert.Contains(t, errs, "Usage:", args)
	}
}

// Usage errors exit 2 with nothing on stdout and one precise message on stderr, never run
// anything, and are told apart from a run's "changes pending" 2 by the empty stdout.
func TestUsageErrorsExit2WithOneMessageEach(t *testing.T) {
	root := machine(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "--root", root, "--output", "yaml"}, `harden apply: --output "yaml": want text or json`},
		{[]string{"apply", "--root", root, "extra"}, `harden apply: unexpected argument "extra"`},
		{[]string{"apply", "--dry-rn"}, "unknown flag: --dry-rn"},
		{[]string{"apply", "--lock-wait", "soon"}, `invalid argument "soon" for "--lock-wait"`},
		{[]string{"policy", "validate"}, "harden policy validate: missing FILE"},
		{[]string{"policy", "validate", "a.yaml", "b.yaml"}, `unexpected argument "b.yaml"`},
		{[]string{"policy", "frob"}, `unknown command "frob" for "harden policy"`},
		{[]string{"install", "now"}, `unexpected argument "now"`},
		{[]string{"watch", "--polciy", "x"}, "unknown flag: --polciy"},
	} {
		code, out, errs := harden(t, tc.args...)
		assert.Equal(t, 2, code, tc.args)
		assert.Empty(t, out, tc.args)
		assert.Contains(t, errs, tc.want, tc.args)
		assert.NotContains(t, errs, " or bad --output", "one message per problem")
		assert.Equal(t, 2, strings.Count(errs, "\n"), "the error and the --help hint: %q", errs)
	}
	// A run that found changes pending exits 2 too, but with its plan on stdout.
	code, out, _ := harden(t, "apply", "--dry-run", "--detailed-exitcode", "--root", root, "--only", "kernel")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "kernel: pending")
}

// install failing is one error, without "nothing to change" before it and without the
// command's name twice.
func TestInstallFailureIsOneClearError(t *testing.T) {
	code, out, errs := harden(t, "install", "--root", t.TempDir())
	assert.Equal(t, 1, code)
	assert.NotContains(t, out, "nothing to change")
	assert.NotContains(t, errs, "install: install:")
	assert.Contains(t, errs, "harden install: /usr/local/sbin/harden is not an executable file")
}

// A dry-run by a normal user says it needs root instead of dying on the lock's
// permission error. Run for real: the built binary as nobody, on a temp root.
func TestDryRunAsNonRootSaysItNeedsRoot(t *testing.T) {
	need.Root(t, "runs the binary as another user")
	setpriv := need.Tool(t, "setpriv")
	bin := builtBinary(t)
	root := machine(t)
	require.NoError(t, os.Chmod(root, 0o755))
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
		bin, "apply", "--dry-run", "--root", root, "--only", "os")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, errb.String())
	assert.Equal(t, 1, exit.ExitCode())
	assert.Empty(t, out.String())
	assert.Contains(t, errb.String(), "harden apply: needs root, also for --dry-run")
	assert.Contains(t, errb.String(), "sudo")
	assert.NoDirExists(t, filepath.Join(root, "run"), "nothing created")
}

// The man page is generated from the command tree, renders with man -l without a warning,
// and lists every command and flag.
func TestManPageRendersAndListsEverything(t *testing.T) {
	man := need.Tool(t, "man")
	code, page, errs := harden(t, "man")
	require.Equal(t, 0, code, errs)
	path := filepath.Join(t.TempDir(), "harden.8")
	require.NoError(t, os.WriteFile(path, []byte(page), 0o644))
	cmd := exec.Command(man, "--warnings=all", "-l", path)
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100", "LANG=C.UTF-8")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), errb.String())
	assert.Empty(t, errb.String(), "groff warnings")
	text := regexp.MustCompile(".\b").ReplaceAllString(out.String(), "") // overstrike (bold) off
	assert.Contains(t, text, "HARDEN(8)")
	assert.Contains(t, text, "EXIT STATUS")
	for _, c := range manCommands(newRoot(&bytes.Buffer{}, &bytes.Buffer{})) {
		assert.Contains(t, text, c.CommandPath(), "command missing from harden(8)")
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" {
				assert.Contains(t, text, "--"+f.Name, "%s --%s missing from harden(8)", c.CommandPath(), f.Name)
			}
		})
	}
}

// The units cite man:harden(8), and harden install puts that page in place.
func TestInstallWritesTheManPageTheUnitsCite(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "usr/local/sbin/harden"), "#!/bin/sh\n", 0o755)
	code, out, errs := harden(t, "install", "--root", dir)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "create "+ManPagePath)
	assert.Contains(t, out, "create "+BashCompletionPath)
	assert.NotContains(t, out, RulesPath, "no node_exporter textfile directory here")
	b, err := os.ReadFile(filepath.Join(dir, ManPagePath))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), ".TH HARDEN 8 "))
	units, _ := filepath.Glob(filepath.Join(dir, "etc/systemd/system/harden*"))
	require.NotEmpty(t, units)
	cited := 0
	for _, u := range units {
		ub, _ := os.ReadFile(u)
		if strings.Contains(string(ub), "man:harden(8)") {
			cited++
		}
	}
	assert.Positive(t, cited)

	// With node_exporter's textfile directory, the Prometheus rules come too.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, TextfileDirPath), 0o755))
	code, out, errs = harden(t, "install", "--root", dir)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "create "+RulesPath+"\n", out)
	code, rules, _ := harden(t, "prometheus-rules")
	require.Equal(t, 0, code)
	b, err = os.ReadFile(filepath.Join(dir, RulesPath))
	require.NoError(t, err)
	assert.Equal(t, rules, string(b))
}

// Every `harden COMMAND` the project's messages, units and docs cite is a real command.
func TestCitedCommandsExist(t *testing.T) {
	known := map[string]bool{}
	for _, c := range commands(t) {
		known[c.CommandPath()] = true
	}
	// `harden install`, `harden apply --dry-run`, `harden policy validate FILE`: a command
	// name, then the end of the quote, a flag or an upper-case argument.
	cite := regexp.MustCompile("`harden ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?(?:`| -| \\[| [A-Z])")
	var files []string
	for _, glob := range []string{"../../steps/*/*.go", "../../internal/*/*.go", "../../internal/*/*/*.go", "../../assets/units/*",
		"../../docs/*.md", "../../README.md", "../../cloud-init.yaml"} {
		m, _ := filepath.Glob(glob)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	bad := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range cite.FindAllStringSubmatch(string(b), -1) {
			one, two := "harden "+m[1], "harden "+m[1]+" "+m[2]
			if !known[one] && !known[two] {
				bad[f+": "+strings.TrimPrefix(m[0], "`")] = true
			}
		}
	}
	var list []string
	for k := range bad {
		list = append(list, k)
	}
	sort.Strings(list)
	assert.Empty(t, list, "cites a command harden does not have")
}

// harden boot's command line: flags stop at COMMAND, and COMMAND's own arguments reach
// runBoot untouched (with or without "--").
func TestBootPassesTheCommandThrough(t *testing.T) {
	var got []bootOptions
	for _, args := range [][]string{
		{"--policy", "/p.yaml", "--", "/app", "--port", "80", "-h"},
		{"--policy", "/p.yaml", "/app", "--port", "80", "-h"},
	} {
		var o bootOptions
		c := newBootCmd(&bytes.Buffer{}, &bytes.Buffer{})
		c.RunE = func(_ *cobra.Command, a []string) error {
			o.Command = a
			o.Policy, _ = c.Flags().GetString("policy")
			return nil
		}
		c.SetArgs(args)
		require.NoError(t, c.ExecuteContext(context.Background()), args)
		got = append(got, o)
	}
	for _, o := range got {
		assert.Equal(t, bootOptions{Policy: "/p.yaml", Command: []string{"/app", "--port", "80", "-h"}}, o)
	}
	code, out, errs := harden(t, "boot")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "missing COMMAND")
}

// Bash completion, for real: bash sources the generated script (with the bash-completion
// package, as on a machine) and asks for completions the way it does on TAB; the script
// calls the built binary back.
func TestBashCompletion(t *testing.T) {
	bash := need.Tool(t, "bash")
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	need.File(t, bashCompletion, "Debian package bash-completion")
	bin := builtBinary(t)
	script, err := exec.Command(bin, "completion", "bash").Output()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "harden.bash"), script, 0o644))
	for _, f := range []string{"policy.yaml", "other.yml", "notes.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	complete := func(line string) []string {
		t.Helper()
		sh := `source ` + bashCompletion + `
source harden.bash
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_harden harden
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "--norc", "-c", sh, "bash", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr // compopt says it runs outside a real completion: harmless here
		out, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		words := strings.Fields(string(out))
		sort.Strings(words)
		return words
	}
	assert.Subset(t, complete("harden "), []string{"apply", "policy", "watch", "install", "stamp", "version", "man", "prometheus-rules"})
	assert.Equal(t, []string{"apply"}, complete("harden ap"))
	assert.ElementsMatch(t, []string{"show"}, complete("harden policy sh"))
	steps := complete("harden apply --only ")
	assert.Equal(t, sortedCopy(stepNames()), steps)
	assert.ElementsMatch(t, []string{"os,firewall", "os,audit"}, filter(complete("harden apply --only os,"), "os,firewall", "os,audit"))
	assert.NotContains(t, complete("harden apply --only os,"), "os,os", "a step already typed is not offered again")
	assert.Equal(t, []string{"json", "text"}, complete("harden apply --output "))
	assert.ElementsMatch(t, []string{"other.yml", "policy.yaml"}, complete("harden policy validate "), "policy files only")
	assert.ElementsMatch(t, []string{"other.yml", "policy.yaml"}, complete("harden apply --policy "))
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func filter(words []string, keep ...string) []string {
	var out []string
	for _, w := range words {
		for _, k := range keep {
			if w == k {
				out = append(out, w)
			}
		}
	}
	return out
}

// A dry-run whose only failure is a finding is "off policy", not "failed", and a step that
// changes nothing but has a critical finding is not headlined "ok". The exit code and the
// JSON status (contracts) are unchanged.
func TestPlanHeadlinesAFindingAsOffPolicy(t *testing.T) {
	requireRoot(t)
	root := machine(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	pol := filepath.Join(dir, "policy.yaml")
	write(t, pol, "version: 1\nos: {id: debian, min_version: \"12\"}\n", 0o600)
	code, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--only", "os", "--policy", pol)
	assert.Equal(t, 1, code, errs)
	assert.Contains(t, out, "\nos: nothing to change, but off policy: 1 finding(s) at or above run.fail_on (critical)\n")
	assert.NotContains(t, out, "os: ok")
	assert.Contains(t, out, "\noff policy: 1 finding(s) at or above run.fail_on (critical); 0 change(s) to apply")
	assert.NotContains(t, out, "failed:")
	code, out, _ = harden(t, "apply", "--dry-run", "--root", root, "--only", "os", "--policy", pol, "--output", "json")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"status": "failed"`)
}

// fs.inotify.max_user_watches has one owner (the kernel step), and a setting that differs
// on several interfaces is one line of the plan.
func TestPlanListsEachSysctlOnce(t *testing.T) {
	root := machine(t)
	proc := func(key, v string) {
		write(t, filepath.Join(root, "proc/sys", strings.ReplaceAll(key, ".", "/")), v+"\n", 0o644)
	}
	proc("fs.inotify.max_user_watches", "8192")
	for _, iface := range []string{"all", "default", "eth0", "lo"} {
		proc("net.ipv4.conf."+iface+".rp_filter", "2")
	}
	for _, name := range []string{"clamd.conf", "freshclam.conf"} {
		b, err := os.ReadFile(filepath.Join("../../steps/clamav/testdata", name))
		require.NoError(t, err)
		write(t, filepath.Join(root, "etc/clamav", name), string(b), 0o644)
	}
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\nclamav:x:0:0::/var/lib/clamav:/bin/false\n", 0o644)
	code, out, errs := harden(t, "apply", "--dry-run", "--root", root, "--only", "kernel,clamav", "--output", "json")
	require.NotEqual(t, 2, code, errs)
	var rep struct {
		Steps []struct {
			Name    string
			Changes []struct{ Object, Before, After string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
	inotify, rp := map[string]int{}, []string{}
	for _, s := range rep.Steps {
		for _, c := range s.Changes {
			if strings.Contains(c.Object, "inotify") {
				inotify[s.Name]++
			}
			if strings.Contains(c.Object, "rp_filter") {
				rp = append(rp, c.Object+": "+c.Before+" -> "+c.After)
			}
		}
	}
	assert.Equal(t, map[string]int{"kernel": 1}, inotify, "planned once, by the kernel step")
	assert.Equal(t, []string{"sysctl net.ipv4.conf.{all,default,eth0,lo}.rp_filter: 2 -> 1"}, rp)
}

// The fast path of `harden version` prints what the command tree's version command and
// --version print.
func TestVersionFastPathMatchesTheTree(t *testing.T) {
	var fast, tree, flag bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"version"}, &fast, io.Discard))
	root := newRoot(&tree, io.Discard)
	root.SetArgs([]string{"version"})
	require.NoError(t, root.Execute())
	root = newRoot(&flag, io.Discard)
	root.SetArgs([]string{"--version"})
	require.NoError(t, root.Execute())
	assert.Equal(t, tree.String(), fast.String())
	assert.Equal(t, tree.String(), flag.String())
	code, _, errs := harden(t, "version", "extra")
	assert.Equal(t, 2, code, errs)
}

// BenchmarkVersion is what `harden version` costs on top of the process start: building the
// whole command tree and running the command (the tree is built per run, never at init).
func BenchmarkVersion(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if run(context.Background(), []string{"version"}, io.Discard, io.Discard) != 0 {
			b.Fatal("harden version failed")
		}
	}
}
