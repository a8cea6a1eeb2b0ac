package alert

import (
	"bufio"
	"github.com/harden-dev/harden/internal/install"
	"os"
	"path/filepath"
	"strings"
)

// ImageStampPath is the image build stamp written when the image is built.
const ImageStampPath = install.StampFile

// LoadContext gathers the machine context once, at start: hostname, the Fly Machine's
// identity from its environment, and the image build time. root prefixes the stamp path
// (tests use a temp dir; production passes "/").
func LoadContext(root string, getenv func(string) string) Context {
	host, _ := os.Hostname()
	return Context{
		Host:    host,
		App:     getenv("FLY_APP_NAME"),
		Machine: getenv("FLY_MACHINE_ID"),
		Region:  getenv("FLY_REGION"),
		Image:   imageBuildTime(filepath.Join(root, ImageStampPath)),
	}
}

// imageBuildTime reads BUILD_TIME=... from the stamp; "" when absent (not an error: an alert
// must still go out from a machine without a stamp).
func imageBuildTime(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "BUILD_TIME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
