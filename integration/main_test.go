//go:build integration

package integration

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMain starts the image builds the selected tests need, all at once (a cold build is
// mostly download and dpkg; two overlap well on two cores), runs the tests, and prints every
// figure the scenarios measured, per image.
func TestMain(m *testing.M) {
	flag.Parse()
	for _, recipe := range recipesFor(flag.Lookup("test.run").Value.String()) {
		go imageOf(recipe).get()
	}
	code := m.Run()
	printFigures()
	os.Exit(code)
}

// recipesFor lists the images the tests matching a -run pattern boot: the first element of
// the pattern against the test name, the second (if any) against the image's recipe, as go
// test matches subtests. A pattern it cannot read builds every image (the safe side: at worst
// one build too many, never a test without its image).
func recipesFor(pattern string) []string {
	seen := map[string]bool{}
	var out []string
	parts := strings.SplitN(pattern, "/", 3)
	match := func(i int, s string) bool {
		if i >= len(parts) || parts[i] == "" {
			return true
		}
		re, err := regexp.Compile(parts[i])
		return err != nil || re.MatchString(s)
	}
	want := func(test, recipe string) {
		if match(0, test) && match(1, recipe) && !seen[recipe] {
			seen[recipe] = true
			out = append(out, recipe)
		}
	}
	for _, s := range suite {
		want(s.test, s.sc.image.Recipe)
	}
	for _, img := range images {
		want("TestImages", img.Recipe)
	}
	return out
}

// imageBuild is one recipe's image, built once per test binary however many tests need it.
type imageBuild struct {
	recipe string
	once   sync.Once
	img    Image
	err    error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*imageBuild{}
)

func imageOf(recipe string) *imageBuild {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if builds[recipe] == nil {
		builds[recipe] = &imageBuild{recipe: recipe}
	}
	return builds[recipe]
}

func (b *imageBuild) get() (Image, error) {
	b.once.Do(func() {
		b.img, b.err = EnsureImage("image", b.recipe, func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
		})
		if b.err == nil && b.img.Built > 0 {
			addFigure(b.recipe, fmt.Sprintf("%-10s %-32s %.0f", "build", "image-build-s (cold)", b.img.Built.Seconds()))
		}
	})
	return b.img, b.err
}

func testImage(t *testing.T, recipe string) Image {
	t.Helper()
	img, err := imageOf(recipe).get()
	require.NoError(t, err)
	return img
}

var (
	figuresMu sync.Mutex
	figures   = map[string][]string{} // image -> "scenario boot1/name value"
)

// recordFigure logs a measured number and keeps it for the summary TestMain prints.
func recordFigure(t *testing.T, sc scenario, name, value string) {
	t.Logf("FIGURE %s %s (%s, %s)", name, value, sc.image.Recipe, sc.name)
	addFigure(sc.image.Recipe, fmt.Sprintf("%-10s %-32s %s", sc.name, name, value))
}

func addFigure(image, line string) {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	figures[image] = append(figures[image], line)
}

func printFigures() {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	var images []string
	for img := range figures {
		images = append(images, img)
	}
	sort.Strings(images)
	for _, img := range images {
		fmt.Printf("FIGURES %s (ms unless the name says s)\n", img)
		for _, f := range figures[img] {
			fmt.Printf("  %s\n", f)
		}
	}
}
