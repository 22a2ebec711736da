# shellcheck shell=bash
# Shared helpers for the ipop end-to-end scenarios. Source it; do not run it.
#
#   source "$(dirname "$0")/lib.sh"
#
# Everything this library creates lives in network namespaces named "ipe<pid>-<name>" (one suffix per
# run, so runs never collide) plus one temp dir /tmp/ipop-e2e-<pid>. Devices are created directly inside
# those namespaces, so deleting the namespaces deletes every device. The EXIT trap prints the summary
# line "N passed, M failed", kills the processes this script started (by PID), deletes the namespaces
# and the temp dir - also when the script fails half-way or is interrupted.
#
# Environment:
#   IPOP_BIN      the ipop binary (default: $(swift build --show-bin-path)/ipop in the repo)
#   E2E_KEEP=1    keep the temp dir (configs, logs) after the run
#   E2E_VERBOSE=1 echo every step

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd)
E2E_RUN="ipe$$"                  # per-run suffix of every namespace name
E2E_TMP="/tmp/ipop-e2e-$$"       # configs, keys, logs, control sockets
E2E_NAME=$(basename "$0" .sh)

PASSED=0
FAILED=0
E2E_PIDS=()                      # background processes we started
E2E_NETNS=()                     # namespaces we created
E2E_NODES=()                     # ipop nodes (for dumps)
declare -A NODE_NS=() NODE_CONF=() NODE_SOCK=() NODE_LOG=() NODE_PID=() NODE_PORT=()

mkdir -p "$E2E_TMP"

log()  { printf '[%s %s] %s\n' "$E2E_NAME" "$(date +%T)" "$*"; }
vlog() { [[ "${E2E_VERBOSE:-0}" == 1 ]] && log "$@"; return 0; }

# ---------------------------------------------------------------- binary

resolve_ipop_bin() {
    if [[ -z "${IPOP_BIN:-}" ]]; then
        local bin_path
        bin_path=$(cd "$E2E_REPO" && swift build --show-bin-path 2>/dev/null) || bin_path=""
        IPOP_BIN="$bin_path/ipop"
    fi
    if [[ ! -x "$IPOP_BIN" ]]; then
        fatal "ipop binary not found or not executable: '$IPOP_BIN' (build it, or set IPOP_BIN)"
    fi
    IPOP_BIN=$(readlink -f "$IPOP_BIN")
    vlog "using IPOP_BIN=$IPOP_BIN"
}

# ---------------------------------------------------------------- results

E2E_T0=${EPOCHREALTIME/./}
elapsed() { local us=$((${EPOCHREALTIME/./} - E2E_T0)); printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10)); }

pass() { PASSED=$((PASSED + 1)); echo "PASS: $* [t=$(elapsed)]"; }

# fail MSG: record a failure and dump what helps to understand it.
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL: $* [t=$(elapsed)]"
    dump_nodes
}

# fatal MSG: record a failure and stop the scenario (the EXIT trap still prints the summary).
fatal() {
    FAILED=$((FAILED + 1))
    E2E_FATAL=1
    echo "FAIL: $* (aborting scenario)"
    dump_nodes
    exit 1
}

