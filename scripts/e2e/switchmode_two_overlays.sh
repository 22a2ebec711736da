#!/usr/bin/env bash
# Two overlays between the same two nodes, over the same UDP port and the same peers: overlay "a"
# (TAP ipopa, 10.0.5.0/24) and overlay "b" (TAP ipopb, 10.0.6.0/24) must be two separate L2 segments.
#
#          VM1 (ns ipe<pid>-vm1)                          VM2 (ns ipe<pid>-vm2)
#  +----------------------------------+          +----------------------------------+
#  | [TAP ipopa] 10.0.5.1/24  overlay a ........ overlay a  10.0.5.2/24 [TAP ipopa] |
#  | [TAP ipopb] 10.0.6.1/24  overlay b ........ overlay b  10.0.6.2/24 [TAP ipopb] |
#  |        ipop node vm1 (udp 5800)  |          |  ipop node vm2 (udp 5800)        |
#  |  ul-vm2 10.200.0.1/24 ========underlay veth======== ul-vm1 10.200.0.2/24       |
#  +----------------------------------+          +----------------------------------+
#
# Asserts: both links up on both overlays; pings work within each overlay; each overlay's MAC table
# holds the remote TAP of its own overlay and not the other overlay's; broadcasts (ARP who-has and
# marker frames, ethertype 0x88b5) injected on one overlay's TAP reach the remote TAP of the same
# overlay (positive control) and never appear on either node's TAP of the other overlay, watched with
# tcpdump for a bounded window - checked in both directions (a -> not b, b -> not a).

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

declare -A OVNET=([a]=10.0.5 [b]=10.0.6)
declare -A HOST=([vm1]=1 [vm2]=2)
CAPTURE_S=4          # bounded capture window per direction

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2

gen_keys vm1 vm2
write_node_config vm1 vm1 5800 \
    "id=a tap=ipopa mtu=1280 ip4=10.0.5.1/24 peers=vm2@10.200.0.2:5800" \
    "id=b tap=ipopb mtu=1280 ip4=10.0.6.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 \
    "id=a tap=ipopa mtu=1280 ip4=10.0.5.2/24 peers=vm1@10.200.0.1:5800" \
    "id=b tap=ipopb mtu=1280 ip4=10.0.6.2/24 peers=vm1@10.200.0.1:5800"
start_node vm1
start_node vm2
wait_node_ready vm1
wait_node_ready vm2
for ov in a b; do
    wait_link_up vm1 "$ov" vm2
    wait_link_up vm2 "$ov" vm1
done

# -- pings within each overlay
for ov in a b; do
    assert_ping vm1 "${OVNET[$ov]}.2" 10
    assert_ping vm2 "${OVNET[$ov]}.1" 10
done

# -- MAC tables: the remote TAP of overlay X is learned on X only
for node in vm1 vm2; do
    other=$([[ $node == vm1 ]] && echo vm2 || echo vm1)
    for ov in a b; do
        theirs=$(mac_of "$other" "ipop$ov")
        assert_mac_on_link "$node" "$ov" "$theirs" "$other" "overlay $ov: $other's ipop$ov"
        not=$([[ $ov == a ]] && echo b || echo a)
        if status_query "$node" 'mac_link(a[0], a[1]) is None' "$not" "$theirs" >/dev/null; then
            pass "$node: overlay $not's MAC table does not contain $other's ipop$ov ($theirs)"
        else
            fail "$node: overlay $not's MAC table contains $other's ipop$ov ($theirs) - overlays leak"
        fi
    done
done

# -- broadcast isolation, watched with tcpdump

# start_capture VM IFACE FILE: tcpdump on IFACE into FILE (bounded by timeout); waits until it listens.
start_capture() {
    local vm=$1 ifc=$2 file=$3
    spawn "$vm" /dev/null "$file.err" timeout $((CAPTURE_S + 10)) tcpdump -i "$ifc" -n -U --immediate-mode -w "$file"
    CAPTURE_PIDS+=("$SPAWNED_PID")
    wait_for 5 grep -q "listening on" "$file.err" || fail "tcpdump on $vm/$ifc did not start: $(cat "$file.err")"
}

# inject_broadcasts VM IFACE TAG: 20 broadcast frames (ethertype 0x88b5, payload TAG) out of IFACE.
inject_broadcasts() {
    on "$1" python3 -c '
import socket, sys, time
ifc, tag = sys.argv[1], sys.argv[2].encode()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
src = open(f"/sys/class/net/{ifc}/address").read().strip()
frame = b"\xff" * 6 + bytes.fromhex(src.replace(":", "")) + b"\x88\xb5" + tag.ljust(46, b"\0")
for _ in range(20):
    s.send(frame); time.sleep(0.02)' "$2" "$3"
}

# count FILE FILTER: frames in the capture that match the tcpdump FILTER (one line per frame, each
# starting with its timestamp; hex dumps of unknown ethertypes are indented and not counted).
count() { tcpdump -r "$1" -n "$2" 2>/dev/null | grep -c '^[0-9]' || true; }

# isolation_check OV OTHER: broadcasts sent on VM1's TAP of overlay OV must reach VM2's TAP of OV,
# and appear neither on VM2's nor VM1's TAP of overlay OTHER.
isolation_check() {
    local ov=$1 other=$2 dir="$E2E_TMP/cap-$1" src_mac probe
    mkdir -p "$dir"
    src_mac=$(mac_of vm1 "ipop$ov")
    probe="${OVNET[$ov]}.99"                       # nobody has it: the kernel keeps broadcasting ARP
    CAPTURE_PIDS=()
    start_capture vm2 "ipop$ov" "$dir/vm2-same.pcap"
    start_capture vm2 "ipop$other" "$dir/vm2-other.pcap"
    start_capture vm1 "ipop$other" "$dir/vm1-other.pcap"
    inject_broadcasts vm1 "ipop$ov" "IPOP-E2E-$E2E_RUN-overlay-$ov"
    on vm1 ip neigh flush dev "ipop$ov"
    on vm1 ping -n -q -c 1 -W 2 "$probe" >/dev/null 2>&1 || true   # 2-3 ARP who-has broadcasts
    sleep $((CAPTURE_S - 2))
    local pid
    for pid in "${CAPTURE_PIDS[@]}"; do stop_pid "$pid" 3; done

    local same_marks same_arp
    same_marks=$(count "$dir/vm2-same.pcap" "ether proto 0x88b5 and ether src $src_mac")
    same_arp=$(count "$dir/vm2-same.pcap" "arp and ether src $src_mac")
    if ((same_marks >= 15 && same_arp >= 1)); then
        pass "overlay $ov: broadcasts from vm1 reach vm2's ipop$ov ($same_marks/20 marker frames, $same_arp ARP)"
    else
        fail "overlay $ov: broadcasts from vm1 missing on vm2's ipop$ov ($same_marks/20 marker frames, $same_arp ARP) - positive control failed"
    fi
    local where leaked total
    for where in vm2 vm1; do
        leaked=$(count "$dir/$where-other.pcap" "ether src $src_mac or ether proto 0x88b5 or (arp and host $probe)")
        total=$(count "$dir/$where-other.pcap" "")
        if ((leaked == 0)); then
            pass "overlay $ov frames never seen on $where's ipop$other in ${CAPTURE_S}s ($total frames there in total)"
        else
            fail "overlay $ov frames leaked onto $where's ipop$other: $leaked frames"
            tcpdump -r "$dir/$where-other.pcap" -n -e 2>/dev/null | sed -n '1,5p' | sed 's/^/    /'
        fi
    done
}

isolation_check a b
isolation_check b a
