#!/usr/bin/env python3
"""Classify a NAT from behind it, RFC 5780 style, for nat_traversal.sh.

  natprobe.py probe PORT SERVER1 SERVER2 [LISTEN_S]
      From a UDP socket bound to PORT, send a STUN Binding request to SERVER1 and SERVER2
      (host:port) and print "mapped SERVER MAPPED" per answer, then "ready", then listen up to
      LISTEN_S seconds (default 0) and print "unsolicited FROM" if a datagram arrives from an
      address we never sent to (to test the NAT's filtering); the first one ends the listening.
  natprobe.py send FROM_PORT HOST:PORT
      Send one datagram "hello" from local FROM_PORT to HOST:PORT.

Binding requests and the XOR-MAPPED-ADDRESS decoding follow RFC 8489; no FINGERPRINT needed.
"""
import os, socket, struct, sys, time

COOKIE = 0x2112A442


def hostport(text):
    h, p = text.rsplit(":", 1)
    return h, int(p)


def binding(sock, server, timeout=1.0, tries=3):
    for _ in range(tries):
        tid = os.urandom(12)
        sock.sendto(struct.pack("!HHI", 0x0001, 0, COOKIE) + tid, server)
        deadline = time.time() + timeout
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data, src = sock.recvfrom(2048)
            except socket.timeout:
                break
            if len(data) < 20 or data[8:20] != tid or src != server:
                continue
            pos = 20
            while pos + 4 <= len(data):
                atype, alen = struct.unpack("!HH", data[pos:pos + 4])
                value = data[pos + 4:pos + 4 + alen]
                if atype == 0x0020 and alen >= 8:
                    port = struct.unpack("!H", value[2:4])[0] ^ (COOKIE >> 16)
                    addr = struct.unpack("!I", value[4:8])[0] ^ COOKIE
                    return "%s:%d" % (socket.inet_ntoa(struct.pack("!I", addr)), port)
                pos += 4 + ((alen + 3) & ~3)
    return None


def main():
    if sys.argv[1] == "probe":
        port, s1, s2 = int(sys.argv[2]), hostport(sys.argv[3]), hostport(sys.argv[4])
        listen = float(sys.argv[5]) if len(sys.argv) > 5 else 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        for server in (s1, s2):
            print("mapped %s:%d %s" % (server[0], server[1], binding(sock, server)), flush=True)
        print("ready", flush=True)
        deadline = time.time() + listen
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data, src = sock.recvfrom(2048)
            except socket.timeout:
                break
            if src not in (s1, s2):
                print("unsolicited %s:%d" % src, flush=True)
                break
    elif sys.argv[1] == "send":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", int(sys.argv[2])))
        sock.sendto(b"hello", hostport(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
