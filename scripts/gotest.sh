#!/usr/bin/env bash
# make unit: every Go test of the tree, verbose into a log, with a short summary on the
# terminal. Under HARDEN_REQUIRE_PRIVILEGED=1 (CI) a test may not skip: every skip for a
# missing prerequisite already fails through internal/testutil/need, and this script fails
# on any other "--- SKIP" line that is not on the commented allow-list .ci/allowed-skips.
#
#   scripts/gotest.sh [go test flags and packages]   (default ./...)
set -uo pipefail
cd "$(dirname "$0")/.."
log=${HARDEN_TEST_LOG:-$(mktemp -t harden-gotest.XXXXXX)}
[ $# -gt 0 ] || set -- ./...
go test -count=1 -v "$@" >"$log" 2>&1
rc=$?
# Package results, and for a failed test the output it printed since its "=== RUN" (with -v
# a test's log lines stream before its "--- FAIL"); skips with their reason.
awk '
	/^=== RUN/ { buf = "" }
	{ buf = buf $0 "\n" }
	/^[ \t]*--- FAIL/ { printf "%s", buf; buf = "" ; next }
	/^[ \t]*--- SKIP/ { print; getline; print; next }
	/^(ok|FAIL|panic:)/ { print }
' "$log"
if [ "${HARDEN_REQUIRE_PRIVILEGED:-}" = 1 ]; then
	allowed=$(grep -v -E '^\s*(#|$)' .ci/allowed-skips 2>/dev/null || true)
	skips=$(grep -E -- '--- SKIP: ' "$log" | sed -E 's/^\s*--- SKIP: ([^ ]+).*/\1/' | sort -u)
	bad=$(comm -23 <(printf '%s\n' "$skips" | sed '/^$/d') <(printf '%s\n' "$allowed" | sed '/^$/d' | sort -u))
	if [ -n "$bad" ]; then
		echo "gotest: tests skipped under HARDEN_REQUIRE_PRIVILEGED=1 (not on .ci/allowed-skips):" >&2
		printf '  %s\n' $bad >&2
		rc=1
	fi
fi
echo "gotest: full log in $log (exit $rc)"
exit $rc
