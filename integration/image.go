//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Image is a built VM image in the cache: a raw ext4 root (opened with snapshot=on, so the
// cache file is never written), the kernel as an uncompressed vmlinux and a busybox initrd.
type Image struct {
	Dir    string
	Root   string // root.img
	Kernel string // vmlinux
	Initrd string // initrd.img
}

func imageIn(dir string) Image {
	return Image{
		Dir:    dir,
		Root:   filepath.Join(dir, "root.img"),
		Kernel: filepath.Join(dir, "vmlinux"),
		Initrd: filepath.Join(dir, "initrd.img"),
	}
}

// CacheDir is where images live: outside the work tree, so `git clean` and fresh checkouts
// reuse them. $HARDEN_VM_CACHE overrides.
func CacheDir() string {
	if d := os.Getenv("HARDEN_VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/harden-integration"
}

// recipeKey hashes everything that decides the image's content: every file under the recipe
// directory (path, mode, bytes) and the kernel package name (a new Debian kernel ABI means a
// new image). Debian package updates within the same names do not change the key: the cache
// is a speed-up, and packages.lock in the image records what it holds.
func recipeKey(recipeDir, kernelPackage string) (string, error) {
	h := sha256.New()
	var files []string
	err := filepath.WalkDir(recipeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(recipeDir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %o %d\n", rel, fi.Mode().Perm(), len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "kernel %s\n", kernelPackage)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureImage returns the cached image for the recipe, building it first if needed. Builds run
// in a temporary directory inside the cache and are renamed into place under a lock, so two
// test runs never see half an image; the newest two images are kept.
func EnsureImage(recipeDir string, logf func(string, ...any)) (Image, error) {
	build := filepath.Join(recipeDir, "build.sh")
	out, err := exec.Command(build, "kernel-package").Output()
	if err != nil {
		return Image{}, fmt.Errorf("finding the kernel package: %w", err)
	}
	kpkg := strings.TrimSpace(string(out))
	if kpkg == "" {
		return Image{}, fmt.Errorf("finding the kernel package: apt-cache printed nothing (apt-get update?)")
	}
	key, err := recipeKey(recipeDir, kpkg)
	if err != nil {
		return Image{}, err
	}
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	final := filepath.Join(cache, "image-"+key)
	if _, err := os.Stat(filepath.Join(final, "root.img")); err == nil {
		touch(final)
		return imageIn(final), nil
	}

	unlock, err := lockFile(filepath.Join(cache, "build.lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, "root.img")); err == nil {
		return imageIn(final), nil // another run built it while we waited
	}
	tmp := filepath.Join(cache, fmt.Sprintf("building-%s-%d", key, os.Getpid()))
	_ = os.RemoveAll(tmp)
	logf("building VM image %s (kernel %s) in %s", key, kpkg, cache)
	start := time.Now()
	cmd := exec.Command(build, tmp, kpkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return Image{}, fmt.Errorf("image build failed: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return Image{}, err
	}
	logf("image built in %s", time.Since(start).Round(time.Second))
	prune(cache, 2)
	return imageIn(final), nil
}

func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// prune keeps the newest n images (by modification time, which EnsureImage refreshes on use).
func prune(cache string, n int) {
	dirs, _ := filepath.Glob(filepath.Join(cache, "image-*"))
	sort.Slice(dirs, func(i, j int) bool { return mtime(dirs[i]).After(mtime(dirs[j])) })
	for i := n; i < len(dirs); i++ {
		_ = os.RemoveAll(dirs[i])
	}
}

func mtime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
