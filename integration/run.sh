#!/bin/bash
# make integration: build the static harden binary, then boot the test VMs (QEMU/TCG).
#
#   integration/run.sh [go test flags, e.g. -run TestBaked]
#
# Host packages (Debian/Ubuntu): qemu-system-x86 mmdebstrap e2fsprogs cpio xz-utils
# busybox-static openssh-client, plus Go. The image is cached in $HARDEN_VM_CACHE
# (default /var/cache/harden-integration), keyed by a hash of integration/image/; the logs of a
# failed boot are kept in $HARDEN_VM_ARTIFACTS (default $TMPDIR/harden-integration).
# HARDEN_VM_CLOUD_INIT=0 skips the (slow) cloud-init boot; HARDEN_VM_KEEP=1 keeps the logs of
# every boot, not only of failed ones.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "integration/run.sh: must run as root (mmdebstrap --mode=root, chroot)" >&2; exit 1; }
missing=()
for tool in qemu-system-x86_64 mmdebstrap mkfs.ext4 cpio xz apt-get dpkg-deb; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
# No pipe into grep -q: under pipefail the pipeline carries ldd's exit status, which is 1 for
# exactly the static binary we want.
if [ ! -x /bin/busybox ] || ! grep -q 'not a dynamic' <<<"$(ldd /bin/busybox 2>&1)"; then
	missing+=("busybox-static (/bin/busybox must be static: it runs in the initrd)")
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "integration/run.sh: missing host tools: ${missing[*]}" >&2
	echo "  apt-get install qemu-system-x86 mmdebstrap e2fsprogs cpio xz-utils busybox-static openssh-client" >&2
	exit 1
fi

# HARDEN_BIN=/path/to/harden tests that binary instead of building this tree's.
if [ -z "${HARDEN_BIN:-}" ]; then
	mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/harden ./cmd/harden
	export HARDEN_BIN=$PWD/bin/harden
fi
cd integration
# One VM suite at a time on this machine: QEMU under TCG takes both cores, and two suites
# at once would only make both miss their boot timeouts.
exec flock /run/lock/harden-integration.lock go test -tags integration -count=1 -p 1 -v -timeout 60m "$@" .
