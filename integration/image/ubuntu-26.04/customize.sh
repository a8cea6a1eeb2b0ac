#!/bin/bash
# Ubuntu 26.04 only, after the common customize.sh: fail the build when the image is not what
# the checks assume, rather than let a boot find out.
set -euo pipefail
root=$1

# `sudo` must be sudo-rs (Ubuntu server's sudo), not classic sudo.ws: the priv-esc alert
# checks prove what sudo-rs writes to the audit log.
sudo=$(chroot "$root" readlink -f /usr/bin/sudo)
case "$sudo" in
*/cargo/bin/sudo | *sudo-rs*) ;;
*)
	echo "customize (ubuntu): /usr/bin/sudo is $sudo, not sudo-rs" >&2
	exit 1
	;;
esac
if chroot "$root" dpkg-query -W -f '${Status}' sudo 2>/dev/null | grep -q 'install ok installed'; then
	echo "customize (ubuntu): classic sudo is installed next to sudo-rs" >&2
	exit 1
fi

# clamd's profile must be there to be enforced at boot (the check kernel-apparmor proves it is).
[ -f "$root/etc/apparmor.d/usr.sbin.clamd" ] || {
	echo "customize (ubuntu): no AppArmor profile for clamd" >&2
	exit 1
}
