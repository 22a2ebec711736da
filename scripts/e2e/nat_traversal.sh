#!/usr/bin/env bash
# NAT traversal (issue #5): two nodes behind real NAT routers (nftables), coturn as STUN and TURN
# server and prosody for signalling on a "public" network; every combination of NAT types, the path
# the nodes pick (asserted from `ipop status --json`), pings between the containers, the TURN server
# going away under a direct link, and a NAT whose mappings are flushed (conntrack -F) mid-ping.
#
#   c1 10.0.3.1/24                                                      c2 10.0.3.2/24
#     | eth0 (MTU 1280)                                                   | eth0
#  +--+-------------------------+                          +--------------+---------------+
#  | vm1: lxcbr0 -- [TAP ipop]  |                          | vm2: lxcbr0 -- [TAP ipop]    |
#  |      ipop udp 5800         |                          |      ipop udp 5800           |
#  |      up0 10.1.0.2/24       |                          |      up0 10.2.0.2/24         |
#  +------|---------------------+                          +------|-----------------------+
#  +------|---------------------+                          +------|-----------------------+
#  | nat1: lan 10.1.0.1/24      |                          | nat2: lan 10.2.0.1/24        |
#  |   nftables NAT, type per   |                          |   nftables NAT, type per     |
#  |   case (see set_nat)       |                          |   case                       |
#  |   wan 203.0.113.11/24      |                          |   wan 203.0.113.12/24        |
#  +------|---------------------+                          +------|-----------------------+
#         |            +-----------------------------------+      |
#         +------------| pub: bridge "inet" 203.0.113.1/24 |------+
#                      |      + 203.0.113.2 (2nd address)  |
#                      | coturn (STUN+TURN) on .1 and .2   |
#                      |   :3478, lt-cred-mech, no TLS     |
#                      | prosody 203.0.113.1:5222          |
#                      +-----------------------------------+
#
# NAT types (RFC 4787 terms), made by set_nat and checked by natprobe.py before they are used:
#   full-cone   endpoint-independent mapping (SNAT keeps the source port) and filtering (the mapped
#               port 5800 is forwarded to the node whoever sends: what a full-cone NAT does for it)
#   restricted  endpoint-independent mapping, address-and-port-dependent filtering (plain
#               masquerade; unsolicited inbound is dropped): "port-restricted cone"
#   symmetric   address-and-port-dependent mapping (masquerade random: a port per destination) and
#               filtering
# Cases: every unordered pair of types -> path expected (direct when hole punching can work,
# relay otherwise), asserted on both nodes; containers ping across. While the restricted x symmetric
# link runs over the relay, nat1 starts forwarding its mapped port (full cone): the link must move to
# a direct path by itself (direct paths are re-tried every 30 s). Then, on a direct link
# (restricted x restricted), and on the relayed symmetric x symmetric one: conntrack -F on both NATs
# mid-ping, the pings resume within 30 s; and
# coturn stopped: the direct link keeps working, still direct. The grid of results is printed last.
# e2e-timeout: 420

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

ensure_tool() {   # ensure_tool COMMAND PACKAGE
    command -v "$1" >/dev/null && return 0
    if [[ $(id -u) == 0 ]]; then
        log "installing $2 (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1; } || true
    fi
    command -v "$1" >/dev/null || fatal "$1 is not installed (apt-get install $2)"
}
ensure_tool turnserver coturn
ensure_tool conntrack conntrack
ensure_tool nft nftables
ensure_tool prosody prosody

PROBE="$E2E_DIR/nat/natprobe.py"
OV=lab
S1=203.0.113.1
S2=203.0.113.2
TURN_USER=ipop
TURN_PASS=turn-e2e-secret
LINK_TIMEOUT=${NAT_LINK_TIMEOUT:-30}
declare -A GRID=() WAN=([1]=203.0.113.11 [2]=203.0.113.12)

# ---------------------------------------------------------------- topology

