#!/bin/bash
# mmdebstrap customize hook: runs on the host with the new root as $1, after
# the packages are installed. Environment from build.sh: HARDEN_GUEST_FILES
# (files copied over the root), HARDEN_RECIPE (the recipe's directory: its own
# rootfs/ is copied next, then its customize.sh runs if it has one),
# HARDEN_KERNEL_TREE and HARDEN_KVER (the extracted kernel package, whose
# modules the guest needs for nftables & co).
set -euo pipefail
root=$1

# Guest files: systemd-networkd config, preset, clamd test settings, ...
# --no-overwrite-dir: existing directories keep their owner and mode.
tar -C "$HARDEN_GUEST_FILES" --owner=0 --group=0 -cf - . | tar -C "$root" --no-overwrite-dir -xf -
if [ -d "$HARDEN_RECIPE/rootfs" ]; then
	tar -C "$HARDEN_RECIPE/rootfs" --owner=0 --group=0 -cf - . | tar -C "$root" --no-overwrite-dir -xf -
fi

# Kernel modules. Copied, not extracted with dpkg-deb: the package ships
# /lib/modules and tar would replace the merged-usr /lib symlink.
mkdir -p "$root/usr/lib/modules"
cp -a "$HARDEN_KERNEL_TREE/lib/modules/$HARDEN_KVER" "$root/usr/lib/modules/"
chroot "$root" depmod -a "$HARDEN_KVER"

# Network: systemd-networkd with a static address (slirp's 10.0.2.15/24), no
# DHCP client to wait for. wait-online would only slow boots that want
# network-online.target.
chroot "$root" systemctl enable systemd-networkd.service
chroot "$root" systemctl disable systemd-networkd-wait-online.service

# The root password stays locked: tests reach the guest through the agent
# (virtio-serial) and, for SSH tests, with keys they hand in.
echo harden-test >"$root/etc/hostname"

# Never bake freshclam's cool-down state and UUID into an image.
rm -f "$root/var/lib/clamav/freshclam.dat"

if [ -x "$HARDEN_RECIPE/customize.sh" ]; then
	"$HARDEN_RECIPE/customize.sh" "$root"
fi
