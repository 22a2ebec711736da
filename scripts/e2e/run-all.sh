#!/usr/bin/env bash
# Run every e2e scenario (or the ones named on the command line), one after another, and aggregate.
#
#   scripts/e2e/run-all.sh                      # all scenarios
#   scripts/e2e/run-all.sh switchmode_seed.sh   # a subset
#   IPOP_BIN=.build-e2e/debug/ipop scripts/e2e/run-all.sh
#
# Each scenario prints PASS:/FAIL: lines and ends with "N passed, M failed"; this sums them up,
# prints one line per scenario with its duration, then the total "N passed, M failed" line, and exits
# non-zero if anything failed (a scenario that dies without a summary line counts as one failure).
# Every scenario is bounded by E2E_SCENARIO_TIMEOUT seconds (default 300), or by the larger bound a
# scenario declares for itself in a line "# e2e-timeout: SECONDS" (e.g. link_rekey.sh). Needs root.

set -uo pipefail

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$DIR/../.." && pwd)
TIMEOUT=${E2E_SCENARIO_TIMEOUT:-300}

if [[ -z "${IPOP_BIN:-}" ]]; then
    IPOP_BIN="$(cd "$REPO" && swift build --show-bin-path)/ipop"
fi
export IPOP_BIN
echo "IPOP_BIN=$IPOP_BIN"

if (($# > 0)); then
    scenarios=("$@")
else
    # Fast ones first, then any other scenario script in this directory.
    scenarios=(config_errors.sh switchmode_standalone.sh switchmode_seed.sh
               switchmode_two_overlays.sh switchmode_third_node.sh)
    for f in "$DIR"/*.sh; do
        f=$(basename "$f")
        [[ $f == lib.sh || $f == run-all.sh || " ${scenarios[*]} " == *" $f "* ]] || scenarios+=("$f")
    done
fi

total_pass=0 total_fail=0 report=()
logdir=$(mktemp -d /tmp/ipop-e2e-runall.XXXXXX)
for s in "${scenarios[@]}"; do
    s=$(basename "$s")
    echo
    echo "======== $s"
    t0=$SECONDS
    limit=$TIMEOUT
    own=$(sed -n 's/^# e2e-timeout: *\([0-9][0-9]*\) *$/\1/p' "$DIR/$s" | head -n 1)
    [[ -n $own ]] && ((own > limit)) && limit=$own
    timeout -k 30 "$limit" "$DIR/$s" 2>&1 | tee "$logdir/$s.log"
    rc=${PIPESTATUS[0]}
    dt=$((SECONDS - t0))
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/$s.log" | tail -n 1)
    if [[ -n "$summary" ]]; then
        p=${summary%% passed*}
        f=${summary#*, }; f=${f%% failed}
    else
        p=0 f=0
    fi
    if ((rc != 0 && f == 0)); then
        f=1   # died without reporting a failure (timeout: rc 124)
        summary="${summary:-no summary} (exit $rc)"
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    report+=("$(printf '%-30s %-28s %4ds' "$s" "$summary" "$dt")")
done

echo
echo "======== summary (logs in $logdir)"
printf '%s\n' "${report[@]}"
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