phase_begin "setup (namespaces, NAT routers, coturn, prosody)"
make_netns pub
ip -n "$(ns pub)" link add inet type bridge forward_delay 0 stp_state 0
ip -n "$(ns pub)" link set inet up
ip -n "$(ns pub)" addr add "$S1/24" dev inet
ip -n "$(ns pub)" addr add "$S2/24" dev inet
for i in 1 2; do
    make_netns "nat$i"
    on "nat$i" sysctl -qw net.ipv4.ip_forward=1
    ip link add wan netns "$(ns "nat$i")" type veth peer name "p-nat$i" netns "$(ns pub)"
    ip -n "$(ns pub)" link set "p-nat$i" master inet up
    ip -n "$(ns "nat$i")" addr add "${WAN[$i]}/24" dev wan
    ip -n "$(ns "nat$i")" link set wan up
    make_vm "vm$i"
    ip link add lan netns "$(ns "nat$i")" type veth peer name up0 netns "$(ns "vm$i")"
    ip -n "$(ns "nat$i")" addr add "10.$i.0.1/24" dev lan
    ip -n "$(ns "nat$i")" link set lan up
    ip -n "$(ns "vm$i")" addr add "10.$i.0.2/24" dev up0
    ip -n "$(ns "vm$i")" link set up0 up
    ip -n "$(ns "vm$i")" route add default via "10.$i.0.1"
    make_bridge "vm$i"
    make_container "vm$i" "c$i" "10.0.3.$i"
done

# coturn: STUN and TURN on both public addresses; relays only to the "public" TEST-NET.
TURN_LOG="$E2E_TMP/turnserver.log"
start_turn() {
    spawn pub "$TURN_LOG" "$TURN_LOG.err" turnserver -n --no-tls --no-dtls --no-cli --no-tcp-relay \
        --listening-ip "$S1" --listening-ip "$S2" --listening-port 3478 --relay-ip "$S1" \
        --min-port 49152 --max-port 49251 --lt-cred-mech --user "$TURN_USER:$TURN_PASS" --realm ipop.test \
        --fingerprint --allowed-peer-ip 203.0.113.0-203.0.113.255 --denied-peer-ip 0.0.0.0-255.255.255.255 \
        --pidfile "$E2E_TMP/turnserver.pid" --log-file stdout --simple-log
    TURN_PID=$SPAWNED_PID
    wait_for 10 bash -c "ip netns exec $(ns pub) ss -Huln 'sport = :3478' | grep -q '$S2'" ||
        fatal "coturn does not listen on $S1/$S2:3478: $(tail -n 5 "$TURN_LOG" "$TURN_LOG.err" 2>/dev/null)"
}
start_turn
pass "coturn listens on $S1:3478 and $S2:3478 in the public namespace (pid $TURN_PID)"

xmpp_server_start pub "$S1" 5222
xmpp_register ipop ipop-shared-pw
gen_keys vm1 vm2
for i in 1 2; do
    write_node_config "vm$i" "vm$i" 5800 "id=$OV tap=ipop bridge=lxcbr0"
    xmpp_node_config "vm$i" ipop ipop-shared-pw
    edit_node_config "vm$i" "c['stun'] = ['$S1:3478', '$S2:3478']" \
        "c['turn'] = [{'server': '$S1:3478', 'username': '$TURN_USER', 'password': '$TURN_PASS'}]" \
        "c['keepalive_s'] = 5"
done
phase_end

# ---------------------------------------------------------------- NAT routers

# set_nat I TYPE: nat I becomes a NAT of TYPE (full-cone | restricted | symmetric); its mappings are
# flushed. Unsolicited inbound is dropped in the input chain, before conntrack confirms an entry for
# it (an entry would otherwise clash with the node's own mapping and make the NAT pick another port).
set_nat() {
    local i=$1 type=$2 masq dnat=""
    case $type in
        full-cone)  masq="masquerade persistent"; dnat="iifname \"wan\" udp dport 5800 dnat to 10.$i.0.2:5800" ;;
        restricted) masq="masquerade" ;;
        symmetric)  masq="masquerade random" ;;
        *) fatal "unknown NAT type $type" ;;
    esac
    on "nat$i" nft -f - <<EOF || fatal "nft rules for nat$i ($type) refused"
