#!/usr/bin/env python3
"""Packet tools for the link-security e2e scenarios (stdlib only). Run inside a namespace with `on`.

  linkpkt.py has-bytes PCAP HEX
      exit 0 iff the raw bytes HEX occur anywhere in the pcap file (headers, payloads, everything).
  linkpkt.py count PCAP --src IP[:PORT] --dst IP[:PORT] [--type T] [--min-len N]
      prints how many UDP datagrams match (T: first payload byte, the link message type).
  linkpkt.py replay PCAP --src IP:PORT --dst IP:PORT --type T [--limit N] [--last]
                    [--spoof | --from IP]
      re-sends the UDP payloads of the matching captured datagrams to --dst, in capture order, and
      prints the number sent. --spoof: raw socket, original source IP and port kept (IP_HDRINCL);
      --from IP: plain UDP socket bound to IP with an ephemeral port (an attacker's own address).
  linkpkt.py handshakes PCAP
      prints the handshake messages in capture order, one per line: "init SRC_IP" / "response SRC_IP".
  linkpkt.py forge PCAP --src IP:PORT --dst IP:PORT --overlay ID [--from IP] [--seed S]
      sends forged and garbage datagrams to --dst and prints a JSON object: how many of each kind were
      sent, keyed by the drop reason the receiver must count them under. A captured transport
      packet (type 4) from --src to --dst supplies a valid receiver index.

Wire format: Sources/IPOPLink/LinkMessage.swift (little-endian; transport = type 4, 3 reserved,
receiverIndex u32, counter u64, ciphertext, 16-byte tag; initiation = 136 bytes with the overlay tag
at offset 4; response = 76 bytes).
"""
import argparse
import hashlib
import json
import random
import socket
import struct
import sys
import time


