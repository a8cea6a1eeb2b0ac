#!/bin/sh
# Start-up cost: `harden version` against a static Go hello world (the floor of any Go
# program on this machine) and against the same hello world importing harden's
# dependencies (the floor of any program built on them: their package inits), run in turn;
# prints the medians and the ratios, the first against the budget of 1.5x. Also checks that
# harden's own packages allocate almost nothing at init (GODEBUG=inittrace=1). Builds the
# binaries itself (needs Go and the module cache `make build` filled).
#
#   bench/version.sh      (PAIRS=200 by default)
set -eu
cd "$(dirname "$0")/.."
out=$(go test -run 'TestHardenPackagesAllocateLittleAtInit' -bench 'VersionVsHelloWorld' -benchtime "${PAIRS:-200}x" ./bench/ 2>&1) || { echo "$out" >&2; exit 1; }
echo "$out" | grep -E '^Benchmark'
echo "$out" | awk '/^BenchmarkVersionVsHelloWorld/ {
	for (i = 1; i <= NF; i++) {
		if ($i == "harden-ms") h = $(i-1); if ($i == "hello-ms") w = $(i-1); if ($i == "hello-deps-ms") d = $(i-1)
		if ($i == "ratio") r = $(i-1); if ($i == "deps-ratio") dr = $(i-1); if ($i == "own-ratio") o = $(i-1)
	}
	printf "harden version %.1f ms, static Go hello world %.1f ms: ratio %.2f (budget 1.5: %s)\n", h, w, r, (r <= 1.5 ? "met" : "NOT met")
	printf "the floor: hello world importing harden'"'"'s dependencies %.1f ms, %.2f x hello; harden version %.2f x that floor\n", d, dr, o
}'
