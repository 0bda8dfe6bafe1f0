#!/usr/bin/env python3
"""Writes assets/demo.pcap: 60 s of realistic traffic seen by host 192.168.1.50 (fd00::50), replayed by the
app's demo mode. Deterministic (fixed seed); Python standard library only.

Contents: DNS answers from the router (so passive names appear), HTTPS over IPv4 and IPv6, NTP, pings, ARP,
an SSH brute force from 203.0.113.7 (denied by the default rules), a port scan from 198.51.100.23, a SYN burst
from 192.0.2.99 to port 80, and a few malformed frames.

Usage: scripts/make_demo_pcap.py [OUT]   (default assets/demo.pcap)
"""
import random
import socket
import struct
import sys

R = random.Random(7)
HOST4 = socket.inet_aton("192.168.1.50")
ROUTER4 = socket.inet_aton("192.168.1.1")
HOST6 = socket.inet_pton(socket.AF_INET6, "fd00::50")
MAC_HOST = bytes.fromhex("02000000a050")
MAC_ROUTER = bytes.fromhex("02000000a001")
SITES = [("example.org", "93.184.215.14"), ("docs.rs", "18.164.96.10"), ("crates.io", "18.66.112.34"),
         ("debian.org", "151.101.2.132"), ("wikipedia.org", "185.15.59.224")]
SITE6 = ("ipv6.example.net", "2001:db8::10")
T0 = 1_764_050_400  # 2025-11-25 06:00:00 UTC


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


def ip4(src, dst, proto, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), R.getrandbits(16), 0x4000, 64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ip6(src, dst, nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + src + dst + payload


def tcp(sport, dport, flags, payload=b"", seq=None):
    seq = R.getrandbits(32) if seq is None else seq
    return struct.pack("!HHIIBBHHH", sport, dport, seq, R.getrandbits(32) if flags & 0x10 else 0, 0x50, flags,
                       64240, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def dns_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_response(name, addr, v6=False):
    qtype = 28 if v6 else 1
    rdata = socket.inet_pton(socket.AF_INET6, addr) if v6 else socket.inet_aton(addr)
    msg = struct.pack("!HHHHHH", R.getrandbits(16), 0x8180, 1, 1, 0, 0) + dns_name(name) + struct.pack("!HH", qtype, 1)
    return msg + b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, len(rdata)) + rdata


def dns_query(name, v6=False):
    return struct.pack("!HHHHHH", R.getrandbits(16), 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", 28 if v6 else 1, 1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "assets/demo.pcap"
    frames = []  # (time in seconds, frame)

    def add(t, frame):
        frames.append((t, frame))

    def v4(t, src, dst, proto, l4, inbound):
        add(t, eth(MAC_HOST if inbound else MAC_ROUTER, MAC_ROUTER if inbound else MAC_HOST, 0x0800,
                   ip4(src, dst, proto, l4)))

    for i in range(120):  # browsing: DNS then a short HTTPS exchange, every 0.5 s
        t = i * 0.5 + R.random() * 0.1
        name, addr = SITES[i % len(SITES)]
        server = socket.inet_aton(addr)
        sport = 50000 + i
        v4(t, HOST4, ROUTER4, 17, udp(40000 + i, 53, dns_query(name)), False)
        v4(t + 0.004, ROUTER4, HOST4, 17, udp(53, 40000 + i, dns_response(name, addr)), True)
        v4(t + 0.01, HOST4, server, 6, tcp(sport, 443, 0x02), False)
        v4(t + 0.03, server, HOST4, 6, tcp(443, sport, 0x12), True)
        v4(t + 0.031, HOST4, server, 6, tcp(sport, 443, 0x10), False)
        for k in range(R.randrange(3, 9)):
            size = R.choice([120, 517, 1200, 1448])
            v4(t + 0.04 + k * 0.005, server, HOST4, 6, tcp(443, sport, 0x18, bytes(size)), True)
            v4(t + 0.042 + k * 0.005, HOST4, server, 6, tcp(sport, 443, 0x10), False)
        v4(t + 0.2, HOST4, server, 6, tcp(sport, 443, 0x11), False)
    for i in range(20):  # IPv6 HTTPS with a AAAA answer
        t = 1.3 + i * 3
        v4(t, HOST4, ROUTER4, 17, udp(41000 + i, 53, dns_query(SITE6[0], True)), False)
        v4(t + 0.003, ROUTER4, HOST4, 17, udp(53, 41000 + i, dns_response(SITE6[0], SITE6[1], True)), True)
        server6 = socket.inet_pton(socket.AF_INET6, SITE6[1])
        for k in range(4):
            add(t + 0.01 + k * 0.01, eth(MAC_ROUTER, MAC_HOST, 0x86DD, ip6(HOST6, server6, 6, tcp(52000 + i, 443, 0x18, bytes(300)))))
            add(t + 0.015 + k * 0.01, eth(MAC_HOST, MAC_ROUTER, 0x86DD, ip6(server6, HOST6, 6, tcp(443, 52000 + i, 0x10))))
        add(t + 0.1, eth(MAC_ROUTER, MAC_HOST, 0x86DD, ip6(HOST6, server6, 58, struct.pack("!BBHHH", 128, 0, 0, 1, i) + bytes(32))))
    for i in range(6):  # NTP
        v4(2 + i * 10, HOST4, ROUTER4, 17, udp(123, 123, b"\x23" + bytes(47)), False)
        v4(2.01 + i * 10, ROUTER4, HOST4, 17, udp(123, 123, b"\x24" + bytes(47)), True)
    for i in range(30):  # router pings us
        v4(i * 2 + 0.7, ROUTER4, HOST4, 1, struct.pack("!BBHHH", 8, 0, 0, 1, i) + bytes(56), True)
        v4(i * 2 + 0.7005, HOST4, ROUTER4, 1, struct.pack("!BBHHH", 0, 0, 0, 1, i) + bytes(56), False)
    for i in range(12):  # ARP
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_ROUTER, ROUTER4, bytes(6), HOST4)
        add(i * 5 + 0.2, eth(b"\xff" * 6, MAC_ROUTER, 0x0806, arp))
    attacker = socket.inet_aton("203.0.113.7")
    for i in range(90):  # SSH brute force, 3 attempts/s from t=10 s
        v4(10 + i / 3, attacker, HOST4, 6, tcp(30000 + i, 22, 0x02), True)
    scanner = socket.inet_aton("198.51.100.23")
    for port in range(1, 101):  # port scan at t=20 s
        v4(20 + port * 0.02, scanner, HOST4, 6, tcp(61000, port, 0x02), True)
    flooder = socket.inet_aton("192.0.2.99")
    for i in range(300):  # SYN burst to port 80 at t=45 s
        v4(45 + i / 300, flooder, HOST4, 6, tcp(R.randrange(1024, 65535), 80, 0x02), True)
    for i in range(3):  # malformed: IPv4 header length 3, and a frame cut inside the TCP header
        bad = bytearray(eth(MAC_HOST, MAC_ROUTER, 0x0800, ip4(scanner, HOST4, 17, udp(1, 2, b"x"))))
        bad[14] = 0x43
        add(30 + i * 7, bytes(bad))
    frames.sort(key=lambda f: f[0])
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, frame in frames:
            us = int(round(t * 1_000_000))
            f.write(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(frame), len(frame)))
            f.write(frame)
    print("wrote %s: %d frames" % (out, len(frames)), file=sys.stderr)


if __name__ == "__main__":
    main()
