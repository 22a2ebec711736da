#!/usr/bin/env bash
# Secure TinCan links: confidentiality on the wire, peer authentication (static keys, psk), replay
# protection and robustness against forged and garbage datagrams.
#
#   vm1 and vm2 are legitimate members of two overlays: "lab" (no psk, TAP ipop, 10.0.5.0/24) and
#   "sec" (psk P, TAP ipsk, 10.0.6.0/24). vm3 "mallory" has a key vm1 never heard of (lab) and also
#   injects replays / forged datagrams from the underlay. vm4 "eve" is configured at vm1 in "sec"
#   (vm1 knows eve's public key, eve knows vm1's) but holds a wrong psk Q.
#
#        VM1                    VM2                    VM3 (mallory)            VM4 (eve)
#  +----------------+   +----------------+   +--------------------+   +--------------------+
#  | ipop 10.0.5.1  |   | ipop 10.0.5.2  |   | ipop 10.0.5.3      |   | ipsk 10.0.6.4      |
#  | ipsk 10.0.6.1  |   | ipsk 10.0.6.2  |   | unknown key        |   | right keys,        |
#  |  node vm1:5800 |   |  node vm2:5800 |   |  node mallory:5800 |   | psk Q != P         |
#  |                |   |                |   |  + linkpkt.py      |   |  node eve:5800     |
#  | ul0 10.200.0.1 |   | ul0 10.200.0.2 |   | ul0 10.200.0.3     |   | ul0 10.200.0.4     |
#  +-------+--------+   +-------+--------+   +---------+----------+   +---------+----------+
#          |                    |                      |                        |
#  ========+====================+======================+========================+=====
#                 underlay switch (ns ipe<pid>-ul, bridge ulbr), 10.200.0.0/24
#
# Asserts:
#  - a ping with a known payload pattern is visible on vm1's TAP but nowhere in the underlay capture;
#  - psk overlay: vm1 <-> vm2 link up and ping; eve (right keys, wrong psk) never gets a link, no frame
#    of hers reaches vm1's TAP, the failed handshakes are counted (auth_failure);
#  - replay: transport packets vm2 -> vm1 captured on the underlay and sent again (spoofed original
#    source, and from mallory's own address) are counted as replay, put no frame on vm1's TAP and do
#    not move vm1's endpoint of vm2; a replayed handshake initiation is refused;
#  - forged/garbage datagrams (random, truncated, bad reserved bytes, bad mac1, unknown indices,
#    flipped ciphertext with a fresh counter) are each counted under the right reason, the daemon stays
#    up and the link keeps forwarding without loss;
#  - mallory (key unknown to vm1) stays "connecting", her pings fail, vm1 counts unknown_peer, no
#    frame of hers reaches vm1's TAP.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

PATTERN=5a5aa5a5c3c33c3c0ff0f00f96966969      # ping -p: repeated through the 1000-byte payload
CAP_S=240                                     # upper bound of every capture

make_underlay_switch ul
for i in 1 2 3 4; do
    make_vm "vm$i"
    attach_vm_to_switch ul "vm$i" "10.200.0.$i"
done

gen_keys vm1 vm2 mallory eve
gen_psk good
gen_psk wrong
write_node_config vm1 vm1 5800 "id=lab tap=ipop ip4=10.0.5.1/24 peers=vm2@10.200.0.2:5800" \
                               "id=sec tap=ipsk ip4=10.0.6.1/24 peers=vm2@10.200.0.2:5800,eve@10.200.0.4:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop ip4=10.0.5.2/24 peers=vm1@10.200.0.1:5800" \
                               "id=sec tap=ipsk ip4=10.0.6.2/24 peers=vm1@10.200.0.1:5800"
write_node_config mallory vm3 5800 "id=lab tap=ipop ip4=10.0.5.3/24 peers=vm1@10.200.0.1:5800"
write_node_config eve vm4 5800 "id=sec tap=ipsk ip4=10.0.6.4/24 peers=vm1@10.200.0.1:5800"
edit_node_config vm1 "c['overlays'][1]['psk'] = '$(psk_of good)'"
edit_node_config vm2 "c['overlays'][1]['psk'] = '$(psk_of good)'"
edit_node_config eve "c['overlays'][0]['psk'] = '$(psk_of wrong)'"

# Everything vm2 sends to vm1 over the underlay, from before the first handshake (for the replays).
start_capture vm1 ul0 "$E2E_TMP/hs.pcap" "$CAP_S" udp and src host 10.200.0.2 and dst host 10.200.0.1
hs_cap=$CAPTURE_PID

