#!/usr/bin/env bash
# L3 mode with discovery over XMPP (issues "L3 mode" and "Signalling and discovery over XMPP"): the
# nodes list no peers and no peer addresses; each announces its overlay addresses in its presence,
# and the others install them as routes, as IPOP exchanged each node's virtual IP.
#
#   server (ns ipe<pid>-server)          VMn (ns ipe<pid>-vmN), N = 1..3 (and 4, the impostor)
#  +---------------------------+       +---------------------------------------------+
#  | prosody, c2s + MUC        |       |  ipop node vmN, overlay "l3" (switchmode 0)  |
#  | 10.200.0.100:5222         |       |  [TAP ipop] 10.10.0.N/24, fd00:10::N/64      |
#  | room l3@conference...     |       |  xmpp: nodeN@xmpp.ipop.test in the room      |
#  | ul0 10.200.0.100/24       |       |  ul0 10.200.0.N/24                           |
#  +------|--------------------+       +----|----------------------------------------+
#         |                                 |
#  +------+---------------------------------+--------------------------------------+
#  |           bridge ulbr (ns ipe<pid>-ul): the underlay 10.200.0.0/24             |
#  +---------------------------------------------------------------------------------+
#
# 1. vm1..vm3 find each other in the room and link all-to-all; every status route table maps the two
#    other nodes' announced 10.10.0.N and fd00:10::N to their links; all 6 pairs ping on IPv4, and
#    vm1 pings the others on IPv6.
# 2. vm4 joins announcing 10.10.0.2, which vm2 holds: vm1 refuses it (its log names vm2 as the
#    holder), 10.10.0.2 still reaches vm2, and vm4's own IPv6 address (unique) is not routed either
#    (nothing of a refused announcement is installed).
# 3. vm5 joins the room with overlay "l3" in switchmode (no addresses in its presence): vm1 warns
#    once that vm5 announces no overlay address, however often vm5's presence comes.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin
command -v prosody >/dev/null || fatal "prosody is not installed (apt-get install prosody)"

OV=l3
ROOM="l3@conference.xmpp.ipop.test"
VMS=(vm1 vm2 vm3)

phase_begin "setup (namespaces, prosody, accounts)"
make_underlay_switch ul
make_vm server
attach_vm_to_switch ul server 10.200.0.100
for i in 1 2 3 4 5; do make_vm "vm$i"; attach_vm_to_switch ul "vm$i" "10.200.0.$i"; done
xmpp_server_start server 10.200.0.100 5222
for i in 1 2 3 4 5; do xmpp_register "node$i" "node$i-pw"; done
gen_keys vm1 vm2 vm3 vm4 vm5
for i in 1 2 3 4; do
    addr=$i
    [[ $i == 4 ]] && addr=2   # the impostor claims vm2's IPv4 address
    write_node_config "vm$i" "vm$i" 5800 "id=$OV tap=ipop"
    edit_node_config "vm$i" "o = c['overlays'][0]" "o['switchmode'] = 0" "o['ip4'] = '10.10.0.$addr'" \
        "o['ip4_mask'] = 24" "o['ip6'] = 'fd00:10::$i'" "o['ip6_prefix_len'] = 64"
    xmpp_node_config "vm$i" "node$i" "node$i-pw" "$ROOM"
done

write_node_config vm5 vm5 5800 "id=$OV tap=ipop ip4=10.10.0.5/24"   # switchmode: announces no address
xmpp_node_config vm5 node5 node5-pw "$ROOM"
phase_end

phase_begin "1 three L3 nodes, addresses from presence"
for vm in "${VMS[@]}"; do start_node "$vm"; done
for vm in "${VMS[@]}"; do wait_node_ready "$vm"; done
all3() { local vm; for vm in "${VMS[@]}"; do links_all_up "$vm" "$OV" 2 || return 1; done; }
if wait_for 30 all3; then
    pass "vm1..vm3: 2 links up each"
else
    for vm in "${VMS[@]}"; do echo "  $vm: $(links_summary "$vm" "$OV")"; done
    fatal "no full mesh within 30 s"
fi
route_of() { status_value "$1" 'next((r["peer"] for r in overlay(a[0])["routes"] if r["prefix"].split("/")[0] == a[1]), "none")' "$OV" "$2"; }
for i in 1 2 3; do
    for j in 1 2 3; do
        ((i == j)) && continue
        # The routes appear with the presence, which may trail the link by a moment.
        wait_for 10 eval '[[ $(route_of vm'$i' 10.10.0.'$j') == vm'$j' ]]' || true
        assert_eq "$(route_of "vm$i" "10.10.0.$j")" "vm$j" "vm$i routes 10.10.0.$j (announced) to vm$j"
        assert_eq "$(route_of "vm$i" "fd00:10::$j")" "vm$j" "vm$i routes fd00:10::$j (announced) to vm$j"
    done
done
for i in 1 2 3; do
    for j in 1 2 3; do ((i == j)) || assert_ping "vm$i" "10.10.0.$j" 10; done
done
assert_ping vm1 fd00:10::2 10
assert_ping vm1 fd00:10::3 10
phase_end

phase_begin "2 an impostor announces vm2's address"
start_node vm4
wait_node_ready vm4
if wait_log_count vm1 'routes of vm4 refused: 10\.10\.0\.2 is already held by vm2' 1 30; then
    pass "vm1 refuses vm4's 10.10.0.2 and names the holder vm2 in its log"
else
    fail "vm1 did not log a refusal of vm4's routes within 30 s"
    grep -E "vm4" "${NODE_LOG[vm1]}" | tail -n 5 | sed 's/^/    vm1 log: /'
fi
assert_eq "$(route_of vm1 10.10.0.2)" vm2 "vm1 still routes 10.10.0.2 to vm2"
assert_eq "$(route_of vm1 fd00:10::4)" none "vm1 routes nothing to vm4 (its whole announcement refused)"
assert_no_loss vm1 10.10.0.2 10
phase_end

phase_begin "3 a node without an address in the L3 overlay"
NOADDR='overlay l3: vm5 announces no IPv4 overlay address'
start_node vm5
wait_node_ready vm5
if wait_log_count vm1 "$NOADDR" 1 30; then
    pass "vm1 warns: $(grep -oE "$NOADDR.*" "${NODE_LOG[vm1]}" | sed -n '1p')"
else
    fail "vm1 did not warn about vm5's missing address within 30 s"
fi
sleep 3
assert_eq "$(log_count vm1 "$NOADDR")" 1 "vm1 warned once, not per presence"
phase_end
