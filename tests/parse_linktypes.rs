//! Capture files written by this test for every link type netwarden parses (Ethernet, 802.1Q, QinQ, Linux
//! SLL and SLL2, raw IP, IPv4/IPv6 link types, BSD NULL and LOOP, PPP, PPP in HDLC framing, Cisco HDLC,
//! IPoIB, NFLOG), as pcap and as pcapng, read back through real libpcap and checked field by field: TCP
//! flags, UDP, ICMP, ICMPv6, ARP, IPv4 fragments, IPv6 extension headers, TSO and BIG TCP super-packets
//! (IPv4 total length 0, IPv6 jumbo option), frames truncated past the transport header, snaplen-truncated
//! and malformed frames. Property tests: any truncation of a frame yields a prefix of its fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;

use common::frames::*;
use common::pcapfile::{Record, write_pcap, write_pcapng};
use netwarden::capture::{PacketSource, PcapSource, Read};
use netwarden::packet::{IpProto, Layer, LinkType, Malformed, NetworkKind, Offload, PacketMeta, parse};

/// What a frame must parse to.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    network: NetworkKind,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    protocol: Option<u8>,
    ports: (Option<u16>, Option<u16>),
    tcp_flags: Option<u8>,
    icmp: Option<(u8, u8)>,
    fragment: (bool, u16),
    offload: Option<Offload>,
    malformed: Option<Malformed>,
}

fn want_of(m: &PacketMeta) -> Want {
    Want {
        network: m.network,
        src: m.src_ip,
        dst: m.dst_ip,
        protocol: m.protocol.map(|p| p.0),
        ports: (m.src_port, m.dst_port),
        tcp_flags: m.tcp_flags.map(|f| f.0),
        icmp: m.icmp_type_code,
        fragment: (m.fragment.is_fragment, m.fragment.offset),
        offload: m.offload,
        malformed: m.malformed,
    }
}

fn v4ip(a: [u8; 4]) -> Option<IpAddr> {
    Some(IpAddr::from(a))
}

fn v6ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from(v6(last)))
}

fn base(network: NetworkKind) -> Want {
    Want {
        network,
        src: None,
        dst: None,
        protocol: None,
        ports: (None, None),
        tcp_flags: None,
        icmp: None,
        fragment: (false, 0),
        offload: None,
        malformed: None,
    }
}

/// Bytes of data in the BIG TCP cases: more than an IP length field can say.
const BIG: usize = 70_000;
/// Bytes of a BIG TCP packet the captures keep (netwarden's own snaplen is 65,535).
const BIG_KEPT: usize = 65_000;

