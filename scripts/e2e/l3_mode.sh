#!/usr/bin/env bash
# L3 mode (IPOP's default, switchmode 0): overlay IP addresses mapped to links, ARP and IPv6
# neighbour solicitations answered by the node itself, a LAN prefix routed behind one node, and an
# L3 overlay beside a switchmode overlay on the same nodes.
#
#                      underlay bridge (ns "ul"), 10.200.0.0/24
#        +--------------------+--------------------+
#   vm1 10.200.0.1        vm2 10.200.0.2        vm3 10.200.0.3
#   ipop  10.10.0.1/24    ipop  10.10.0.2/24    ipop  10.10.0.3/24      overlay "l3"  (switchmode 0)
#         fd50::1/64            fd50::2/64            fd50::3/64
#   ipsw  10.20.0.1/24    ipsw  10.20.0.2/24                           overlay "sw"  (switchmode 1)
#    |
#   lan1 192.168.10.0/24 behind vm1 (vm1 routes for it: peers list it in vm1's "subnets")
#   host 192.168.10.5
set -euo pipefail
source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

make_underlay_switch ul
for i in 1 2 3; do make_vm vm$i; attach_vm_to_switch ul vm$i 10.200.0.$i; done
for i in 1 2 3; do on vm$i sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0; done

# The LAN behind vm1.
make_netns lanhost
ip link add lan0 netns "$(ns vm1)" type veth peer name eth0 netns "$(ns lanhost)"
on vm1 ip addr add 192.168.10.1/24 dev lan0; on vm1 ip link set lan0 up
on lanhost ip addr add 192.168.10.5/24 dev eth0; on lanhost ip link set eth0 up
on lanhost ip route add default via 192.168.10.1
on vm1 sysctl -qw net.ipv4.ip_forward=1

gen_keys vm1 vm2 vm3
# l3_config NODE INDEX WITH_SW: writes the node's config (L3 overlay to all others, optional switchmode overlay).
l3_config() {
    local node=$1 idx=$2 with_sw=$3
    E2E_NODES+=("$node")
    NODE_NS[$node]=$(ns "$node"); NODE_CONF[$node]="$E2E_TMP/$node.json"
    NODE_SOCK[$node]="$E2E_TMP/$node.sock"; NODE_LOG[$node]="$E2E_TMP/$node.log"; NODE_PORT[$node]=5800
    python3 - "$node" "$idx" "$with_sw" "$E2E_TMP/keys" "${NODE_SOCK[$node]}" >"${NODE_CONF[$node]}" <<'PY'
import json, sys
node, idx, with_sw, keys, sock = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
key = lambda n, e: open(f"{keys}/{n}.{e}").read().strip()
peers = []
for j in (1, 2, 3):
    if j == idx: continue
    p = {"name": f"vm{j}", "public_key": key(f"vm{j}", "pub"), "endpoint": f"10.200.0.{j}:5800",
         "ip4": f"10.10.0.{j}", "ip6": f"fd50::{j}"}
    if j == 1: p["subnets"] = ["192.168.10.0/24"]
    peers.append(p)
overlays = [{"id": "l3", "switchmode": 0, "tap_name": "ipop", "ip4": f"10.10.0.{idx}", "ip4_mask": 24,
             "ip6": f"fd50::{idx}", "ip6_prefix_len": 64, "peers": peers}]
if with_sw:
    other = 2 if idx == 1 else 1
    overlays.append({"id": "sw", "switchmode": 1, "tap_name": "ipsw", "ip4": f"10.20.0.{idx}", "ip4_mask": 24,
                     "peers": [{"name": f"vm{other}", "public_key": key(f"vm{other}", "pub"), "endpoint": f"10.200.0.{other}:5800"}]})
json.dump({"node_name": node, "private_key": key(node, "key"), "control_socket": sock,
           "log_level": "debug", "overlays": overlays}, sys.stdout, indent=2)
PY
}
l3_config vm1 1 1; l3_config vm2 2 1; l3_config vm3 3 0
for n in vm1 vm2 vm3; do start_node $n; done
for n in vm1 vm2 vm3; do wait_node_ready $n; done
wait_link_up vm1 l3 vm2; wait_link_up vm1 l3 vm3; wait_link_up vm2 l3 vm3

log "IPv4 and IPv6 across the L3 overlay, every pair"
for a in 1 2 3; do for b in 1 2 3; do
    [ $a = $b ] && continue
    assert_ping vm$a 10.10.0.$b 10
    assert_ping vm$a fd50::$b 10
