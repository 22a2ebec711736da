#!/bin/bash
# Runs the IPOPSignal tests that need a real XMPP server (Tests/IPOPSignalTests/ProsodyTests.swift)
# against a private prosody on 127.0.0.1, then stops it. Prints "N passed, M failed" last.
#
#   scripts/e2e/xmpp/signal_unit_with_prosody.sh [--keep] [extra swift test args]
#
# SCRATCH (default .build-signal) is the swift build scratch path. --keep leaves the prosody
# directory (logs) in place. Needs: swift, prosody, openssl.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source=prosody.sh
. "$here/prosody.sh"

keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
scratch=${SCRATCH:-.build-signal}
dir=$(mktemp -d /tmp/ipop-prosody.XXXXXX)
log="$dir/swift-test.log"

cleanup() {
    prosody_stop "$dir"
    if [ "$keep" = 1 ]; then echo "prosody directory kept: $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build first (prosody need not wait for the compiler); retry: a tree being edited can make one
# build attempt fail with "modified during the build".
cd "$repo" || exit 1
built=0
for attempt in 1 2 3; do
    if swift build --scratch-path "$scratch" --build-tests > "$dir/build.log" 2>&1; then built=1; break; fi
    echo "build attempt $attempt failed; retrying" >&2
    sleep 20
done
if [ "$built" != 1 ]; then
    grep -E 'error:' "$dir/build.log" | sort -u | head -20 >&2
    echo "0 passed, 1 failed"
    exit 1
fi

if ! prosody_start "$dir"; then
    echo "0 passed, 1 failed"
    exit 1
fi
prosody_register "$dir" ipop ipop-shared-pw &&
prosody_register "$dir" node1 node1-pw &&
prosody_register "$dir" node2 node2-pw || { echo "0 passed, 1 failed"; exit 1; }

export IPOP_PROSODY="127.0.0.1:$(cat "$dir/port")"
export IPOP_PROSODY_CA="$dir/certs/ca.pem"
export IPOP_PROSODY_DOMAIN="$PROSODY_DOMAIN"

swift test --scratch-path "$scratch" --skip-build --filter 'IPOPSignalTests.ProsodyTests' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Swift Testing prints one line per test: "... Test name() passed after ..." / "... failed after ...".
passed=$(grep -E 'Test [^ ]+\(\) passed' "$log" | grep -vc 'Suite' || true)
failed=$(grep -E 'Test [^ ]+\(\) (failed|recorded)' "$log" | grep -E 'failed after|failed$' | grep -vc 'Suite' || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # build failure or crash
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; echo "no test ran (filter?)" >&2; fi
if [ "$failed" -ne 0 ]; then
    echo "--- prosody log (tail) ---" >&2
    tail -n 40 "$dir/prosody.log" >&2 2>/dev/null
    tail -n 20 "$dir/prosody.err" >&2 2>/dev/null
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