/// The network-layer cases: (ethertype, bytes, bytes captured or None for all, expectation).
fn cases(v4: bool, v6_ok: bool, arp_ok: bool) -> Vec<(u16, Vec<u8>, Option<usize>, Want)> {
    let mut c = Vec::new();
    if v4 {
        let v4w = |proto: u8| Want {
            src: v4ip(V4_A),
            dst: v4ip(V4_B),
            protocol: Some(proto),
            ..base(NetworkKind::Ipv4)
        };
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 6, &tcp(40_000, 22, 0x12, b"")),
            None,
            Want {
                ports: (Some(40_000), Some(22)),
                tcp_flags: Some(0x12),
                ..v4w(6)
            },
        ));
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 17, &udp(5353, 53, b"abcd")),
            None,
            Want {
                ports: (Some(5353), Some(53)),
                ..v4w(17)
            },
        ));
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 1, &icmp(8, 0, b"ping")),
            None,
            Want {
                icmp: Some((8, 0)),
                ..v4w(1)
            },
        ));
        c.push((
            0x0800,
            ipv4_frag(V4_A, V4_B, 17, 0, true, &udp(1, 2, &[7; 24])),
            None,
            Want {
                ports: (Some(1), Some(2)),
                fragment: (true, 0),
                ..v4w(17)
            },
        ));
        c.push((
            0x0800,
            ipv4_frag(V4_A, V4_B, 17, 185, false, &[9; 16]),
            None,
            Want {
                fragment: (true, 185),
                ..v4w(17)
            },
        ));
        // Snaplen kept 20 bytes of IP and 10 of TCP: ports survive, the header is truncated.
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 6, &tcp(40_000, 443, 0x02, &[0; 100])),
            Some(30),
            Want {
                ports: (Some(40_000), Some(443)),
                malformed: Some(Malformed::Truncated(Layer::Tcp)),
                ..v4w(6)
            },
        ));
        // BIG TCP (Linux 6.3+): total length 0, the frame gives the length; cut by the snaplen, so marked
        // truncated with its ports kept.
        c.push((
            0x0800,
            ipv4_total_len(V4_A, V4_B, 6, 0, &tcp(40_000, 22, 0x18, &[7; BIG])),
            Some(BIG_KEPT),
            Want {
                ports: (Some(40_000), Some(22)),
                tcp_flags: Some(0x18),
                offload: Some(Offload::ZeroLength),
                malformed: Some(Malformed::Truncated(Layer::Ipv4)),
                ..v4w(6)
            },
        ));
        // TSO: a 3,040-byte packet captured whole is an ordinary packet.
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 6, &tcp(40_001, 443, 0x10, &[1; 3000])),
            None,
            Want {
                ports: (Some(40_001), Some(443)),
                tcp_flags: Some(0x10),
                ..v4w(6)
            },
        ));
        // TSO as some captures show it: total length 1,500 in a frame said to be whole but shorter.
        c.push((
            0x0800,
            ipv4_total_len(V4_A, V4_B, 6, 1500, &tcp(40_002, 22, 0x18, &[2; 100])),
            None,
            Want {
                ports: (Some(40_002), Some(22)),
                tcp_flags: Some(0x18),
                malformed: Some(Malformed::Truncated(Layer::Ipv4)),
                ..v4w(6)
            },
        ));
        // A short snaplen that cut the payload past the transport header: truncated, ports kept.
        c.push((
            0x0800,
            ipv4(V4_A, V4_B, 17, &udp(5000, 514, &[3; 200])),
            Some(20 + 8 + 10),
            Want {
                ports: (Some(5000), Some(514)),
                malformed: Some(Malformed::Truncated(Layer::Ipv4)),
                ..v4w(17)
            },
        ));
        let mut bad_ihl = ipv4(V4_A, V4_B, 17, &udp(1, 2, b""));
        bad_ihl[0] = 0x43;
        c.push((
            0x0800,
            bad_ihl,
            None,
            Want {
                malformed: Some(Malformed::Invalid(Layer::Ipv4)),
                ..base(NetworkKind::Ipv4)
            },
        ));
        let mut bad_doff = ipv4(V4_A, V4_B, 6, &tcp(1, 80, 0x10, b""));
        bad_doff[20 + 12] = 0xf0; // data offset 15 (60 bytes) in a 20-byte segment
        c.push((
            0x0800,
            bad_doff,
            None,
            Want {
                ports: (Some(1), Some(80)),
                tcp_flags: Some(0x10),
                malformed: Some(Malformed::Invalid(Layer::Tcp)),
                ..v4w(6)
            },
        ));
    }
    if v6_ok {
        let v6w = |proto: u8| Want {
            src: v6ip(1),
            dst: v6ip(2),
            protocol: Some(proto),
            ..base(NetworkKind::Ipv6)
        };
        c.push((
            0x86dd,
            ipv6(v6(1), v6(2), 58, &icmp(128, 0, b"x")),
            None,
            Want {
                icmp: Some((128, 0)),
                ..v6w(58)
            },
        ));
        c.push((
            0x86dd,
            ipv6_with_ext(v6(1), v6(2), 17, &udp(1000, 443, b"q")),
            None,
            Want {
                ports: (Some(1000), Some(443)),
                fragment: (true, 0),
                ..v6w(17)
            },
        ));
        // Payload length past a frame said to be whole: truncated, the ports read from what is there.
        let mut long = ipv6(v6(1), v6(2), 17, &udp(1, 53, b"hi"));
        long[4..6].copy_from_slice(&1000u16.to_be_bytes());
        c.push((
            0x86dd,
            long,
            None,
            Want {
                ports: (Some(1), Some(53)),
                malformed: Some(Malformed::Truncated(Layer::Ipv6)),
                ..v6w(17)
            },
        ));
        // BIG TCP for IPv6: payload length 0 and a hop-by-hop jumbo option; cut by the snaplen.
        c.push((
            0x86dd,
            ipv6_jumbo(v6(1), v6(2), 6, &tcp(40_000, 22, 0x18, &[7; BIG])),
            Some(BIG_KEPT),
            Want {
                ports: (Some(40_000), Some(22)),
                tcp_flags: Some(0x18),
                offload: Some(Offload::Jumbogram),
                malformed: Some(Malformed::Truncated(Layer::Ipv6)),
                ..v6w(6)
            },
        ));
    }
    if arp_ok {
        c.push((
            0x0806,
            arp(1, V4_A, V4_B),
            None,
            Want {
                src: v4ip(V4_A),
                dst: v4ip(V4_B),
                ..base(NetworkKind::Arp)
            },
        ));
        c.push((
            0x88cc,
            vec![2, 7, 4, 0, 0, 0, 0, 0, 1],
            None,
            base(NetworkKind::OtherEtherType(0x88cc)),
        ));
    }
    c
}

