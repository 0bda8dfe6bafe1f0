#!/usr/bin/env python3
"""Compare netwarden's addresses and ports with tshark's, packet by packet.

Writes captures of the frames a Linux host really captures (BIG TCP IPv4 and
IPv6, TSO packets stored cut, frames truncated past the TCP header, snaplen
cuts) on every link type netwarden parses beyond Ethernet (PPP, PPP in HDLC
framing, Cisco HDLC, IPoIB, NFLOG, SLL2), plus a capture from gen_pcap.py;
replays each with `netwarden replay FILE --all --json` (an empty rule set)
and reads it with `tshark -T fields`; prints, per file, how many packets
agree on source and destination address and on ports, and the first
disagreements.

Only the outermost header is compared: tshark also decodes the packet an
ICMP error quotes (and shows its ports), netwarden deliberately does not
attribute those, so ports are compared for TCP and UDP packets only. NFLOG
frames are written whole (cut only by the 16-bit TLV length, as the kernel's
copy range cuts them): when a snaplen cuts an NFLOG message inside its payload
TLV, tshark shows no addresses at all, netwarden reads what was captured.

Usage: compare_tshark.py [--netwarden BIN] [-n N] [FILE.pcap ...]
Needs tshark (apt-get install tshark). Exit status 1 when any file
disagrees, so it can run as a check.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

V4_A, V4_B = bytes([10, 1, 2, 3]), bytes([192, 168, 1, 50])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("20010db8000000000000000000000002")


def tcp(sport, dport, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 64240, 0, 0) + payload


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(proto, payload, total_len=None):
    total = 20 + len(payload) if total_len is None else total_len
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1234, 0x4000, 64, proto, 0, V4_A, V4_B) + payload


def ipv6(next_header, payload, payload_len=None):
    length = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", 0x60000000, length, next_header, 64, V6_A, V6_B) + payload


def ipv6_jumbo(next_header, payload):
    """BIG TCP for IPv6: payload length 0, hop-by-hop jumbo payload option (RFC 2675)."""
    hop_by_hop = struct.pack("!BBBBI", next_header, 0, 0xC2, 4, 8 + len(payload))
    return ipv6(0, hop_by_hop + payload, payload_len=0)


def eth(ethertype, payload):
    return bytes.fromhex("02000000000b02000000000a") + struct.pack("!H", ethertype) + payload


def sll2(ethertype, payload):
    return struct.pack("!HHIHBB8s", ethertype, 0, 3, 1, 0, 6, bytes.fromhex("02000000000a0000")) + payload


def ppp(ip_version, payload):
    return bytes([0xFF, 0x03]) + struct.pack("!H", 0x57 if ip_version == 6 else 0x21) + payload


def chdlc(ethertype, payload):
    return bytes([0x0F, 0x00]) + struct.pack("!H", ethertype) + payload


def ipoib(ethertype, payload):
    return bytes(40) + struct.pack("!HH", ethertype, 0) + payload


def nflog(ip_version, packet):
    def tlv(kind, value):
        body = struct.pack("=HH", 4 + len(value), kind) + value
        return body + bytes(-len(body) % 4)

    header = bytes([10 if ip_version == 6 else 2, 0, 0, 5])
    return header + tlv(1, bytes([8, 0, 3, 0])) + tlv(10, b"drop:\0") + tlv(9, packet) + tlv(11, struct.pack("!I", 1000))


def write_pcap(path, linktype, records):
    """records: (frame, bytes kept); the frame's full length is its length on the wire."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for i, (frame, keep) in enumerate(records):
            data = frame[:keep]
            out.write(struct.pack("<IIII", 1_764_000_000, i * 1000, len(data), len(frame)))
            out.write(data)


def linux_cases():
    """(name, IP version, network packet, bytes of it kept or None) for every case."""
    big = bytes(70_000)
    return [
        ("big-tcp-v4", 4, ipv4(6, tcp(40000, 22, 0x18, big), total_len=0), 65_000),
        ("big-tcp-v6", 6, ipv6_jumbo(6, tcp(40001, 22, 0x18, big)), 65_000),
        ("tso-whole", 4, ipv4(6, tcp(40002, 443, 0x10, bytes(3000))), None),
        ("tso-stored-cut", 4, ipv4(6, tcp(40003, 22, 0x10, bytes(100)), total_len=28960), None),
        ("v6-length-past-frame", 6, ipv6(17, udp(40004, 53, b"hi"), payload_len=1000), None),
        ("snaplen-past-tcp", 4, ipv4(6, tcp(40005, 22, 0x02, bytes(500))), 40 + 8),
        ("snaplen-in-tcp", 4, ipv4(6, tcp(40006, 22, 0x02, bytes(500))), 20 + 10),
        ("udp", 4, ipv4(17, udp(5353, 53, b"abcd")), None),
        ("udp-v6", 6, ipv6(17, udp(5353, 53, b"abcd")), None),
    ]