flush ruleset
table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        $dnat
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" $masq
    }
}
table ip filter {
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" drop
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" ct status dnat accept
        iifname "wan" drop
    }
}
EOF
    on "nat$i" conntrack -F >/dev/null 2>&1 || true
    NAT_TYPE[$i]=$type
}
declare -A NAT_TYPE=()

# verify_nat I TYPE: behind nat I, a socket on port 5800 asks both STUN addresses for its mapping and
# then listens; a datagram from a port it never talked to is sent to the mapped address. The NAT must
# behave as TYPE says: same or different mapped ports, unsolicited datagram let in or not.
verify_nat() {
    local i=$1 type=$2 out m1 m2 unsolicited pid
    out="$E2E_TMP/natprobe-$i-$type.out"
    spawn "vm$i" "$out" "$out.err" python3 "$PROBE" probe 5800 "$S1:3478" "$S2:3478" 2.5
    pid=$SPAWNED_PID
    wait_for 8 grep -q '^ready' "$out" || { fail "natprobe behind nat$i did not finish: $(cat "$out.err")"; return; }
    m1=$(awk -v s="$S1:3478" '$1 == "mapped" && $2 == s {print $3}' "$out")
    m2=$(awk -v s="$S2:3478" '$1 == "mapped" && $2 == s {print $3}' "$out")
    on pub python3 "$PROBE" send 9999 "$m1" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unsolicited=$(grep -c '^unsolicited' "$out" || true)
    local want_same want_unsolicited
    case $type in
        full-cone)  want_same=yes want_unsolicited=1 ;;
        restricted) want_same=yes want_unsolicited=0 ;;
        symmetric)  want_same=no  want_unsolicited=0 ;;
    esac
    local same=no; [[ $m1 == "$m2" ]] && same=yes
    if [[ ${m1%:*} == "${WAN[$i]}" && ${m2%:*} == "${WAN[$i]}" && $same == "$want_same" &&
          $unsolicited == "$want_unsolicited" ]]; then
        pass "nat$i behaves as $type: mapped $m1 / $m2 (same port: $same), unsolicited datagram let in: $unsolicited"
    else
        fail "nat$i is not $type: mapped '$m1' / '$m2' (same port: $same, want $want_same), unsolicited let in: $unsolicited (want $want_unsolicited)"
    fi
}

phase_begin "NAT types behave as claimed (two STUN addresses, one unsolicited datagram)"
for type in full-cone restricted symmetric; do
    for i in 1 2; do set_nat "$i" "$type"; verify_nat "$i" "$type"; done
done
phase_end

# ---------------------------------------------------------------- cases

# link_path NODE PEER: "state path rtt_ms" of NODE's link to PEER.
link_path() {
    status_value "$1" '"%s %s %s" % (link(a[0], a[1])["state"], link(a[0], a[1]).get("path"), link(a[0], a[1]).get("rtt_ms"))' "$OV" "$2"
}
both_up_on() {   # both_up_on PATH: both nodes report the link up on PATH
    [[ $(link_path vm1 vm2) == "up $1 "* && $(link_path vm2 vm1) == "up $1 "* ]]
}
both_up() { [[ $(link_path vm1 vm2) == "up "* && $(link_path vm2 vm1) == "up "* ]]; }

start_nodes() {
    start_node vm1
    start_node vm2
    wait_node_ready vm1
    wait_node_ready vm2
}
stop_nodes() {
    stop_node vm1 5 || fail "vm1 did not exit within 5 s of SIGTERM"
    stop_node vm2 5 || fail "vm2 did not exit within 5 s of SIGTERM"
}