start_node vm1
wait_node_ready vm1
# Everything that reaches vm1's TAPs from now on: no frame of mallory's or eve's may be there.
start_capture vm1 ipop "$E2E_TMP/imp-lab.pcap" "$CAP_S"
imp_lab=$CAPTURE_PID
start_capture vm1 ipsk "$E2E_TMP/imp-sec.pcap" "$CAP_S"
imp_sec=$CAPTURE_PID
start_node vm2
# eve (wrong psk) starts with the others: vm1's own initiations to her are answered from the start
# (retries later back off to 60 s, too slow to wait for).
start_node eve
wait_node_ready vm2
wait_node_ready eve
wait_link_up vm1 lab vm2
wait_link_up vm2 lab vm1
wait_link_up vm1 sec vm2
wait_link_up vm2 sec vm1
assert_ping vm1 10.0.5.2 10
assert_ping vm2 10.0.6.1 10
assert_loss_at_most vm1 10.0.6.2 20 0

# ------------------------------------------------------------------ 1. nothing in clear on the wire
start_capture vm1 ul0 "$E2E_TMP/ul.pcap" 30
ul_cap=$CAPTURE_PID
start_capture vm1 ipop "$E2E_TMP/tap.pcap" 30
tap_cap=$CAPTURE_PID
on vm1 ping -n -q -c 5 -i 0.2 -W 1 -w 8 -s 1000 -p "$PATTERN" 10.0.5.2 >/dev/null || true
on vm2 ping -n -q -c 5 -i 0.2 -W 1 -w 8 -s 1000 -p "$PATTERN" 10.0.6.1 >/dev/null || true
stop_capture "$ul_cap"
stop_capture "$tap_cap"
if on vm1 python3 "$E2E_LINKPKT" has-bytes "$E2E_TMP/tap.pcap" "${PATTERN:0:16}"; then
    pass "control: the ping pattern $PATTERN is visible in clear on vm1's TAP"
else
    fail "control: the ping pattern is not on vm1's TAP (the underlay check below would prove nothing)"
fi
big=$(( $(on vm1 python3 "$E2E_LINKPKT" count "$E2E_TMP/ul.pcap" --src 10.200.0.2 --dst 10.200.0.1 --min-len 1000) +
        $(on vm1 python3 "$E2E_LINKPKT" count "$E2E_TMP/ul.pcap" --src 10.200.0.1 --dst 10.200.0.2 --min-len 1000) ))
