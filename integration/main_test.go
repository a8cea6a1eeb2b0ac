//go:build integration

package integration

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
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

// recipesFor lists the images the tests matching a -run pattern boot, matched the way go test
// does: top-level alternatives (a|b) each on their own, each split at slashes, the first
// element against the test name and the second (if any) against the image's recipe. A pattern
// it cannot read builds every image (the safe side: at worst one build too many, never a test
// without its image).
func recipesFor(pattern string) []string {
	seen := map[string]bool{}
	var out []string
	for _, alt := range splitOutside(pattern, '|') {
		parts := splitOutside(alt, '/')
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
	}
	return out
}

// splitOutside splits s at sep where sep is not inside (), [] or escaped.
func splitOutside(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
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
