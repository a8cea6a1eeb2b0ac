#!/usr/bin/env bash
# Installs the host tools harden's tests and benchmarks use as real parts: nft (reads rulesets
# back in network namespaces), auditctl/augenrules (the reference the audit client is compared
# with), strace (captures the bytes auditctl sends, for the byte-for-byte golden test), time
# (bench/apply.sh's memory figure), dbus-daemon (a private bus for the D-Bus code), sshd
# (sshd -t / -T), ssh-audit (judges the algorithms the sshd step writes, and the VM's sshd
# from outside), the ClamAV tools, the Alertmanager the alert sink is tested against, promtool
# (Debian's prometheus package: the alert rules are tested with promtool test rules), man-db
# (man -l renders harden(8)), bash-completion (the completion script is tested in bash), and
# what the VM suite needs.
#
# Daemons are NOT started: a policy-rc.d that forbids starts is in place during the install,
# so auditd, sshd and clamd stay off on a development or CI machine.
set -euo pipefail

packages=(
  nftables iproute2 procps util-linux
  strace time
  auditd
  dbus-daemon
  openssh-server openssh-client ssh-audit
  clamav clamav-daemon clamav-freshclam clamdscan
  libpam-pwquality
  prometheus-alertmanager prometheus
  man-db bash-completion
  linux-libc-dev
  qemu-system-x86 mmdebstrap e2fsprogs cpio xz-utils busybox-static
  # The VM images: mmdebstrap learns from distro-info-data that `resolute` is Ubuntu's (and
  # picks Ubuntu's archive), and checks the archives' signatures with gpg. Both are only
  # recommended or suggested by mmdebstrap, and this script installs no recommends.
  distro-info-data gpg
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "install-deps: all present"; exit 0; }

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
rc=/usr/sbin/policy-rc.d
added_rc=0
if [ ! -e "$rc" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$rc"; chmod 755 "$rc"; added_rc=1
fi
trap '[ $added_rc = 1 ] && rm -f "$rc"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