/// The largest packet an NFLOG payload TLV holds (its length is 16 bits): the kernel's copy range cuts
/// longer ones, and the message then says the packet is that long.
const NFLOG_MAX: usize = 65_000;

fn wrap(link: LinkType, ethertype: u16, l3: &[u8]) -> (Vec<u8>, usize) {
    let family_v6 = ethertype == 0x86dd;
    let ppp_protocol = if family_v6 { 0x0057 } else { 0x0021 };
    match link {
        LinkType::Ethernet => (eth(ethertype, l3), 14),
        LinkType::LinuxSll => (sll(ethertype, l3), 16),
        LinkType::LinuxSll2 => (sll2(ethertype, l3), 20),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => (l3.to_vec(), 0),
        LinkType::Null => (null(if family_v6 { 30 } else { 2 }, l3), 4),
        LinkType::Loop => (loop_(if family_v6 { 24 } else { 2 }, l3), 4),
        LinkType::Ppp | LinkType::PppHdlc => (ppp(ppp_protocol, l3), 4),
        LinkType::CHdlc => (chdlc(ethertype, l3), 4),
        LinkType::IpoIb => (ipoib(ethertype, l3), 44),
        LinkType::Nflog => (
            nflog(if family_v6 { 10 } else { 2 }, &l3[..l3.len().min(NFLOG_MAX)]),
            NFLOG_PAYLOAD_AT,
        ),
        LinkType::Other(_) => unreachable!(),
    }
}

/// Runs every case through a pcap and a pcapng file of `link` and compares each parsed packet.
fn check(link: LinkType, dlt: u32, tags: &[(u16, u16)], v4: bool, v6_ok: bool, arp_ok: bool) {
    let framing = |ethertype: u16, l3: &[u8]| {
        if tags.is_empty() {
            wrap(link, ethertype, l3)
        } else {
            (eth_vlan(tags, ethertype, l3), 14 + 4 * tags.len())
        }
    };
    check_framed(link, dlt, &framing, tags, (v4, v6_ok, arp_ok));
}

/// Builds a frame of a link type around a network-layer packet: `(ethertype, packet) -> (frame, header
/// length)`.
type Framing<'a> = dyn Fn(u16, &[u8]) -> (Vec<u8>, usize) + 'a;

/// As `check`, with the link header built by `framing` (returns the frame and its header length).
fn check_framed(
    link: LinkType,
    dlt: u32,
    framing: &Framing<'_>,
    tags: &[(u16, u16)],
    (v4, v6_ok, arp_ok): (bool, bool, bool),
) {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(v4, v6_ok, arp_ok);
    let mut records: Vec<Record> = Vec::new();
    let mut wants = Vec::new();
    for (i, (ethertype, l3, keep, want)) in cases.iter().enumerate() {
        let (mut frame, header) = framing(*ethertype, l3);
        let wire = u32::try_from(frame.len()).unwrap();
        if let Some(keep) = keep {
            frame.truncate(header + keep);
        }
        let mut want = want.clone();
        if link == LinkType::Nflog && l3.len() > NFLOG_MAX && want.offload == Some(Offload::Jumbogram) {
            // The message holds 65,000 bytes of a packet whose jumbo option says more: honestly truncated.
            want.malformed = Some(Malformed::Truncated(Layer::Ipv6));
        }
        if link == LinkType::Nflog && l3.len() > NFLOG_MAX && want.offload == Some(Offload::ZeroLength) {
            // An IPv4 BIG TCP packet, length 0, takes its length from the message and is whole there.
            want.malformed = None;
        }
        wants.push(want);
        records.push((
            1_700_000_000_000_000 + i64::try_from(i).unwrap() * 1000,
            frame,
            wire,
        ));
    }
    let pcap = dir.path().join("t.pcap");
    let pcapng = dir.path().join("t.pcapng");
    write_pcap(&pcap, dlt, &records);
    write_pcapng(&pcapng, u16::try_from(dlt).unwrap(), &records);
    for path in [&pcap, &pcapng] {
        let mut source = PcapSource::open_file(path, None).unwrap();
        assert_eq!(source.link_type(), link, "{}", path.display());
        let mut got = Vec::new();
        let file_link = source.link_type();
        while let Read::Packet(raw) = source.read().unwrap() {
            let meta = parse(file_link, raw.ts_micros, raw.wire_len, raw.data);
            let outer = tags.first().map_or(0, |t| t.1);
            let inner = tags.get(1).map_or(0, |t| t.1);
            assert_eq!(meta.vlan_ids, [outer, inner], "vlan ids");
            let if_index = if link == LinkType::LinuxSll2 { 3 } else { 0 };
            assert_eq!(meta.if_index, if_index, "only SLL2 names the interface");
            got.push((raw.ts_micros, meta));
        }
        assert_eq!(got.len(), cases.len(), "{link:?} {}", path.display());
        for (((ts, meta), record), (case, want)) in got.iter().zip(&records).zip(cases.iter().zip(&wants)) {
            assert_eq!(*ts, record.0, "timestamps survive the file");
            assert_eq!(meta.caplen as usize, record.1.len());
            assert_eq!(meta.wire_len, record.2);
            assert_eq!(
                want_of(meta),
                *want,
                "{link:?} {} case {:?}",
                path.display(),
                case.0
            );
        }
    }
}

