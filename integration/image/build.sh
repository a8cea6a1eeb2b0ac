#!/bin/bash
# Build the integration test VM image: a Debian bookworm root file system
# (ext4, raw), the kernel as an uncompressed vmlinux (PVH boot under TCG), and
# a busybox initrd that loads the virtio and ext4 modules and switches root.
#
#   build.sh kernel-package   print the kernel package linux-image-amd64 depends on
#   build.sh OUTDIR KPKG      build into OUTDIR (must not exist) with kernel package KPKG
#
# The Go harness (integration/image.go) calls this, hashes this directory to
# key the cache, and renames OUTDIR into place under a lock. Facts behind the
# choices are in /work/shared/notes/vm-facts.md.
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

out=$1
kpkg=$2
[ -n "$kpkg" ] || { echo "build.sh: no kernel package" >&2; exit 1; }
mkdir "$out"
work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
stamp() { echo "build.sh: $(date +%T) $*" >&2; }
SECONDS=0

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

stamp "root file system (mmdebstrap)"
packages=$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | paste -sd, -)
export HARDEN_GUEST_FILES=$here/rootfs HARDEN_KERNEL_TREE=$work/kernel HARDEN_KVER=$kver
mmdebstrap --variant=minbase --mode=root --quiet \
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
	--include="$packages" \
	--customize-hook="$here/customize.sh \"\$1\"" \
	bookworm "$work/rootfs" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main"
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
stamp "done in ${SECONDS}s"
