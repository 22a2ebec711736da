#!/usr/bin/env bash
# A third node joins a running two-node overlay; then one node is stopped (SIGTERM) and restarted.
# Standalone switchmode (TAPs with their own IPs), full mesh: every node lists the other two as peers.
#
#     VM1 (ns ipe<pid>-vm1)        VM2 (ns ipe<pid>-vm2)        VM3 (ns ipe<pid>-vm3)
#  +------------------------+  +------------------------+  +------------------------+
#  | [TAP ipop] 10.0.4.1/24 |  | [TAP ipop] 10.0.4.2/24 |  | [TAP ipop] 10.0.4.3/24 |
#  |   ipop node vm1        |  |   ipop node vm2        |  |   ipop node vm3        |
#  |   peers vm2, vm3       |  |   peers vm1, vm3       |  |   peers vm1, vm2       |
#  | ul0 10.200.0.1/24      |  | ul0 10.200.0.2/24      |  | ul0 10.200.0.3/24      |
#  +-----|------------------+  +-----|------------------+  +-----|------------------+
#        | p-vm1                     | p-vm2                     | p-vm3
#  +-----+---------------------------+---------------------------+-----+
#  |                bridge ulbr (ns ipe<pid>-ul): the underlay         |
#  +-------------------------------------------------------------------+
#
# Steps / asserts:
#  1. vm1 and vm2 start (vm3's endpoint is configured but silent); vm1 <-> vm2 ping.
#  2. vm3 starts (joins): all six links come up, each node pings each other node.
#  3. vm2 gets SIGTERM: it exits within 5 s, its TAP is gone, it is no longer reachable.
#  4. vm2 restarts: within 10 s of the restart vm1 and vm3 reach it and it reaches them. If vm2's TAP
#     comes back with a new MAC, vm1/vm3's stale ARP entries are flushed first (unless E2E_STRICT_ARP=1).

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

VMS=(vm1 vm2 vm3)
declare -A UL=([vm1]=10.200.0.1 [vm2]=10.200.0.2 [vm3]=10.200.0.3)
declare -A TAPIP=([vm1]=10.0.4.1 [vm2]=10.0.4.2 [vm3]=10.0.4.3)

build_topology() {
    make_underlay_switch ul
    local vm
    for vm in "${VMS[@]}"; do
        make_vm "$vm"
        attach_vm_to_switch ul "$vm" "${UL[$vm]}"
    done
}

write_configs() {
    gen_keys "${VMS[@]}"
    local vm p peers
    for vm in "${VMS[@]}"; do
        peers=""
        for p in "${VMS[@]}"; do [[ $p == "$vm" ]] || peers+="${peers:+,}$p@${UL[$p]}:5800"; done
        write_node_config "$vm" "$vm" 5800 "id=lab tap=ipop mtu=1280 ip4=${TAPIP[$vm]}/24 peers=$peers"
    done
}

ping_all_pairs() {
    local a b
    for a in "${VMS[@]}"; do
        for b in "${VMS[@]}"; do
            [[ $a == "$b" ]] || assert_ping "$a" "${TAPIP[$b]}" 10
        done
    done
}

build_topology
write_configs

log "step 1: vm1 and vm2"
start_linked_pair vm1 vm2 lab
assert_ping vm1 "${TAPIP[vm2]}" 10
assert_ping vm2 "${TAPIP[vm1]}" 10

log "step 2: vm3 joins"
start_node vm3
wait_node_ready vm3
for a in "${VMS[@]}"; do
    for b in "${VMS[@]}"; do [[ $a == "$b" ]] || wait_link_up "$a" lab "$b"; done
done
ping_all_pairs

log "step 3: SIGTERM vm2"
old_mac=$(mac_of vm2 ipop)
if stop_node vm2 5; then pass "vm2 exited within 5 s of SIGTERM"; else fail "vm2 ignored SIGTERM for 5 s (killed)"; fi
if dev_exists vm2 ipop; then fail "vm2: TAP ipop still exists after the node exited"; else pass "vm2: TAP ipop removed on exit"; fi
if can_ping vm1 "${TAPIP[vm2]}" >/dev/null 2>&1; then
    fail "vm1 still reaches 10.0.4.2 with vm2 stopped"
else
    pass "vm1 no longer reaches ${TAPIP[vm2]} with vm2 stopped"
fi

log "step 4: restart vm2"
start_node vm2
restart_ns=$(date +%s%N)
remaining() { local r=$((10 - ($(date +%s%N) - restart_ns) / 1000000000)); echo $((r < 1 ? 1 : r)); }
wait_for 5 dev_exists vm2 ipop || true
new_mac=$(mac_of vm2 ipop 2>/dev/null || echo none)
if [[ "$new_mac" != "$old_mac" && "${E2E_STRICT_ARP:-0}" != 1 ]]; then
    # A new TAP MAC leaves a stale ARP entry in vm1/vm3 that the kernel keeps probing by unicast
    # (measured: ~43 s until vm1 reaches vm2 again). That is kernel ARP behaviour, not the overlay's:
    # flush it so the test measures the overlay. E2E_STRICT_ARP=1 skips the flush.
    log "note: vm2's TAP MAC changed across restart ($old_mac -> $new_mac); flushing vm1/vm3 ARP entries for ${TAPIP[vm2]}"
    on vm1 ip neigh flush to "${TAPIP[vm2]}" || true
    on vm3 ip neigh flush to "${TAPIP[vm2]}" || true
fi
assert_ping vm1 "${TAPIP[vm2]}" "$(remaining)"
assert_ping vm3 "${TAPIP[vm2]}" "$(remaining)"
assert_ping vm2 "${TAPIP[vm1]}" "$(remaining)"
assert_ping vm2 "${TAPIP[vm3]}" "$(remaining)"
elapsed_ms=$((($(date +%s%N) - restart_ns) / 1000000))
if ((elapsed_ms <= 10000)); then
    pass "restarted vm2 reachable both ways from vm1 and vm3 ${elapsed_ms} ms after restart"
else
    fail "restarted vm2: reachability took ${elapsed_ms} ms (> 10 s)"
fi
wait_link_up vm1 lab vm2 5
wait_link_up vm3 lab vm2 5
