#!/usr/bin/env bash
# The seed tutorial's picture: two VMs, each with an LXC-style bridge lxcbr0 holding two containers
# (eth0 MTU 1280); one ipop node per VM in switchmode; the TAPs join the bridges, so all four
# containers share one L2 segment 10.0.3.0/24.
#
#          VM1 (ns ipe<pid>-vm1)                               VM2 (ns ipe<pid>-vm2)
#  +-------------------------------------+           +-------------------------------------+
#  |   c1 10.0.3.5      c2 10.0.3.6      |           |   c3 10.0.3.7      c4 10.0.3.8      |
#  |   eth0 mtu1280     eth0 mtu1280     |           |   eth0 mtu1280     eth0 mtu1280     |
#  |      |v-c1            |v-c2         |           |      |v-c3            |v-c4         |
#  |   +--+----------------+--+          |           |   +--+----------------+--+          |
#  |   |        lxcbr0        |          |           |   |        lxcbr0        |          |
#  |   +----------+-----------+          |           |   +----------+-----------+          |
#  |              | added BY HAND after  |           |              | added by the node    |
#  |              | start: ip link set   |           |              | ("bridge": "lxcbr0") |
#  |              | ipop master lxcbr0   |           |              |                      |
#  |         [TAP ipop]--ipop node vm1   |           |         [TAP ipop]--ipop node vm2   |
#  |                    | udp 5800       |           |                    | udp 5800       |
#  |         ul-vm2 10.200.0.1/24 =====underlay veth====== ul-vm1 10.200.0.2/24           |
#  +-------------------------------------+           +-------------------------------------+
#
# Asserts: every container on VM1 pings every container on VM2 and back (also at full 1280 MTU, DF);
# each node's MAC table maps the remote containers' MACs to the peer's link and its own to "local";
# a 1 MB random file sent with nc across the overlay (both directions) arrives intact (sha256).

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

declare -A IP=([c1]=10.0.3.5 [c2]=10.0.3.6 [c3]=10.0.3.7 [c4]=10.0.3.8)
VM1_CTS=(c1 c2)
VM2_CTS=(c3 c4)

build_topology() {
    make_vm vm1
    make_vm vm2
    link_vms vm1 10.200.0.1 vm2 10.200.0.2
    make_bridge vm1 lxcbr0
    make_bridge vm2 lxcbr0
    local c
    for c in "${VM1_CTS[@]}"; do make_container vm1 "$c" "${IP[$c]}"; done
    for c in "${VM2_CTS[@]}"; do make_container vm2 "$c" "${IP[$c]}"; done
}

start_nodes() {
    gen_keys vm1 vm2
    # vm1: no "bridge" in its config - the TAP is added to lxcbr0 by hand, as in the seed.
    write_node_config vm1 vm1 5800 "id=lab tap=ipop mtu=1280 peers=vm2@10.200.0.2:5800"
    write_node_config vm2 vm2 5800 "id=lab tap=ipop mtu=1280 bridge=lxcbr0 peers=vm1@10.200.0.1:5800"
    start_node vm1
    start_node vm2
    wait_for 10 dev_exists vm1 ipop || fatal "vm1: TAP 'ipop' did not appear within 10s"
    on vm1 ip link set ipop master lxcbr0
    wait_node_ready vm1
    wait_node_ready vm2
    wait_link_up vm1 lab vm2
    wait_link_up vm2 lab vm1
}

tap_master() { ip -n "$(ns "$1")" -j link show ipop | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("master",""))'; }
tap_is_up()  { ip -n "$(ns "$1")" -j link show ipop | python3 -c 'import json,sys; sys.exit(0 if "UP" in json.load(sys.stdin)[0]["flags"] else 1)'; }

check_taps() {
    local vm
    for vm in vm1 vm2; do
        assert_eq "$(tap_master "$vm")" lxcbr0 "$vm: TAP ipop is a port of lxcbr0"
        if tap_is_up "$vm"; then pass "$vm: TAP ipop is UP"; else fail "$vm: TAP ipop is not UP"; fi
    done
}

check_pings() {
    local a b
    for a in "${VM1_CTS[@]}"; do
        for b in "${VM2_CTS[@]}"; do
            assert_ping "$a" "${IP[$b]}" 10
            assert_ping "$b" "${IP[$a]}" 10
        done
    done
    # Largest frame the containers can send: 1252 B payload + 8 ICMP + 20 IP = 1280, don't fragment.
    assert_ping c1 "${IP[c3]}" 5 -M do -s 1252
    assert_ping c4 "${IP[c2]}" 5 -M do -s 1252
}

check_mac_tables() {
    local c
    for c in "${VM2_CTS[@]}"; do
        assert_mac_on_link vm1 lab "$(mac_of "$c" eth0)" vm2 "remote container $c"
        assert_mac_on_link vm2 lab "$(mac_of "$c" eth0)" local "own container $c"
    done
    for c in "${VM1_CTS[@]}"; do
        assert_mac_on_link vm2 lab "$(mac_of "$c" eth0)" vm1 "remote container $c"
        assert_mac_on_link vm1 lab "$(mac_of "$c" eth0)" local "own container $c"
    done
}

# send_file FROM TO: 1 MB of random bytes from container FROM to container TO with nc, compare sha256.
send_file() {
    local from=$1 to=$2 port=5001 src="$E2E_TMP/blob-$1" dst="$E2E_TMP/blob-$1-at-$2" rx_pid
    head -c 1048576 /dev/urandom >"$src"
    spawn "$to" "$dst" "$dst.err" timeout 30 nc -l "$port"
    rx_pid=$SPAWNED_PID
    if ! wait_for 5 port_listening "$to" "$port"; then
        fail "$to: nc listener on :$port did not start"
        return 0
    fi
    if ! on "$from" timeout 30 nc -N -w 10 "${IP[$to]}" "$port" <"$src"; then
        fail "nc $from -> $to: sender failed"
    fi
    wait "$rx_pid" || true
    local want got
    want=$(sha256sum <"$src" | cut -d' ' -f1)
    got=$(sha256sum <"$dst" | cut -d' ' -f1)
    if [[ "$want" == "$got" ]]; then
        pass "1 MB file $from -> $to over nc arrived intact (sha256 ${want:0:16}...)"
    else
        fail "1 MB file $from -> $to: sha256 mismatch (sent $(stat -c %s "$src") B, received $(stat -c %s "$dst") B)"
    fi
}

build_topology
start_nodes
check_taps
check_pings
check_mac_tables
send_file c1 c3
send_file c4 c2
