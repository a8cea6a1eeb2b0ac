package auditrule

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Machine is a CPU architecture with a syscall table. Only the machines
// harden runs on have tables: x86_64 (with its i386 compat ABI) and aarch64.
type Machine struct {
	Name string // libaudit's name: x86_64, i386, aarch64
	ELF  uint32 // AUDIT_ARCH_* value stored in the arch field

	names   []string              // syscall number -> printed name ("" if none)
	byName  func() map[string]int // every accepted spelling -> number, built on first use
	compat  *Machine              // the 32-bit ABI of a 64-bit machine (b32)
	is64bit bool
}

// ELF values of the supported machines (include/uapi/linux/audit.h).
const (
	ArchX86_64  uint32 = 0xC000003E
	ArchI386    uint32 = 0x40000003
	ArchAArch64 uint32 = 0xC00000B7
	ArchARM     uint32 = 0x40000028
	arch64Bit   uint32 = 0x80000000
)

var (
	// MachineX86_64 is amd64.
	MachineX86_64 = newMachine("x86_64", ArchX86_64, syscallNamesX86_64[:], syscallAliasesX86_64)
	// MachineI386 is the i386 ABI (b32 on x86_64).
	MachineI386 = newMachine("i386", ArchI386, syscallNamesI386[:], syscallAliasesI386)
	// MachineAArch64 is arm64.
	MachineAArch64 = newMachine("aarch64", ArchAArch64, syscallNamesAArch64[:], syscallAliasesAArch64)
)

func init() {
	MachineX86_64.compat = MachineI386
}

// newMachine describes a machine. Its name index is built on the first lookup: three
// tables of ~450 names would otherwise be built at every process start, `harden version`
// included, while only commands that parse audit rules need one of them.
func newMachine(name string, elf uint32, names []string, aliases func() map[string]int) *Machine {
	m := &Machine{Name: name, ELF: elf, names: names, is64bit: elf&arch64Bit != 0}
	m.byName = sync.OnceValue(func() map[string]int {
		byName := make(map[string]int, len(names))
		for nr, n := range names {
			if n != "" {
				byName[n] = nr
			}
		}
		for n, nr := range aliases() {
			byName[n] = nr
		}
		return byName
	})
	return m
}

// machineAliases are the names libaudit's machine table accepts.
var machineAliases = map[string]*Machine{
	"x86_64": MachineX86_64, "i386": MachineI386, "i486": MachineI386,
	"i586": MachineI386, "i686": MachineI386, "aarch64": MachineAArch64,
}

// HostMachine is the machine this binary runs on; b64 and b32 and -S
// without an arch are resolved against it, as auditctl does with uname.
func HostMachine() *Machine {
	switch runtime.GOARCH {
	case "arm64":
		return MachineAArch64
	case "386":
		return MachineI386
	default:
		return MachineX86_64
	}
}

// machineByELF finds a machine by its AUDIT_ARCH value.
func machineByELF(elf uint32) *Machine {
	for _, m := range []*Machine{MachineX86_64, MachineI386, MachineAArch64} {
		if m.ELF == elf {
			return m
		}
	}
	return nil
}

// Syscall returns the number of a syscall name, or false.
func (m *Machine) Syscall(name string) (int, bool) {
	nr, ok := m.byName()[name]
	return nr, ok
}

// SyscallName returns the printed name of a syscall number, or "".
func (m *Machine) SyscallName(nr int) string {
	if nr >= 0 && nr < len(m.names) {
		return m.names[nr]
	}
	return ""
}

// resolveArch turns the value of -F arch= into an AUDIT_ARCH value:
// b64/b32 relative to the host, a machine name, or a number.
func resolveArch(v string, host *Machine) (uint32, error) {
	switch strings.ToLower(v) {
	case "b64":
		if !host.is64bit {
			return 0, fmt.Errorf("arch b64 on the 32-bit machine %s", host.Name)
		}
		return host.ELF, nil
	case "b32":
		if host.is64bit {
			if host.compat == nil {
				return 0, fmt.Errorf("no 32-bit syscall table for %s", host.Name)
			}
			return host.compat.ELF, nil
		}
		return host.ELF, nil
	}
	if m, ok := machineAliases[v]; ok {
		return m.ELF, nil
	}
	if v != "" && v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 0, 32)
		if err == nil && machineByELF(uint32(n)) != nil {
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("unknown arch %q (use b64, b32, x86_64, i386 or aarch64)", v)
}
