package fsroot

import (
	"os"
	"testing"
)

// What resolving inside the root costs per read, against a plain os.ReadFile of the same
// /proc/sys file (the kernel step reads a few hundred of them per run): the ratio of
// BenchmarkReadFile/openat2 to BenchmarkReadFile/os. The user-space walk is the fallback
// for kernels without openat2.
func BenchmarkReadFile(b *testing.B) {
	const name = "/proc/sys/kernel/randomize_va_space"
	b.Run("os", func(b *testing.B) {
		for b.Loop() {
			if _, err := os.ReadFile(name); err != nil {
				b.Fatal(err)
			}
		}
	})
	r := New("/")
	b.Run("openat2", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.ReadFile(name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		forceWalk = true
		defer func() { forceWalk = false }()
		for b.Loop() {
			if _, err := r.ReadFile(name); err != nil {
				b.Fatal(err)
			}
		}
	})
}
