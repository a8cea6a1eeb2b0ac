package install

import (
	"fmt"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/fsroot"
)

// StampFile records when the image was built; the os step judges the image's age by it
// (policy os.max_image_age).
const StampFile = "/etc/harden/image-build"

// Stamp writes the image build stamp (BUILD_TIME in RFC 3339, UTC, and IMAGE_ID when given).
// It returns what it changed. What must not be baked into an image is removed by the steps
// that own it (clamav.StampCleanup); `harden stamp` runs both.
func Stamp(root fsroot.Root, now time.Time, imageID string) ([]Change, error) {
	if strings.ContainsAny(imageID, "\n\r\"'\\$`") {
		return nil, fmt.Errorf("stamp: image id %q: quotes, backslashes, $ and newlines are not allowed", imageID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BUILD_TIME=%s\n", now.UTC().Format(time.RFC3339))
	if imageID != "" {
		fmt.Fprintf(&b, "IMAGE_ID=%s\n", imageID)
	}
	var changes []Change
	wrote, err := root.WriteOwned(StampFile, []byte(b.String()), 0o644)
	if err != nil {
		return nil, fmt.Errorf("stamp: %w", err)
	}
	if wrote {
		changes = append(changes, Change{Object: StampFile, Action: "write"})
	}
	return changes, nil
}

// ReadStamp parses a stamp written by Stamp: the build time and the image id ("" if none).
func ReadStamp(root fsroot.Root) (time.Time, string, error) {
	b, ok, err := root.ReadFileIfExists(StampFile)
	if err != nil || !ok {
		return time.Time{}, "", err
	}
	var built time.Time
	var id string
	for i, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "BUILD_TIME":
			if built, err = time.Parse(time.RFC3339, v); err != nil {
				return time.Time{}, "", fmt.Errorf("%s:%d: BUILD_TIME: %w", StampFile, i+1, err)
			}
		case "IMAGE_ID":
			id = v
		}
	}
	if built.IsZero() {
		return time.Time{}, "", fmt.Errorf("%s: no BUILD_TIME", StampFile)
	}
	return built, id, nil
}
