#!/usr/bin/env bash
# Discovery over XMPP when things break (issue "Signalling and discovery over XMPP"): the server
# restarts, a node is killed, a node has a wrong password. No node has static peers.
#
#   server (ns ipe<pid>-server)          VMn (ns ipe<pid>-vmN), N = 1..6, all alike
#  +---------------------------+       +--------------------------------------------+
#  | prosody 0.12, c2s + MUC   |       |  ipop node vmN (switchmode, udp 5800,      |
#  | 10.200.0.100:5222         |       |   xmpp client -> 10.200.0.100:5222)        |
#  | STARTTLS, private CA      |       |        |                                   |
#  | data dir kept on restart  |       |  [TAP ipop] -- lxcbr0 -- v-cN ... eth0 cN  |
#  | ul0 10.200.0.100/24       |       |  ul0 10.200.0.N/24           10.0.3.N/24   |
#  +------|--------------------+       +----|---------------------------------------+
#         | p-server                        | p-vmN
#  +------+---------------------------------+--------------------------------------+
#  |           bridge ulbr (ns ipe<pid>-ul): the underlay 10.200.0.0/24             |
#  +---------------------------------------------------------------------------------+
#   vm1..vm4: the running overlay; vm5: joins after the server restart; vm6: wrong password.
#
# XMPP_MODE=muc (default): accounts node1..node6, room lab@conference.xmpp.ipop.test;
# XMPP_MODE=shared: every node logs in as ipop@xmpp.ipop.test (vm6 with a wrong password).
#
# 0. vm1..vm4 start and link all-to-all (3 links up each).
# 3. prosody is stopped by PID (every node logs "disconnected"; links stay up), stays down
#    XMPP_DOWN_S (10) s, and is started again on the same data dir; pings c1->c2 and c4->c3 running
#    across all of it lose nothing (at most the one in flight when it is interrupted); every node
#    reconnects; then vm5 starts and within 30 s links to all four (4 links up everywhere) and
#    c5 <-> c1..c4 ping.
# 4. vm3 is killed (SIGKILL): its TAP vanishes; restarted, within 30 s it has 4 links up and c3 <-> all
#    others ping.
# 5. vm6 logs in with a wrong password: its log gets an "authentication failed" line, it keeps running,
#    retries with growing delays (3 failures, announced delays non-decreasing, third > first), lists no
#    links, and no other node lists it.
# Every phase prints "TIME: <phase> took X s".

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin
command -v prosody >/dev/null || fatal "prosody is not installed (apt-get install prosody)"

MODE=${XMPP_MODE:-muc}
[[ $MODE == muc || $MODE == shared ]] || fatal "XMPP_MODE must be muc or shared, not '$MODE'"
DOWN_S=${XMPP_DOWN_S:-10}
OV=lab
ROOM="lab@conference.xmpp.ipop.test"
ALL=(vm1 vm2 vm3 vm4 vm5 vm6)
declare -A CIP=()
for i in 1 2 3 4 5 6; do CIP[vm$i]=10.0.3.$i; done
E2E_NAME="$E2E_NAME[$MODE]"

