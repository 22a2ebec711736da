#!/usr/bin/env bash
# Rekeying: with rekey_after_s 20 on both nodes, a long ping (5 pings/s, default 300 s) across the link
# loses at most 1 packet while the sessions are replaced every ~20 s.
#
#          VM1 (rekey_after_s 20)                    VM2 (rekey_after_s 20)
#  +------------------------------+          +------------------------------+
#  |  [TAP ipop] 10.0.8.1/24      |          |      [TAP ipop] 10.0.8.2/24  |
#  |       |                      |          |                      |       |
#  |   ipop node vm1 (udp 5800)   |          |   ipop node vm2 (udp 5800)   |
#  |       |                      |          |                      |       |
#  |  ul-vm2 10.200.0.1/24 ======underlay veth====== ul-vm1 10.200.0.2/24   |
#  +------------------------------+          +------------------------------+
#
#   Both nodes come up at the same moment (their first handshakes cross, see below); then
#   ping -i 0.2 10.0.8.2 for E2E_REKEY_SECONDS (default 300) from vm1; `ipop status --json` of both
#   nodes sampled every ~10 s.
#
# Asserts: at most 1 ping lost; on each node last_handshake_s went down (a new session) at least
# E2E_REKEY_SECONDS/30 times (10 for the default 300 s; one rekey per 20 s gives ~14) and never showed
# more than 30 s (a session outliving rekey_after_s); the link was "up" at every sample; no datagram was dropped as stale, auth_failure or unknown_peer (no packet
# sealed with a session the other side had already thrown away).
#
# Environment: E2E_REKEY_SECONDS (default 300, at least 40) - run it short while developing.
# Runs ~E2E_REKEY_SECONDS + 30 s; run-all.sh reads the bound below (raise E2E_SCENARIO_TIMEOUT for
# longer runs).
# e2e-timeout: 420

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

DUR=${E2E_REKEY_SECONDS:-300}
[[ $DUR =~ ^[0-9]+$ ]] && ((DUR >= 40)) || fatal "E2E_REKEY_SECONDS must be an integer >= 40, got '$DUR'"
COUNT=$((DUR * 5))
MIN_REKEYS=$((DUR / 30))
SAMPLE_S=10

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2
gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop ip4=10.0.8.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop ip4=10.0.8.2/24 peers=vm1@10.200.0.1:5800"
edit_node_config vm1 'c["rekey_after_s"] = 20'
edit_node_config vm2 'c["rekey_after_s"] = 20'
# Simultaneous start, made deterministic: both nodes start while their underlay drops UDP 5800, are
# frozen (SIGSTOP) until their next handshake retry is due, and are released together with the path
# open. Each sends its initiation first and only then reads the other's: the two handshakes cross,
# as when two nodes come up (or a path comes back) at the same moment.
for vm in vm1 vm2; do
    on "$vm" nft -f - <<'NFT'
table inet hold {
    chain out {
        type filter hook output priority 0; policy accept;
        udp dport 5800 drop
    }
}
NFT
done
start_node vm1
start_node vm2
wait_node_ready vm1
wait_node_ready vm2
kill -STOP "${NODE_PID[vm1]}" "${NODE_PID[vm2]}"
start_capture vm1 ul-vm2 "$E2E_TMP/start.pcap" 30 udp
start_cap=$CAPTURE_PID
sleep 6                                   # > rekey-timeout 5 s + jitter: the retries are due
on vm1 nft delete table inet hold
on vm2 nft delete table inet hold
kill -CONT "${NODE_PID[vm1]}" "${NODE_PID[vm2]}"
wait_link_up vm1 lab vm2
wait_link_up vm2 lab vm1
stop_capture "$start_cap"
# The setup did what it claims: both initiations on the wire before the first response.
# sed reads to the end (head would close the pipe early and, under pipefail, fail the scenario).
first=$(on vm1 python3 "$E2E_LINKPKT" handshakes "$E2E_TMP/start.pcap" | sed -n '1,3p' | tr '\n' ' ')
read -r k1 s1 k2 s2 k3 _ <<<"$first"
if [[ $k1 == init && $k2 == init && $s1 != "$s2" && $k3 == response ]]; then
    pass "simultaneous start: the two initiations crossed ($first)"
else
    fail "simultaneous start: the handshakes did not cross (first messages: $first)"
fi
assert_ping vm1 10.0.8.2 10