# run_case TYPE1 TYPE2 EXPECTED_PATH [KEEP]: NATs set, nodes started, link up on the expected path on
# both sides (the status JSON says so), containers ping both ways; the result goes into the grid.
# With KEEP the nodes stay up for the next phase.
run_case() {
    local t1=$1 t2=$2 want=$3 keep=${4:-} t0 p1 p2 cell
    phase_begin "$t1 x $t2 -> $want"
    set_nat 1 "$t1"
    set_nat 2 "$t2"
    t0=$(now_ms)
    start_nodes
    if wait_for "$LINK_TIMEOUT" both_up_on "$want"; then
        pass "$t1 x $t2: link up on a $want path on both nodes after $(($(now_ms) - t0)) ms"
    elif wait_for 5 both_up; then
        fail "$t1 x $t2: link up, but vm1 says '$(link_path vm1 vm2)', vm2 '$(link_path vm2 vm1)' (want $want)"
    else
        fail "$t1 x $t2: no link within ${LINK_TIMEOUT}s (vm1: $(link_path vm1 vm2); vm2: $(link_path vm2 vm1))"
    fi
    p1=$(link_path vm1 vm2)
    p2=$(link_path vm2 vm1)
    log "vm1: $p1 ($(link_field vm1 "$OV" vm2 local_candidate) -> $(link_field vm1 "$OV" vm2 remote_candidate))"
    log "vm2: $p2 ($(link_field vm2 "$OV" vm1 local_candidate) -> $(link_field vm2 "$OV" vm1 remote_candidate))"
    assert_ping c1 10.0.3.2 10
    assert_ping c2 10.0.3.1 10
    read -r _ path rtt <<<"$p1"
    cell="$path"
    [[ $rtt =~ ^[0-9.]+$ ]] && cell+=$(printf ' %.1fms' "$rtt")
    [[ $path == "$want" ]] || cell+=" (want $want)"
    GRID[$t1,$t2]=$cell
    GRID[$t2,$t1]=$cell
    [[ -n $keep ]] || stop_nodes
    phase_end
}

# flush_mid_ping WHAT: c1 pings c2 every 0.2 s; mid-ping both NATs forget every mapping (conntrack -F).
# Recovery is measured with fresh single pings (a long-running ping gives up on its own once the
# container's ARP entry fails during the outage): the first answered one must come within 30 s, and
# the link must be up on both nodes again.
flush_mid_ping() {
    local what=$1 ping_log ping_pid t_flush t_ok
    ping_log="$E2E_TMP/flush-ping-${what// /_}.log"
    spawn c1 "$ping_log" /dev/null ping -n -i 0.2 -W 1 -w 20 10.0.3.2
    ping_pid=$SPAWNED_PID
    replies_at_least() { (($(grep -c 'bytes from' "$ping_log") >= $1)); }
    wait_for 5 replies_at_least 5 || fail "$what: fewer than 5 ping replies before the flush"
    t_flush=$(now_ms)
    on nat1 conntrack -F >/dev/null 2>&1
    on nat2 conntrack -F >/dev/null 2>&1
    log "$what: flushed both NATs' conntrack tables"
    if wait_for 30 can_ping c1 10.0.3.2; then
        t_ok=$(now_ms)
        pass "$what: pings answered again $(((t_ok - t_flush) / 100 / 10)).$(((t_ok - t_flush) / 100 % 10)) s after the flush (bound 30 s)"
        echo "MEASURE: $what: recovery after conntrack -F: $(((t_ok - t_flush) / 100 / 10)).$(((t_ok - t_flush) / 100 % 10)) s"
    else
        fail "$what: no ping reply within 30 s of the flush"
    fi
    wait_for 10 both_up || fail "$what: link not up on both nodes after the flush"
    stop_pid "$ping_pid" 3
}

run_case full-cone  full-cone  direct
run_case full-cone  restricted direct
run_case full-cone  symmetric  direct
run_case restricted symmetric  relay keep

# ---- on a relay, direct paths are re-tried: once no check runs any more, nat1 turns full-cone (its
# mapping stays), and within one re-try interval (30 s) plus a check the link moves to a direct path
# on both nodes, through a new check (the status "checks" counter grows).
phase_begin "relay -> direct once a direct path opens (nat1 restricted -> full-cone)"
link_checks() { status_value "$1" '"%s %s" % (link(a[0], a[1])["checks"], link(a[0], a[1])["checking"])' "$OV" "$2"; }
checks_idle() { [[ $(link_checks vm1 vm2) == *" False" && $(link_checks vm2 vm1) == *" False" ]]; }
wait_for 20 checks_idle || fail "connectivity checks still running 20 s after the link came up ($(link_checks vm1 vm2) / $(link_checks vm2 vm1))"
before1=$(link_checks vm1 vm2 | cut -d' ' -f1)
before2=$(link_checks vm2 vm1 | cut -d' ' -f1)
assert_eq "$(link_path vm1 vm2 | cut -d' ' -f1-2) / $(link_path vm2 vm1 | cut -d' ' -f1-2)" "up relay / up relay" \
    "no check running ($before1 / $before2 checks so far), the link is still on the relay"