LINKS = {
    # name: (LINKTYPE, header bytes, wrap(ip_version, packet))
    "ethernet": (1, 14, lambda v, p: eth(0x86DD if v == 6 else 0x0800, p)),
    "linux_sll2": (276, 20, lambda v, p: sll2(0x86DD if v == 6 else 0x0800, p)),
    "ppp": (9, 4, ppp),
    "ppp_hdlc": (50, 4, ppp),
    "c_hdlc": (104, 4, lambda v, p: chdlc(0x86DD if v == 6 else 0x0800, p)),
    "ipoib": (242, 44, lambda v, p: ipoib(0x86DD if v == 6 else 0x0800, p)),
    "nflog": (239, 28, nflog),
}


def write_linux_captures(directory):
    paths = []
    for name, (linktype, header, wrap) in LINKS.items():
        records = []
        for _case, version, packet, keep in linux_cases():
            if name == "nflog":
                packet = packet[:65_000]  # a TLV's length is 16 bits: the copy range cuts longer packets
                keep = None
            frame = wrap(version, packet)
            records.append((frame, len(frame) if keep is None else header + keep))
        path = os.path.join(directory, f"linux-{name}.pcap")
        write_pcap(path, linktype, records)
        paths.append(path)
    return paths


def first(value):
    """tshark lists repeated fields comma-separated (an ICMP error's quoted packet): take the outer one."""
    return value.split(",")[0] if value else None


def tshark_rows(path):
    fields = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
              "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        v = dict(zip(fields, (line.split("\t") + [""] * len(fields))[: len(fields)]))
        src = first(v["ip.src"]) or first(v["ipv6.src"]) or first(v["arp.src.proto_ipv4"])
        dst = first(v["ip.dst"]) or first(v["ipv6.dst"]) or first(v["arp.dst.proto_ipv4"])
        sport = first(v["tcp.srcport"]) or first(v["udp.srcport"])
        dport = first(v["tcp.dstport"]) or first(v["udp.dstport"])
        rows.append((src, dst, int(sport) if sport else None, int(dport) if dport else None))
    return rows


def netwarden_rows(binary, path, rules):
    cmd = [binary, "replay", path, "--all", "--json", "--no-log", "--rules", rules]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def compare(binary, path, rules):
    ours = netwarden_rows(binary, path, rules)
    theirs = tshark_rows(path)
    if len(ours) != len(theirs):
        print(f"{path}: netwarden saw {len(ours)} packets, tshark {len(theirs)}")
        return False
    addr_ok = port_ok = port_total = 0
    misses = []
    for i, (event, (src, dst, sport, dport)) in enumerate(zip(ours, theirs), start=1):
        same_addr = (event["src_ip"], event["dst_ip"]) == (src, dst)
        addr_ok += same_addr
        transport = event["protocol"] in ("tcp", "udp") or (event["protocol"] not in ("icmp", "icmpv6") and sport)
        same_port = True
        if transport:
            port_total += 1
            same_port = (event["src_port"], event["dst_port"]) == (sport, dport)
            port_ok += same_port
        if not (same_addr and same_port) and len(misses) < 8:
            misses.append(f"  frame {i}: netwarden {event['protocol']} {event['src_ip']}:{event['src_port']} -> "
                          f"{event['dst_ip']}:{event['dst_port']} [{event['malformed']}]; "
                          f"tshark {src}:{sport} -> {dst}:{dport}")
    n = len(ours)
    print(f"{os.path.basename(path)}: {n} packets; addresses agree {addr_ok}/{n} ({100.0 * addr_ok / max(n, 1):.2f}%), "
          f"ports {port_ok}/{port_total} ({100.0 * port_ok / max(port_total, 1):.2f}%)")
    for line in misses:
        print(line)
    return addr_ok == n and port_ok == port_total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--netwarden", default=os.path.join(ROOT, "target", "release", "netwarden"))
    ap.add_argument("-n", type=int, default=20_000, help="packets from gen_pcap.py (0: none)")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "rules.ron")
        with open(rules, "w") as f:
            f.write("(default_policy: Allow, rules: [])\n")
        files = list(args.files) or write_linux_captures(tmp)
        if not args.files and args.n > 0:
            generated = os.path.join(tmp, f"traffic-{args.n}.pcap")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_pcap.py"), "-n", str(args.n), "-o", generated],
                           check=True, capture_output=True)
            files.append(generated)
        results = [compare(args.netwarden, path, rules) for path in files]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
