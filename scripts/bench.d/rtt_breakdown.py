#!/usr/bin/env python3
"""Per-hop latency of pings through an ipop pair, from four captures (see scripts/rtt-breakdown).

usage: rtt_breakdown.py TAP_A.pcap UL_A.pcap UL_B.pcap TAP_B.pcap
Pairs each echo request/reply (by ICMP sequence number) with the first data datagram each way
(UDP payload 100-200 bytes: a 98-byte frame + 32 bytes of link overhead; keepalives are 32) seen
at or after it, and prints the median and mean of each hop in microseconds.
"""
import bisect
import statistics
import subprocess
import sys


def lines(path):
    out = subprocess.run(["tcpdump", "-r", path, "-n", "-tt"], capture_output=True, text=True)
    return out.stdout.splitlines()


def echoes(path):
    found = {}
    for line in lines(path):
        if "ICMP echo" in line and "seq " in line:
            kind = "request" if "request" in line else "reply"
            seq = int(line.split("seq ")[1].split(",")[0])
            found[(kind, seq)] = float(line.split()[0])
    return found


def datagrams(path, sender_port_side):
    """Timestamps of data datagrams whose source is `sender_port_side` (an 'a.b.c.d.5800' string)."""
    out = []
    for line in lines(path):
        if " UDP, length " not in line:
            continue
        length = int(line.rsplit("length ", 1)[1])
        if 100 <= length <= 200 and f" {sender_port_side} >" in line:
            out.append(float(line.split()[0]))
    return out


def first_at_or_after(times, t):
    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None


def main():
    tap_a, ul_a, ul_b, tap_b = sys.argv[1:5]
    ea, eb = echoes(tap_a), echoes(tap_b)
    a_side, b_side = "10.202.0.1.5800", "10.202.0.2.5800"
    ab_at_a, ab_at_b = datagrams(ul_a, a_side), datagrams(ul_b, a_side)
    ba_at_b, ba_at_a = datagrams(ul_b, b_side), datagrams(ul_a, b_side)
    hops = {name: [] for name in ("a out", "wire", "b in", "echo", "b out", "wire back", "a in", "total")}
    for (kind, seq), t0 in sorted(ea.items()):
        if kind != "request" or ("reply", seq) not in ea or ("request", seq) not in eb or ("reply", seq) not in eb:
            continue
        t1 = first_at_or_after(ab_at_a, t0)
        t2 = t1 and first_at_or_after(ab_at_b, t1)
        t3, t4 = eb[("request", seq)], eb[("reply", seq)]
        t5 = first_at_or_after(ba_at_b, t4)
        t6 = t5 and first_at_or_after(ba_at_a, t5)
        t7 = ea[("reply", seq)]
        if None in (t1, t2, t5, t6) or not (t0 <= t1 <= t2 <= t3 <= t4 <= t5 <= t6 <= t7):
            continue
        for name, d in zip(hops, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t7 - t0)):
            hops[name].append(d * 1e6)
    n = len(hops["total"])
    if n == 0:
        print("  no ping could be followed through all four captures")
        sys.exit(1)
    print(f"  {'hop':<10} {'p50 µs':>8} {'mean µs':>8}   ({n} pings followed)")
    for name, values in hops.items():
        print(f"  {name:<10} {statistics.median(values):8.1f} {statistics.fmean(values):8.1f}")


if __name__ == "__main__":
    main()
