#!/usr/bin/env bash
# `ipop check --config FILE` on broken configs. No namespaces, no network.
#
#   valid.json --(one mutation per case)--> case.json --> ipop check --config case.json
#                                                              |
#                                  exit != 0, stderr = exactly one line naming the key, no stack trace
#
# Positive controls first: the unmutated config passes `ipop check` (exit 0), and so does a config
# with the optional keys left out. Then one case per mistake: mtu out of range (70000, 67), unknown keys (top
# level, overlay, peer), switchmode 0 (L3 not supported), missing/bad private key, bad peer public key,
# bad endpoints, wrong types, no overlays at all, invalid JSON.

source "$(dirname "$0")/lib.sh"
resolve_ipop_bin

VALID="$E2E_TMP/valid.json"
gen_keys vm1 vm2
PRIV=$(cat "$E2E_TMP/keys/vm1.key")
PUB2=$(cat "$E2E_TMP/keys/vm2.pub")
cat >"$VALID" <<EOF
{ "node_name": "vm1", "private_key": "$PRIV", "listen_port": 5800,
  "control_socket": "$E2E_TMP/vm1.sock", "log_level": "info",
  "overlays": [ { "id": "lab", "switchmode": 1, "tap_name": "ipop", "mtu": 1280,
                  "ip4": "10.0.3.1", "ip4_mask": 24, "bridge": "lxcbr0",
                  "peers": [ { "name": "vm2", "public_key": "$PUB2", "endpoint": "10.200.0.2:5800" } ] } ] }
EOF

# mutate NAME PYTHON: write $E2E_TMP/NAME.json = valid config with the Python statement applied to `c`.
mutate() {
    python3 - "$VALID" "$E2E_TMP/$1.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
    echo "$E2E_TMP/$1.json"
}

# run_check FILE: runs `ipop check`, sets RC, OUT, ERR (bounded to 10 s).
run_check() {
    RC=0
    timeout 10 "$IPOP_BIN" check --config "$1" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || RC=$?
    OUT=$(cat "$E2E_TMP/out")
    ERR=$(cat "$E2E_TMP/err")
}

looks_like_crash() {   # Swift runtime traps, backtraces, assertion messages
    grep -qiE 'fatal error|stack trace|stack dump|backtrace|💣|crashed|at /.*\.swift:[0-9]+|^[[:space:]]*#?[0-9]+ +0x[0-9a-f]+' <<<"$1"
}

# expect_ok NAME FILE
expect_ok() {
    run_check "$2"
    if ((RC == 0)); then
        pass "$1: ipop check accepts it"
    else
        fail "$1: ipop check rejected a valid config (exit $RC): $ERR"
    fi
}

# expect_error NAME FILE NEEDLE [EXTRA_REGEX]: non-zero exit (not a signal, not timeout), stderr exactly one
# line containing NEEDLE (and matching EXTRA_REGEX, case-insensitive, if given), no crash output.
expect_error() {
    local name=$1 file=$2 needle=$3 extra=${4:-} lines problems=()
    run_check "$file"
    lines=$(printf '%s' "$ERR" | awk 'END { print NR }')
    ((RC != 0)) || problems+=("exit code 0")
    ((RC < 124)) || problems+=("exit code $RC (timeout or signal)")
    ((lines == 1)) || problems+=("stderr has $lines lines, want 1")
    [[ "$ERR" == *"$needle"* ]] || problems+=("stderr does not name '$needle'")
    [[ -z "$extra" ]] || grep -qiE "$extra" <<<"$ERR" || problems+=("stderr does not match /$extra/")
    ! looks_like_crash "$ERR$OUT" || problems+=("looks like a crash / stack trace")
    if ((${#problems[@]} == 0)); then
        pass "$name: exit $RC, \"$ERR\""
    else
        fail "$name: $(printf '%s; ' "${problems[@]}")exit $RC, stderr: $(head -c 600 <<<"$ERR")"
    fi
}

# -- positive controls
expect_ok "valid config" "$VALID"
expect_ok "valid config without optional ip4/ip4_mask/bridge" \
    "$(mutate minimal 'o = c["overlays"][0]; [o.pop(k) for k in ("ip4", "ip4_mask", "bridge")]')"

# -- one mistake per case
expect_error "mtu 70000"              "$(mutate mtu_big 'c["overlays"][0]["mtu"] = 70000')"           'overlays[0].mtu'
expect_error "mtu 67 (< IPv4 minimum)" "$(mutate mtu_small 'c["overlays"][0]["mtu"] = 67')"            'overlays[0].mtu'
expect_error "unknown top-level key"  "$(mutate unk_top 'c["listen_prot"] = 5800')"                   'listen_prot'
expect_error "unknown overlay key"    "$(mutate unk_ov 'c["overlays"][0]["tapname"] = "x"')"          'tapname'
expect_error "unknown peer key"       "$(mutate unk_peer 'c["overlays"][0]["peers"][0]["pubkey"] = "x"')" 'pubkey'
expect_error "switchmode 0"           "$(mutate sw0 'c["overlays"][0]["switchmode"] = 0')"            'switchmode' \
    'L3|not (yet )?supported|unsupported'
expect_error "missing private_key"    "$(mutate no_priv 'del c["private_key"]')"                      'private_key'
expect_error "private_key not base64" "$(mutate bad_priv 'c["private_key"] = "not*base64!!"')"        'private_key'
expect_error "private_key 16 bytes"   "$(mutate short_priv 'c["private_key"] = "AAAAAAAAAAAAAAAAAAAAAA=="')" 'private_key'
expect_error "peer public_key not base64" \
    "$(mutate bad_pub 'c["overlays"][0]["peers"][0]["public_key"] = "%%%"')" 'overlays[0].peers[0].public_key'
expect_error "endpoint without port"  "$(mutate ep_noport 'c["overlays"][0]["peers"][0]["endpoint"] = "10.200.0.2"')" \
    'overlays[0].peers[0].endpoint'
expect_error "endpoint port 70000"    "$(mutate ep_port 'c["overlays"][0]["peers"][0]["endpoint"] = "10.200.0.2:70000"')" \
    'overlays[0].peers[0].endpoint'
expect_error "endpoint garbage"       "$(mutate ep_junk 'c["overlays"][0]["peers"][0]["endpoint"] = "::nope::"')" \
    'overlays[0].peers[0].endpoint'
expect_error "listen_port is a string" "$(mutate port_str 'c["listen_port"] = "5800"')"               'listen_port'
expect_error "listen_port 70000"      "$(mutate port_big 'c["listen_port"] = 70000')"                 'listen_port'
expect_error "second overlay's mtu"   "$(mutate mtu_ov1 'o = json.loads(json.dumps(c["overlays"][0])); o.update(id="lab2", tap_name="ipop2", mtu=70000); c["overlays"].append(o)')" \
    'overlays[1].mtu'

printf '{ "node_name": "vm1", ' >"$E2E_TMP/truncated.json"
expect_error "truncated JSON"         "$E2E_TMP/truncated.json" ''
