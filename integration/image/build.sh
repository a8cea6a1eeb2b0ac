#!/bin/bash
# Build an integration test VM image: a root file system of one recipe (a
# directory here with a `recipe` file and a `packages.txt`: debian-12,
# ubuntu-26.04) as raw ext4, the kernel as an uncompressed vmlinux (PVH boot
# under TCG), and a busybox initrd that loads the virtio and ext4 modules and
# switches root.
#
#   build.sh kernel-package          print the kernel package linux-image-amd64 depends on
#   build.sh RECIPE OUTDIR KPKG      build RECIPE into OUTDIR (must not exist) with kernel KPKG
#
# The Go harness (integration/image.go) calls this, hashes the common files
# and the recipe's directory to key the cache, and renames OUTDIR into place
# under a lock. Facts behind the choices are in integration/README.md.
#
# Kernel: every image boots Debian's kernel (the host's linux-image-amd64),
# also under Ubuntu's user space. Why: it boots as a PVH vmlinux (no
# decompression under TCG), its virtio/ext4 modules make a 2 MB initrd, and
# AppArmor is its default LSM, so Ubuntu's profiles (clamd's) load and enforce.
# The guest's check `kernel-apparmor` proves the last point on every boot.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)

kernel_package() {
	# The name is part of the cache key: a new Debian kernel ABI means a new image.
	apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}'
}

if [ "${1:-}" = kernel-package ]; then
	kernel_package
	exit 0
fi

recipe=$here/${1:?build.sh: no recipe}
out=${2:?build.sh: no output directory}
kpkg=${3:-}
[ -n "$kpkg" ] || { echo "build.sh: no kernel package" >&2; exit 1; }
[ -f "$recipe/recipe" ] || { echo "build.sh: $recipe/recipe: no such recipe" >&2; exit 1; }
SUITE= COMPONENTS=main KEYRING_PACKAGE= KEYRING_FILE= HOOKS= WARM_UP=
# shellcheck source=/dev/null
. "$recipe/recipe"
mkdir "$out"
work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
stamp() { echo "build.sh: $(date +%T) $*" >&2; }
SECONDS=0

# fetch_package PKG DIR: extract the newest PKG of Debian's current stable release into DIR,
# whatever release the host runs: a private apt configuration (its own lists, cache and an
# empty dpkg status) whose sources are the host's with the host's suite name changed. The
# host's apt state is not touched and no archive host is named here.
fetch_package() {
	local pkg=$1 dest=$2 apt=$work/apt-$1 codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/sources.list.d" "$dest"
	: >"$apt/status"
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		if [ -n "$codename" ] && [ "$codename" != "$FETCH_SUITE" ]; then
			sed -E "/^[[:space:]]*(Suites:|deb[[:space:]])/ s/\b$codename\b/$FETCH_SUITE/g" "$f"
		else
			cat "$f"
		fi >"$apt/sources.list.d/host-$(basename "$f")"
	done
	local opts=(-q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives"
		-o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Dir::State::status=$apt/status"
		-o "Acquire::Languages=none" -o "APT::Sandbox::User=root")
	apt-get "${opts[@]}" update >&2
	(cd "$apt" && apt-get "${opts[@]}" download "$pkg" >&2)
	dpkg-deb -x "$apt/${pkg}"_*.deb "$dest"
}
# The Debian release whose archive has the packages the host's may lack (ubuntu-keyring is
# in trixie, not in bookworm).
FETCH_SUITE=trixie

