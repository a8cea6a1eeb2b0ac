#!/bin/sh
# Policy fuzzer throughput: `go test -fuzz FuzzParse ./internal/policy/` for FUZZTIME
# (default 30s), inputs per second over the whole run, against the budget of 2,000/s. Each
# input is one policy load (two when it parses: the fuzz target loads what `policy show`
# prints back), so this is the cost of a policy load under coverage instrumentation.
set -eu
cd "$(dirname "$0")/.."
out=$(go test -run '^$' -fuzz '^FuzzParse$' -fuzztime "${FUZZTIME:-30s}" ./internal/policy/ 2>&1) || { echo "$out" >&2; exit 1; }
echo "$out" | grep -E '^fuzz: elapsed' | tail -1
echo "$out" | awk '/^fuzz: elapsed/ { last = $0 } END {
	# fuzz: elapsed: 30s, execs: 83882 (2796/sec), new interesting: 2 (total: 6)
	split(last, f, /[ ,(]+/)
	for (i = 1; i in f; i++) { if (f[i] == "elapsed:") e = f[i+1]; if (f[i] == "execs:") n = f[i+1] }
	s = e; m = 0
	if (s ~ /m/) { split(s, p, "m"); m = p[1]; s = p[2] }
	sub(/s$/, "", s); secs = m * 60 + s
	if (secs == 0) { print "bench/fuzz.sh: no elapsed time in the fuzzer output" > "/dev/stderr"; exit 1 }
	printf "policy fuzzer: %d inputs in %.0f s: %.0f inputs/s (budget 2,000/s: %s)\n", n, secs, n / secs, (n / secs >= 2000 ? "met" : "NOT met")
}'
