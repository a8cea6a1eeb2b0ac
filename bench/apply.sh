#!/usr/bin/env bash
# Times a full `harden apply --dry-run` (every step plans against this machine: nftables,
# audit, /proc/sys, dpkg, sshd -T, ...) and prints it against the design's budgets: a
# converged apply under 100 ms and resident memory under 50 MB. A dry-run changes nothing,
# so this is safe on a development machine; the converged *apply* is measured in the VM
# suite, where harden may change the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${HARDEN_BIN:-bin/harden}
[ -x "$bin" ] || { echo "build first: make build" >&2; exit 1; }
runs=${RUNS:-10}
best_ms=999999 worst_kb=0
for _ in $(seq "$runs"); do
	out=$( { /usr/bin/time -f '%e %M' "$bin" apply --dry-run >/dev/null 2>/dev/null; } 2>&1 | tail -1)
	ms=$(awk '{printf "%d", $1*1000}' <<<"$out")
	kb=$(awk '{print $2}' <<<"$out")
	(( ms < best_ms )) && best_ms=$ms
	(( kb > worst_kb )) && worst_kb=$kb
done
printf 'apply --dry-run, all steps: best of %d %d ms (budget 100 ms: ratio %.2f), max RSS %d KB (budget 50 MB: ratio %.2f)\n' \
	"$runs" "$best_ms" "$(awk -v a="$best_ms" 'BEGIN{print a/100}')" "$worst_kb" "$(awk -v a="$worst_kb" 'BEGIN{print a/51200}')"