stamp "kernel $kpkg"
(cd "$work" && apt-get download -q "$kpkg" 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
kdeb=$(ls "$work"/"$kpkg"_*.deb)
mkdir "$work/kernel"
dpkg-deb -x "$kdeb" "$work/kernel"
kver=${kpkg#linux-image-}
vmlinuz=$work/kernel/boot/vmlinuz-$kver
# vmlinuz is a bzImage whose payload is one xz stream: PVH boots the ELF inside.
off=$(grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
# (Process substitution: xz stops after the stream and tail's SIGPIPE must not
# fail the build.)
xz -dc --single-stream < <(tail -c +$((off + 1)) "$vmlinuz") >"$out/vmlinux"
[ "$(head -c 4 "$out/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || { echo "build.sh: vmlinux is not ELF" >&2; exit 1; }
echo "$kver" >"$out/kernel-version"

# Modules that a VM on QEMU's virtual hardware never needs: 300 MB less to copy
# into every image, and nothing udev could load by mistake.
moddir=$work/kernel/lib/modules/$kver/kernel
for d in drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/net/wireless \
	drivers/net/ethernet drivers/usb drivers/comedi drivers/scsi drivers/iio drivers/bluetooth \
	drivers/isdn drivers/video drivers/platform drivers/mtd drivers/gnss drivers/nfc \
	drivers/thunderbolt drivers/target drivers/net/can drivers/net/usb sound net/wireless \
	net/mac80211 net/bluetooth fs/xfs fs/btrfs fs/ocfs2 fs/gfs2 fs/smb fs/nfs fs/ceph \
	arch/x86/kvm lib/test_bpf.ko; do
	rm -rf "${moddir:?}/$d"
done

keyring=()
if [ -n "$KEYRING_PACKAGE" ]; then
	stamp "archive keyring ($KEYRING_PACKAGE)"
	fetch_package "$KEYRING_PACKAGE" "$work/keyring"
	keyring=(--keyring="$work/keyring$KEYRING_FILE")
	[ -s "$work/keyring$KEYRING_FILE" ] || { echo "build.sh: $KEYRING_PACKAGE has no $KEYRING_FILE" >&2; exit 1; }
fi

stamp "root file system ($SUITE, mmdebstrap)"
packages=$(grep -v '^\s*#' "$recipe/packages.txt" | grep -v '^\s*$' | paste -sd, -)
export HARDEN_GUEST_FILES=$here/rootfs HARDEN_RECIPE=$recipe HARDEN_KERNEL_TREE=$work/kernel HARDEN_KVER=$kver
# No mirror argument: mmdebstrap chooses the archive for the suite (Debian's or Ubuntu's, from
# distro-info-data) and adds the suite's -updates and -security archives itself.
hooks=()
for h in $HOOKS; do hooks+=(--hook-dir="/usr/share/mmdebstrap/hooks/$h"); done
# force-unsafe-io: dpkg skips its fsyncs (a throw-away tree, copied into ext4 afterwards).
mmdebstrap --variant=minbase --mode=root --quiet \
	--components="$COMPONENTS" "${keyring[@]}" "${hooks[@]}" \
	--dpkgopt=force-unsafe-io \
	--include="$packages" \
	--customize-hook="$here/customize.sh \"\$1\"" \
	"$SUITE" "$work/rootfs" </dev/null
cp "$work/rootfs/etc/apt/sources.list" "$out/sources.list" 2>/dev/null || true
chroot "$work/rootfs" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.lock"

stamp "initrd"
mkdir -p "$work/initrd"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$work/initrd/bin/busybox"
install -m 0755 "$here/initrd/init" "$work/initrd/init"
# Load order from the image's own modprobe (the host may have no depmod).
chroot "$work/rootfs" modprobe --set-version="$kver" --show-depends -a \
	virtio_pci virtio_blk ext4 virtio_console |
	awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' |
	while read -r ko; do
		cp "$work/rootfs$ko" "$work/initrd/modules/"
		basename "$ko" >>"$work/initrd/modules/order"
	done
(cd "$work/initrd" && find . | cpio -o -H newc -R 0:0 --quiet) >"$out/initrd.img"

stamp "ext4 image"
# mkfs.ext4 -d copies the tree without a loop mount; the file stays sparse.
mkfs.ext4 -q -L harden-root -d "$work/rootfs" "$out/root.img" 3G

if [ -n "$WARM_UP" ]; then
	# One boot of the finished image with the recipe's script as PID 1 (it prints
	# "harden-image: warm-up done" on the console and powers off), for
	# what a real machine does once on its first boot and keeps (the AppArmor cache). The
	# test boots then open the image read-only (snapshot=on) and start warm.
	stamp "warm-up boot ($WARM_UP)"
	timeout 600 qemu-system-x86_64 -accel tcg -M pc -cpu qemu64 -smp 2 -m 1024 \
		-nodefaults -display none -no-user-config -no-reboot \
		-kernel "$out/vmlinux" -initrd "$out/initrd.img" \
		-append "root=/dev/vda console=ttyS0 quiet loglevel=1 panic=-1 init=$WARM_UP" \
		-drive "file=$out/root.img,format=raw,if=virtio" \
		-serial "file:$out/warm-up.log" >&2 || true
	grep -a 'harden-image: warm-up done' "$out/warm-up.log" >&2 || {
		echo "build.sh: the warm-up boot did not finish:" >&2
		tail -20 "$out/warm-up.log" >&2
		exit 1
	}
fi
stamp "done in ${SECONDS}s"
