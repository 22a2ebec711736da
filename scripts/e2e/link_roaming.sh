#!/usr/bin/env bash
# Roaming: vm2's underlay address changes four times while both daemons keep running. vm2 knows
# vm1's endpoint; vm1 must learn vm2's new address (and port) from vm2's authenticated packets.
#
#          VM1                                        VM2 (the roamer, keepalive_s 3)
#  +---------------------------+              +---------------------------------------------+
#  | [TAP ipop] 10.0.7.1/24    |              | [TAP ipop] 10.0.7.2/24                      |
#  |  node vm1 udp 5800        |              |  node vm2 udp 5800                          |
#  |  peer vm2 @10.200.0.2:5800|              |  peer vm1 @10.200.0.1:5800                  |
#  |                           |              |  A: ul0 10.200.0.2  -> 10.200.0.12          |
#  |                           |              |  B: ul0 10.200.0.12 -> 10.200.0.22          |
#  |                           |              |  C: ul0 down; ul1 10.200.0.23, nft snat     |
#  |                           |              |     udp sport 5800 -> 40000 on ul1         |
#  |                           |              |  D: ul1 down; ul0 10.200.0.2 again          |
#  | ul0 10.200.0.1/24         |              |     ul0                    ul1              |
#  +------------+--------------+              +------+----------------------+---------------+
#               |                                    |                      |
#  =============+====================================+======================+=========
#                  underlay switch (ns ipe<pid>-ul, bridge ulbr), 10.200.0.0/24
#
# Asserts after each move: vm1's status shows vm2's new endpoint (address:port) within a few seconds,
# pings work both ways, the link stays up; A and C with vm2 talking first (a ping from vm2), B and D
# with vm2 not starting anything (vm1 pings into the void; the first authenticated packet from the new
# address is vm2's keepalive, due 3 s after its last packet, or a unicast ARP probe of vm2's kernel).
# Neither daemon restarts.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

make_underlay_switch ul
make_vm vm1
make_vm vm2
attach_vm_to_switch ul vm1 10.200.0.1
attach_vm_to_switch ul vm2 10.200.0.2
# vm2's second underlay port, unused until move C.
ip link add ul1 netns "$(ns vm2)" type veth peer name p-vm2b netns "$(ns ul)"
ip -n "$(ns ul)" link set p-vm2b master ulbr up

gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop ip4=10.0.7.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop ip4=10.0.7.2/24 peers=vm1@10.200.0.1:5800"
edit_node_config vm2 'c["keepalive_s"] = 3'
start_linked_pair vm1 vm2 lab
assert_ping vm1 10.0.7.2 10
assert_ping vm2 10.0.7.1 10
assert_eq "$(link_field vm1 lab vm2 endpoint)" "10.200.0.2:5800" "vm1: endpoint of vm2 before roaming"
pid1=${NODE_PID[vm1]} pid2=${NODE_PID[vm2]}

endpoint_is() { [[ "$(link_field "$1" lab "$2" endpoint)" == "$3" ]]; }

# expect_endpoint WHAT WANT TIMEOUT: vm1 shows vm2 at WANT within TIMEOUT seconds of the move.
expect_endpoint() {
    local what=$1 want=$2 timeout=$3 t0=$SECONDS
    if wait_for "$timeout" endpoint_is vm1 vm2 "$want"; then
        pass "$what: vm1 shows vm2's endpoint $want ($((SECONDS - t0)) s)"
    else
        fail "$what: vm1 still shows vm2 at '$(link_field vm1 lab vm2 endpoint)' ${timeout}s after the move, want $want"
    fi
}

# after_move WHAT: the link is still up on both sides, no loss either way, nobody restarted.
after_move() {
    local what=$1
    assert_loss_at_most vm1 10.0.7.2 20 0
    assert_loss_at_most vm2 10.0.7.1 20 0
    if link_is_up vm1 lab vm2 >/dev/null && link_is_up vm2 lab vm1 >/dev/null; then
        pass "$what: link up on both sides (vm1 last_handshake_s $(link_field vm1 lab vm2 last_handshake_s))"
    else
        fail "$what: link not up on both sides"
    fi
}

# ---- A: new address on the same port, vm2 speaks first
ip -n "$(ns vm2)" addr del 10.200.0.2/24 dev ul0
ip -n "$(ns vm2)" addr add 10.200.0.12/24 dev ul0
assert_ping vm2 10.0.7.1 5
expect_endpoint "A (address change, roamer active)" 10.200.0.12:5800 3
after_move A

# ---- B: new address again; vm2 stays silent, vm1 keeps pinging into the void until vm2's keepalive
spawn vm1 "$E2E_TMP/ping-b.out" /dev/null timeout 25 ping -n -q -i 0.2 -c 60 -W 1 10.0.7.2
ping_b=$SPAWNED_PID
sleep 1
ip -n "$(ns vm2)" addr del 10.200.0.12/24 dev ul0
ip -n "$(ns vm2)" addr add 10.200.0.22/24 dev ul0
expect_endpoint "B (address change, roamer silent, keepalive 3 s)" 10.200.0.22:5800 8
assert_ping vm1 10.0.7.2 3
wait "$ping_b" || true    # bounded: 60 pings, and timeout 25
stop_pid "$ping_b" 1
received=$(grep -o '[0-9]* received' "$E2E_TMP/ping-b.out" | grep -o '^[0-9]*' || echo 0)
# 60 pings 0.2 s apart; vm2's keepalive is due 3 s after its last packet, so ~15 are lost. None lost
# would mean the move did not cut the path (the test proved nothing); more than 25, a slow recovery.
assert_between $((60 - received)) 1 25 "B: pings lost by the continuous vm1 -> vm2 ping across the move"
after_move B

# ---- C: another veth and a source NAT that rewrites vm2's port 5800 to 40000; vm2 speaks first
on vm2 nft -f - <<'NFT'
table ip roam {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "ul1" udp sport 5800 snat to 10.200.0.23:40000
    }
}
NFT
ip -n "$(ns vm2)" addr flush dev ul0
ip -n "$(ns vm2)" link set ul0 down
ip -n "$(ns vm2)" addr add 10.200.0.23/24 dev ul1
ip -n "$(ns vm2)" link set ul1 up
assert_ping vm2 10.0.7.1 5
expect_endpoint "C (other veth, NAT port 40000, roamer active)" 10.200.0.23:40000 3
after_move C

# ---- D: back to the first veth and the original address; vm2 silent
ip -n "$(ns vm2)" addr flush dev ul1
ip -n "$(ns vm2)" link set ul1 down
on vm2 nft delete table ip roam
ip -n "$(ns vm2)" link set ul0 up
ip -n "$(ns vm2)" addr add 10.200.0.2/24 dev ul0
expect_endpoint "D (back to the original address, roamer silent)" 10.200.0.2:5800 8
assert_ping vm1 10.0.7.2 3
after_move D

# No restart, no second instance.
if [[ ${NODE_PID[vm1]} == "$pid1" && ${NODE_PID[vm2]} == "$pid2" ]] && node_alive vm1 && node_alive vm2; then
    pass "both daemons ran throughout (pids $pid1, $pid2)"
else
    fail "a daemon exited during the roaming"
fi
for n in vm1 vm2; do
    ups=$(grep -c "link .* up" "${NODE_LOG[$n]}" || true)
    echo "info: $n logged $ups 'link up' line(s); status: $(link_field "$n" lab "$([[ $n == vm1 ]] && echo vm2 || echo vm1)" dropped)"
done