declare -A drops0=()
for n in vm1 vm2; do
    for r in stale auth_failure unknown_peer; do drops0[$n.$r]=$(node_drop "$n" "$r"); done
done

log "pinging 10.0.8.2 from vm1 for ${DUR} s ($COUNT pings, 0.2 s apart), sampling status every ${SAMPLE_S} s"
# -c COUNT with -w: stops after COUNT replies or at the deadline; lost = transmitted - received.
spawn vm1 "$E2E_TMP/ping.out" "$E2E_TMP/ping.err" ping -n -q -i 0.2 -W 1 -c "$COUNT" -w $((DUR + 15)) 10.0.8.2
ping_pid=$SPAWNED_PID

declare -A prev=() rekeys=() samples=() notup=() oldest=()
for n in vm1 vm2; do prev[$n]=""; rekeys[$n]=0; samples[$n]=0; notup[$n]=0; oldest[$n]=0; done
deadline=$((SECONDS + DUR + 30))
next=$((SECONDS + SAMPLE_S))
trace="" trace2=""
while kill -0 "$ping_pid" 2>/dev/null && ((SECONDS < deadline)); do
    if ((SECONDS < next)); then sleep 0.5; continue; fi
    next=$((next + SAMPLE_S))
    for n in vm1 vm2; do
        peer=$([[ $n == vm1 ]] && echo vm2 || echo vm1)
        v=$(status_value "$n" '"%s %s" % (link(a[0], a[1])["last_handshake_s"], link(a[0], a[1])["state"])' lab "$peer")
        hs=${v%% *} state=${v##* }
        samples[$n]=$((samples[$n] + 1))
        [[ $state == up ]] || notup[$n]=$((notup[$n] + 1))
        if [[ $hs =~ ^[0-9]+$ ]]; then
            [[ -n ${prev[$n]} ]] && ((hs < prev[$n])) && rekeys[$n]=$((rekeys[$n] + 1))
            prev[$n]=$hs
            ((hs > oldest[$n])) && oldest[$n]=$hs
        fi
        [[ $n == vm1 ]] && trace+=" $hs"
        [[ $n == vm2 ]] && trace2+=" $hs"
    done
    vlog "t=$(elapsed) vm1 last_handshake_s=${prev[vm1]} rekeys=${rekeys[vm1]}, vm2 ${prev[vm2]} ${rekeys[vm2]}"
done
wait "$ping_pid" 2>/dev/null || true     # bounded by ping -w (and the loop's deadline above)
stop_pid "$ping_pid" 1
echo "info: vm1 last_handshake_s every ${SAMPLE_S} s:$trace"
echo "info: vm2 last_handshake_s every ${SAMPLE_S} s:$trace2"

summary=$(grep -o '[0-9]* packets transmitted, [0-9]* received' "$E2E_TMP/ping.out" || true)
if [[ -z $summary ]]; then
    fail "no ping summary: $(cat "$E2E_TMP/ping.out" "$E2E_TMP/ping.err" 2>/dev/null | tail -n 3)"
else
    tx=${summary%% packets*}
    rx=${summary##*transmitted, }; rx=${rx%% received}
    assert_between $((tx - rx)) 0 1 "pings lost during ${DUR} s of rekeying ($summary)"
    assert_between "$rx" "$COUNT" "$COUNT" "ping ran its full course"
fi
for n in vm1 vm2; do
    assert_between "${rekeys[$n]}" "$MIN_REKEYS" 1000 "$n: new sessions seen (last_handshake_s went down) in ${samples[$n]} samples"
    if ((samples[$n] > 0 && notup[$n] == 0)); then
        pass "$n: link up at every one of ${samples[$n]} samples"
    else
        fail "$n: link up at every sample: ${notup[$n]} of ${samples[$n]} samples not up"
    fi
    # rekey_after_s 20: no session may live much longer (one retry after rekey-timeout 5 s, slack).
    assert_between "${oldest[$n]}" 0 30 "$n: oldest session seen (max last_handshake_s) is within rekey_after_s 20 + 10 s"
    for r in stale auth_failure unknown_peer; do
        assert_eq "$(($(node_drop "$n" "$r") - drops0[$n.$r]))" 0 "$n: no datagram dropped as $r during the rekeys"
    done
done
node_alive vm1 && node_alive vm2 && pass "both daemons still running" || fail "a daemon exited"
