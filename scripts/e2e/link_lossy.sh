#!/usr/bin/env bash
# Lossy underlay: the link comes up, carries traffic and survives a cut when the network between the
# nodes drops and duplicates datagrams. (This kernel has no netem qdisc; nftables' `numgen random`
# drops and its netdev `dup` duplicates, in each VM's own namespace, on the underlay only.)
#
#          VM1 (ns ipe<pid>-vm1)                          VM2 (ns ipe<pid>-vm2)
#  +-----------------------------------+        +-----------------------------------+
#  |  [TAP ipop] 10.0.9.1/24           |        |           [TAP ipop] 10.0.9.2/24  |
#  |   ipop node vm1 (udp 5800)        |        |        ipop node vm2 (udp 5800)   |
#  |   nft output: drop LOSS% of 5800  |        |  nft output: drop LOSS% of 5800   |
#  |   nft egress: dup DUP% of 5800    |        |                                   |
#  |  ul-vm2 10.200.0.1/24 ========= underlay veth ========= ul-vm1 10.200.0.2/24   |
#  +-----------------------------------+        +-----------------------------------+
#
# 1. 30 % loss each way while both nodes start: the handshake is retried until it gets through
#    (link up on both sides within 40 s).
# 2. 5 % loss each way, 10 % of vm1's datagrams duplicated: 200 pings mostly answered (>= 150), no
#    duplicate reply reaches ping (the replay window drops the copies, and vm2 counts them as replay),
#    a 2 MB file over TCP arrives intact, both links stay up.
# 3. 100 % loss for 35 s (a cut): vm1 notices the silence and shows the link "connecting" (keepalive_s
#    10: within 2 x 10 + 5 s of the last packet heard), nobody crashes; the loss lifted, the link is up
#    again and pings pass within 30 s, without a restart.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin
command -v nft >/dev/null || fatal "nft is not installed (apt-get install nftables)"

make_vm vm1
make_vm vm2
link_vms vm1 10.200.0.1 vm2 10.200.0.2

# set_loss VM PERCENT: VM drops PERCENT % of the ipop datagrams it sends (0: none).
set_loss() {
    local vm=$1 pct=$2
    on "$vm" nft delete table inet lossy 2>/dev/null || true
    ((pct == 0)) && return 0
    local match="numgen random mod 100 < $pct"
    ((pct >= 100)) && match=""
    on "$vm" nft -f - <<EOF
table inet lossy {
    chain out {
        type filter hook output priority 0; policy accept;
        udp sport 5800 $match drop
    }
}
EOF
}

# set_dup VM IFACE PERCENT: VM sends PERCENT % of its ipop datagrams on IFACE twice (0: none).
set_dup() {
    local vm=$1 dev=$2 pct=$3
    on "$vm" nft delete table netdev dupper 2>/dev/null || true
    ((pct == 0)) && return 0
    on "$vm" nft -f - <<EOF
table netdev dupper {
    chain egress {
        type filter hook egress device "$dev" priority 0; policy accept;
        udp sport 5800 numgen random mod 100 < $pct dup to "$dev"
    }
}
EOF
}

gen_keys vm1 vm2
write_node_config vm1 vm1 5800 "id=lab tap=ipop mtu=1280 ip4=10.0.9.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop mtu=1280 ip4=10.0.9.2/24 peers=vm1@10.200.0.1:5800"

phase_begin "1 start behind 30 % loss each way"
set_loss vm1 30
set_loss vm2 30
start_node vm1
start_node vm2
wait_node_ready vm1
wait_node_ready vm2
wait_link_up vm1 lab vm2 40
wait_link_up vm2 lab vm1 40
phase_end

phase_begin "2 5 % loss each way, 10 % duplicates from vm1"
set_loss vm1 5
set_loss vm2 5
set_dup vm1 ul-vm2 10
assert_ping vm1 10.0.9.2 10
replay0=$(link_drop vm2 lab vm1 replay)
out=$(on vm1 timeout 40 ping -n -c 200 -i 0.05 -W 1 10.0.9.2 2>&1) || true
rx=$(grep -o '[0-9]* received' <<<"$out" | grep -o '^[0-9]*' || echo 0)
dups=$(grep -c 'DUP!' <<<"$out" || true)
assert_between "$rx" 150 200 "vm1 -> 10.0.9.2: pings answered of 200 through 5 % loss each way"
assert_eq "$dups" 0 "no duplicate reply reaches ping (copies dropped before the TAP)"
replay1=$(link_drop vm2 lab vm1 replay)
assert_between "$((replay1 - replay0))" 3 1000 "vm2 counts vm1's duplicated datagrams as replay"

# A 2 MB file over TCP: retransmissions hide the loss; the bytes must arrive intact.
head -c $((2 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/src.bin"
spawn vm2 "$E2E_TMP/dst.bin" "$E2E_TMP/nc.err" timeout 60 nc -l 7001
listener=$SPAWNED_PID
if wait_for 5 eval "on vm2 ss -Hltn 'sport = :7001' | grep -q ."; then
    if on vm1 timeout 60 nc -N -w 10 10.0.9.2 7001 <"$E2E_TMP/src.bin"; then
        wait_for 10 eval '! kill -0 '"$listener" || true
        want=$(sha256sum <"$E2E_TMP/src.bin" | cut -d' ' -f1)
        got=$(sha256sum <"$E2E_TMP/dst.bin" | cut -d' ' -f1)
        if [[ $want == "$got" ]]; then
            pass "2 MB over TCP through loss and duplicates arrived intact (sha256 ${want:0:16}...)"
        else
            fail "2 MB over TCP: sha256 mismatch (received $(stat -c %s "$E2E_TMP/dst.bin") B)"
        fi
    else
        fail "2 MB over TCP: the sender failed or timed out"
    fi
else
    fail "nc listener on vm2:7001 did not start"
fi
stop_pid "$listener" 2
assert_eq "$(link_field vm1 lab vm2 state)" up "vm1 -> vm2 still up"
assert_eq "$(link_field vm2 lab vm1 state)" up "vm2 -> vm1 still up"
set_dup vm1 ul-vm2 0
phase_end

phase_begin "3 a 35 s cut, then the loss lifted"
set_loss vm1 100
set_loss vm2 100
cut=$SECONDS
if wait_for 35 eval '[[ $(link_field vm1 lab vm2 state) == connecting ]]'; then
    pass "vm1 shows the link connecting $((SECONDS - cut)) s into the cut (silence detected)"
else
    fail "vm1 still shows the link $(link_field vm1 lab vm2 state) 35 s into the cut"
fi
while ((SECONDS - cut < 35)); do sleep 1; done
set_loss vm1 0
set_loss vm2 0
healed=$SECONDS
if wait_for 30 eval 'link_is_up vm1 lab vm2 && link_is_up vm2 lab vm1 && can_ping vm1 10.0.9.2'; then
    pass "link up again and pings pass $((SECONDS - healed)) s after the cut ended"
else
    fail "no working link 30 s after the cut ended (vm1: $(link_field vm1 lab vm2 state), vm2: $(link_field vm2 lab vm1 state))"
fi
assert_loss_at_most vm2 10.0.9.1 50 0
for n in vm1 vm2; do
    if node_alive "$n"; then pass "$n still running (no restart)"; else fail "$n died"; fi
done
phase_end
