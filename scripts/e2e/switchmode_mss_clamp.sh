#!/usr/bin/env bash
# TCP MSS clamping: containers with MTU 1500 on a bridge whose overlay carries only 1280. Their TCP
# would send 1460-byte segments the bridge cannot pass to the TAP (the MTU black hole users hit most);
# the nodes lower the MSS option of every SYN and SYN-ACK crossing the overlay to 1240 (clamp_mss,
# on by default), so TCP just works. Then the same with "clamp_mss": 0 on both nodes, where the
# second line of defence (ICMP fragmentation-needed answers, path MTU discovery) has to do it.
#
#          VM1 (ns ipe<pid>-vm1)                     VM2 (ns ipe<pid>-vm2)
#  +------------------------------+          +------------------------------+
#  |   c1 10.0.7.1                |          |                c3 10.0.7.3   |
#  |   eth0 mtu 1500              |          |             eth0 mtu 1500    |
#  |      |v-c1                   |          |                 |v-c3        |
#  |   +--+----------+            |          |        +--------+--+         |
#  |   |   lxcbr0    |            |          |        |   lxcbr0   |         |
#  |   +------+------+            |          |        +------+-----+         |
#  |    [TAP ipop] mtu 1280       |          |       [TAP ipop] mtu 1280     |
#  |   ipop node vm1 (udp 5800)   |          |   ipop node vm2 (udp 5800)   |
#  |  ul-vm2 10.200.0.1/24 ======underlay veth====== ul-vm1 10.200.0.2/24   |
#  +------------------------------+          +------------------------------+
#
# Asserts, clamping on: the SYN c3 receives and the SYN-ACK c1 receives carry MSS 1240 (sent as
# 1460); 1 MB each way over nc arrives intact; both nodes count clamped SYNs (status counters
# "mssClamped"). Clamping off: the SYN arrives with MSS 1460 and nothing is clamped, yet 1 MB still
# arrives: vm1 answers the oversized frames the bridge passes (TSO bursts) with ICMP fragmentation-
# needed (icmpTooBigSent) and c1's kernel caches path MTU 1280 for c3.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

declare -A IP=([c1]=10.0.7.1 [c3]=10.0.7.3)

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2
make_bridge vm1 lxcbr0
make_bridge vm2 lxcbr0
make_container vm1 c1 "${IP[c1]}" lxcbr0 1500
make_container vm2 c3 "${IP[c3]}" lxcbr0 1500
gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop mtu=1280 bridge=lxcbr0 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop mtu=1280 bridge=lxcbr0 peers=vm1@10.200.0.1:5800"
start_linked_pair vm1 vm2 lab
assert_ping c1 "${IP[c3]}" 10

clamped() { status_value "$1" 'overlay(a[0])["counters"]["mssClamped"]' lab; }

# transfer FROM TO SECONDS: 1 MB of random bytes from container FROM to TO with nc, bounded;
# returns 0 if it arrived intact.
transfer() {
    local from=$1 to=$2 secs=$3 port=5001 src="$E2E_TMP/blob-$1" dst="$E2E_TMP/blob-$1-at-$2" rx_pid
    head -c 1048576 /dev/urandom >"$src"
    rm -f "$dst"
    spawn "$to" "$dst" "$dst.err" timeout $((secs + 2)) nc -l "$port"
    rx_pid=$SPAWNED_PID
    wait_for 5 port_listening "$to" "$port" || { fail "$to: nc listener on :$port did not start"; return 1; }
    on "$from" timeout "$secs" nc -N -w "$secs" "${IP[$to]}" "$port" <"$src" || true
    wait "$rx_pid" 2>/dev/null || true
    [[ "$(sha256sum <"$src" | cut -d' ' -f1)" == "$(sha256sum <"$dst" 2>/dev/null | cut -d' ' -f1)" ]]
}