def read_pcap(path):
    """Yields (linktype, frame bytes) of a classic pcap file (either byte order, us or ns)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def ip_payload(linktype, frame):
    """The IPv4 packet inside a captured frame, or None."""
    if linktype == 1:                                   # Ethernet (maybe 802.1Q tagged)
        etype, off = struct.unpack("!H", frame[12:14])[0], 14
        while etype == 0x8100 and len(frame) >= off + 4:
            etype, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
    elif linktype == 113:                               # Linux cooked v1
        etype, off = struct.unpack("!H", frame[14:16])[0], 16
    elif linktype == 276:                               # Linux cooked v2
        etype, off = struct.unpack("!H", frame[0:2])[0], 20
    elif linktype in (12, 101):                         # raw IP
        etype, off = 0x0800, 0
    else:
        return None
    return frame[off:] if etype == 0x0800 else None


def udp_datagrams(path):
    """Yields (src_ip, src_port, dst_ip, dst_port, payload) of every unfragmented UDP/IPv4 datagram."""
    for linktype, frame in read_pcap(path):
        ip = ip_payload(linktype, frame)
        if not ip or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if struct.unpack("!H", ip[6:8])[0] & 0x3FFF:     # fragment
            continue
        udp = ip[ihl:total]
        if len(udp) < 8:
            continue
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        yield (socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport, bytes(udp[8:ulen]))


def addr(text):
    host, _, port = text.partition(":")
    return host, (int(port) if port else None)


def matching(path, src, dst, mtype=None, min_len=0):
    (sip, sport), (dip, dport) = addr(src), addr(dst)
    out = []
    for s, sp, d, dp, payload in udp_datagrams(path):
        if s != sip or d != dip or (sport and sp != sport) or (dport and dp != dport):
            continue
        if mtype is not None and (not payload or payload[0] != mtype):
            continue
        if len(payload) < min_len:
            continue
        out.append(payload)
    return out


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Sender:
    """Sends payloads to dst either spoofed from (src_ip, src_port) or from a plain socket bound to from_ip."""

    def __init__(self, dst, spoof_src=None, from_ip=None):
        self.dst = dst
        self.spoof = spoof_src
        if spoof_src:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
            self.ident = random.randrange(1, 0xFFFF)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((from_ip or "0.0.0.0", 0))

    def send(self, payload):
        if not self.spoof:
            self.sock.sendto(payload, self.dst)
        else:
            (sip, sport), (dip, dport) = self.spoof, self.dst
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload   # UDP checksum 0: none
            self.ident = (self.ident + 1) & 0xFFFF or 1
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), self.ident, 0x4000, 64, 17, 0,
                              socket.inet_aton(sip), socket.inet_aton(dip))
            hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
            self.sock.sendto(hdr + udp, (dip, 0))
        time.sleep(0.002)   # paced: the receiver's socket buffer is not what is under test


def cmd_has_bytes(a):
    with open(a.pcap, "rb") as f:
        return 0 if bytes.fromhex(a.hex) in f.read() else 1


def cmd_count(a):
    print(len(matching(a.pcap, a.src, a.dst, a.type, a.min_len)))
    return 0


def cmd_replay(a):
    payloads = matching(a.pcap, a.src, a.dst, a.type)
    if a.limit:
        payloads = payloads[-a.limit:] if a.last else payloads[:a.limit]
    dst = addr(a.dst)
    sender = Sender(dst, spoof_src=addr(a.src) if a.spoof else None, from_ip=a.from_ip)
    for p in payloads:
        sender.send(p)
    print(len(payloads))
    return 0


def cmd_handshakes(a):
    for s, _, _, _, payload in udp_datagrams(a.pcap):
        if payload[:1] in (b"\x01", b"\x02"):
            print(("init" if payload[0] == 1 else "response"), s)
    return 0


def cmd_forge(a):
    rng = random.Random(a.seed)
    rb = lambda n: bytes(rng.getrandbits(8) for _ in range(n))
    transports = [p for p in matching(a.pcap, a.src, a.dst, 4) if len(p) >= 33]
    if not transports:
        print(json.dumps({"error": "no captured transport packet with a payload"}))
        return 1
    sample = transports[-1]
    rindex = struct.unpack("<I", sample[4:8])[0]
    tag = hashlib.sha256(b"ipop-swift overlay tag v1\0" + a.overlay.encode()).digest()[:4]
    sender = Sender(addr(a.dst), from_ip=a.from_ip)
    sent = {"malformed": 0, "bad_mac": 0, "unknown_peer": 0, "auth_failure": 0, "stray_traversal": 0}

    def send(kind, payload):
        sender.send(payload)
        sent[kind] += 1

    # Random bytes whose type byte is no message type (TURN ChannelData-shaped ones, 0x40-0x7F, too:
    # from a host that is not our TURN server they are just bad datagrams).
    for _ in range(30):
        t = rng.choice([b for b in range(256) if b not in (1, 2, 4)])
        send("malformed", bytes([t]) + rb(rng.randrange(3, 1400)))
    for _ in range(5):
        body = rb(rng.randrange(0, 200))
        send("malformed", struct.pack("!HH", rng.randrange(0x4000, 0x8000), len(body)) + body)
    # A STUN binding success that answers no request of ours: traversal-shaped, counted as stray.
    for _ in range(5):
        send("stray_traversal", struct.pack("!HHI", 0x0101, 0, 0x2112A442) + rb(12))
    # Truncated: shorter than any header, and each message type cut short.
    for n in range(0, 4):
        send("malformed", bytes([4, 0, 0, 0][:n]))
    for n in (4, 16, 31):
        send("malformed", sample[:n])                                     # transport below header + tag
    send("malformed", bytes([1, 0, 0, 0]) + tag + rb(127))                # initiation, 135 bytes
    send("malformed", bytes([1, 0, 0, 0]) + tag + rb(129))                # initiation, 137 bytes
    send("malformed", bytes([2, 0, 0, 0]) + rb(71))                       # response, 75 bytes
    send("malformed", bytes([4, 1, 0, 0]) + sample[4:])                   # reserved byte not zero
    # An initiation for our overlay with a random body: fails mac1, before any DH.
    for _ in range(10):
        send("bad_mac", bytes([1, 0, 0, 0]) + tag + rb(128))
    # Transport / response for indices nobody has.
    for _ in range(10):
        idx = rng.getrandbits(32)
        while idx == rindex:
            idx = rng.getrandbits(32)
        send("unknown_peer", bytes([4, 0, 0, 0]) + struct.pack("<IQ", idx, rng.getrandbits(40)) + rb(rng.randrange(16, 200)))
    for _ in range(5):
        send("unknown_peer", bytes([2, 0, 0, 0]) + rb(4) + struct.pack("<I", rng.getrandbits(32)) + rb(64))
    # A valid header (real receiver index) with a counter the receiver has not seen yet, far ahead of
    # the live one, and one flipped ciphertext byte: must fail authentication and must not move the
    # replay window (live traffic continues below that counter).
    counter = struct.unpack("<Q", sample[8:16])[0]
    for i in range(20):
        forged = bytearray(sample)
        forged[8:16] = struct.pack("<Q", counter + 1_000_000 + i)
        pos = 16 + rng.randrange(len(sample) - 32)
        forged[pos] ^= 1 << rng.randrange(8)
        send("auth_failure", bytes(forged))
    # The same with the original counter + 1 (next in sequence) and a flipped tag byte.
    for i in range(5):
        forged = bytearray(sample)
        forged[8:16] = struct.pack("<Q", counter + 5000 + i)
        forged[-1] ^= 0x80
        send("auth_failure", bytes(forged))
    print(json.dumps(sent, sort_keys=True))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("has-bytes"); s.add_argument("pcap"); s.add_argument("hex")
    s = sub.add_parser("count"); s.add_argument("pcap"); s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True); s.add_argument("--type", type=int); s.add_argument("--min-len", type=int, default=0)
    s = sub.add_parser("replay"); s.add_argument("pcap"); s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True); s.add_argument("--type", type=int, required=True)
    s.add_argument("--limit", type=int, default=0); s.add_argument("--last", action="store_true")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--spoof", action="store_true"); g.add_argument("--from", dest="from_ip")
    s = sub.add_parser("handshakes"); s.add_argument("pcap")
    s = sub.add_parser("forge"); s.add_argument("pcap"); s.add_argument("--src", required=True)
    s.add_argument("--dst", required=True); s.add_argument("--overlay", required=True)
    s.add_argument("--from", dest="from_ip"); s.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    return {"has-bytes": cmd_has_bytes, "count": cmd_count, "replay": cmd_replay, "forge": cmd_forge,
            "handshakes": cmd_handshakes}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
