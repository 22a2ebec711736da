#!/usr/bin/env bash
# MTU mismatch, the overlay black hole users hit most: vm1's overlay says mtu 1400, vm2's 1280.
# Small frames pass; a frame vm2 cannot take is dropped, counted and answered with ICMP "too big" so
# the sender learns the MTU, and vm2 says why in ONE log line (rate-limited: at most one per minute
# per overlay), instead of failing silently.
#
#          VM1 (ns ipe<pid>-vm1)                     VM2 (ns ipe<pid>-vm2)
#  +------------------------------+          +------------------------------+
#  |  [TAP ipop] 10.0.6.1/24      |          |      [TAP ipop] 10.0.6.2/24  |
#  |   mtu 1400                   |          |                   mtu 1280   |
#  |   ipop node vm1 (udp 5800)   |          |   ipop node vm2 (udp 5800)   |
#  |  ul-vm2 10.200.0.1/24 ======underlay veth====== ul-vm1 10.200.0.2/24   |
#  +------------------------------+          +------------------------------+
#
# Asserts: a plain ping passes; pings of 1400-byte IP packets (DF) from vm1 get no echo reply; vm2
# counts them as dropTooBig and answers with ICMP "fragmentation needed" (mtu 1280) over the link, so
# vm1's kernel caches the path MTU and ping reports it; 1400-byte pings that may be fragmented then
# get through; vm2 logged exactly one warning naming the overlay, its mtu and the remedy, however
# many oversized frames came.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2
gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop mtu=1400 ip4=10.0.6.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop mtu=1280 ip4=10.0.6.2/24 peers=vm1@10.200.0.1:5800"
start_linked_pair vm1 vm2 lab
assert_ping vm1 10.0.6.2 10

too_big() { status_value vm2 'overlay(a[0])["counters"]["dropTooBig"]' lab; }
answered() { status_value vm2 'overlay(a[0])["counters"]["icmpTooBigSent"]' lab; }
before=$(too_big)
WARN='overlay lab: [0-9]+ frame\(s\) larger than mtu 1280 dropped; every node of the overlay needs the same mtu'
# 1372 bytes of payload + 28 = 1400-byte IP packets: fit vm1's TAP, not vm2's.
out=$(on vm1 ping -n -c 5 -i 0.3 -W 1 -s 1372 -M do 10.0.6.2 2>&1) && ok=1 || ok=0
if ((ok)); then
    fail "1400-byte pings crossed into an overlay with mtu 1280"
else
    pass "1400-byte pings from vm1 get no echo reply from vm2 (mtu 1280)"
fi
after=$(too_big)
assert_between "$((after - before))" 1 100 "vm2 counts the oversized frames as dropTooBig"
# vm2 answered with ICMP "fragmentation needed" over the link: vm1's kernel learned the MTU, and
# ping says so instead of timing out silently.
assert_between "$(answered)" 1 20 "vm2 answered with ICMP fragmentation-needed (icmpTooBigSent)"
if grep -qiE 'frag needed.*mtu = 1280|message too long, mtu ?= ?1280' <<<"$out"; then
    pass "ping on vm1 reports the overlay's mtu: $(grep -oiE 'frag needed[^)]*\)|message too long, mtu ?= ?1280' <<<"$out" | sed -n 1p)"
else
    fail "ping on vm1 does not report mtu 1280: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
fi
if on vm1 ip route get 10.0.6.2 | grep -q 'mtu 1280'; then
    pass "vm1's kernel cached path MTU 1280 for 10.0.6.2 (ip route get)"
else
    fail "vm1's kernel has no path MTU for 10.0.6.2: $(on vm1 ip route get 10.0.6.2 | tr '\n' ' ')"
fi
# With fragmentation allowed, the same 1400-byte pings now get through (cut to the learned MTU).
assert_ping vm1 10.0.6.2 5 -M dont -s 1372
if wait_log_count vm2 "$WARN" 1 5; then
    pass "vm2 logs why: $(grep -oE "$WARN" "${NODE_LOG[vm2]}" | sed -n '1p')"
else
    fail "vm2 did not log a warning about frames larger than its mtu"
fi
on vm1 ip route flush cache
on vm1 ping -n -q -c 5 -i 0.3 -W 1 -s 1372 -M do 10.0.6.2 >/dev/null 2>&1 || true
sleep 2   # two housekeeping rounds
assert_between "$(( $(too_big) - after ))" 1 100 "after vm1 forgot the MTU, vm2 drops oversized frames again"
assert_eq "$(log_count vm2 "$WARN")" 1 "one warning line, not one per frame (rate-limited)"
assert_ping vm1 10.0.6.2 5