# syn_mss PCAP FLAGS: the MSS option of the first segment whose SYN/ACK flags are FLAGS ("syn" or
# "synack"), or "none".
syn_mss() {
    local filter='tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn'
    [[ $2 == synack ]] && filter='tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)'
    local out; out=$({ tcpdump -n -v -r "$1" "$filter" 2>/dev/null || true; } | grep -o 'mss [0-9]*' | sed -n 1p)
    echo "${out#mss }"
}

# ---------------------------------------------------------------- clamping on (the default)
start_capture c3 eth0 "$E2E_TMP/c3-on.pcap" 60 tcp port 5001
capture_c3=$CAPTURE_PID
start_capture c1 eth0 "$E2E_TMP/c1-on.pcap" 60 tcp port 5001
capture_c1=$CAPTURE_PID
if transfer c1 c3 30; then
    pass "clamping on: 1 MB c1 -> c3 (MTU 1500 containers, overlay 1280) arrived intact"
else
    fail "clamping on: 1 MB c1 -> c3 did not arrive intact"
fi
stop_capture "$capture_c3"
stop_capture "$capture_c1"
assert_eq "$(syn_mss "$E2E_TMP/c3-on.pcap" syn)" 1240 "c3 receives c1's SYN with MSS 1240 (c1 sent 1460)"
assert_eq "$(syn_mss "$E2E_TMP/c1-on.pcap" synack)" 1240 "c1 receives c3's SYN-ACK with MSS 1240 (c3 sent 1460)"
if transfer c3 c1 30; then
    pass "clamping on: 1 MB c3 -> c1 arrived intact"
else
    fail "clamping on: 1 MB c3 -> c1 did not arrive intact"
fi
assert_between "$(clamped vm1)" 2 10 "vm1 counts the SYN and SYN-ACK it clamped (mssClamped)"
assert_between "$(clamped vm2)" 2 10 "vm2 counts the SYN and SYN-ACK it clamped (mssClamped)"

# ---------------------------------------------------------------- clamping off
stop_node vm1
stop_node vm2
edit_node_config vm1 'c["overlays"][0]["clamp_mss"] = 0'
edit_node_config vm2 'c["overlays"][0]["clamp_mss"] = 0'
start_linked_pair vm1 vm2 lab
assert_ping c1 "${IP[c3]}" 10
start_capture c3 eth0 "$E2E_TMP/c3-off.pcap" 40 tcp port 5001
# Without clamping, c1 sends 1460-byte segments. The bridge drops single ones (larger than the TAP's
# MTU) but passes TSO bursts to the TAP, whose frames the node answers with ICMP "fragmentation
# needed" (mtu 1280): c1's kernel learns the path MTU and TCP recovers, later and by the second line
# of defence. (Without either, this is the black hole: every 1460-byte segment is lost.)
if transfer c1 c3 20; then
    pass "clamping off: 1 MB c1 -> c3 still arrives, by path MTU discovery"
else
    fail "clamping off: 1 MB c1 -> c3 did not arrive (no ICMP answer taught c1 the MTU?)"
fi
stop_capture "$CAPTURE_PID"
assert_eq "$(syn_mss "$E2E_TMP/c3-off.pcap" syn)" 1460 "clamping off: c3 receives c1's SYN with MSS 1460, unchanged"
assert_eq "$(clamped vm1)" 0 "clamping off: vm1 clamped nothing"
assert_between "$(status_value vm1 'overlay(a[0])["counters"]["icmpTooBigSent"]' lab)" 1 100 \
    "clamping off: vm1 answered oversized frames from the bridge with ICMP fragmentation-needed"
if on c1 ip route get "${IP[c3]}" | grep -q 'mtu 1280'; then
    pass "clamping off: c1's kernel cached path MTU 1280 for c3 (ip route get)"
else
    fail "clamping off: c1 has no path MTU for c3: $(on c1 ip route get "${IP[c3]}" | tr '\n' ' ')"
fi
