#!/bin/sh
# Loading 500 audit rules: harden vs `auditctl -R` of the same file, into an empty kernel.
# Needs root; takes the shared host audit lock and restores the host's rules afterwards.
#   harden-client: our netlink client adding the 500 rules (what auditctl -R does)
#   harden-step:   the audit step as at boot: plan, apply (rules + rules.d files, fsync'd),
#                  and the re-plan that proves the kernel holds exactly the policy
# Ratios below 1 mean harden is faster.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "bench/audit.sh: needs root (audit netlink)" >&2; exit 1; fi
all=$(go test -run '^$' -bench 'Load500' -benchtime "${BENCHTIME:-10x}" ./steps/audit/ 2>&1) || { echo "$all" >&2; exit 1; }
out=$(echo "$all" | grep 'ns/op' || true)
[ -n "$out" ] || { echo "bench/audit.sh: the benchmark printed no figure:" >&2; echo "$all" >&2; exit 1; }
echo "$out"
echo "$out" | awk '
	/harden-step/   { step = $3 }
	/harden-client/ { client = $3 }
	/auditctl-R/    { ref = $3 }
	END {
		if (ref == 0) exit
		printf "audit: 500 rules  auditctl -R %.1f ms  harden client %.1f ms (ratio %.2f)  harden step %.1f ms (ratio %.2f; budget 1.0: %s)\n",
			ref/1e6, client/1e6, client/ref, step/1e6, step/ref, (step <= ref ? "met" : "NOT met")
	}'
