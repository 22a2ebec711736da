#!/usr/bin/env bash
# SIGHUP re-reads the config, like `wg syncconf`: static peers are added and removed on a running
# node, links that did not change keep their sessions, settings that need a restart are named in the
# log (and not applied), and a broken config changes nothing.
#
#   VM1 (ns ipe<pid>-vm1)        VM2 (ns ipe<pid>-vm2)        VM3 (ns ipe<pid>-vm3)
#  +----------------------+     +----------------------+     +----------------------+
#  | [TAP ipop] 10.0.11.1 |     | [TAP ipop] 10.0.11.2 |     | [TAP ipop] 10.0.11.3 |
#  | peers: vm2 (+vm3 by  |     | peers: vm1, vm3      |     | peers: vm1, vm2      |
#  |  SIGHUP, -vm2 later) |     |                      |     |                      |
#  | ul0 10.200.0.1/24    |     | ul0 10.200.0.2/24    |     | ul0 10.200.0.3/24    |
#  +----------|-----------+     +----------|-----------+     +----------|-----------+
#  ===========+============================+============================+==========
#                 underlay switch (ns ipe<pid>-ul, bridge ulbr), 10.200.0.0/24
#
# 1. vm1 lists only vm2: vm1 cannot reach vm3 (vm3's handshakes are refused as from an unknown key).
# 2. vm3 added to vm1's file, SIGHUP: the log says "added vm3", the link comes up, 10.0.11.3 pings,
#    and the vm2 link kept its session (its handshake age and counters did not restart).
# 3. vm2 removed and mtu changed, SIGHUP: the vm2 link is gone from status, the log names
#    overlays[0].mtu as needing a restart, and the TAP keeps mtu 1280.
# 4. A file that is not JSON, SIGHUP: an error naming the problem, "nothing changed", vm3 still pings.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

make_underlay_switch ul
for i in 1 2 3; do make_vm "vm$i"; attach_vm_to_switch ul "vm$i" "10.200.0.$i"; done
gen_keys vm1 vm2 vm3
write_node_config vm1 vm1 5800 "id=lab tap=ipop ip4=10.0.11.1/24 peers=vm2@10.200.0.2:5800"
write_node_config vm2 vm2 5800 "id=lab tap=ipop ip4=10.0.11.2/24 peers=vm1@10.200.0.1:5800,vm3@10.200.0.3:5800"
write_node_config vm3 vm3 5800 "id=lab tap=ipop ip4=10.0.11.3/24 peers=vm1@10.200.0.1:5800,vm2@10.200.0.2:5800"
for vm in vm1 vm2 vm3; do start_node "$vm"; done
for vm in vm1 vm2 vm3; do wait_node_ready "$vm"; done
wait_link_up vm1 lab vm2
wait_link_up vm3 lab vm2

phase_begin "1 vm1 does not know vm3"
if ping_fails vm1 10.0.11.3 2; then pass "vm1 cannot reach vm3 before the reload"; else fail "vm1 reached vm3 without knowing it"; fi
assert_ping vm1 10.0.11.2 10
phase_end

phase_begin "2 vm3 added by SIGHUP"
rx_before=$(link_field vm1 lab vm2 rx_frames)
hs_before=$(link_field vm1 lab vm2 last_handshake_s)
edit_node_config vm1 "c['overlays'][0]['peers'].append({'name': 'vm3', 'public_key': open('$E2E_TMP/keys/vm3.pub').read().strip(), 'endpoint': '10.200.0.3:5800'})"
kill -HUP "${NODE_PID[vm1]}"
if wait_log_count vm1 'SIGHUP: config re-read; overlay lab: added vm3' 1 5; then
    pass "vm1 logs: $(grep -oE 'SIGHUP: config re-read;.*' "${NODE_LOG[vm1]}" | tail -n 1)"
else
    fail "vm1 did not log the added peer after SIGHUP"
fi
wait_link_up vm1 lab vm3 15
assert_ping vm1 10.0.11.3 10
rx_after=$(link_field vm1 lab vm2 rx_frames)
hs_after=$(link_field vm1 lab vm2 last_handshake_s)
assert_between "$rx_after" "$rx_before" 100000000 "vm1's vm2 link counters kept counting (rx_frames $rx_before -> $rx_after)"
if [[ $hs_before =~ ^[0-9]+$ && $hs_after =~ ^[0-9]+$ ]] && ((hs_after >= hs_before)); then
    pass "vm1's vm2 link kept its session (handshake age $hs_before s -> $hs_after s)"
else
    fail "vm1's vm2 link was re-handshaked by the reload (handshake age $hs_before -> $hs_after)"
fi
assert_eq "$(node_alive vm1 && echo yes)" yes "vm1 kept running (no restart)"
phase_end

phase_begin "3 vm2 removed, mtu changed"
edit_node_config vm1 "c['overlays'][0]['peers'] = [p for p in c['overlays'][0]['peers'] if p['name'] != 'vm2']" \
    "c['overlays'][0]['mtu'] = 1400"
kill -HUP "${NODE_PID[vm1]}"
if wait_for 5 eval '[[ $(status_value vm1 "[l[\"peer\"] for l in overlay(\"lab\")[\"links\"]]") == "['"'"'vm3'"'"']" ]]'; then
    pass "vm1's links after removing vm2: vm3 only"
else
    fail "vm1's links after removing vm2: $(status_value vm1 '[l["peer"] for l in overlay("lab")["links"]]')"
fi
if wait_log_count vm1 'SIGHUP: changed but only applied by a restart: overlays\[0\]\.mtu' 1 5; then
    pass "vm1 names overlays[0].mtu as needing a restart"
else
    fail "vm1 did not say that the mtu change needs a restart"
fi
assert_eq "$(on vm1 cat /sys/class/net/ipop/mtu)" 1280 "vm1's TAP keeps mtu 1280 until a restart"
assert_ping vm1 10.0.11.3 10
phase_end

phase_begin "4 a broken file changes nothing"
echo '{ "node_name": "vm1", ' >"${NODE_CONF[vm1]}"
kill -HUP "${NODE_PID[vm1]}"
if wait_log_count vm1 'SIGHUP: config: not valid JSON .*; nothing changed' 1 5; then
    pass "vm1 logs the config error and changes nothing"
else
    fail "vm1 did not log the broken config"
fi
assert_eq "$(node_alive vm1 && echo yes)" yes "vm1 still running"
assert_no_loss vm1 10.0.11.3 10
phase_end
