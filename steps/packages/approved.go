package packages

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/harden-dev/harden/internal/engine"
)

// maxNames bounds the names listed in the unapproved finding; the count is always exact.
const maxNames = 50

// approvedPatterns is packages.approved plus the lines of packages.approved_file.
func approvedPatterns(env *engine.Env) ([]string, error) {
	pats := append([]string(nil), env.Policy.Packages.Approved...)
	file := env.Policy.Packages.ApprovedFile
	if file == "" {
		return pats, nil
	}
	data, err := env.Root.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("packages.approved_file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if err := checkPattern(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		pats = append(pats, line)
	}
	return pats, sc.Err()
}

func checkPattern(p string) error {
	if strings.ContainsAny(p, " \t") {
		return fmt.Errorf("one package name or glob per line, got %q", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("bad glob %q: %v", p, err)
	}
	return nil
}

// approved reports whether a package matches a pattern by name or by name:arch.
func approved(pkg Pkg, pats []string) bool {
	for _, pat := range pats {
		if ok, _ := path.Match(pat, pkg.Name); ok {
			return true
		}
		if ok, _ := path.Match(pat, pkg.Key()); ok {
			return true
		}
	}
	return false
}

// audit reports installed packages not on the approved list as one finding with a count
// and the names: one finding per package would bury the journal on a first audit. An empty
// approved list means no audit. Packages being purged are the remove list's business.
func audit(env *engine.Env, p *engine.Plan, installed []Pkg, purging map[string]bool) error {
	pats, err := approvedPatterns(env)
	if err != nil || len(pats) == 0 {
		return err
	}
	var bad []string
	for _, pkg := range installed {
		if !purging[pkg.Key()] && !approved(pkg, pats) {
			bad = append(bad, pkg.Key())
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	names := strings.Join(bad[:min(len(bad), maxNames)], ", ")
	if len(bad) > maxNames {
		names += fmt.Sprintf(", ... and %d more", len(bad)-maxNames)
	}
	p.Find(&engine.Finding{ID: "packages.unapproved", Severity: engine.Warning, Object: StatusPath,
		Message: fmt.Sprintf("%d installed package(s) not approved: %s", len(bad), names),
		Reason:  "packages.approved"})
	return nil
}
