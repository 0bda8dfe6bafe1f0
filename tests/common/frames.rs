//! Byte-exact frame builders for tests. Checksums are left zero: netwarden does not verify them (a monitor
//! must show what is on the wire, valid or not).

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

pub fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

/// Ethernet II: destination MAC_B, source MAC_A.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend(MAC_B);
    f.extend(MAC_A);
    f.extend(be16(ethertype));
    f.extend(payload);
    f
}

/// Ethernet with 802.1Q tags (outer first), then `ethertype`.
pub fn eth_vlan(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    // tags: (tag protocol id, vlan id)
    let mut f = Vec::new();
    f.extend(MAC_B);
    f.extend(MAC_A);
    for (tpid, vid) in tags {
        f.extend(be16(*tpid));
        f.extend(be16(*vid));
    }
    f.extend(be16(ethertype));
    f.extend(payload);
    f
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, 0, false, payload)
}

/// IPv4 with a fragment offset (8-byte units) and the more-fragments flag.
pub fn ipv4_frag(src: [u8; 4], dst: [u8; 4], proto: u8, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap();
    let flags_offset = offset | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0];
    p.extend(be16(total));
    p.extend([0x12, 0x34]);
    p.extend(be16(flags_offset));
    p.extend([64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(payload);
    p
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend(be16(u16::try_from(payload.len()).unwrap()));
    p.extend([next, 64]);
    p.extend(src);
    p.extend(dst);
    p.extend(payload);
    p
}

/// IPv6 with a hop-by-hop header and a (first) fragment header before `next`.
pub fn ipv6_with_ext(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop: next = fragment, 8 bytes, PadN
    ext.extend([next, 0, 0, 1, 0, 0, 0, 7]); // fragment: offset 0, M = 1, id 7
    ext.extend(payload);
    ipv6(src, dst, 0, &ext)
}

pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(be16(sport));
    t.extend(be16(dport));
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags]);
    t.extend(be16(64_240));
    t.extend([0, 0, 0, 0]);
    t.extend(payload);
    t
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(be16(sport));
    u.extend(be16(dport));
    u.extend(be16(u16::try_from(8 + payload.len()).unwrap()));
    u.extend([0, 0]);
    u.extend(payload);
    u
}

pub fn icmp(icmp_type: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut i = vec![icmp_type, code, 0, 0, 0, 1, 0, 1];
    i.extend(payload);
    i
}

/// ARP over Ethernet/IPv4.
pub fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4];
    a.extend(be16(op));
    a.extend(MAC_A);
    a.extend(sender);
    a.extend([0; 6]);
    a.extend(target);
    a
}

/// Linux cooked v1 header (incoming packet from MAC_A) then `payload`.
pub fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6];
    f.extend(MAC_A);
    f.extend([0, 0]);
    f.extend(be16(protocol));
    f.extend(payload);
    f
}

/// Linux cooked v2 header then `payload`.
pub fn sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(be16(protocol));
    f.extend([0, 0]);
    f.extend(3u32.to_be_bytes()); // interface index
    f.extend([0, 1, 0, 6]);
    f.extend(MAC_A);
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// BSD NULL: address family in host (little-endian) order.
pub fn null(family: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = family.to_le_bytes().to_vec();
    f.extend(payload);
    f
}

/// OpenBSD LOOP: address family in network order.
pub fn loop_(family: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = family.to_be_bytes().to_vec();
    f.extend(payload);
    f
}

pub const V4_A: [u8; 4] = [10, 1, 2, 3];
pub const V4_B: [u8; 4] = [192, 168, 1, 50];

pub fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[15] = last;
    a
}

/// IPv4 with an explicit total length: 0 for a BIG TCP / GSO super-packet, or more than the bytes that
/// follow for a TSO packet whose capture kept only part of it.
pub fn ipv4_total_len(src: [u8; 4], dst: [u8; 4], proto: u8, total_len: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4(src, dst, proto, &[]);
    p[2..4].copy_from_slice(&be16(total_len));
    p.extend(payload);
    p
}

/// IPv6 BIG TCP as Linux 5.19+ sends it: payload length 0, a hop-by-hop header with the jumbo payload
/// option (RFC 2675) giving the length after the IPv6 header, then `next` and `payload`.
pub fn ipv6_jumbo(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let jumbo_len = u32::try_from(8 + payload.len()).unwrap();
    let mut hop_by_hop = vec![next, 0, 0xc2, 4];
    hop_by_hop.extend(jumbo_len.to_be_bytes());
    let mut p = ipv6(src, dst, 0, &hop_by_hop);
    p[4..6].copy_from_slice(&[0, 0]);
    p.extend(payload);
    p
}

/// PPP (`LINKTYPE_PPP`) with the HDLC address and control bytes and a 2-byte protocol (0x0021 IPv4,
/// 0x0057 IPv6).
pub fn ppp(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff, 0x03];
    f.extend(be16(protocol));
    f.extend(payload);
    f
}

/// PPP with protocol field compression and no address/control bytes: one odd protocol byte.
pub fn ppp_compressed(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![protocol];
    f.extend(payload);
    f
}

/// Cisco HDLC (`LINKTYPE_C_HDLC`, also `LINKTYPE_PPP_HDLC` with a Cisco address byte): unicast address,
/// control 0, EtherType.
pub fn chdlc(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x0f, 0x00];
    f.extend(be16(ethertype));
    f.extend(payload);
    f
}

/// IP over InfiniBand (`LINKTYPE_IPOIB`): a 40-byte pseudo header (zero: no global route header), then the
/// RFC 4391 header (EtherType, 2 reserved bytes).
pub fn ipoib(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 40];
    f[20..24].copy_from_slice(&[0, 0, 0x12, 0x34]); // destination queue pair, as a real header has
    f.extend(be16(ethertype));
    f.extend([0, 0]);
    f.extend(payload);
    f
}

/// One NFLOG TLV: length and type in host byte order (as libpcap hands them over), padded to 4 bytes.
fn nflog_tlv(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).unwrap();
    let mut t = len.to_ne_bytes().to_vec();
    t.extend(kind.to_ne_bytes());
    t.extend(value);
    t.resize(t.len().div_ceil(4) * 4, 0);
    t
}

/// Where the packet starts in an `nflog` frame.
pub const NFLOG_PAYLOAD_AT: usize = 4 + 8 + 12 + 4;

/// An NFLOG message (`LINKTYPE_NFLOG`) as the kernel builds it: family (2 = AF_INET, 10 = AF_INET6), group
/// 5, a hardware-protocol TLV, a prefix TLV, the packet (`NFULA_PAYLOAD`), and a UID TLV after it.
pub fn nflog(family: u8, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![family, 0, 0, 5];
    f.extend(nflog_tlv(1, &[0x08, 0x00, 3, 0])); // NFULA_PACKET_HDR: hw protocol, hook
    f.extend(nflog_tlv(10, b"drop:\0")); // NFULA_PREFIX: 10 bytes, padded to 12
    f.extend(nflog_tlv(9, packet)); // NFULA_PAYLOAD
    f.extend(nflog_tlv(11, &1000u32.to_be_bytes())); // NFULA_UID
    f
}
