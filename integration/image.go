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
	// Built is how long this run took to build it; zero when it came from the cache.
	Built time.Duration
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

// recipeKey hashes everything that decides one image's content: every file under the image
// directory (path, mode, bytes) except the other recipes' directories, and the kernel package
// name (a new Debian kernel ABI means a new image). So a change to the Ubuntu recipe rebuilds
// only the Ubuntu image; a change to a common file (build.sh, the initrd, rootfs/) rebuilds
// both. Package updates within the same names do not change the key: the cache is a
// speed-up, and packages.lock in the image records what it holds.
func recipeKey(imageDir, recipe, kernelPackage string) (string, error) {
	if !isRecipe(filepath.Join(imageDir, recipe)) {
		return "", fmt.Errorf("%s: no recipe %q (a directory with a `recipe` file)", imageDir, recipe)
	}
	h := sha256.New()
	var files []string
	err := filepath.WalkDir(imageDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != imageDir && isRecipe(p) && d.Name() != recipe {
			return filepath.SkipDir
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
		rel, _ := filepath.Rel(imageDir, p)
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

// isRecipe: a recipe is a directory under the image directory with a `recipe` file.
func isRecipe(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "recipe"))
	return err == nil
}

// imagePrefix names a recipe's images in the cache: vm-<recipe>-<key>. Other recipes' images,
// and images of older harness versions (image-<key>), are never pruned by this recipe.
func imagePrefix(recipe string) string { return "vm-" + recipe + "-" }

// EnsureImage returns the cached image of one recipe (a directory under imageDir, e.g.
// "ubuntu-26.04"), building it first if needed. Builds run in a temporary directory inside
// the cache and are renamed into place under a per-recipe lock, so two test runs never see
// half an image and two recipes can build at once; the newest two images of the recipe are
// kept.
func EnsureImage(imageDir, recipe string, logf func(string, ...any)) (Image, error) {
	build := filepath.Join(imageDir, "build.sh")
	out, err := exec.Command(build, "kernel-package").Output()
	if err != nil {
		return Image{}, fmt.Errorf("finding the kernel package: %w", err)
	}
	kpkg := strings.TrimSpace(string(out))
	if kpkg == "" {
		return Image{}, fmt.Errorf("finding the kernel package: apt-cache printed nothing (apt-get update?)")
	}
	key, err := recipeKey(imageDir, recipe, kpkg)
	if err != nil {
		return Image{}, err
	}
	cache := CacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	final := filepath.Join(cache, imagePrefix(recipe)+key)
	if _, err := os.Stat(filepath.Join(final, "root.img")); err == nil {
		touch(final)
		return imageIn(final), nil
	}

	unlock, err := lockFile(filepath.Join(cache, "build-"+recipe+".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(final, "root.img")); err == nil {
		return imageIn(final), nil // another run built it while we waited
	}
	tmp := filepath.Join(cache, fmt.Sprintf("building-%s-%s-%d", recipe, key, os.Getpid()))
	_ = os.RemoveAll(tmp)
	logf("building VM image %s %s (kernel %s) in %s", recipe, key, kpkg, cache)
	start := time.Now()
	cmd := exec.Command(build, recipe, tmp, kpkg)
	// The build's log goes to a file next to the image (two recipes may build at once);
	// its tail is shown when the build fails.
	blog, err := os.Create(filepath.Join(cache, "build-"+recipe+".log"))
	if err != nil {
		return Image{}, err
	}
	defer blog.Close()
	cmd.Stdout, cmd.Stderr = blog, blog
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return Image{}, fmt.Errorf("image %s build failed: %w; last lines of %s:\n%s", recipe, err, blog.Name(), tail(blog.Name(), 30))
	}
	if err := os.Rename(tmp, final); err != nil {
		return Image{}, err
	}
	img := imageIn(final)
	img.Built = time.Since(start)
	logf("image %s built in %s", recipe, img.Built.Round(time.Second))
	prune(cache, imagePrefix(recipe), 2)
	return img, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// prune keeps the newest n images of one recipe (by modification time, which EnsureImage
// refreshes on use).
func prune(cache, prefix string, n int) {
	dirs, _ := filepath.Glob(filepath.Join(cache, prefix+"*"))
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
