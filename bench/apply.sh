#!/usr/bin/env bash
# Times a full `harden apply --dry-run` (every step plans against this machine: nftables,
# audit, /proc/sys, dpkg, sshd -T, ...) and prints it against the design's budgets: a
# converged apply under 100 ms and resident memory under 50 MB. A dry-run changes nothing,
# so this is safe on a development machine; the converged *apply* is measured in the VM
# suite, where harden may change the machine. ONLY=step,step... times those steps alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HARDEN_BIN:-bin/harden}
[ -x "$bin" ] || { echo "build first: make build" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/apply.sh: needs /usr/bin/time (Debian package time; make deps)" >&2; exit 1; }
runs=${RUNS:-10}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
ms_all=() kb_all=()
for _ in $(seq "$runs"); do
	# harden exits 1 on a finding at run.fail_on and 2 with pending changes: both are a
	# finished plan here. time writes its report to a file of its own (-o), never to the
	# stderr we throw away.
	# The wall time is read around the run (time's %e has 10 ms steps); time gives the
	# peak memory (%M) of the same run.
	rc=0
	t0=$(date +%s%N)
	HARDEN_REFUSE_HOST_NETNS=1 /usr/bin/time -f '%M' -o "$tmp" "$bin" apply --dry-run ${ONLY:+--only "$ONLY"} >/dev/null 2>&1 || rc=$?
	t1=$(date +%s%N)
	[ "$rc" -le 2 ] || { echo "bench/apply.sh: harden apply --dry-run exited $rc" >&2; exit 1; }
	read -r kb < <(tail -n 1 "$tmp")  # a non-zero exit adds a line before the figures
	ms_all+=("$(( (t1 - t0) / 1000000 ))")
	kb_all+=("$kb")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }
ms=$(median "${ms_all[@]}")
kb=$(max "${kb_all[@]}")
printf 'apply --dry-run, %s: median of %d %d ms (budget 100 ms: ratio %.2f), max RSS %d KB (budget 50 MB: ratio %.2f)\n' \
	"${ONLY:-all steps}" "$runs" "$ms" "$(awk -v a="$ms" 'BEGIN{print a/100}')" "$kb" "$(awk -v a="$kb" 'BEGIN{print a/51200}')"
# Issue 17's budget for the embedded default on a development machine: 25 ms and 15 MiB.
awk -v ms="$ms" -v kb="$kb" 'BEGIN {
	printf "apply --dry-run against 25 ms / 15 MiB: %d ms (ratio %.2f), %.1f MiB (ratio %.2f): %s\n",
		ms, ms / 25, kb / 1024, kb / 15360, (ms <= 25 && kb <= 15360 ? "met" : "NOT met")
}'
