#!/usr/bin/env bash
# Discovered peers that die are forgotten (issue "Signalling and discovery over XMPP": "a peer offline
# for peer_timeout_s with no working link is dropped"), also when it died while the XMPP server was
# down. peer_timeout_s = 5, rekey_after_s = 10, keepalive_s = 10: a dead peer's link stops counting
# as "up" once nothing was heard from it for 2 x keepalive_s + 5 s (silence detection), then it is
# forgotten peer_timeout_s later: ~30 s after its death, bound 50 s.
#
#   server (ns ipe<pid>-server)          VMn (ns ipe<pid>-vmN), N = 1..4, all alike
#  +---------------------------+       +--------------------------------------------+
#  | prosody 0.12, c2s + MUC   |       |  ipop node vmN (switchmode, udp 5800,      |
#  | 10.200.0.100:5222         |       |   xmpp client -> 10.200.0.100:5222)        |
#  | STARTTLS, private CA      |       |  [TAP ipop] -- lxcbr0 -- v-cN ... eth0 cN  |
#  | ul0 10.200.0.100/24       |       |  ul0 10.200.0.N/24           10.0.3.N/24   |
#  +------|--------------------+       +----|---------------------------------------+
#         | p-server                        | p-vmN
#  +------+---------------------------------+--------------------------------------+
#  |           bridge ulbr (ns ipe<pid>-ul): the underlay 10.200.0.0/24             |
#  +---------------------------------------------------------------------------------+
#
# 1. vm1..vm4 link all-to-all (XMPP_MODE=muc: room; shared: one account).
# 2. vm3 is killed (SIGKILL) while the server runs: the others see it leave.
# 3. prosody crashes (SIGKILL by PID: no goodbye presences), vm4 is killed while it is down, prosody is
#    started again on the same data dir ~8 s later (longer than peer_timeout_s).
# 4. vm1 and vm2 keep their link through it all (offline on XMPP but up: not dropped; 5 pings).
# 5. within 50 s of its death each dead peer is gone from vm1's and vm2's status.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin
command -v prosody >/dev/null || fatal "prosody is not installed (apt-get install prosody)"

MODE=${XMPP_MODE:-muc}
[[ $MODE == muc || $MODE == shared ]] || fatal "XMPP_MODE must be muc or shared, not '$MODE'"
OV=lab
VMS=(vm1 vm2 vm3 vm4)
E2E_NAME="$E2E_NAME[$MODE]"

phase_begin "setup [$MODE]"
make_underlay_switch ul
make_vm server
attach_vm_to_switch ul server 10.200.0.100
for i in 1 2 3 4; do make_lxc_vm ul "vm$i" "10.200.0.$i" "c$i" "10.0.3.$i"; done
xmpp_server_start server 10.200.0.100 5222
xmpp_register ipop ipop-shared-pw
for i in 1 2 3 4; do xmpp_register "node$i" "node$i-pw"; done
gen_keys "${VMS[@]}"
for i in 1 2 3 4; do
    write_node_config "vm$i" "vm$i" 5800 "id=$OV tap=ipop bridge=lxcbr0"
    if [[ $MODE == muc ]]; then
        xmpp_node_config "vm$i" "node$i" "node$i-pw" "lab@conference.xmpp.ipop.test"
    else
        xmpp_node_config "vm$i" ipop ipop-shared-pw
    fi
    edit_node_config "vm$i" 'c["xmpp"]["peer_timeout_s"] = 5' 'c["rekey_after_s"] = 10'
done
phase_end

phase_begin "1 four nodes link"
for vm in "${VMS[@]}"; do start_node "$vm"; done
for vm in "${VMS[@]}"; do wait_node_ready "$vm"; done
all3() { local vm; for vm in "${VMS[@]}"; do links_all_up "$vm" "$OV" 3 || return 1; done; }
if wait_for 30 all3; then pass "vm1..vm4: 3 links up each"; else fatal "no full mesh within 30 s"; fi
phase_end

phase_begin "2+3 vm3 dies (server up), server crashes, vm4 dies (server down), server back"
kill -KILL "${NODE_PID[vm3]}"; wait "${NODE_PID[vm3]}" 2>/dev/null || true
t3=$(date +%s)
pass "vm3 killed"
sleep 2
kill -KILL "$XMPP_PID"; wait "$XMPP_PID" 2>/dev/null || true
XMPP_PID=""
pass "prosody killed (SIGKILL by PID)"
sleep 1
kill -KILL "${NODE_PID[vm4]}"; wait "${NODE_PID[vm4]}" 2>/dev/null || true
t4=$(date +%s)
pass "vm4 killed while the server is down"
sleep 7
xmpp_server_relaunch
pass "prosody back (pid $XMPP_PID)"
phase_end

phase_begin "4+5 survivors keep their link; the dead are dropped"
if wait_for 45 bash -c "grep -q 'xmpp: connected as' <(sed -n '/disconnected/,\$p' '${NODE_LOG[vm1]}')"; then
    pass "vm1 reconnected to the server"
else
    fail "vm1 did not reconnect within 45 s"
fi
assert_eq "$(link_field vm1 "$OV" vm2 state)" up "vm1 -> vm2 link survived the server outage"
assert_no_loss c1 10.0.3.2 5
dropped() { local vm; for vm in vm1 vm2; do status_query "$vm" 'link(a[0], a[1]) is None' "$OV" "$1" >/dev/null || return 1; done; }
DEAD_LIMIT_S=50
for dead in vm3 vm4; do
    t=$([[ $dead == vm3 ]] && echo "$t3" || echo "$t4")
    left=$((t + DEAD_LIMIT_S - $(date +%s)))
    ((left > 1)) || left=1
    if wait_for "$left" dropped "$dead"; then
        pass "$dead dropped by vm1 and vm2 $(($(date +%s) - t)) s after it died"
    else
        fail "$dead still listed $DEAD_LIMIT_S s after it died (vm1: $(links_summary vm1 "$OV"); vm2: $(links_summary vm2 "$OV"))"
        grep -E "$dead|bounced|ignoring signal" "${NODE_LOG[vm1]}" | tail -n 6 | sed 's/^/    vm1 log: /'
    fi
done
assert_eq "$(link_field vm1 "$OV" vm2 state)" up "vm1 -> vm2 link still up at the end"
phase_end

echo "timings: $(printf '%s; ' "${E2E_TIMINGS[@]}")"
