#!/usr/bin/env bash
# Standalone switchmode: no bridge, each node gives its own TAP an address (ip4/ip4_mask), so the two
# VMs themselves share the L2 segment 10.0.4.0/24.
#
#          VM1 (ns ipe<pid>-vm1)                     VM2 (ns ipe<pid>-vm2)
#  +------------------------------+          +------------------------------+
#  |  [TAP ipop] 10.0.4.1/24      |          |      [TAP ipop] 10.0.4.2/24  |
#  |       |                      |          |                      |       |
#  |   ipop node vm1 (udp 5800)   |          |   ipop node vm2 (udp 5800)   |
#  |       |                      |          |                      |       |
#  |  ul-vm2 10.200.0.1/24 ======underlay veth====== ul-vm1 10.200.0.2/24   |
#  +------------------------------+          +------------------------------+
#
# Asserts: links come up; the TAPs carry the configured address and MTU; 10.0.4.1 <-> 10.0.4.2 ping
# both ways (also a full-MTU DF ping, and 50 in a row without loss); the MAC tables map each remote
# TAP MAC to the peer's link; link counters moved; on the underlay there is nothing but UDP 5800 (and
# ARP) and a known ping payload never appears in clear there (while it does on the TAP); vm1's
# Prometheus endpoint (metrics_listen 127.0.0.1:9587, inside vm1) shows the link up with its bytes, and
# answers 404 elsewhere; SIGINT makes a node exit and remove its TAP.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2

gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop mtu=1280 ip4=10.0.4.1/24 peers=vm2@10.200.0.2:5800"
edit_node_config vm1 "c['metrics_listen'] = '127.0.0.1:9587'"
write_node_config vm2 vm2 5800 "id=lab tap=ipop mtu=1280 ip4=10.0.4.2/24 peers=vm1@10.200.0.1:5800"
start_linked_pair vm1 vm2 lab

tap_has_addr() { ip -n "$(ns "$1")" -4 -o addr show dev ipop | grep -q "inet $2 "; }

for pair in vm1:10.0.4.1/24 vm2:10.0.4.2/24; do
    vm=${pair%%:*} addr=${pair#*:}
    if tap_has_addr "$vm" "$addr"; then pass "$vm: TAP ipop has $addr"; else fail "$vm: TAP ipop lacks $addr"; fi
    assert_eq "$(on "$vm" cat /sys/class/net/ipop/mtu)" 1280 "$vm: TAP ipop MTU is 1280"
done

assert_ping vm1 10.0.4.2 10
assert_ping vm2 10.0.4.1 10
assert_ping vm1 10.0.4.2 5 -M do -s 1252
assert_no_loss vm2 10.0.4.1 50

assert_mac_on_link vm1 lab "$(mac_of vm2 ipop)" vm2 "remote TAP of vm2"
assert_mac_on_link vm2 lab "$(mac_of vm1 ipop)" vm1 "remote TAP of vm1"

counters_moved() {
    status_query "$1" 'all(link(a[0], a[1])[k] > 0 for k in ("rx_frames", "tx_frames", "rx_bytes", "tx_bytes"))' lab "$2"
}
for pair in vm1:vm2 vm2:vm1; do
    node=${pair%%:*} peer=${pair#*:}
    if counters_moved "$node" "$peer" >/dev/null; then
        pass "$node: link $peer counters rx/tx frames/bytes all > 0"
    else
        fail "$node: link $peer counters did not all move"
    fi
done

# -- Prometheus metrics: published once a second by the node, served by its HTTP endpoint
# http_get VM URL: prints "STATUS" then the body (python's urllib; no curl needed).
http_get() {
    on "$1" python3 -c '
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)' "$2"
}
metrics_ok() {
    local out; out=$(http_get vm1 http://127.0.0.1:9587/metrics)
    [[ $(sed -n 1p <<<"$out") == 200 ]] && grep -q '^ipop_link_up{overlay="lab",peer="vm2"} 1$' <<<"$out" &&
        grep -qE '^ipop_link_rx_bytes_total\{overlay="lab",peer="vm2"\} [1-9][0-9]*$' <<<"$out"
}
if wait_for 5 metrics_ok; then
    pass "vm1 /metrics: 200, ipop_link_up{overlay=\"lab\",peer=\"vm2\"} 1 and rx bytes > 0"
else
    fail "vm1 /metrics lacks the link (got: $(http_get vm1 http://127.0.0.1:9587/metrics | grep -E '^[0-9]+$|ipop_link_up' | paste -sd' '))"
fi
assert_eq "$(http_get vm1 http://127.0.0.1:9587/status | sed -n 1p)" 404 "vm1 answers 404 off /metrics"
if grep -q "metrics on http://127.0.0.1:9587/metrics" "${NODE_LOG[vm1]}"; then
    pass "vm1's start-up line names its metrics URL"
else
    fail "vm1's log does not name its metrics URL"
fi

# -- the underlay carries only the encrypted link: UDP 5800, never the overlay's plaintext
PATTERN_HEX=49504f50453245504c41494e54455854        # "IPOPE2EPLAINTEXT", ping repeats it in the payload
# (start_capture uses --immediate-mode: a buffered capture stopped early lost every packet under load.)
start_capture vm1 ul-vm2 "$E2E_TMP/ul.pcap" 20
ul_pid=$CAPTURE_PID
start_capture vm1 ipop "$E2E_TMP/tap.pcap" 20
tap_pid=$CAPTURE_PID
on vm1 ping -n -q -c 5 -i 0.1 -W 1 -s 200 -p "$PATTERN_HEX" 10.0.4.2 >/dev/null || true
stop_capture "$ul_pid"
stop_capture "$tap_pid"
has_plaintext() { python3 -c 'import sys; sys.exit(0 if b"IPOPE2EPLAINTEXT" in open(sys.argv[1], "rb").read() else 1)' "$1"; }
if has_plaintext "$E2E_TMP/tap.pcap"; then
    pass "positive control: the ping payload is visible in clear on vm1's TAP"
else
    fail "positive control: ping payload not seen on vm1's TAP (capture broken?)"
fi
if has_plaintext "$E2E_TMP/ul.pcap"; then
    fail "the overlay's plaintext ping payload appears on the underlay (not encrypted)"
else
    pass "the ping payload never appears in clear on the underlay"
fi
ul_udp=$(tcpdump -r "$E2E_TMP/ul.pcap" -n 'udp port 5800' 2>/dev/null | grep -c '^[0-9]' || true)
ul_other=$(tcpdump -r "$E2E_TMP/ul.pcap" -n 'not (udp port 5800) and not arp' 2>/dev/null | grep -c '^[0-9]' || true)
if ((ul_udp >= 5 && ul_other == 0)); then
    pass "underlay: $ul_udp UDP 5800 datagrams, nothing else"
else
    fail "underlay: $ul_udp UDP 5800 datagrams (want >= 5), $ul_other other frames (want 0)"
fi

# -- SIGINT, like Ctrl-C on a foreground daemon
kill -INT "${NODE_PID[vm1]}"
if wait_for 5 eval '! kill -0 "${NODE_PID[vm1]}"'; then
    wait "${NODE_PID[vm1]}" && rc=0 || rc=$?
    pass "vm1 exited within 5 s of SIGINT (exit code $rc)"
else
    fail "vm1 still running 5 s after SIGINT"
fi
if dev_exists vm1 ipop; then fail "vm1: TAP ipop still exists after SIGINT"; else pass "vm1: TAP ipop removed after SIGINT"; fi