#[test]
fn ethernet() {
    check(LinkType::Ethernet, 1, &[], true, true, true);
}

#[test]
fn ethernet_8021q() {
    check(LinkType::Ethernet, 1, &[(0x8100, 10)], true, true, true);
}

#[test]
fn ethernet_qinq() {
    check(
        LinkType::Ethernet,
        1,
        &[(0x88a8, 100), (0x8100, 20)],
        true,
        true,
        true,
    );
}

#[test]
fn linux_sll() {
    check(LinkType::LinuxSll, 113, &[], true, true, true);
}

#[test]
fn linux_sll2() {
    check(LinkType::LinuxSll2, 276, &[], true, true, true);
}

#[test]
fn raw_ip() {
    check(LinkType::Raw, 101, &[], true, true, false);
}

#[test]
fn ipv4_and_ipv6_linktypes() {
    check(LinkType::Ipv4, 228, &[], true, false, false);
    check(LinkType::Ipv6, 229, &[], false, true, false);
}

#[test]
fn bsd_null_and_loop() {
    check(LinkType::Null, 0, &[], true, true, false);
    check(LinkType::Loop, 108, &[], true, true, false);
}

#[test]
fn ppp_link() {
    check(LinkType::Ppp, 9, &[], true, true, false);
}

#[test]
fn ppp_with_compressed_protocol_field() {
    let framing = |ethertype: u16, l3: &[u8]| {
        let protocol = if ethertype == 0x86dd { 0x57 } else { 0x21 };
        (ppp_compressed(protocol, l3), 1)
    };
    check_framed(LinkType::Ppp, 9, &framing, &[], (true, true, false));
}

#[test]
fn ppp_in_hdlc_framing_and_cisco_hdlc_on_the_same_link_type() {
    check(LinkType::PppHdlc, 50, &[], true, true, false);
    let cisco = |ethertype: u16, l3: &[u8]| (chdlc(ethertype, l3), 4);
    check_framed(LinkType::PppHdlc, 50, &cisco, &[], (true, true, true));
}

#[test]
fn cisco_hdlc() {
    check(LinkType::CHdlc, 104, &[], true, true, true);
}

#[test]
fn ip_over_infiniband() {
    check(LinkType::IpoIb, 242, &[], true, true, true);
}

#[test]
fn nflog_link() {
    check(LinkType::Nflog, 239, &[], true, true, false);
}

#[test]
fn runts_and_cut_vlan_tags_are_marked_not_fatal() {
    let runt = parse(LinkType::Ethernet, 0, 10, &[1; 10]);
    assert_eq!(runt.malformed, Some(Malformed::Truncated(Layer::Link)));
    let mut cut_tag = eth(0x8100, &[]);
    cut_tag.extend([0, 10]);
    let m = parse(LinkType::Ethernet, 0, 16, &cut_tag);
    assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Vlan)));
    assert_eq!(m.vlan_ids, [0, 0]);
    let v4_proto = parse(LinkType::Ipv4, 0, 20, &ipv4(V4_A, V4_B, 47, b""));
    assert_eq!(v4_proto.protocol, Some(IpProto(47)));
    assert_eq!(v4_proto.malformed, None);
}

