#!/bin/sh
# harden watch: how much CPU the record path costs. Runs the Go benchmarks of the rules path
# (parse + assemble + rules, 10,000 records per op) and of the whole watch loop (reader
# goroutine, hand-over, assembly, rules), and prints ns/record and the share of one core
# that 10,000 records/s would take (the DESIGN target: under 5%).
# There is no reference tool for this path (auditd does not evaluate alert rules), so the
# ratio printed is against the 5% budget.
set -eu
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -bench 'Records10k|Run10k' -benchtime 30x ./internal/alert/ ./internal/alert/watch/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '/^Benchmark/ {
  for (i = 1; i <= NF; i++) { if ($i == "ns/record") ns = $(i-1); if ($i == "%core@10k/s") pc = $(i-1) }
  printf "%-24s %8.0f ns/record  %5.2f%% of a core at 10k records/s  (%.2fx under the 5%% budget)\n", $1, ns, pc, 5/pc
}'
