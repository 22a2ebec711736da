#!/usr/bin/env bash
# Discovery over XMPP (issue "Signalling and discovery over XMPP"): four switchmode nodes with NO
# static peers find each other through a private prosody and link all-to-all.
#
#   server (ns ipe<pid>-server)          VMn (ns ipe<pid>-vmN), N = 1..4, all alike
#  +---------------------------+       +--------------------------------------------+
#  | prosody 0.12, c2s + MUC   |       |  ipop node vmN (switchmode, udp 5800,      |
#  | 10.200.0.100:5222         |       |   xmpp client -> 10.200.0.100:5222)        |
#  | STARTTLS, private CA      |       |        |                                   |
#  | xmpp.ipop.test            |       |  [TAP ipop] -- lxcbr0 -- v-cN ... eth0 cN  |
#  | conference.xmpp.ipop.test |       |                              10.0.3.N/24   |
#  | ul0 10.200.0.100/24       |       |  ul0 10.200.0.N/24           MTU 1280      |
#  +------|--------------------+       +----|---------------------------------------+
#         | p-server                        | p-vmN
#  +------+---------------------------------+--------------------------------------+
#  |           bridge ulbr (ns ipe<pid>-ul): the underlay 10.200.0.0/24             |
#  +---------------------------------------------------------------------------------+
#
# Phase 1 (shared account): every node logs in as ipop@xmpp.ipop.test (each gets its own resource),
#   no room, no peers: within 30 s every node lists 3 links, all up (peer = the other node_name),
#   the four bound JIDs differ, and every container pings every other container (12 pairs).
# Phase 2 (separate accounts + MUC): the nodes stop (SIGTERM: TAP gone), log in again as node1..node4
#   and join lab@conference.xmpp.ipop.test: again 3 links up everywhere and all 12 pairs ping.
# Every phase prints "TIME: <phase> took X s".

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin
command -v prosody >/dev/null || fatal "prosody is not installed (apt-get install prosody)"

VMS=(vm1 vm2 vm3 vm4)
OV=lab
ROOM="lab@conference.xmpp.ipop.test"
LINK_TIMEOUT=${XMPP_LINK_TIMEOUT:-30}
declare -A CT=() CIP=()
for i in 1 2 3 4; do CT[vm$i]=c$i; CIP[vm$i]=10.0.3.$i; done

# ---- topology, server, accounts
phase_begin "setup (namespaces, prosody, accounts)"
make_underlay_switch ul
make_vm server
attach_vm_to_switch ul server 10.200.0.100
for i in 1 2 3 4; do make_lxc_vm ul "vm$i" "10.200.0.$i" "c$i" "10.0.3.$i"; done
xmpp_server_start server 10.200.0.100 5222
xmpp_register ipop ipop-shared-pw
for i in 1 2 3 4; do xmpp_register "node$i" "node$i-pw"; done
gen_keys "${VMS[@]}"
for vm in "${VMS[@]}"; do write_node_config "$vm" "$vm" 5800 "id=$OV tap=ipop bridge=lxcbr0"; done
pass "prosody listens on $XMPP_SERVER inside the server namespace (pid $XMPP_PID)"
if port_listening vm1 5222; then fail "a 5222 listener leaked into vm1's namespace"; fi
phase_end

# all_links_up N: every running node of VMS lists N links, all up.
all_links_up() { local vm; for vm in "${VMS[@]}"; do links_all_up "$vm" "$OV" "$1" || return 1; done; }

# check_mesh WHAT: the nodes link all-to-all within LINK_TIMEOUT; status names the peers; 12 pings.
check_mesh() {
    local what=$1 vm other t0 peers want
    t0=$(now_ms)
    for vm in "${VMS[@]}"; do wait_node_ready "$vm"; done
    if wait_for "$LINK_TIMEOUT" all_links_up 3; then
        pass "$what: every node has 3 links up ($(($(now_ms) - t0)) ms after the nodes answered)"
        echo "TIME: $what: all 12 link ends up after $(($(now_ms) - t0)) ms"
    else
        for vm in "${VMS[@]}"; do echo "  $vm: $(links_summary "$vm" "$OV")"; done
        fatal "$what: not every node has 3 links up within ${LINK_TIMEOUT}s"
    fi
    for vm in "${VMS[@]}"; do
        peers=$(status_value "$vm" '",".join(sorted(l["peer"] for l in overlay(a[0])["links"]))' "$OV")
        want=$(for other in "${VMS[@]}"; do [[ $other == "$vm" ]] || echo "$other"; done | paste -sd,)
        assert_eq "$peers" "$want" "$what: $vm's links are named after the other nodes"
    done
    t0=$(now_ms)
    for vm in "${VMS[@]}"; do
        for other in "${VMS[@]}"; do
            [[ $other == "$vm" ]] || assert_ping "${CT[$vm]}" "${CIP[$other]}" 10
        done
    done
    echo "TIME: $what: 12 container pairs pinged in $(($(now_ms) - t0)) ms"
}

# ---- phase 1: one shared account
phase_begin "1 shared account: start to full mesh + 12 pings"
for vm in "${VMS[@]}"; do
    xmpp_node_config "$vm" ipop ipop-shared-pw
    edit_node_config "$vm" 'assert c["overlays"][0]["peers"] == []'
    start_node "$vm"
done
check_mesh "shared account"
jids=$(for vm in "${VMS[@]}"; do grep -oE 'xmpp: connected as [^ ]+' "${NODE_LOG[$vm]}" | tail -n 1 | awk '{print $4}'; done | sort -u)
n=$(grep -c "^ipop@$XMPP_DOMAIN/" <<<"$jids" || true)
assert_eq "$n" 4 "shared account: four distinct resources of ipop@$XMPP_DOMAIN ($(paste -sd' ' <<<"$jids"))"
phase_end

# ---- phase 2: separate accounts and a MUC room
phase_begin "2 separate accounts + MUC: restart to full mesh + 12 pings"
for vm in "${VMS[@]}"; do
    stop_node "$vm" 5 || fail "$vm did not exit within 5 s of SIGTERM"
    if wait_for 5 bash -c "! ip -n $(ns "$vm") link show ipop >/dev/null 2>&1"; then :; else fail "$vm: TAP ipop still exists after exit"; fi
done
for i in 1 2 3 4; do
    xmpp_node_config "vm$i" "node$i" "node$i-pw" "$ROOM"
    start_node "vm$i"
done
check_mesh "MUC room"
for vm in "${VMS[@]}"; do
    if wait_log_count "$vm" "xmpp: joined room $ROOM" 1 5; then :; else fail "$vm: no 'joined room $ROOM' line"; fi
done
occupants=$(for vm in "${VMS[@]}"; do grep -oE "joined room $ROOM as [^ ]+" "${NODE_LOG[$vm]}" | tail -n 1 | awk '{print $NF}'; done | paste -sd' ')
assert_eq "$occupants" "vm1 vm2 vm3 vm4" "MUC: every node joined the room under its node_name"
phase_end

echo "timings: $(printf '%s; ' "${E2E_TIMINGS[@]}")"