/// The fields the rules read, in the order they appear in a frame.
type Fields = (
    NetworkKind,
    Option<IpAddr>,
    Option<IpAddr>,
    Option<IpProto>,
    Option<u16>,
    Option<u16>,
    Option<u8>,
    Option<(u8, u8)>,
);

fn fields(m: &PacketMeta) -> Fields {
    (
        m.network,
        m.src_ip,
        m.dst_ip,
        m.protocol,
        m.src_port,
        m.dst_port,
        m.tcp_flags.map(|f| f.0),
        m.icmp_type_code,
    )
}

/// Checks that `part` holds a prefix of `whole`'s fields: each one equal or missing, and once one is
/// missing, every later one too. Returns what is wrong.
fn prefix_error(part: &PacketMeta, whole: &PacketMeta) -> Option<String> {
    let (p, w) = (fields(part), fields(whole));
    let have = [
        p.0 != NetworkKind::Unknown,
        p.1.is_some(),
        p.2.is_some(),
        p.3.is_some(),
        p.4.is_some(),
        p.5.is_some(),
        p.6.is_some(),
        p.7.is_some(),
    ];
    let same = [
        p.0 == w.0,
        p.1 == w.1,
        p.2 == w.2,
        p.3 == w.3,
        p.4 == w.4,
        p.5 == w.5,
        p.6 == w.6,
        p.7 == w.7,
    ];
    let whole_has = [
        w.0 != NetworkKind::Unknown,
        w.1.is_some(),
        w.2.is_some(),
        w.3.is_some(),
        w.4.is_some(),
        w.5.is_some(),
        w.6.is_some(),
        w.7.is_some(),
    ];
    if let Some(i) = (0..8).find(|&i| have[i] && !same[i]) {
        return Some(format!("field {i} differs: {p:?} vs {w:?}"));
    }
    // A field the whole frame has but the part lacks ends the prefix.
    if let Some(gap) = (0..8).find(|&i| whole_has[i] && !have[i])
        && let Some(later) = (gap + 1..8).find(|&i| have[i])
    {
        return Some(format!(
            "field {later} present after missing field {gap}: {p:?} vs {w:?}"
        ));
    }
    None
}

#[test]
fn prefix_check_can_fail() {
    let whole = parse(
        LinkType::Ipv4,
        0,
        40,
        &ipv4(V4_A, V4_B, 6, &tcp(1, 22, 0x02, b"")),
    );
    let mut other = whole.clone();
    other.dst_ip = v4ip([10, 9, 9, 9]);
    assert!(prefix_error(&other, &whole).is_some(), "a different address");
    let mut gap = whole.clone();
    gap.src_port = None;
    assert!(prefix_error(&gap, &whole).is_some(), "a port after a missing one");
    assert_eq!(prefix_error(&whole, &whole), None);
}

proptest::proptest! {
    /// Any prefix of any case's frame, on any link type, with or without a snaplen cut, parses without
    /// panicking into a prefix of the whole frame's fields: never a different address, port or protocol.
    #[test]
    fn truncations_yield_a_prefix_of_the_fields(
        case in 0usize..64,
        keep in 0usize..200,
        from_end in proptest::bool::ANY,
        cut in proptest::bool::ANY,
    ) {
        let all = cases(true, true, true);
        let (ethertype, l3, _, _) = &all[case % all.len()];
        for link in LinkType::PARSED {
            let (frame, _) = wrap(link, *ethertype, l3);
            let whole = parse(link, 0, u32::try_from(frame.len()).unwrap(), &frame);
            // The first `keep` bytes, or all but the last `keep` (a cut near the end of a long packet).
            let keep = if from_end { frame.len().saturating_sub(keep) } else { keep.min(frame.len()) };
            let kept = &frame[..keep];
            let wire = if cut { u32::try_from(frame.len()).unwrap() } else { u32::try_from(kept.len()).unwrap() };
            let part = parse(link, 0, wire, kept);
            proptest::prop_assert_eq!(part.caplen as usize, kept.len());
            if let Some(error) = prefix_error(&part, &whole) {
                proptest::prop_assert!(false, "{:?} case {} kept {} cut {}: {}", link, case % all.len(), kept.len(), cut, error);
            }
        }
    }
}
