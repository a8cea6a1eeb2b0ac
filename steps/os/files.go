package os

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/harden-dev/harden/internal/install"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/internal/engine"
)

// StampPath is written by `harden stamp` when an image is built.
const StampPath = install.StampFile

// cloudBuildInfo is Ubuntu cloud images' own build record ("serial: 20261101").
const cloudBuildInfo = "/etc/cloud/build.info"

// readOSRelease reads /etc/os-release, else /usr/lib/os-release (os-release(5)); nil if neither.
func readOSRelease(env *engine.Env) (map[string]string, error) {
	for _, name := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, ok, err := env.Root.ReadFileIfExists(name)
		if err != nil {
			return nil, err
		}
		if ok {
			return parseEnvFile(data), nil
		}
	}
	return nil, nil
}

// parseEnvFile parses KEY=value lines with optional shell quotes, as os-release(5) allows.
func parseEnvFile(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}

// checkImage compares the image build time with os.max_image_age.
func checkImage(p *engine.Plan, env *engine.Env) {
	maxAge := env.Policy.OS.MaxImageAge.D()
	if maxAge == 0 {
		return
	}
	built, from, err := imageBuildTime(env)
	if err != nil || built.IsZero() {
		msg := "no image build stamp (" + StampPath + " from `harden stamp`, or " + cloudBuildInfo + "): image age unknown"
		if err != nil {
			msg = err.Error()
		}
		p.Find(&engine.Finding{ID: "os.image-stamp-missing", Severity: engine.Warning, Object: StampPath,
			Message: msg, Reason: "os.max_image_age"})
		return
	}
	age := env.Now().Sub(built)
	switch {
	case age < -time.Hour:
		p.Find(&engine.Finding{ID: "os.image-from-future", Severity: engine.Warning, Object: from,
			Message: fmt.Sprintf("image build time %s is after the clock (%s): check the clock", built.Format(time.RFC3339), env.Now().Format(time.RFC3339)),
			Reason:  "os.max_image_age"})
	case age > maxAge:
		p.Find(&engine.Finding{ID: "os.image-too-old", Severity: engine.Warning, Object: from,
			Message: fmt.Sprintf("image built %s, %s ago; policy allows %s: rebuild the image (it carries the patches)",
				built.Format("2006-01-02"), days(age), env.Policy.OS.MaxImageAge), Reason: "os.max_image_age"})
	}
}

// imageBuildTime reads harden's stamp, else cloud-init's build.info. It returns the zero time
// when neither exists, and an error naming the file when one is unreadable.
func imageBuildTime(env *engine.Env) (time.Time, string, error) {
	data, ok, err := env.Root.ReadFileIfExists(StampPath)
	if err != nil {
		return time.Time{}, StampPath, err
	}
	if ok {
		v := parseEnvFile(data)["BUILD_TIME"]
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, StampPath, fmt.Errorf("%s: BUILD_TIME %q is not RFC 3339", StampPath, v)
		}
		return t, StampPath, nil
	}
	data, ok, err = env.Root.ReadFileIfExists(cloudBuildInfo)
	if err != nil || !ok {
		return time.Time{}, cloudBuildInfo, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, found := strings.CutPrefix(strings.TrimSpace(line), "serial:"); found {
			v = strings.TrimSpace(v)
			if len(v) >= 8 {
				if t, err := time.Parse("20060102", v[:8]); err == nil {
					return t, cloudBuildInfo, nil
				}
			}
			return time.Time{}, cloudBuildInfo, fmt.Errorf("%s: serial %q is not YYYYMMDD", cloudBuildInfo, v)
		}
	}
	return time.Time{}, cloudBuildInfo, nil
}

func days(d time.Duration) string {
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