dump_nodes() {
    local n
    for n in "${E2E_NODES[@]}"; do
        local state="not started"
        if [[ -n "${NODE_PID[$n]:-}" ]]; then
            state="pid ${NODE_PID[$n]} $(kill -0 "${NODE_PID[$n]}" 2>/dev/null && echo running || echo EXITED)"
        fi
        echo "---- node $n (ns ${NODE_NS[$n]}, $state) status:"
        node_status_json "$n" 2>&1 | sed 's/^/    /' || true
        echo "---- node $n log (last 25 lines of ${NODE_LOG[$n]}):"
        tail -n 25 "${NODE_LOG[$n]}" 2>/dev/null | sed 's/^/    /' || true
    done
    [[ ${#E2E_NODES[@]} -gt 0 ]] && echo "----" || true
}

# ---------------------------------------------------------------- cleanup

# stop_pid PID [GRACE_SECONDS]: SIGTERM, wait (bounded), then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-5} deadline
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "warning: pid $pid ignored SIGTERM for ${grace}s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

E2E_MAIN_PID=$BASHPID
# The script's real stdout/stderr: a signal can arrive while a function runs under `>/dev/null`
# (wait_for), and the traps must still be heard.
exec {E2E_STDOUT}>&1 {E2E_STDERR}>&2

e2e_cleanup() {
    local rc=$? pid ns
    # A subshell ($(...)) hit by the signal must not clean up (its output would be swallowed).
    [[ $BASHPID == "$E2E_MAIN_PID" ]] || exit "$rc"
    exec 1>&"$E2E_STDOUT" 2>&"$E2E_STDERR"
    set +e
    trap - EXIT INT TERM
    if ((rc != 0)) && [[ -z "${E2E_FATAL:-}" ]]; then
        FAILED=$((FAILED + 1))
        echo "FAIL: scenario aborted with exit code $rc (line ${E2E_ERR_LINE:-?}: ${E2E_ERR_CMD:-?})"
        dump_nodes
    fi
    for pid in "${E2E_PIDS[@]}"; do stop_pid "$pid" 3; done
    # Anything still running inside our namespaces was started by this script (e.g. a ping): kill it by PID.
    for ns in "${E2E_NETNS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    for ns in "${E2E_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [[ "${E2E_KEEP:-0}" == 1 ]]; then
        echo "(kept $E2E_TMP)"
    else
        rm -rf "$E2E_TMP"
    fi
    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0)) && exit 0 || exit 1
}
trap 'E2E_ERR_LINE=$LINENO; E2E_ERR_CMD=$BASH_COMMAND' ERR
trap e2e_cleanup EXIT
trap '[[ $BASHPID == "$E2E_MAIN_PID" ]] && echo "interrupted by signal" >&"$E2E_STDOUT"; exit 130' INT TERM

# track_pid PID: the cleanup trap stops it.
track_pid() { E2E_PIDS+=("$1"); }

# ---------------------------------------------------------------- namespaces and links

ns() { echo "${E2E_RUN}-$1"; }           # namespace name of a VM/container called $1

make_netns() {
    local n; n=$(ns "$1")
    ip netns add "$n"
    E2E_NETNS+=("$n")
    ip -n "$n" link set lo up
    # No IPv6 noise (router solicitations, MLD, DAD) on the overlay: only our own frames.
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# make_vm NAME: a "VM" namespace.
make_vm() { make_netns "$1"; vlog "vm $1 = $(ns "$1")"; }

# link_vms A IP_A B IP_B: underlay veth between two VMs, addresses in 10.200.0.0/24.
link_vms() {
    local a=$1 ipa=$2 b=$3 ipb=$4
    ip link add "ul-$b" netns "$(ns "$a")" type veth peer name "ul-$a" netns "$(ns "$b")"
    ip -n "$(ns "$a")" addr add "$ipa/24" dev "ul-$b"
    ip -n "$(ns "$b")" addr add "$ipb/24" dev "ul-$a"
    ip -n "$(ns "$a")" link set "ul-$b" up
    ip -n "$(ns "$b")" link set "ul-$a" up
}

# make_underlay_switch NAME: a namespace holding bridge "ulbr" that stands for the physical network.
make_underlay_switch() {
    make_netns "$1"
    ip -n "$(ns "$1")" link add ulbr type bridge forward_delay 0
    ip -n "$(ns "$1")" link set ulbr up
}

# attach_vm_to_switch SWITCH VM IP: the VM gets "ul0" with IP/24, plugged into the switch's bridge.
attach_vm_to_switch() {
    local sw=$1 vm=$2 ip=$3
    ip link add ul0 netns "$(ns "$vm")" type veth peer name "p-$vm" netns "$(ns "$sw")"
    ip -n "$(ns "$sw")" link set "p-$vm" master ulbr up
    ip -n "$(ns "$vm")" addr add "$ip/24" dev ul0
    ip -n "$(ns "$vm")" link set ul0 up
}

# make_bridge VM [NAME]: a Linux bridge (default lxcbr0) in the VM, no STP, no forward delay.
make_bridge() {
    local vm=$1 br=${2:-lxcbr0}
    ip -n "$(ns "$vm")" link add "$br" type bridge forward_delay 0 stp_state 0
    ip -n "$(ns "$vm")" link set "$br" up
}

# make_container VM NAME IP [BRIDGE] [MTU]: a "container" namespace whose eth0 (MTU 1280 unless given,
# IP/24) is a veth whose other end "v-NAME" is a port of the VM's bridge.
make_container() {
    local vm=$1 c=$2 ip=$3 br=${4:-lxcbr0} mtu=${5:-1280}
    make_netns "$c"
    ip link add "v-$c" netns "$(ns "$vm")" mtu "$mtu" type veth peer name eth0 netns "$(ns "$c")" mtu "$mtu"
    ip -n "$(ns "$vm")" link set "v-$c" master "$br" up
    ip -n "$(ns "$c")" addr add "$ip/24" dev eth0
    ip -n "$(ns "$c")" link set eth0 up
}

# on NAME CMD...: run CMD inside the namespace of VM/container NAME.
on() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

# spawn NAME OUT ERR CMD...: start CMD in NAME's namespace in the background, stdout to OUT, stderr to
# ERR. Its PID (that of CMD itself: ip netns exec execs it) is in SPAWNED_PID and is tracked for cleanup.
# (Never background the `on` function itself: $! would be a subshell, not the command.)
spawn() {
    local n out=$2 err=$3; n=$(ns "$1"); shift 3
    ip netns exec "$n" "$@" >"$out" 2>"$err" </dev/null &
    SPAWNED_PID=$!
    track_pid "$SPAWNED_PID"
}

mac_of() { on "$1" cat "/sys/class/net/$2/address"; }   # mac_of NAME IFACE

# ---------------------------------------------------------------- ipop nodes

# gen_keys NODE...: one X25519 key pair per node via `ipop genkey | ipop pubkey`.
gen_keys() {
    local n
    mkdir -p "$E2E_TMP/keys"
    for n in "$@"; do
        "$IPOP_BIN" genkey >"$E2E_TMP/keys/$n.key" || fatal "ipop genkey failed"
        "$IPOP_BIN" pubkey <"$E2E_TMP/keys/$n.key" >"$E2E_TMP/keys/$n.pub" || fatal "ipop pubkey failed"
        [[ -s "$E2E_TMP/keys/$n.key" && -s "$E2E_TMP/keys/$n.pub" ]] || fatal "empty key for $n"
    done
}

# write_node_config NODE VM PORT OVERLAY_SPEC...
#   OVERLAY_SPEC: space-separated key=value pairs, e.g.
#     "id=lab tap=ipop mtu=1280 ip4=10.0.4.1/24 bridge=lxcbr0 peers=vm2@10.200.0.2:5800,vm3@10.200.0.3:5800"
#   (ip4, bridge, mtu, clamp_mss optional; peer public keys come from gen_keys.)
write_node_config() {
    local node=$1 vm=$2 port=$3; shift 3
    E2E_NODES+=("$node")
    NODE_NS[$node]=$(ns "$vm")
    NODE_CONF[$node]="$E2E_TMP/$node.json"
    NODE_SOCK[$node]="$E2E_TMP/$node.sock"
    NODE_LOG[$node]="$E2E_TMP/$node.log"
    NODE_PORT[$node]=$port
    python3 - "$node" "$port" "${NODE_SOCK[$node]}" "$E2E_TMP/keys" "$@" >"${NODE_CONF[$node]}" <<'PY'
import json, sys
node, port, sock, keys, *specs = sys.argv[1:]
def key(n, ext): return open(f"{keys}/{n}.{ext}").read().strip()
overlays = []
for spec in specs:
    kv = dict(item.split("=", 1) for item in spec.split())
    o = {"id": kv["id"], "switchmode": 1, "tap_name": kv.get("tap", "ipop"), "mtu": int(kv.get("mtu", 1280))}
    if "ip4" in kv:
        addr, mask = kv["ip4"].split("/")
        o["ip4"], o["ip4_mask"] = addr, int(mask)
    if "bridge" in kv:
        o["bridge"] = kv["bridge"]
    if "clamp_mss" in kv:
        o["clamp_mss"] = int(kv["clamp_mss"])
    o["peers"] = []
    for p in filter(None, kv.get("peers", "").split(",")):
        name, endpoint = p.split("@")
        o["peers"].append({"name": name, "public_key": key(name, "pub"), "endpoint": endpoint})
    overlays.append(o)
json.dump({"node_name": node, "private_key": key(node, "key"), "listen_port": int(port),
           "control_socket": sock, "log_level": "debug", "overlays": overlays}, sys.stdout, indent=2)
PY
}

# start_node NODE: `ipop run` in the node's VM namespace, in the background, log to NODE_LOG.
start_node() {
    local node=$1 pid
    rm -f "${NODE_SOCK[$node]}"
    echo "==== $(date +%T.%N) ipop run --config ${NODE_CONF[$node]}" >>"${NODE_LOG[$node]}"
    ip netns exec "${NODE_NS[$node]}" "$IPOP_BIN" run --config "${NODE_CONF[$node]}" >>"${NODE_LOG[$node]}" 2>&1 &
    pid=$!
    NODE_PID[$node]=$pid
    track_pid "$pid"
    vlog "started $node pid $pid"
}

# stop_node NODE [GRACE]: SIGTERM the node and wait (bounded) for it to exit. Returns 1 if it had to be killed.
stop_node() {
    local node=$1 grace=${2:-5} pid=${NODE_PID[$1]} deadline
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

node_alive() { kill -0 "${NODE_PID[$1]}" 2>/dev/null; }

# node_status_json NODE: `ipop status --json` of the node (bounded to 5 s).
node_status_json() {
    local node=$1
    timeout 5 ip netns exec "${NODE_NS[$node]}" "$IPOP_BIN" status --socket "${NODE_SOCK[$node]}" --json
}

# status_query NODE PYTHON_EXPR [ARGS...]: evaluate a Python expression on the status JSON `s`
# (extra args are in `a`); prints the result; exit status 0 iff the expression is truthy.
status_query() {
    local node=$1 expr=$2 json; shift 2
    json=$(node_status_json "$node" 2>/dev/null) || return 2
    python3 -c '
import json, sys
s = json.loads(sys.stdin.read()); a = sys.argv[2:]
def overlay(i): return next(o for o in s["overlays"] if o["id"] == i)
def link(i, peer): return next((l for l in overlay(i)["links"] if l["peer"] == peer), None)
def mac_link(i, mac): return next((m["link"] for m in overlay(i)["mac_table"] if m["mac"].lower() == mac.lower()), None)
r = eval(sys.argv[1])
print(r)
sys.exit(0 if r else 1)' "$expr" "$@" <<<"$json" 2>/dev/null
}

# wait_for TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds or the timeout expires.
wait_for() {
    local timeout=$1 deadline; shift
    deadline=$(($(date +%s%N) + timeout * 1000000000))
    while (($(date +%s%N) < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    "$@" >/dev/null 2>&1
}

link_is_up() { status_query "$1" 'link(a[0], a[1]) and link(a[0], a[1])["state"] == "up"' "$2" "$3"; }

# wait_link_up NODE OVERLAY PEER [TIMEOUT]: require that the node reports its link to PEER "up".
wait_link_up() {
    local node=$1 ov=$2 peer=$3 timeout=${4:-20} t0=$SECONDS
    node_alive "$node" || fatal "node $node is not running"
    if wait_for "$timeout" link_is_up "$node" "$ov" "$peer"; then
        pass "$node: link to $peer on overlay $ov is up ($((SECONDS - t0)) s)"
    else
        fatal "$node: link to $peer on overlay $ov not up within ${timeout}s"
    fi
}

# start_linked_pair A B OVERLAY: start nodes A and B, wait until both answer and both report their
# link to the other on OVERLAY up.
start_linked_pair() {
    local a=$1 b=$2 ov=$3
    start_node "$a"
    start_node "$b"
    wait_node_ready "$a"
    wait_node_ready "$b"
    wait_link_up "$a" "$ov" "$b"
    wait_link_up "$b" "$ov" "$a"
}

# wait_node_ready NODE [TIMEOUT]: the control socket answers.
wait_node_ready() {
    local node=$1 timeout=${2:-10}
    wait_for "$timeout" node_status_json "$node" ||
        fatal "node $node: 'ipop status' does not answer within ${timeout}s (alive: $(node_alive "$node" && echo yes || echo no))"
}

dev_exists() { ip -n "$(ns "$1")" link show "$2" >/dev/null 2>&1; }   # dev_exists VM IFACE

# ---------------------------------------------------------------- assertions

# can_ping FROM IP [PING_ARGS...]: one echo round trip, 1 s timeout.
can_ping() { local from=$1 ip=$2; shift 2; on "$from" ping -n -q -c 1 -W 1 "$@" "$ip"; }

# assert_ping FROM IP [TIMEOUT] [PING_ARGS...]: FROM reaches IP within TIMEOUT seconds (default 10).
assert_ping() {
    local from=$1 ip=$2 timeout=${3:-10} t0
    shift $(($# < 3 ? $# : 3))
    t0=$(date +%s%N)
    if wait_for "$timeout" can_ping "$from" "$ip" "$@"; then
        pass "$from -> $ip ${*:+($*) }ping ok ($((($(date +%s%N) - t0) / 1000000)) ms)"
    else
        fail "$from -> $ip ${*:+($*) }no ping reply within ${timeout}s"
    fi
}

# assert_no_loss FROM IP COUNT: COUNT pings 20 ms apart, every one answered (bounded by ping -w).
assert_no_loss() {
    local from=$1 ip=$2 count=$3 out summary
    out=$(on "$from" ping -n -q -c "$count" -i 0.02 -W 1 -w $((count / 10 + 5)) "$ip" 2>&1) || true
    summary=$(grep -o '[0-9]* packets transmitted, [0-9]* received' <<<"$out" || echo "no ping summary")
    if [[ "$summary" == "$count packets transmitted, $count received" ]]; then
        pass "$from -> $ip $count/$count pings answered"
    else
        fail "$from -> $ip pings lost: $summary"
    fi
}

# assert_mac_on_link NODE OVERLAY MAC EXPECTED_LINK WHAT: the node's MAC table maps MAC to EXPECTED_LINK.
assert_mac_on_link() {
    local node=$1 ov=$2 mac=$3 want=$4 what=$5 got
    if wait_for 5 status_query "$node" 'mac_link(a[0], a[1]) == a[2]' "$ov" "$mac" "$want"; then
        pass "$node MAC table: $what $mac -> $want"
    else
        got=$(status_query "$node" 'mac_link(a[0], a[1])' "$ov" "$mac" || true)
        fail "$node MAC table: $what $mac -> expected '$want', got '${got:-<no status>}'"
    fi
}

# assert_eq GOT WANT WHAT
assert_eq() {
    if [[ "$1" == "$2" ]]; then pass "$3"; else fail "$3: expected '$2', got '$1'"; fi
}

# port_listening NAME PORT: a TCP listener on PORT inside NAME's namespace.
port_listening() { on "$1" ss -Hltn "sport = :$2" | grep -q .; }

# ---------------------------------------------------------------- link security helpers
# (added for link_security.sh, link_roaming.sh, link_rekey.sh)

E2E_LINKPKT="$E2E_DIR/linkpkt.py"     # pcap parsing, replay and forging of link datagrams (see its --help)

# edit_node_config NODE PYTHON...: run Python statements on the node's config dict `c` (as written by
# write_node_config) and write it back. Call before start_node, e.g.
#   edit_node_config vm1 'c["rekey_after_s"] = 20' 'c["overlays"][0]["psk"] = "..."'
edit_node_config() {
    local node=$1; shift
    python3 - "${NODE_CONF[$node]}" "$@" <<'PY' || fatal "edit_node_config $node failed"
import json, sys
path, *stmts = sys.argv[1:]
c = json.load(open(path))
for s in stmts:
    exec(s)
json.dump(c, open(path, "w"), indent=2)
PY
}

# gen_psk NAME: `ipop genpsk` into $E2E_TMP/keys/NAME.psk (read it with psk_of NAME).
gen_psk() {
    mkdir -p "$E2E_TMP/keys"
    "$IPOP_BIN" genpsk >"$E2E_TMP/keys/$1.psk" || fatal "ipop genpsk failed"
    [[ -s "$E2E_TMP/keys/$1.psk" ]] || fatal "empty psk $1"
}
psk_of() { tr -d '[:space:]' <"$E2E_TMP/keys/$1.psk"; }

# start_capture VM IFACE PCAP SECONDS [FILTER...]: tcpdump -w PCAP on IFACE inside VM's namespace,
# ending by itself after SECONDS at the latest; returns once it listens. Its PID is in CAPTURE_PID
# (tracked for cleanup); end it earlier with stop_capture. (--immediate-mode: without it libpcap
# holds packets up to 1 s in its ring and the last ones are lost when tcpdump is stopped.)
start_capture() {
    local vm=$1 dev=$2 pcap=$3 secs=$4; shift 4
    spawn "$vm" /dev/null "$pcap.err" timeout "$secs" tcpdump -i "$dev" -n -U --immediate-mode -s 0 -w "$pcap" "$@"
    CAPTURE_PID=$SPAWNED_PID
    wait_for 5 grep -q "listening on" "$pcap.err" || fail "tcpdump on $vm/$dev did not start: $(tail -n 2 "$pcap.err" 2>/dev/null)"
}

# stop_capture PID: end a capture (SIGTERM, bounded) after giving the last packets 0.3 s to land.
stop_capture() { sleep 0.3; stop_pid "$1" 3; }

# pcap_count PCAP [FILTER...]: number of packets in PCAP matching the tcpdump filter (0 for an empty file).
pcap_count() {
    local pcap=$1; shift
    [[ -s "$pcap" ]] || { echo 0; return 0; }
    { tcpdump -n -r "$pcap" "$@" 2>/dev/null || true; } | wc -l
}

# status_value NODE PYTHON_EXPR [ARGS...]: like status_query, but always prints the value and returns 0
# (prints "unavailable" when the node does not answer), for use in $(...) under set -e.
status_value() {
    local out
    out=$(status_query "$@") || true
    echo "${out:-unavailable}"
}

# node_drop NODE REASON: the node-wide drop counter REASON (auth_failure, replay, unknown_peer, bad_mac,
# rate_limited, malformed, stale); -1 if the node does not answer.
node_drop() {
    local v; v=$(status_value "$1" 's["dropped"].get(a[0], 0)' "$2")
    [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -1
}

# link_drop NODE OVERLAY PEER REASON: the drop counter REASON of one link; -1 if unavailable.
link_drop() {
    local v; v=$(status_value "$1" 'link(a[0], a[1])["dropped"].get(a[2], 0)' "$2" "$3" "$4")
    [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -1
}

# link_field NODE OVERLAY PEER FIELD: one field of a link's status (state, endpoint, rx_frames,
# last_handshake_s, ...), printed as Python prints it; "unavailable" if the node does not answer.
link_field() { status_value "$1" 'link(a[0], a[1])[a[2]]' "$2" "$3" "$4"; }

# assert_between GOT LOW HIGH WHAT: LOW <= GOT <= HIGH (integers).
assert_between() {
    local got=$1 low=$2 high=$3 what=$4
    if [[ $got =~ ^-?[0-9]+$ ]] && ((got >= low && got <= high)); then
        pass "$what ($got, want $low..$high)"
    else
        fail "$what: got '$got', want $low..$high"
    fi
}

# ping_fails FROM IP [COUNT]: no echo reply at all to COUNT (default 3) pings, 1 s apart (bounded).
ping_fails() {
    local from=$1 ip=$2 count=${3:-3}
    ! on "$from" ping -n -q -c "$count" -i 1 -W 1 -w $((count + 2)) "$ip" >/dev/null 2>&1
}

# assert_loss_at_most FROM IP COUNT MAX_LOST: COUNT pings 20 ms apart, at most MAX_LOST unanswered.
# Unlike assert_no_loss (ping -c with -w, where a reply late under CPU load makes ping send one more
# and report e.g. "21 transmitted, 21 received"), -c here counts the pings sent; bounded by timeout.
assert_loss_at_most() {
    local from=$1 ip=$2 count=$3 max=$4 out tx rx
    out=$(on "$from" timeout $((count / 10 + 10)) ping -n -q -c "$count" -i 0.02 -W 1 "$ip" 2>&1) || true
    tx=$(grep -o '[0-9]* packets transmitted' <<<"$out" | grep -o '^[0-9]*' || echo 0)
    rx=$(grep -o '[0-9]* received' <<<"$out" | grep -o '^[0-9]*' || echo 0)
    if ((tx == count && count - rx <= max)); then
        pass "$from -> $ip $rx/$count pings answered (at most $max lost)"
    else
        fail "$from -> $ip $rx/$tx of $count pings answered, want at most $max lost"
    fi
}

# ---------------------------------------------------------------- XMPP signalling helpers
# (added for xmpp_discovery.sh, xmpp_resilience.sh)

XMPP_DIR="$E2E_TMP/prosody"         # the private prosody: config, CA (certs/ca.pem), data/, logs
XMPP_SERVER=""                      # IP:PORT, set by xmpp_server_start
XMPP_PID=""                         # PID of the running prosody ("" while stopped)
XMPP_DOMAIN=${PROSODY_DOMAIN:-xmpp.ipop.test}

# xmpp_server_start VM IP [PORT]: a private prosody (xmpp/prosody.sh: own CA, c2s + MUC, STARTTLS
# required) inside VM's namespace, listening on IP:PORT (default 5222) only. Sets XMPP_SERVER and
# XMPP_PID (tracked: the cleanup stops it by PID).
xmpp_server_start() {
    local vm=$1 ip=$2 port=${3:-5222}
    # shellcheck source=xmpp/prosody.sh
    source "$E2E_DIR/xmpp/prosody.sh"
    XMPP_DOMAIN=$PROSODY_DOMAIN
    PROSODY_ADDR=$ip PROSODY_NETNS=$(ns "$vm") prosody_start "$XMPP_DIR" "$port" ||
        fatal "prosody did not start in $vm on $ip:$port"
    XMPP_PID=$(prosody_pid "$XMPP_DIR")
    [[ -n "$XMPP_PID" ]] || fatal "prosody started but has no PID"
    track_pid "$XMPP_PID"
    XMPP_SERVER="$ip:$port"
}

# xmpp_server_stop: stop prosody by its PID (SIGTERM, SIGKILL after 5 s); returns once it is gone.
xmpp_server_stop() {
    [[ -n "$XMPP_PID" ]] || return 0
    prosody_stop "$XMPP_DIR"
    wait "$XMPP_PID" 2>/dev/null || true
    ! kill -0 "$XMPP_PID" 2>/dev/null || fatal "prosody pid $XMPP_PID still runs after stop"
    XMPP_PID=""
}

# xmpp_server_relaunch: start the stopped prosody again: same config, certificates, accounts, address.
xmpp_server_relaunch() {
    prosody_relaunch "$XMPP_DIR" || fatal "prosody did not come back"
    XMPP_PID=$(prosody_pid "$XMPP_DIR")
    [[ -n "$XMPP_PID" ]] || fatal "prosody relaunched but has no PID"
    track_pid "$XMPP_PID"
}

# xmpp_register USER PASS: create USER@$XMPP_DOMAIN (prosodyctl register).
xmpp_register() { prosody_register "$XMPP_DIR" "$1" "$2" || fatal "cannot register $1@$XMPP_DOMAIN"; }

# xmpp_node_config NODE USER PASSWORD [ROOM]: give NODE's config (from write_node_config) an "xmpp"
# section: server $XMPP_SERVER, jid USER@$XMPP_DOMAIN, the private CA, tls required; ROOM (a room JID)
# switches discovery to that MUC room. Replaces an earlier xmpp section.
xmpp_node_config() {
    local node=$1 user=$2 pw=$3 room=${4:-}
    edit_node_config "$node" "c['xmpp'] = {'server': '$XMPP_SERVER', 'jid': '$user@$XMPP_DOMAIN', \
'password': '$pw', 'tls': 'required', 'ca_file': '$XMPP_DIR/certs/ca.pem', 'accept_untrusted_server': False}" \
        "c['xmpp'].update({'room': '$room'} if '$room' else {})"
}

# links_all_up NODE OVERLAY N: the node lists exactly N links on OVERLAY and all are "up".
links_all_up() {
    status_query "$1" 'len(overlay(a[0])["links"]) == int(a[1]) and all(l["state"] == "up" for l in overlay(a[0])["links"])' "$2" "$3" >/dev/null
}

# links_summary NODE OVERLAY: "peer:state ..." of the node's links (for messages).
links_summary() {
    status_value "$1" '" ".join(sorted(l["peer"] + ":" + l["state"] for l in overlay(a[0])["links"])) or "none"' "$2"
}

# log_count NODE REGEX: how many lines of NODE's log match the extended REGEX.
log_count() { local c; c=$(grep -cE -- "$2" "${NODE_LOG[$1]}" 2>/dev/null) || true; echo "${c:-0}"; }

# wait_log_count NODE REGEX N TIMEOUT: wait (bounded) until at least N lines of NODE's log match REGEX.
log_count_at_least() { (($(log_count "$1" "$2") >= $3)); }
wait_log_count() { wait_for "$4" log_count_at_least "$1" "$2" "$3"; }

# now_ms: a monotonic-enough wall clock in milliseconds (for phase timings).
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# phase_begin NAME / phase_end: print "TIME: NAME took X.Ys" (and keep it in E2E_TIMINGS).
E2E_TIMINGS=()
phase_begin() { E2E_PHASE=$1; E2E_PHASE_T0=$(now_ms); log "---- phase: $1"; }
phase_end() {
    local ms=$(($(now_ms) - E2E_PHASE_T0)) line
    line=$(printf '%s took %d.%ds' "$E2E_PHASE" $((ms / 1000)) $((ms / 100 % 10)))
    E2E_TIMINGS+=("$line")
    echo "TIME: $line"
}

# make_lxc_vm SWITCH VM UL_IP CONTAINER C_IP: a VM on the underlay switch (ul0 = UL_IP/24) with bridge
# lxcbr0 holding one container (eth0 = C_IP/24, MTU 1280).
make_lxc_vm() {
    local sw=$1 vm=$2 ulip=$3 c=$4 cip=$5
    make_vm "$vm"
    attach_vm_to_switch "$sw" "$vm" "$ulip"
    make_bridge "$vm"
    make_container "$vm" "$c" "$cip"
}
