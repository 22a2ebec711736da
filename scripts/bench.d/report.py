#!/usr/bin/env python3
"""Prints the scripts/bench table from its result directory.

usage: report.py RESULT_DIR REFERENCE_MTU CLK_TCK
       report.py --mbps IPERF3_TCP_JSON        (one TCP run's receiver Mbit/s)

RESULT_DIR/order lists the measured paths (raw, ipop-<mtu>, tinc-<mtu>); each path dir holds
label, ping.txt, tcp-<i>.json, udp.json, cpu_before/cpu_after (ticks of the daemons), rss_idle,
rss_peak (kB per daemon), load.
"""
import json
import os
import re
import statistics
import sys

UDP_LEN = 1200


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tcp_runs(d):
    """Receiver Mbit/s and bytes of every TCP run that produced a result."""
    runs = []
    i = 1
    while os.path.exists(f"{d}/tcp-{i}.json"):
        j = load_json(f"{d}/tcp-{i}.json")
        try:
            r = j["end"]["sum_received"]
            runs.append((r["bits_per_second"] / 1e6, r["bytes"]))
        except (TypeError, KeyError):
            pass
        i += 1
    return runs


def udp_result(d):
    """(received packets/s, loss %) from the iperf3 UDP run."""
    j = load_json(f"{d}/udp.json")
    try:
        r = j["end"]["sum_received"]
        return r["bytes"] / UDP_LEN / r["seconds"], r["lost_percent"]
    except (TypeError, KeyError, ZeroDivisionError):
        try:
            s = j["end"]["sum"]
            return (s["packets"] - s["lost_packets"]) / s["seconds"], s["lost_percent"]
        except (TypeError, KeyError, ZeroDivisionError):
            return None


def ping_result(d, name="ping.txt"):
    """(avg ms, p50 ms, loss %) from ping's per-reply lines."""
    text = read(f"{d}/{name}")
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", text)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    loss = 100.0 * (1 - int(m.group(2)) / int(m.group(1))) if m and int(m.group(1)) else None
    if not times:
        return None
    return statistics.fmean(times), statistics.median(times), loss


def fmt(x, spec, missing="n/a"):
    return missing if x is None else format(x, spec)