done; done

log "the kernel's neighbour entries point at the node's virtual MAC (ARP answered locally)"
got=$(on vm2 ip neigh show 10.10.0.1 dev ipop | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2 || true)
assert_eq "$got" "02:69:70:6f:70:01" "vm2's ARP entry for 10.10.0.1 is the virtual MAC"

log "route table in status"
if status_query vm2 'any(r["prefix"].startswith("192.168.10.0/24") and r["peer"] == "vm1" for r in overlay("l3")["routes"])' >/dev/null; then
    pass "vm2 status: 192.168.10.0/24 -> vm1"
else fail "vm2 status has no route 192.168.10.0/24 -> vm1"; fi

log "a LAN prefix behind vm1 is reachable from vm2 and vm3"
on vm2 ip route add 192.168.10.0/24 dev ipop
on vm3 ip route add 192.168.10.0/24 dev ipop
assert_ping vm2 192.168.10.5 10
assert_ping vm3 192.168.10.5 10

log "10 MB across intact (vm3 -> vm2)"
head -c 10000000 /dev/urandom >"$E2E_TMP/blob"
want=$(sha256sum <"$E2E_TMP/blob" | cut -d' ' -f1)
spawn vm2 "$E2E_TMP/recv" "$E2E_TMP/recv.err" nc -l -p 7000
rx_pid=$SPAWNED_PID
wait_for 5 port_listening vm2 7000 || true
on vm3 timeout 60 nc -q 1 -w 10 10.10.0.2 7000 <"$E2E_TMP/blob" || true
wait_for 10 bash -c "! kill -0 $rx_pid 2>/dev/null" || true
got=$(sha256sum <"$E2E_TMP/recv" | cut -d' ' -f1)
assert_eq "$got" "$want" "10 MB file arrives intact over the L3 overlay"

log "10 MB across intact over IPv6 (vm2 -> vm3; TCP segments coalesced into GSO writes on the way in)"
spawn vm3 "$E2E_TMP/recv6" "$E2E_TMP/recv6.err" nc -6 -l -p 7001
rx_pid=$SPAWNED_PID
wait_for 5 port_listening vm3 7001 || true
on vm2 timeout 60 nc -q 1 -w 10 fd50::3 7001 <"$E2E_TMP/blob" || true
wait_for 10 bash -c "! kill -0 $rx_pid 2>/dev/null" || true
got=$(sha256sum <"$E2E_TMP/recv6" | cut -d' ' -f1)
assert_eq "$got" "$want" "10 MB file arrives intact over IPv6 on the L3 overlay"

log "an unknown destination is dropped and counted, not flooded, and answered with ICMP unreachable"
out=$(on vm1 ping -n -c 2 -W 1 10.10.0.77 2>&1) || true
if status_query vm1 'overlay("l3")["counters"].get("dropNoRoute", 0) > 0' >/dev/null; then
    pass "vm1 counts packets to 10.10.0.77 as dropNoRoute"
else fail "vm1 did not count dropNoRoute"; fi
if grep -q 'From 10.10.0.77 .*Destination Host Unreachable' <<<"$out"; then
    pass "ping 10.10.0.77 says at once: $(grep -m1 -o 'From 10.10.0.77 .*Destination Host Unreachable' <<<"$out")"
else fail "ping 10.10.0.77 got no host-unreachable answer: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
out=$(on vm1 ping -6 -n -c 2 -W 1 fd50::77 2>&1) || true
if grep -qi 'From fd50::77 .*Destination unreachable: Address unreachable' <<<"$out"; then
    pass "ping fd50::77 says: $(grep -m1 -io 'From fd50::77 .*Address unreachable' <<<"$out")"
else fail "ping fd50::77 got no address-unreachable answer: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"; fi
assert_between "$(status_value vm1 'overlay("l3")["counters"]["icmpUnreachableSent"]')" 4 4 "vm1 sent one ICMP unreachable per ping (icmpUnreachableSent)"

log "an L3 overlay and a switchmode overlay side by side on vm1 and vm2"
wait_link_up vm1 sw vm2
assert_ping vm1 10.20.0.2 10
assert_ping vm2 10.20.0.1 10
if status_query vm1 'overlay("sw")["mode"] == "switchmode" and overlay("l3")["mode"] == "l3"' >/dev/null; then
    pass "vm1 status shows modes l3 and switchmode"
else fail "vm1 status modes wrong"; fi