# configure_node VM [PASSWORD]: the node's config with only an xmpp section (no peers).
configure_node() {
    local vm=$1 i=${1#vm} pw=${2:-}
    write_node_config "$vm" "$vm" 5800 "id=$OV tap=ipop bridge=lxcbr0"
    if [[ $MODE == muc ]]; then
        xmpp_node_config "$vm" "node$i" "${pw:-node$i-pw}" "$ROOM"
    else
        xmpp_node_config "$vm" ipop "${pw:-ipop-shared-pw}"
    fi
}

# nodes_links_up N VM...: each named node lists N links, all up.
nodes_links_up() { local n=$1 vm; shift; for vm in "$@"; do links_all_up "$vm" "$OV" "$n" || return 1; done; }

# pings_between A B...: A's container pings every other's and back, all within what is left of DEADLINE
# (seconds since the epoch, at least 2 s per ping).
pings_between() {
    local a=$1 deadline=$2 b left; shift 2
    for b in "$@"; do
        left=$((deadline - $(date +%s))); ((left >= 2)) || left=2
        assert_ping "c${a#vm}" "${CIP[$b]}" "$left"
        left=$((deadline - $(date +%s))); ((left >= 2)) || left=2
        assert_ping "c${b#vm}" "${CIP[$a]}" "$left"
    done
}

phase_begin "setup (namespaces, prosody, accounts) [$MODE]"
make_underlay_switch ul
make_vm server
attach_vm_to_switch ul server 10.200.0.100
for vm in "${ALL[@]}"; do make_lxc_vm ul "$vm" "10.200.0.${vm#vm}" "c${vm#vm}" "${CIP[$vm]}"; done
xmpp_server_start server 10.200.0.100 5222
xmpp_register ipop ipop-shared-pw
for i in 1 2 3 4 5 6; do xmpp_register "node$i" "node$i-pw"; done
gen_keys "${ALL[@]}"
for vm in vm1 vm2 vm3 vm4 vm5; do configure_node "$vm"; done
configure_node vm6 this-is-not-the-password
phase_end

# ---- 0: the running overlay
phase_begin "0 four nodes: start to 3 links up everywhere"
for vm in vm1 vm2 vm3 vm4; do start_node "$vm"; done
for vm in vm1 vm2 vm3 vm4; do wait_node_ready "$vm"; done
if wait_for 30 nodes_links_up 3 vm1 vm2 vm3 vm4; then
    pass "vm1..vm4: 3 links up on each"
else
    for vm in vm1 vm2 vm3 vm4; do echo "  $vm: $(links_summary "$vm" "$OV")"; done
    fatal "vm1..vm4 did not link all-to-all within 30 s"
fi
assert_ping c1 10.0.3.2 10
assert_ping c4 10.0.3.3 10
phase_end

# ---- 3: the XMPP server restarts; then a new node joins
phase_begin "3a server down ${DOWN_S}s and back: links carry traffic, nodes reconnect"
declare -A CONNECTED=()
for vm in vm1 vm2 vm3 vm4; do CONNECTED[$vm]=$(log_count "$vm" 'xmpp: connected as'); done
spawn c1 "$E2E_TMP/ping12.out" "$E2E_TMP/ping12.err" ping -n -i 0.2 -W 1 -w 120 10.0.3.2
PING12=$SPAWNED_PID
spawn c4 "$E2E_TMP/ping43.out" "$E2E_TMP/ping43.err" ping -n -i 0.2 -W 1 -w 120 10.0.3.3
PING43=$SPAWNED_PID
sleep 1
t_stop=$(now_ms)
xmpp_server_stop
pass "prosody stopped by PID"
for vm in vm1 vm2 vm3 vm4; do
    if wait_log_count "$vm" 'xmpp: disconnected' 1 10; then :; else fail "$vm: no 'xmpp: disconnected' line within 10 s of the server stop"; fi
done
sleep 2
if nodes_links_up 3 vm1 vm2 vm3 vm4; then pass "server down: vm1..vm4 still list 3 links up"; else fail "server down: links went down"; fi
sleep $((DOWN_S - 2 > 0 ? DOWN_S - 2 : 0))
xmpp_server_relaunch
t_back=$(now_ms)
pass "prosody back after $(((t_back - t_stop) / 1000)) s, same data dir (pid $XMPP_PID)"
reconnected() { local vm; for vm in vm1 vm2 vm3 vm4; do (($(log_count "$vm" 'xmpp: connected as') > CONNECTED[$vm])) || return 1; done; }
if wait_for 45 reconnected; then
    pass "vm1..vm4 reconnected to the server"
    echo "TIME: all four nodes reconnected $(($(now_ms) - t_back)) ms after prosody was back"
else
    fail "not every node reconnected within 45 s of the server restart"
fi
sleep 1
for pair in "12 $PING12" "43 $PING43"; do
    read -r name pid <<<"$pair"
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    summary=$(grep -oE '[0-9]+ packets transmitted, [0-9]+ received' "$E2E_TMP/ping$name.out" || echo "no summary")
    read -r tx _ _ rx _ <<<"$summary"
    if [[ $tx =~ ^[0-9]+$ && $rx =~ ^[0-9]+$ ]] && ((tx >= 50 && tx - rx <= 1)); then
        pass "ping c${name:0:1} -> c${name:1:1} across the server restart: $summary"
    else
        fail "ping c${name:0:1} -> c${name:1:1} across the server restart lost packets: $summary"
    fi
done
phase_end

phase_begin "3b new node vm5 after the restart: start to 4 links up everywhere + pings"
start_node vm5
wait_node_ready vm5
t0=$(now_ms)
if wait_for 30 nodes_links_up 4 vm1 vm2 vm3 vm4 vm5; then
    pass "vm5 joined: vm1..vm5 have 4 links up each ($(($(now_ms) - t0)) ms)"
else
    for vm in vm1 vm2 vm3 vm4 vm5; do echo "  $vm: $(links_summary "$vm" "$OV")"; done
    fail "vm5 did not link to all four within 30 s"
fi
pings_between vm5 $(($(date +%s) + 10)) vm1 vm2 vm3 vm4
phase_end

# ---- 4: a node is killed and comes back
phase_begin "4 vm3 SIGKILL + restart: relinked and reachable"
kill -KILL "${NODE_PID[vm3]}"
wait "${NODE_PID[vm3]}" 2>/dev/null || true
if wait_for 5 bash -c "! ip -n $(ns vm3) link show ipop >/dev/null 2>&1"; then
    pass "vm3 killed: its TAP vanished"
else
    fail "vm3 killed, but TAP ipop still exists"
fi
start_node vm3
t_restart=$(date +%s)
t0=$(now_ms)
wait_node_ready vm3
if wait_for 30 nodes_links_up 4 vm3; then
    pass "vm3 restarted: 4 links up ($(($(now_ms) - t0)) ms)"
else
    fail "vm3 restarted: not 4 links up within 30 s ($(links_summary vm3 "$OV"))"
fi
pings_between vm3 $((t_restart + 30)) vm1 vm2 vm4 vm5
echo "TIME: vm3 restart to reachable from/to all: $(($(now_ms) - t0)) ms"
if nodes_links_up 4 vm1 vm2 vm3 vm4 vm5; then pass "after the restart: vm1..vm5 have 4 links up each"; else fail "after vm3's restart: not 4 links up everywhere"; fi
phase_end

# ---- 5: a node with a wrong password
phase_begin "5 vm6 wrong password: authentication errors, backoff, no links"
AUTH='authentication failed'
start_node vm6
wait_node_ready vm6
if wait_log_count vm6 "$AUTH" 1 15; then
    pass "vm6 logs: $(grep -m1 "$AUTH" "${NODE_LOG[vm6]}")"
else
    fail "vm6: no '$AUTH' line within 15 s"
fi
t1=$(now_ms)
if wait_log_count vm6 "$AUTH" 2 15; then
    pass "vm6 retried: a second '$AUTH' line $(($(now_ms) - t1)) ms later"
else
    fail "vm6: no second '$AUTH' line within 15 s (no retry?)"
fi
if wait_log_count vm6 "$AUTH" 3 20; then
    delays=$(grep -A3 "$AUTH" "${NODE_LOG[vm6]}" | grep -oE 'reconnecting in [0-9.]+ s' | sed -n '1,3p' | awk '{print $3}' | paste -sd' ')
    if python3 -c 'import sys; d=[float(x) for x in sys.argv[1:]]; sys.exit(0 if len(d)==3 and d[0]<=d[1]<=d[2] and d[2]>d[0] else 1)' $delays; then
        pass "vm6 backs off: retry delays after the failures: $delays s"
    else
        fail "vm6 retry delays do not grow: '$delays'"
    fi
else
    fail "vm6: no third '$AUTH' line within 20 s"
fi
if node_alive vm6; then pass "vm6 keeps running"; else fail "vm6 exited after the authentication failures"; fi
assert_eq "$(status_value vm6 'len(overlay(a[0])["links"])' "$OV")" 0 "vm6 has no links"
for vm in vm1 vm2 vm3 vm4 vm5; do
    assert_eq "$(status_value "$vm" 'sorted(l["peer"] for l in overlay(a[0])["links"] if l["peer"].startswith("vm6"))' "$OV")" "[]" "$vm does not list vm6"
done
phase_end

echo "timings: $(printf '%s; ' "${E2E_TIMINGS[@]}")"