def main():
    if sys.argv[1] == "--mbps":
        j = load_json(sys.argv[2])
        try:
            print(f'{j["end"]["sum_received"]["bits_per_second"] / 1e6:.0f}')
        except (TypeError, KeyError):
            print("n/a")
        return
    res, ref_mtu, clk = sys.argv[1], sys.argv[2], int(sys.argv[3])
    order = read(f"{res}/order").split()
    paths = {}
    for name in order:
        d = f"{res}/{name}"
        runs = tcp_runs(d)
        p = {
            "label": read(f"{d}/label", name),
            "runs": runs,
            "tcp": statistics.median([r[0] for r in runs]) if runs else None,
            "udp": udp_result(d),
            "ping": ping_result(d),
            "ping_warm": ping_result(d, "ping-warm.txt"),
            "load": read(f"{d}/load", "?"),
        }
        pids = read(f"{d}/pids").split()
        if pids:
            try:
                ticks = int(read(f"{d}/cpu_after")) - int(read(f"{d}/cpu_before"))
                gb = sum(r[1] for r in runs) / 1e9
                p["cpu_s"] = ticks / clk
                p["cpu_per_gb"] = ticks / clk / gb if gb > 0 else None
            except ValueError:
                p["cpu_s"] = p["cpu_per_gb"] = None
            p["rss_idle"] = [int(x) for x in read(f"{d}/rss_idle").split() if x.isdigit()]
            p["rss_peak"] = [int(x) for x in read(f"{d}/rss_peak").split() if x.isdigit()]
            meta = read(f"{d}/meta_tcp_bytes")
            p["meta"] = int(meta) if meta.lstrip("-").isdigit() else None
        paths[name] = p

    print(read(f"{res}/header"))
    print()
    w = max([len(p["label"]) for p in paths.values()] + [4])
    head = f'| {"path":<{w}} | TCP Mbit/s | UDP kpps @1200B (loss) | ping RTT ms avg / p50 | warm p50 |'
    print(head)
    print("|" + "-" * (w + 2) + "|-----------:|-----------------------:|----------------------:|---------:|")
    for name in order:
        p = paths[name]
        udp = p["udp"]
        udp_s = f"{udp[0] / 1000:.1f} ({udp[1]:.1f}%)" if udp else "n/a"
        ping = p["ping"]
        ping_s = f"{ping[0]:.3f} / {ping[1]:.3f}" if ping else "n/a"
        if ping and ping[2]:
            ping_s += f" ({ping[2]:.0f}% lost)"
        warm = p["ping_warm"]
        warm_s = f"{warm[1]:.3f}" if warm else "n/a"
        print(f'| {p["label"]:<{w}} | {fmt(p["tcp"], ".0f"):>10} | {udp_s:>22} | {ping_s:>21} | {warm_s:>8} |')
    print()

    raw = paths.get("raw")
    mtus = sorted({n.split("-", 1)[1] for n in order if "-" in n}, key=lambda m: (m != ref_mtu, m))

    def ratio(a, b):
        return f"{a / b:.3f}" if a is not None and b else "n/a"

    def rtt_added(p, i, key="ping"):
        return f"+{p[key][i] - raw[key][i]:.3f} ms" if p and raw and p[key] and raw[key] else "n/a"

    for m in mtus:
        ip, tc = paths.get(f"ipop-{m}"), paths.get(f"tinc-{m}")
        print(f"MTU {m}: TCP ipop/raw = {ratio(ip and ip['tcp'], raw and raw['tcp'])}, "
              f"ipop/tinc = {ratio(ip and ip['tcp'], tc and tc['tcp'])}; "
              f"RTT added over raw (avg / p50): ipop {rtt_added(ip, 0)} / {rtt_added(ip, 1)}, "
              f"tinc {rtt_added(tc, 0)} / {rtt_added(tc, 1)}; "
              f"warm (1 ms apart, p50): ipop {rtt_added(ip, 1, 'ping_warm')}, tinc {rtt_added(tc, 1, 'ping_warm')}")
        ov = paths.get(f"openvpn-{m}")
        if ov:
            print(f"MTU {m}: TCP ipop/OpenVPN = {ratio(ip and ip['tcp'], ov['tcp'])}; "
                  f"RTT added over raw (avg / p50): OpenVPN {rtt_added(ov, 0)} / {rtt_added(ov, 1)}")
        l3 = paths.get(f"ipopl3-{m}")
        if l3:
            print(f"MTU {m}, ipop L3 mode: TCP ipop/raw = {ratio(l3['tcp'], raw and raw['tcp'])}, "
                  f"ipop/tinc = {ratio(l3['tcp'], tc and tc['tcp'])}; "
                  f"RTT added over raw (avg / p50): {rtt_added(l3, 0)} / {rtt_added(l3, 1)}")
    print()
    for name in order:
        p = paths[name]
        if "cpu_s" not in p:
            continue
        gb = sum(r[1] for r in p["runs"]) / 1e9
        idle = "/".join(f"{k / 1024:.1f}" for k in p["rss_idle"]) or "n/a"
        peak = "/".join(f"{k / 1024:.1f}" for k in p["rss_peak"]) or "n/a"
        print(f'{p["label"]}: daemons\' CPU {fmt(p["cpu_per_gb"], ".2f")} s per GB '
              f'({fmt(p["cpu_s"], ".1f")} s for {gb:.2f} GB of TCP, both processes); '
              f"RSS idle {idle} MiB, peak (VmHWM) {peak} MiB (node a/b)"
              + (f'; over its TCP meta connection: {p["meta"] / 1e6:.1f} MB' if p.get("meta") is not None else ""))
    print()
    print("TCP runs (Mbit/s): " + "; ".join(
        f'{paths[n]["label"]}: ' + ", ".join(f"{r[0]:.0f}" for r in paths[n]["runs"]) for n in order))
    print("load average (1 min) and CPUs busy (1 s, before any traffic) at the start of each path: " + ", ".join(
        f'{paths[n]["label"]} {paths[n]["load"]}' for n in order))


if __name__ == "__main__":
    main()
