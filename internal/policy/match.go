package policy

import "strings"

// The checks of names, keys and versions in a policy are loops rather than regexps: every
// policy load runs them, and compiling the regexps cost each process that loads a policy
// about a millisecond and a hundred page faults (nameRE's {0,31} alone compiles to a program of
// 32 states). TestMatchersAgreeWithRegexps holds each to the pattern in its comment.

// validName: ^[a-z0-9][a-z0-9_.-]{0,31}$ (an allow rule's name).
func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isLowerDigit(s[0]) {
		return false
	}
	return allBytes(s[1:], func(c byte) bool { return isLowerDigit(c) || c == '_' || c == '.' || c == '-' })
}

// validVersion: ^[0-9]+(\.[0-9]+)*$ (an os-release VERSION_ID like 24.04).
func validVersion(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" || !allBytes(part, isDigit) {
			return false
		}
	}
	return true
}

// validSysctlKey: ^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$.
func validSysctlKey(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || parts[0] == "" || !allBytes(parts[0], func(c byte) bool { return isLowerDigit(c) || c == '_' }) {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || !allBytes(p, func(c byte) bool { return isAlnum(c) || c == '_' || c == '*' || c == '-' }) {
			return false
		}
	}
	return true
}

// validModule: ^[a-z0-9_-]+$.
func validModule(s string) bool {
	return s != "" && allBytes(s, func(c byte) bool { return isLowerDigit(c) || c == '_' || c == '-' })
}

// validSSHDKey: ^[A-Za-z][A-Za-z0-9]*$.
func validSSHDKey(s string) bool {
	return s != "" && isLetter(s[0]) && allBytes(s, isAlnum)
}

// validMaxStartups: ^[0-9]+(:[0-9]+:[0-9]+)?$ (sshd's MaxStartups: N or start:rate:full).
func validMaxStartups(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 1 && len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || !allBytes(p, isDigit) {
			return false
		}
	}
	return true
}

// validUmask: ^0?[0-7]{3}$.
func validUmask(s string) bool {
	if len(s) == 4 && s[0] == '0' {
		s = s[1:]
	}
	return len(s) == 3 && allBytes(s, func(c byte) bool { return c >= '0' && c <= '7' })
}

// validPackage: ^[a-z0-9*?][a-z0-9+.*?-]*(:[a-z0-9]+)?$ (a package name or glob, with an
// optional :arch). The name's characters exclude ':', so the first ':' starts the arch.
func validPackage(s string) bool {
	name, arch, hasArch := strings.Cut(s, ":")
	if hasArch && (arch == "" || !allBytes(arch, isLowerDigit)) {
		return false
	}
	if name == "" || !(isLowerDigit(name[0]) || name[0] == '*' || name[0] == '?') {
		return false
	}
	return allBytes(name[1:], func(c byte) bool { return isLowerDigit(c) || strings.IndexByte("+.*?-", c) >= 0 })
}

var unitTypes = []string{"service", "socket", "timer", "path", "mount", "automount", "swap", "target",
	"device", "slice", "scope"}

// validUnitName: ^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|
// device|slice|scope)$. Every character of the type suffix is in the name's set too, so the
// whole name is checked against the set, then for a type suffix after at least one character.
func validUnitName(s string) bool {
	if !allBytes(s, func(c byte) bool { return isAlnum(c) || strings.IndexByte(":_.\\@-", c) >= 0 }) {
		return false
	}
	for _, t := range unitTypes {
		if len(s) > len(t)+1 && strings.HasSuffix(s, "."+t) {
			return true
		}
	}
	return false
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isLetter(c byte) bool     { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool      { return isLetter(c) || isDigit(c) }
func isLowerDigit(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) }
