// Package bench holds the Go side of the bench/ scripts: benchmarks that time whole harden
// processes against a reference, and the guards that keep start-up cheap.
package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/harden-dev/harden/internal/testutil/need"
)

// buildOnce builds the binaries the tests run, once per test process.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "harden-bench-")
	if err != nil {
		return "", err
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := func(out, pkg, wd string) error {
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return &buildError{pkg: pkg, out: string(b), err: err}
		}
		return nil
	}
	// harden as `make build` builds it (static, stripped).
	if err := build(filepath.Join(dir, "harden"), "github.com/harden-dev/harden/cmd/harden", ".."); err != nil {
		return "", err
	}
	// The reference: the smallest static Go program that prints a line.
	hello := filepath.Join(dir, "hello-src")
	if err := os.MkdirAll(hello, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.21\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(hello, name), []byte(src), 0o644); err != nil {
			return "", err
		}
	}
	if err := build(filepath.Join(dir, "hello"), ".", hello); err != nil {
		return "", err
	}
	if err := buildHelloDeps(dir, build); err != nil {
		return "", err
	}
	return dir, nil
})

// depsFloor are the packages of harden's dependencies that harden imports: the design's
// list, cobra (the command line) and net/http (the webhook and Alertmanager sinks). A hello world importing them all
// pays their package initialisation and nothing of harden's: the floor of any program built
// on them, against which harden's own start-up cost is read.
var depsFloor = []string{
	"github.com/coreos/go-systemd/v22/dbus",
	"github.com/coreos/go-systemd/v22/journal",
	"github.com/godbus/dbus/v5",
	"github.com/google/nftables",
	"github.com/hashicorp/go-multierror",
	"github.com/mdlayher/netlink",
	"github.com/sirupsen/logrus",
	"github.com/spf13/cobra",
	"go.yaml.in/yaml/v3",
	"golang.org/x/sys/unix",
	"net/http",
}

// buildHelloDeps builds hello-deps: hello world with every depsFloor package imported,
// as a module with harden's own go.mod and go.sum (the same versions, from the module
// cache that building harden filled).
func buildHelloDeps(dir string, build func(out, pkg, wd string) error) error {
	src := filepath.Join(dir, "hello-deps-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		return err
	}
	gosum, err := os.ReadFile("../go.sum")
	if err != nil {
		return err
	}
	main := "package main\n\nimport (\n\t\"fmt\"\n"
	for _, p := range depsFloor {
		main += "\t_ \"" + p + "\"\n"
	}
	main += ")\n\nfunc main() { fmt.Println(\"hello, world\") }\n"
	files := map[string][]byte{
		"go.mod":  bytes.Replace(gomod, []byte("module github.com/harden-dev/harden"), []byte("module hellodeps"), 1),
		"go.sum":  gosum,
		"main.go": []byte(main),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return err
		}
	}
	return build(filepath.Join(dir, "hello-deps"), ".", src)
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

func binaries(tb testing.TB) (harden, hello, helloDeps string) {
	tb.Helper()
	need.File(tb, filepath.Join(runtime.GOROOT(), "bin", "go"), "the go tool (builds the binaries under test)")
	dir, err := buildOnce()
	require.NoError(tb, err)
	return filepath.Join(dir, "harden"), filepath.Join(dir, "hello"), filepath.Join(dir, "hello-deps")
}

// harden's own packages must not build tables, maps or regexps at process start: every
// command pays package initialisation, `harden version` included (GODEBUG=inittrace=1
// showed ~290 KB allocated by them before; now ~5 KB). What is left at start-up is the runtime
// and the dependencies' own inits.
func TestHardenPackagesAllocateLittleAtInit(t *testing.T) {
	harden, _, _ := binaries(t)
	cmd := exec.Command(harden, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run())
	total, seen := 0, 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init github.com/harden-dev/harden/internal/auditrule @36 ms, 0.14 ms clock, 3136 bytes, 40 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/harden-dev/harden/") {
			continue
		}
		n, err := strconv.Atoi(f[len(f)-4])
		require.NoError(t, err, sc.Text())
		total += n
		seen++
		t.Logf("%s: %d bytes", f[1], n)
	}
	require.Positive(t, seen, "no inittrace lines from harden's packages:\n%s", stderr.String())
	require.Less(t, total, 16<<10, "harden's packages allocate %d bytes at init", total)
}

// BenchmarkVersionVsHelloWorld runs `harden version`, a static Go hello world and the same
// hello world importing harden's dependencies (depsFloor) one after the other, b.N rounds,
// and reports each one's median wall time and the ratios (bench/version.sh prints them
// against the 1.5x budget). Rounds keep the ratios meaningful while the machine's speed
// drifts; the median keeps one descheduled run from moving them.
func BenchmarkVersionVsHelloWorld(b *testing.B) {
	harden, hello, helloDeps := binaries(b)
	run := func(path string, args ...string) time.Duration {
		start := time.Now()
		if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", path, err, out)
		}
		return time.Since(start)
	}
	run(harden, "version") // page cache warm, as for every run after the first
	run(hello)
	run(helloDeps)
	var h, w, d, ratios, depsRatios, ownRatios []float64
	b.ResetTimer()
	for b.Loop() {
		dh, dw, dd := run(harden, "version"), run(hello), run(helloDeps)
		h, w, d = append(h, ms(dh)), append(w, ms(dw)), append(d, ms(dd))
		ratios = append(ratios, ms(dh)/ms(dw))
		depsRatios = append(depsRatios, ms(dd)/ms(dw))
		ownRatios = append(ownRatios, ms(dh)/ms(dd))
	}
	b.ReportMetric(median(h), "harden-ms")
	b.ReportMetric(median(w), "hello-ms")
	b.ReportMetric(median(d), "hello-deps-ms")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(median(depsRatios), "deps-ratio")
	b.ReportMetric(median(ownRatios), "own-ratio")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}