on nat1 nft add rule ip nat prerouting iifname "wan" udp dport 5800 dnat to 10.1.0.2:5800
t0=$(now_ms)
if wait_for 45 both_up_on direct; then
    pass "the link moved from relay to direct $(($(now_ms) - t0)) ms after a direct path opened (re-try every 30 s)"
    echo "MEASURE: relay -> direct after the path opened: $(($(now_ms) - t0)) ms"
else
    fail "the link did not move to a direct path within 45 s (vm1: $(link_path vm1 vm2); vm2: $(link_path vm2 vm1))"
fi
after1=$(link_checks vm1 vm2 | cut -d' ' -f1)
after2=$(link_checks vm2 vm1 | cut -d' ' -f1)
if ((after1 > before1 && after2 > before2)); then
    pass "a new connectivity check found it (checks $before1 -> $after1 on vm1, $before2 -> $after2 on vm2)"
else
    fail "no new check ran (checks $before1 -> $after1 on vm1, $before2 -> $after2 on vm2)"
fi
assert_ping c1 10.0.3.2 10
stop_nodes
phase_end

run_case symmetric  symmetric  relay keep

# ---- (5) on a relayed link: the new mappings make the TURN allocations unreachable; the nodes
# notice the silence, ask STUN again, allocate again and re-check.
phase_begin "conntrack -F on both NATs mid-ping (symmetric x symmetric, relay)"
flush_mid_ping "relayed link"
wait_for 10 both_up_on relay || fail "after the flush the link is not up on a relay path (vm1: $(link_path vm1 vm2); vm2: $(link_path vm2 vm1))"
stop_nodes
phase_end

run_case restricted restricted direct keep

# ---- (5) NAT mappings flushed mid-ping on a direct link (the relayed case is above)
phase_begin "conntrack -F on both NATs mid-ping (restricted x restricted, direct)"
flush_mid_ping "direct link"
assert_eq "$(link_path vm1 vm2 | cut -d' ' -f1-2)" "up direct" "after the flush the link is direct again"
phase_end

# ---- (4) the relay server goes away while a direct path exists: the link keeps working, direct
phase_begin "coturn stopped under a direct link"
stop_pid "$TURN_PID" 5
! kill -0 "$TURN_PID" 2>/dev/null || fatal "coturn still runs"
assert_eq "$(link_path vm1 vm2 | cut -d' ' -f1-2)" "up direct" "vm1 link still up and direct right after coturn stopped"
assert_loss_at_most c1 10.0.3.2 100 2
assert_loss_at_most c2 10.0.3.1 100 2
assert_eq "$(link_path vm1 vm2 | cut -d' ' -f1-2)" "up direct" "vm1: link up and direct with coturn gone"
assert_eq "$(link_path vm2 vm1 | cut -d' ' -f1-2)" "up direct" "vm2: link up and direct with coturn gone"
stop_nodes
phase_end

# ---------------------------------------------------------------- grid
echo
echo "NAT traversal grid: path vm1 picked for its link to vm2 (RTT measured by the connectivity checks)"
printf '  %-12s' "vm1 \\ vm2"
types=(full-cone restricted symmetric)
for t in "${types[@]}"; do printf '| %-22s' "$t"; done
echo
for a in "${types[@]}"; do
    printf '  %-12s' "$a"
    for b in "${types[@]}"; do printf '| %-22s' "${GRID[$a,$b]:-?}"; done
    echo
done
echo "  (full-cone = endpoint-independent mapping and filtering; restricted = port-restricted cone;"
echo "   symmetric = a mapping per destination. relay = through coturn's TURN relay.)"
echo
echo "timings: $(printf '%s; ' "${E2E_TIMINGS[@]}")"
