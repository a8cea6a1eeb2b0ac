#!/bin/sh
# Times `harden apply --only firewall` against `nft -f` of the same ruleset, at 10, 1,000
# and 10,000 allow entries, each run in a fresh network namespace (never this machine's own),
# and prints the ratio nft/harden (above 1: harden is faster). Both sides include their
# process start-up. Then runs the Go benchmarks (batch building, in-process transaction,
# converged plan, read-back).
#
#   bench/firewall.sh [RUNS]     (as root; RUNS per size, default 5; median reported)
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-5}
[ "$(id -u)" = 0 ] || { echo "bench/firewall.sh: needs root (network namespaces)" >&2; exit 1; }
command -v nft >/dev/null && command -v nsenter >/dev/null || { echo "needs nft and nsenter" >&2; exit 1; }

[ -x bin/harden ] || make -s build >/dev/null
HARDEN=$PWD/bin/harden
TMP=$(mktemp -d)
NS_LIST=""
cleanup() { for ns in $NS_LIST; do ip netns del "$ns" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

# policy N: SSH from the private network plus N single IPv4 sources of TCP 443 (1,000 per
# allow rule; no two adjacent, so the set really holds N ranges).
policy() {
	awk -v n="$1" 'BEGIN {
		print "version: 1\nfirewall:\n  exposure: public\n  allow:"
		print "    - {name: ssh, proto: tcp, port: 22, from: private, why: ssh}"
		for (i = 0; i < n; i++) {
			if (i % 1000 == 0) printf "    - name: https%d\n      proto: tcp\n      port: 443\n      why: partners\n      from:\n", i / 1000
			printf "        - 100.%d.%d.%d\n", 64 + int(i / 32768) % 64, int(i / 128) % 256, (i % 128) * 2
		}
	}'
}

newns() { ns="hfwbench-$$-$1"; ip netns add "$ns"; NS_LIST="$NS_LIST $ns"; echo "$ns"; }
delns() { ip netns del "$1"; }
now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-8s %14s %14s %8s\n' entries harden_ms nft_f_ms ratio
for n in 10 1000 10000; do
	pol=$TMP/policy-$n.yaml
	policy "$n" >"$pol"
	chmod 600 "$pol"
	mkdir -p "$TMP/root"
	: >"$TMP/h" ; : >"$TMP/f"
	i=0
	while [ $i -lt "$RUNS" ]; do
		ns=$(newns "h$n-$i")
		t0=$(now)
		rc=0
		"$HARDEN" apply --only firewall --netns "$ns" --policy "$pol" --root "$TMP/root" >/dev/null 2>&1 || rc=$?
		t1=$(now)
		[ $rc = 0 ] || [ $rc = 2 ] || { echo "harden apply failed ($rc)" >&2; exit 1; }
		echo $(( (t1 - t0) / 1000 )) >>"$TMP/h"
		# The same ruleset, as nft itself prints it, loaded the way nft replaces a table.
		if [ $i = 0 ]; then
			{ echo "table inet harden"; echo "delete table inet harden"; nsenter --net=/run/netns/"$ns" nft list table inet harden; } >"$TMP/ruleset-$n.nft"
		fi
		delns "$ns"
		ns=$(newns "f$n-$i")
		t0=$(now)
		nsenter --net=/run/netns/"$ns" nft -f "$TMP/ruleset-$n.nft"
		t1=$(now)
		echo $(( (t1 - t0) / 1000 )) >>"$TMP/f"
		delns "$ns"
		i=$((i + 1))
	done
	h=$(median <"$TMP/h"); f=$(median <"$TMP/f")
	awk -v n="$n" -v h="$h" -v f="$f" 'BEGIN { printf "%-8d %14.1f %14.1f %8.2f\n", n, h / 1000, f / 1000, f / h }'
done

echo
echo "Go benchmarks (in-process; harden-transaction is the netlink batch alone; PlanConverged10k"
echo "is build + read-back + compare of an unchanged table, Read the read-back alone):"
go test -run '^$' -bench 'BenchmarkBuildBatch|BenchmarkApply|BenchmarkPlanConverged10k' -benchtime 5x ./steps/firewall | grep -E '^Benchmark'
go test -run '^$' -bench 'BenchmarkRead' -benchtime 5x ./internal/nft | grep -E '^Benchmark'