assert_between "$big" 20 40 "underlay carried the 20 large pings as >=1000-byte UDP datagrams"
for n in 8 4; do    # 8 bytes, then any 4-byte piece of the pattern
    hits=""
    for ((o = 0; o + 2 * n <= ${#PATTERN}; o += 2 * n)); do
        piece=${PATTERN:o:2*n}
        on vm1 python3 "$E2E_LINKPKT" has-bytes "$E2E_TMP/ul.pcap" "$piece" && hits+=" $piece"
    done
    if [[ -z $hits ]]; then
        pass "underlay capture ($(stat -c %s "$E2E_TMP/ul.pcap") bytes) contains no $n-byte piece of the pattern"
    else
        fail "underlay capture contains plaintext pattern pieces:$hits"
    fi
done
# (4-byte pieces: 2^-32 per position, a few hundred kB: a false hit is ~1e-4 likely.)

# ------------------------------------------------------------------ 2. replay

# no_new_frames NODE PCAP RX_DELTA WHAT: the TAP capture PCAP (enclosing the two rx_frames readings)
# holds nothing but ARP - the kernels' own unicast ARP probes may come and go at any time - and the
# link's rx_frames rose by no more than those ARP frames.
no_new_frames() {
    local node=$1 pcap=$2 drx=$3 what=$4 other arp
    other=$(pcap_count "$pcap" not arp)
    arp=$(pcap_count "$pcap" arp)
    if ((other == 0 && drx <= arp)); then
        pass "$node: no frame on the TAP from $what (link rx_frames +$drx, ARP frames on the TAP $arp)"
    else
        fail "$node: frames on the TAP during $what: $other non-ARP; link rx_frames +$drx with $arp ARP frames"
        tcpdump -n -e -r "$pcap" not arp 2>/dev/null | sed -n '1,5p' 
    fi
}
# Fresh traffic vm2 -> vm1 (lab), captured on vm1's underlay port.
start_capture vm1 ul0 "$E2E_TMP/rp.pcap" 30 udp and src host 10.200.0.2 and dst host 10.200.0.1
rp_cap=$CAPTURE_PID
assert_loss_at_most vm2 10.0.5.1 30 0
stop_capture "$rp_cap"
ncap=$(on vm1 python3 "$E2E_LINKPKT" count "$E2E_TMP/rp.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 4)
assert_between "$ncap" 30 200 "captured transport packets vm2 -> vm1"

start_capture vm1 ipop "$E2E_TMP/rp-tap.pcap" 30
rptap_cap=$CAPTURE_PID
rx0=$(link_field vm1 lab vm2 rx_frames)
replays_vm1() { echo $(($(link_drop vm1 lab vm2 replay) + $(link_drop vm1 sec vm2 replay))); }   # keepalives of sec are in the capture too
rep0=$(replays_vm1)
# (a) spoofed: exactly as captured, original source 10.200.0.2:5800, sent from mallory's VM.
sent_a=$(on vm3 python3 "$E2E_LINKPKT" replay "$E2E_TMP/rp.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 4 --spoof)
# (b) the same payloads from mallory's own address (must not hijack the endpoint either).
sent_b=$(on vm3 python3 "$E2E_LINKPKT" replay "$E2E_TMP/rp.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 4 --from 10.200.0.3)
sleep 1
rep1=$(replays_vm1)
rx1=$(link_field vm1 lab vm2 rx_frames)
stop_capture "$rptap_cap"
sent=$((sent_a + sent_b))
assert_between $((rep1 - rep0)) $((sent * 9 / 10)) "$sent" "vm1: links vm2 (lab+sec) dropped.replay rose by ~$sent injected replays (spoofed $sent_a, from mallory $sent_b)"
no_new_frames vm1 "$E2E_TMP/rp-tap.pcap" $((rx1 - rx0)) "the replays"
assert_eq "$(link_field vm1 lab vm2 endpoint)" "10.200.0.2:5800" "vm1: endpoint of vm2 not moved by replays from 10.200.0.3"

# A replayed handshake initiation (vm2 -> vm1, from the start of the run) is refused by its timestamp.
stop_capture "$hs_cap"
ninit=$(on vm1 python3 "$E2E_LINKPKT" count "$E2E_TMP/hs.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 1)
if ((ninit > 0)); then
    hs_before=$(link_field vm1 lab vm2 last_handshake_s)
    d0=$(replays_vm1)
    r0=$(node_drop vm1 rate_limited)
    sent=$(on vm3 python3 "$E2E_LINKPKT" replay "$E2E_TMP/hs.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 1 --limit 3 --last --spoof)
    # ... and once more from mallory's own address: must not move vm2's endpoint to her.
    sent=$((sent + $(on vm3 python3 "$E2E_LINKPKT" replay "$E2E_TMP/hs.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 --type 1 --limit 1 --last --from 10.200.0.3)))
    sleep 0.5
    d1=$(replays_vm1)
    r1=$(node_drop vm1 rate_limited)
    assert_eq "$((d1 - d0 + r1 - r0))" "$sent" "vm1: $sent replayed handshake initiation(s) dropped (replay $((d1 - d0)), rate_limited $((r1 - r0)))"
    hs_after=$(link_field vm1 lab vm2 last_handshake_s)
    if [[ $hs_after =~ ^[0-9]+$ && $hs_before =~ ^[0-9]+$ ]] && ((hs_after >= hs_before)); then
        pass "vm1: no new session from the replayed initiation (last_handshake_s $hs_before -> $hs_after)"
    else
        fail "vm1: last_handshake_s went $hs_before -> $hs_after after a replayed initiation"
    fi
    assert_eq "$(link_field vm1 lab vm2 endpoint)" "10.200.0.2:5800" "vm1: endpoint of vm2 not moved by a replayed initiation from 10.200.0.3"
else
    fail "no handshake initiation vm2 -> vm1 in the startup capture (cannot test initiation replay)"
fi
assert_loss_at_most vm2 10.0.5.1 20 0

# ------------------------------------------------------------------ 3. forged and garbage datagrams
declare -A before=()
# eve's handshakes with vm1 fail all along (auth_failure on vm1's link eve): read in the same status
# snapshot and subtracted.
af_but_eve() { status_value vm1 's["dropped"]["auth_failure"] - link("sec", "eve")["dropped"]["auth_failure"]'; }
for r in malformed bad_mac unknown_peer stray_traversal; do before[$r]=$(node_drop vm1 "$r"); done
before[auth_failure]=$(af_but_eve)
la0=$(link_drop vm1 lab vm2 auth_failure)
start_capture vm1 ipop "$E2E_TMP/fg-tap.pcap" 30
fgtap_cap=$CAPTURE_PID
rx0=$(link_field vm1 lab vm2 rx_frames)
forged=$(on vm3 python3 "$E2E_LINKPKT" forge "$E2E_TMP/rp.pcap" --src 10.200.0.2:5800 --dst 10.200.0.1:5800 \
         --overlay lab --from 10.200.0.3 --seed "$$") || fail "linkpkt.py forge failed: $forged"
sleep 1
rx1=$(link_field vm1 lab vm2 rx_frames)
stop_capture "$fgtap_cap"
node_alive vm1 && pass "vm1 alive after the forged datagrams" || fatal "vm1 died after forged datagrams"
for r in malformed bad_mac unknown_peer auth_failure stray_traversal; do
    want=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$forged" "$r")
    if [[ $r == auth_failure ]]; then now=$(af_but_eve); what=" (not counting eve's)"; else now=$(node_drop vm1 "$r"); what=""; fi
    assert_eq "$((now - before[$r]))" "$want" "vm1: node-wide dropped.$r$what rose by the $want forged datagrams of that kind"
done
want=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["auth_failure"])' "$forged")
assert_eq "$(($(link_drop vm1 lab vm2 auth_failure) - la0))" "$want" "vm1: link vm2 dropped.auth_failure rose by $want (valid index, flipped ciphertext)"
no_new_frames vm1 "$E2E_TMP/fg-tap.pcap" $((rx1 - rx0)) "the forged datagrams"
assert_eq "$(link_field vm1 lab vm2 endpoint)" "10.200.0.2:5800" "vm1: endpoint of vm2 not moved by forged datagrams"
# Forged counters a million ahead must not have moved the replay window: live traffic still flows.
assert_loss_at_most vm2 10.0.5.1 50 0
assert_loss_at_most vm1 10.0.5.2 20 0

# ------------------------------------------------------------------ 4. wrong key, wrong psk
up0=$(node_drop vm1 unknown_peer)
start_node mallory
wait_node_ready mallory
mallory_mac=$(mac_of vm3 ipop)
eve_mac=$(mac_of vm4 ipsk)
# Both keep trying (retries every 5 s, then backing off) while they ping.
ping_fails vm3 10.0.5.1 4 && pass "mallory -> 10.0.5.1: no reply" || fail "mallory (unknown key) got a ping reply from vm1"
ping_fails vm4 10.0.6.1 4 && pass "eve -> 10.0.6.1: no reply" || fail "eve (wrong psk) got a ping reply from vm1"
sleep 2
stop_capture "$imp_lab"
stop_capture "$imp_sec"

assert_eq "$(link_field mallory lab vm1 state)" connecting "mallory: link to vm1 stays connecting"
assert_between $(($(node_drop vm1 unknown_peer) - up0)) 1 1000 "vm1: node-wide dropped.unknown_peer counts mallory's initiations"
assert_eq "$(status_value vm1 '[l["peer"] for l in overlay("lab")["links"]]')" "['vm2']" "vm1: lab has no link but vm2"
assert_eq "$(pcap_count "$E2E_TMP/imp-lab.pcap" ether src "$mallory_mac")" 0 "vm1 TAP ipop: no frame from mallory's MAC $mallory_mac"
assert_eq "$(link_field eve sec vm1 state)" connecting "eve: link to vm1 stays connecting"
assert_eq "$(link_field vm1 sec eve state)" connecting "vm1: link to eve stays connecting"
assert_between "$(link_drop eve sec vm1 auth_failure)" 1 1000 "eve: link vm1 dropped.auth_failure (vm1's responses, other psk)"
assert_between "$(link_drop vm1 sec eve auth_failure)" 1 1000 "vm1: link eve dropped.auth_failure (eve's responses, other psk)"
assert_eq "$(link_field vm1 sec eve rx_frames)" 0 "vm1: link eve rx_frames 0"
assert_eq "$(pcap_count "$E2E_TMP/imp-sec.pcap" ether src "$eve_mac")" 0 "vm1 TAP ipsk: no frame from eve's MAC $eve_mac"
# The legitimate links did not suffer.
link_is_up vm1 lab vm2 >/dev/null && pass "vm1: lab link vm2 still up" || fail "vm1: lab link vm2 no longer up"
link_is_up vm1 sec vm2 >/dev/null && pass "vm1: sec link vm2 still up" || fail "vm1: sec link vm2 no longer up"
assert_loss_at_most vm2 10.0.6.1 20 0
for n in vm1 vm2 mallory eve; do node_alive "$n" || fail "node $n exited"; done
