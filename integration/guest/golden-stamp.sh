#!/bin/sh
# The golden-image scenario's initrd hook (run by the initrd's init with the root file system
# mounted at $1, before its first boot): `harden stamp` on the image itself, as an image
# build's last step does, with a record of what the tree held before and after for the
# checker. busybox sh: no bash.
root=$1
log=$root/var/lib/harden-test/stamp.log
mkdir -p "$root/var/lib/harden-test"
state() {
	keys=$(ls "$root/etc/ssh" | grep -c '^ssh_host_')
	id=$(wc -c <"$root/etc/machine-id" 2>/dev/null || echo missing)
	echo "$keys host key files, machine-id $id bytes"
}
{
	echo "before: $(state)"
	"$root/usr/local/sbin/harden" stamp --root "$root" --image-id integration-golden || exit 1
	echo "after: $(state)"
} >"$log" 2>&1
rc=$?
cat "$log"
exit $rc
