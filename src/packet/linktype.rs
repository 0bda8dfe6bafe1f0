//! Link-type dispatch and the layer-by-layer parse of one frame into a `PacketMeta`.
//!
//! IPv4, IPv6, TCP and ARP headers are decoded and validated with `etherparse`'s header slices; the thin
//! link headers (Ethernet, 802.1Q/QinQ tags, Linux cooked SLL/SLL2, BSD NULL/LOOP, PPP, Cisco HDLC,
//! IPoIB, NFLOG), the IPv6 extension header walk, UDP and ICMP are read directly. Every read is
//! bounds-checked: a short or impossible header becomes a `Malformed` mark on what was parsed so far, never
//! a panic or an error, and a frame that parses only partly keeps every field it parsed.
//!
//! Lengths follow what Linux really captures, as tcpdump and tshark read it:
//! - Snaplen: when the capture kept fewer bytes than the IP packet holds (a short snap length), the frame
//!   is marked `Truncated` at the IP layer (or at the header the cut runs through), and everything in the
//!   captured bytes is kept: addresses, and ports when the transport header was captured, so rules judge it.
//! - An IP length that runs past the frame on the wire (a capture that claims to hold the whole frame) is
//!   `Truncated` at the IP layer, and the transport header is still read from the captured bytes, so port
//!   rules match.
//! - GSO / BIG TCP super-packets (IPv4 total length 0, IPv6 payload length 0 with or without a jumbo
//!   option) are valid: they carry an `Offload` note, not a mark, and their length comes from the capture
//!   or the jumbo option.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::{LenError, ipv4, ipv6, tcp};
use etherparse::{ArpPacketSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice};

use super::meta::{
    Fragment, IpProto, Layer, LinkType, Malformed, NetworkKind, Offload, PacketMeta, TcpFlags,
};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// PPP protocol numbers for IPv4 and IPv6 (RFC 1332, RFC 5072).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Bytes before the EtherType of an IPoIB frame: the 40-byte global route pseudo header (as tcpdump's
/// `print-ipoib.c` and Wireshark's `packet-ipoib.c` read `LINKTYPE_IPOIB`).
const IPOIB_ETHERTYPE_AT: usize = 40;
/// `NFULA_PAYLOAD` in `linux/netfilter/nfnetlink_log.h`: the TLV holding the logged packet.
const NFULA_PAYLOAD: u16 = 9;
/// IPv6 next-header numbers: hop-by-hop options, no next header.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_NO_NEXT: u8 = 59;
/// The jumbo payload option in a hop-by-hop header (RFC 2675).
const IPV6_OPT_JUMBO: u8 = 0xc2;

/// Parses one captured frame. `data` is what the capture kept; `wire_len` what was on the wire.
#[must_use]
pub fn parse(link: LinkType, ts_micros: i64, wire_len: u32, data: &[u8]) -> PacketMeta {
    let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut parser = Parser {
        meta: PacketMeta::new(ts_micros, caplen, wire_len, link),
        data,
        // A usize holds any u32 on the platforms libpcap runs on; saturate rather than assume.
        wire_end: usize::try_from(wire_len).unwrap_or(usize::MAX),
        cut: caplen < wire_len,
        ip_short: None,
    };
    match link {
        LinkType::Ethernet => parser.ethernet(0),
        LinkType::LinuxSll => parser.sll(),
        LinkType::LinuxSll2 => parser.sll2(),
        LinkType::Raw => parser.raw_ip(0),
        LinkType::Ipv4 => parser.ipv4(0),
        LinkType::Ipv6 => parser.ipv6(0),
        LinkType::Null => parser.null(false),
        LinkType::Loop => parser.null(true),
        LinkType::Ppp => parser.ppp(),
        LinkType::PppHdlc => parser.ppp_hdlc(),
        LinkType::CHdlc => parser.c_hdlc(),
        LinkType::IpoIb => parser.ipoib(),
        LinkType::Nflog => parser.nflog(),
        LinkType::Other(_) => {}
    }
    if let Some(layer) = parser.ip_short
        && parser.meta.malformed.is_none()
    {
        parser.meta.malformed = Some(Malformed::Truncated(layer));
    }
    parser.meta
}

struct Parser<'a> {
    meta: PacketMeta,
    data: &'a [u8],
    /// Where the frame ends on the wire, in the same offsets as `data` (past its end when the snaplen cut
    /// it; read through `on_wire`, which never puts it before the captured bytes). An IP length beyond it is
    /// a lie of the capture, not the snaplen.
    wire_end: usize,
    /// The snaplen cut this frame: running out of bytes in a payload is expected.
    cut: bool,
    /// The IP packet runs past the captured bytes (a short snaplen): marked `Truncated` at the IP layer at
    /// the end unless a more precise mark (a header cut) was set.
    ip_short: Option<Layer>,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
        *data.get(at + 2)?,
        *data.get(at + 3)?,
    ]))
}

/// What the hop-by-hop header at the start of `hop_by_hop` says about a jumbo payload (RFC 2675).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jumbo {
    /// The jumbo payload length: the packet's length after the 40-byte IPv6 header.
    Length(u32),
    /// The header holds no jumbo option.
    Absent,
    /// The header runs past the captured bytes.
    Cut,
}

fn jumbo_option(hop_by_hop: &[u8]) -> Jumbo {
    let Some(len_field) = hop_by_hop.get(1) else {
        return Jumbo::Cut;
    };
    let end = (usize::from(*len_field) + 1) * 8;
    let Some(options) = hop_by_hop.get(2..end) else {
        return Jumbo::Cut;
    };
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        if kind == 0 {
            at += 1; // Pad1
            continue;
        }
        let Some(&len) = options.get(at + 1) else {
            break;
        };
        if kind == IPV6_OPT_JUMBO
            && len == 4
            && let Some(length) = be32(options, at + 2)
        {
            return Jumbo::Length(length);
        }
        at += 2 + usize::from(len);
    }
    Jumbo::Absent
}

impl<'a> Parser<'a> {
    fn rest(&self, offset: usize) -> &'a [u8] {
        self.data.get(offset..).unwrap_or(&[])
    }

    /// Bytes from `at` to the end of the frame on the wire (at least those captured).
    fn on_wire(&self, at: usize) -> usize {
        self.wire_end.max(self.data.len()).saturating_sub(at)
    }

    fn mark(&mut self, mark: Malformed) {
        // The first problem found is the one reported.
        if self.meta.malformed.is_none() {
            self.meta.malformed = Some(mark);
        }
    }

    fn ethernet(&mut self, offset: usize) {
        let Some(mut ethertype) = be16(self.data, offset + 12) else {
            self.mark(Malformed::Truncated(Layer::Link));
            return;
        };
        let mut at = offset + 14;
        let mut tags = 0;
        while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
            let (Some(tci), Some(next)) = (be16(self.data, at), be16(self.data, at + 2)) else {
                self.mark(Malformed::Truncated(Layer::Vlan));
                return;
            };
            if let Some(slot) = self.meta.vlan_ids.get_mut(tags) {
                *slot = tci & 0x0fff;
            }
            tags += 1;
            ethertype = next;
            at += 4;
            if tags > 4 {
                self.mark(Malformed::Invalid(Layer::Vlan));
                return;
            }
        }
        self.ether_payload(ethertype, at);
    }

    fn ether_payload(&mut self, ethertype: u16, at: usize) {
        match ethertype {
            ETHERTYPE_IPV4 => self.ipv4(at),
            ETHERTYPE_IPV6 => self.ipv6(at),
            ETHERTYPE_ARP => self.arp(at),
            other => self.meta.network = NetworkKind::OtherEtherType(other),
        }
    }

    /// Linux cooked capture v1: 16-byte header, protocol (an EtherType) in the last two bytes.
    fn sll(&mut self) {
        match be16(self.data, 14) {
            Some(protocol) if self.data.len() >= 16 => self.ether_payload(protocol, 16),
            _ => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    /// Linux cooked capture v2: 20-byte header, protocol first, then the interface index (what `any`
    /// captures name each frame's interface by).
    fn sll2(&mut self) {
        match (be16(self.data, 0), be32(self.data, 4)) {
            (Some(protocol), Some(if_index)) if self.data.len() >= 20 => {
                self.meta.if_index = if_index;
                self.ether_payload(protocol, 20);
            }
            _ => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    /// BSD loopback: a 4-byte address family, host order for NULL (we accept both orders, since the capture
    /// may come from another machine) and network order for LOOP.
    fn null(&mut self, network_order: bool) {
        let Some(bytes) = self.data.get(..4) else {
            self.mark(Malformed::Truncated(Layer::Link));
            return;
        };
        let raw = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let family = if network_order {
            u32::from_be_bytes(raw)
        } else {
            let le = u32::from_le_bytes(raw);
            if le > 0xffff { u32::from_be_bytes(raw) } else { le }
        };
        match family {
            2 => self.ipv4(4),
            // AF_INET6 is 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
            24 | 28 | 30 => self.ipv6(4),
            _ => self.meta.network = NetworkKind::Unknown,
        }
    }

    /// PPP (`LINKTYPE_PPP`): optional HDLC address and control bytes `ff 03`, then the protocol, one byte
    /// when its low bit is set (protocol field compression, RFC 1661 section 6.5), else two. Like tcpdump,
    /// EtherType values for IPv4 and IPv6 are accepted too (BSD/OS wrote them).
    fn ppp(&mut self) {
        let at = if self.data.starts_with(&[0xff, 0x03]) {
            2
        } else {
            0
        };
        let Some(&first) = self.data.get(at) else {
            self.mark(Malformed::Truncated(Layer::Link));
            return;
        };
        if first & 1 == 1 {
            self.ppp_payload(u16::from(first), at + 1);
            return;
        }
        match be16(self.data, at) {
            Some(protocol) => self.ppp_payload(protocol, at + 2),
            None => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    fn ppp_payload(&mut self, protocol: u16, at: usize) {
        match protocol {
            PPP_IPV4 | ETHERTYPE_IPV4 => self.ipv4(at),
            PPP_IPV6 | ETHERTYPE_IPV6 => self.ipv6(at),
            // LCP, IPCP, CHAP, compressed TCP, ..: link control, no IP addresses to read.
            _ => {}
        }
    }

    /// `LINKTYPE_PPP_HDLC`: PPP in HDLC-like framing (`ff 03`, then a 2-byte protocol), or Cisco HDLC when
    /// the address byte is Cisco's unicast `0f` or broadcast `8f` (as tcpdump's `ppp_hdlc_if_print`).
    fn ppp_hdlc(&mut self) {
        match self.data.first() {
            Some(0xff) => match be16(self.data, 2) {
                Some(protocol) => self.ppp_payload(protocol, 4),
                None => self.mark(Malformed::Truncated(Layer::Link)),
            },
            Some(0x0f | 0x8f) => self.c_hdlc(),
            Some(_) => self.mark(Malformed::Invalid(Layer::Link)),
            None => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    /// Cisco HDLC: address, control, then an EtherType (SLARP and CDP are other EtherTypes).
    fn c_hdlc(&mut self) {
        match be16(self.data, 2) {
            Some(ethertype) => self.ether_payload(ethertype, 4),
            None => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    /// IP over InfiniBand: the 40-byte pseudo header, then the RFC 4391 header (EtherType, 2 reserved bytes).
    fn ipoib(&mut self) {
        match be16(self.data, IPOIB_ETHERTYPE_AT) {
            Some(ethertype) if self.data.len() >= IPOIB_ETHERTYPE_AT + 4 => {
                self.ether_payload(ethertype, IPOIB_ETHERTYPE_AT + 4);
            }
            _ => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    /// NFLOG: family (2 = AF_INET, 10 = AF_INET6), version, resource id, then TLVs of 4-byte-aligned length
    /// and type in host byte order (libpcap swaps them for files written on another byte order); the
    /// `NFULA_PAYLOAD` value is the packet from its IP header on.
    fn nflog(&mut self) {
        let Some(&family) = self.data.first().filter(|_| self.data.len() >= 4) else {
            self.mark(Malformed::Truncated(Layer::Link));
            return;
        };
        let mut at = 4;
        while at < self.data.len() {
            let (Some(len), Some(kind)) = (self.data.get(at..at + 2), self.data.get(at + 2..at + 4)) else {
                self.mark(Malformed::Truncated(Layer::Link));
                return;
            };
            let len = usize::from(u16::from_ne_bytes([len[0], len[1]]));
            let kind = u16::from_ne_bytes([kind[0], kind[1]]);
            if len < 4 {
                self.mark(Malformed::Invalid(Layer::Link));
                return;
            }
            if kind == NFULA_PAYLOAD {
                self.nflog_payload(family, at + 4, at + len);
                return;
            }
            if at + len > self.data.len() {
                self.mark(Malformed::Truncated(Layer::Link));
                return;
            }
            at += len.div_ceil(4) * 4;
        }
        // A log message without a packet (the rule logged none, or the capture cut it before the payload).
        if self.cut {
            self.mark(Malformed::Truncated(Layer::Link));
        }
    }

    /// The packet of an NFLOG message, from `start` to `end` (the TLV's end) in the frame.
    fn nflog_payload(&mut self, family: u8, start: usize, end: usize) {
        if end > self.data.len() {
            if !self.cut {
                self.mark(Malformed::Truncated(Layer::Link));
            }
            // Either way what follows is a payload the capture cut, not a lie of the IP header.
            self.cut = true;
        } else {
            // The packet ends with its TLV: later TLVs are not its bytes.
            self.data = self.data.get(..end).unwrap_or(self.data);
        }
        self.wire_end = end;
        match family {
            2 => self.ipv4(start),
            10 => self.ipv6(start),
            _ => self.meta.network = NetworkKind::Unknown,
        }
    }

    fn raw_ip(&mut self, at: usize) {
        match self.data.get(at).map(|b| b >> 4) {
            Some(4) => self.ipv4(at),
            Some(6) => self.ipv6(at),
            Some(_) => self.mark(Malformed::Invalid(Layer::Ipv4)),
            None => self.mark(Malformed::Truncated(Layer::Link)),
        }
    }

    fn ipv4(&mut self, at: usize) {
        self.meta.network = NetworkKind::Ipv4;
        let rest = self.rest(at);
        let header = match Ipv4HeaderSlice::from_slice(rest) {
            Ok(h) => h,
            Err(ipv4::HeaderSliceError::Len(_)) => {
                // Addresses and protocol may still be there when only options are missing (the slice
                // checks version and IHL first whenever 20 bytes are present).
                if let (Some(src), Some(dst)) = (rest.get(12..16), rest.get(16..20)) {
                    self.meta.src_ip = Some(IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])));
                    self.meta.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3])));
                    self.meta.protocol = rest.get(9).map(|p| IpProto(*p));
                }
                self.mark(Malformed::Truncated(Layer::Ipv4));
                return;
            }
            Err(ipv4::HeaderSliceError::Content(_)) => {
                self.mark(Malformed::Invalid(Layer::Ipv4));
                return;
            }
        };
        self.meta.src_ip = Some(IpAddr::V4(header.source_addr()));
        self.meta.dst_ip = Some(IpAddr::V4(header.destination_addr()));
        let protocol = IpProto(header.protocol().0);
        self.meta.protocol = Some(protocol);
        let offset = header.fragments_offset().value();
        self.meta.fragment = Fragment {
            is_fragment: offset != 0 || header.more_fragments(),
            offset,
            more_fragments: header.more_fragments(),
        };
        let header_len = usize::from(header.ihl()) * 4;
        let total_len = match header.total_len() {
            // A GSO super-packet larger than 64 KiB (BIG TCP, Linux 6.3+) has no total length to give;
            // tcpdump ("presumed TSO") and tshark take the frame's length instead.
            0 => {
                self.meta.offload = Some(Offload::ZeroLength);
                self.on_wire(at)
            }
            len => usize::from(len),
        };
        if total_len < header_len {
            self.mark(Malformed::Invalid(Layer::Ipv4));
            return;
        }
        if total_len > rest.len() {
            // A short snaplen: the verdict is judged on part of the packet, which the frame says.
            self.ip_short = Some(Layer::Ipv4);
        }
        if total_len > rest.len() && total_len > self.on_wire(at) {
            // The frame on the wire was shorter than the packet claims (a capture that rewrote the lengths,
            // a TSO packet some capture paths show this way): read what is there.
            self.mark(Malformed::Truncated(Layer::Ipv4));
        }
        if offset != 0 {
            return; // Only the first fragment carries the transport header.
        }
        // Ethernet pads short frames: the IP total length, not the frame, ends the packet.
        let end = total_len.min(rest.len());
        let payload = rest.get(header_len..end).unwrap_or(&[]);
        self.transport(protocol, at + header_len, payload, total_len - header_len);
    }

    fn ipv6(&mut self, at: usize) {
        self.meta.network = NetworkKind::Ipv6;
        let rest = self.rest(at);
        let header = match Ipv6HeaderSlice::from_slice(rest) {
            Ok(h) => h,
            Err(ipv6::HeaderSliceError::Len(_)) => {
                if let (Some(src), Some(dst)) = (rest.get(8..24), rest.get(24..40)) {
                    self.meta.src_ip = <[u8; 16]>::try_from(src)
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b)));
                    self.meta.dst_ip = <[u8; 16]>::try_from(dst)
                        .ok()
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b)));
                }
                self.mark(Malformed::Truncated(Layer::Ipv6));
                return;
            }
            Err(ipv6::HeaderSliceError::Content(_)) => {
                self.mark(Malformed::Invalid(Layer::Ipv6));
                return;
            }
        };
        self.meta.src_ip = Some(IpAddr::V6(header.source_addr()));
        self.meta.dst_ip = Some(IpAddr::V6(header.destination_addr()));
        let mut next = header.next_header().0;
        // The packet's length: the payload length field, a jumbo option's, or the frame's.
        let mut packet_len = 40 + usize::from(header.payload_length());
        // The length came from the capture itself, so the capture cannot show the packet to be too short.
        let mut from_capture = false;
        if header.payload_length() == 0 {
            let jumbo = if next == IPV6_HOP_BY_HOP {
                jumbo_option(rest.get(40..).unwrap_or(&[]))
            } else {
                Jumbo::Absent
            };
            match jumbo {
                Jumbo::Length(len) => {
                    self.meta.offload = Some(Offload::Jumbogram);
                    packet_len = 40 + usize::try_from(len).unwrap_or(usize::MAX - 40);
                }
                // BIG TCP without the option, or a jumbo header the capture cut: the frame gives it.
                Jumbo::Absent | Jumbo::Cut if next != IPV6_NO_NEXT && self.on_wire(at) > 40 => {
                    self.meta.offload = Some(Offload::ZeroLength);
                    packet_len = self.on_wire(at);
                    from_capture = true;
                }
                // The hop-by-hop header that would say is cut: whatever follows, the capture lacks it.
                Jumbo::Cut => from_capture = true,
                Jumbo::Absent => {}
            }
        }
        if packet_len > rest.len() {
            self.ip_short = Some(Layer::Ipv6);
        }
        if packet_len > rest.len() && packet_len > self.on_wire(at) {
            self.mark(Malformed::Truncated(Layer::Ipv6));
        }
        // Bytes missing from the capture, not from the packet: a header running past them is truncated.
        let short = from_capture || packet_len > rest.len();
        let end = packet_len.min(rest.len());
        let packet = rest.get(..end).unwrap_or(rest);
        let mut pos = 40;
        // Hop-by-hop, routing, fragment, destination options, AH, mobility: walk at most 8 of them.
        for _ in 0..8 {
            let ext_len = match next {
                0 | 43 | 60 | 135 => packet.get(pos + 1).map(|l| (usize::from(*l) + 1) * 8),
                44 => Some(8),
                51 => packet.get(pos + 1).map(|l| (usize::from(*l) + 2) * 4),
                _ => break,
            };
            let header_fits = ext_len.is_some_and(|len| pos + len <= end);
            let (Some(len), Some(following), true) = (ext_len, packet.get(pos).copied(), header_fits) else {
                // The transport protocol lies beyond this header: unknown when the capture cut it, the
                // header's own number when the packet itself is too short for it.
                if short {
                    self.mark(Malformed::Truncated(Layer::Ipv6Extension));
                } else {
                    self.meta.protocol = Some(IpProto(next));
                    self.mark(Malformed::Invalid(Layer::Ipv6Extension));
                }
                return;
            };
            if next == 44 {
                let field = be16(packet, pos + 2).unwrap_or(0);
                let offset = field >> 3;
                self.meta.fragment = Fragment {
                    is_fragment: true,
                    offset,
                    more_fragments: field & 1 == 1,
                };
                if offset != 0 {
                    self.meta.protocol = Some(IpProto(following));
                    return;
                }
            }
            next = following;
            pos += len;
        }
        let protocol = IpProto(next);
        self.meta.protocol = Some(protocol);
        let payload = packet.get(pos..).unwrap_or(&[]);
        self.transport(protocol, at + pos, payload, packet_len.saturating_sub(pos));
    }

    fn arp(&mut self, at: usize) {
        self.meta.network = NetworkKind::Arp;
        let rest = self.rest(at);
        match ArpPacketSlice::from_slice(rest) {
            Ok(arp) => {
                let bytes = arp.slice();
                let hw = usize::from(bytes.get(4).copied().unwrap_or(0));
                let proto_len = bytes.get(5).copied().unwrap_or(0);
                if be16(bytes, 2) == Some(ETHERTYPE_IPV4) && proto_len == 4 {
                    let sender = 8 + hw;
                    let target = 8 + hw + 4 + hw;
                    let v4 = |at: usize| {
                        bytes
                            .get(at..at + 4)
                            .map(|b| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
                    };
                    self.meta.src_ip = v4(sender);
                    self.meta.dst_ip = v4(target);
                }
            }
            Err(LenError { .. }) => self.mark(Malformed::Truncated(Layer::Arp)),
        }
    }

    /// `payload` is the IP payload as captured; `expected` its length per the IP header.
    fn transport(&mut self, protocol: IpProto, at: usize, payload: &[u8], expected: usize) {
        match protocol {
            IpProto::TCP => {
                self.meta.src_port = be16(payload, 0);
                self.meta.dst_port = be16(payload, 2);
                if let Some(flags) = payload.get(13) {
                    self.meta.tcp_flags = Some(TcpFlags(*flags));
                }
                match TcpHeaderSlice::from_slice(payload) {
                    Ok(tcp) => {
                        let header_len = usize::from(tcp.data_offset()) * 4;
                        self.meta.payload_offset = u16::try_from(at + header_len).ok();
                    }
                    Err(tcp::HeaderSliceError::Content(_)) => self.mark(Malformed::Invalid(Layer::Tcp)),
                    Err(tcp::HeaderSliceError::Len(_)) => {
                        // The header needs more bytes than we have: impossible if the IP packet itself is
                        // shorter than the header, merely cut (snaplen) otherwise.
                        let data_offset_len = payload.get(12).map_or(20, |b| usize::from(b >> 4) * 4);
                        if data_offset_len.max(20) > expected {
                            self.mark(Malformed::Invalid(Layer::Tcp));
                        } else {
                            self.mark(Malformed::Truncated(Layer::Tcp));
                        }
                    }
                }
            }
            IpProto::UDP => {
                self.meta.src_port = be16(payload, 0);
                self.meta.dst_port = be16(payload, 2);
                if payload.len() < 8 {
                    self.mark(if self.cut || expected >= 8 {
                        Malformed::Truncated(Layer::Udp)
                    } else {
                        Malformed::Invalid(Layer::Udp)
                    });
                } else {
                    self.meta.payload_offset = u16::try_from(at + 8).ok();
                }
            }
            IpProto::ICMP | IpProto::ICMPV6 => {
                let layer = if protocol == IpProto::ICMP {
                    Layer::Icmp
                } else {
                    Layer::Icmpv6
                };
                if let (Some(t), Some(c)) = (payload.first(), payload.get(1)) {
                    self.meta.icmp_type_code = Some((*t, *c));
                }
                if payload.len() < 4 {
                    self.mark(Malformed::Truncated(layer));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every link type, the unsupported one last.
    fn links() -> impl Iterator<Item = LinkType> {
        LinkType::PARSED.into_iter().chain([LinkType::Other(147)])
    }

    /// IPv4 10.1.2.3 -> 192.168.1.50 with total length `total_len`, then a TCP header 40000 -> 22 with
    /// PSH/ACK and `payload` bytes of data.
    fn ipv4_tcp(total_len: u16, payload: usize) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend(total_len.to_be_bytes());
        p.extend([0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 1, 2, 3, 192, 168, 1, 50]);
        p.extend([
            0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xfa, 0xf0, 0, 0, 0, 0,
        ]);
        p.resize(p.len() + payload, 0xab);
        p
    }

    /// IPv6 2001:db8::1 -> 2001:db8::2 with `payload_len` and `next`, then `rest`.
    fn ipv6(payload_len: u16, next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend(payload_len.to_be_bytes());
        p.extend([next, 64]);
        p.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend(rest);
        p
    }

    /// A TCP header 40000 -> 443 with ACK, then `payload` bytes.
    fn tcp(payload: usize) -> Vec<u8> {
        let mut t = vec![
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xfa, 0xf0, 0, 0, 0, 0,
        ];
        t.resize(t.len() + payload, 0xcd);
        t
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn len32(frame: &[u8]) -> u32 {
        u32::try_from(frame.len()).unwrap()
    }

    /// The fields the rules read, for compact comparisons: addresses, protocol, ports.
    type Fields = (
        Option<IpAddr>,
        Option<IpAddr>,
        Option<u8>,
        Option<u16>,
        Option<u16>,
    );

    fn fields(m: &PacketMeta) -> Fields {
        (
            m.src_ip,
            m.dst_ip,
            m.protocol.map(|p| p.0),
            m.src_port,
            m.dst_port,
        )
    }

    fn v4_fields() -> Fields {
        (
            Some("10.1.2.3".parse().unwrap()),
            Some("192.168.1.50".parse().unwrap()),
            Some(6),
            Some(40_000),
            Some(22),
        )
    }

    fn v6_fields() -> Fields {
        (
            Some("2001:db8::1".parse().unwrap()),
            Some("2001:db8::2".parse().unwrap()),
            Some(6),
            Some(40_000),
            Some(443),
        )
    }

    #[test]
    fn big_tcp_ipv4_total_length_zero_takes_the_frame_length() {
        let frame = eth(0x0800, &ipv4_tcp(0, 70_000));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!(m.tcp_flags, Some(TcpFlags(0x18)));
        assert_eq!(m.offload, Some(Offload::ZeroLength));
        assert_eq!(m.malformed, None);
        assert_eq!(m.payload_offset, Some(54));
        // Cut by netwarden's own 65,535-byte snaplen, or by a header-only one: the same fields, and the
        // frame says it was judged on part of the packet.
        for keep in [65_535, 96, 54] {
            let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame[..keep]);
            assert_eq!(fields(&m), v4_fields(), "snaplen {keep}");
            assert_eq!(
                (m.offload, m.malformed),
                (Some(Offload::ZeroLength), Some(Malformed::Truncated(Layer::Ipv4))),
                "snaplen {keep}"
            );
        }
        // Cut inside the TCP header: ports kept, the header marked truncated.
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame[..40]);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Tcp)));
    }

    #[test]
    fn tso_packet_longer_than_1500_captured_whole_is_clean() {
        let frame = eth(0x0800, &ipv4_tcp(20 + 20 + 8_000, 8_000));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!((m.offload, m.malformed), (None, None));
    }

    #[test]
    fn total_length_past_the_frame_is_truncated_and_keeps_ports() {
        // A TSO packet whose capture kept 1,514 bytes and says the frame was 1,514 bytes long.
        let frame = eth(0x0800, &ipv4_tcp(28_960, 1_460));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!(m.tcp_flags, Some(TcpFlags(0x18)));
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Ipv4)));
        assert_eq!(m.offload, None);
        // The same bytes with the wire length the IP header gives: a snaplen cut, also truncated.
        let m = parse(LinkType::Ethernet, 0, 14 + 28_960, &frame);
        assert_eq!(
            (fields(&m), m.malformed),
            (v4_fields(), Some(Malformed::Truncated(Layer::Ipv4)))
        );
        // A file whose wire length is shorter than the bytes it holds: what was captured counts.
        let frame = eth(0x0800, &ipv4_tcp(40, 0));
        let m = parse(LinkType::Ethernet, 0, 20, &frame);
        assert_eq!((fields(&m), m.malformed), (v4_fields(), None));
        // A total length shorter than the header is still impossible.
        let frame = eth(0x0800, &ipv4_tcp(12, 0));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(m.malformed, Some(Malformed::Invalid(Layer::Ipv4)));
        assert_eq!(
            (m.src_ip.is_some(), m.protocol, m.dst_port),
            (true, Some(IpProto::TCP), None)
        );
    }

    #[test]
    fn big_tcp_ipv6_jumbo_option_gives_the_length() {
        let mut hop_by_hop = vec![6, 0, IPV6_OPT_JUMBO, 4];
        hop_by_hop.extend((8 + 20 + 70_000u32).to_be_bytes());
        hop_by_hop.extend(tcp(70_000));
        let packet = ipv6(0, 0, &hop_by_hop);
        let frame = eth(0x86dd, &packet);
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v6_fields());
        assert_eq!(m.offload, Some(Offload::Jumbogram));
        assert_eq!(m.malformed, None);
        assert_eq!(m.payload_offset, Some(14 + 40 + 8 + 20));
        for keep in [65_535, 96, 82] {
            let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame[..keep]);
            assert_eq!(
                (fields(&m), m.malformed),
                (v6_fields(), Some(Malformed::Truncated(Layer::Ipv6))),
                "snaplen {keep}"
            );
        }
        // The jumbo length runs past a frame said to be whole: truncated, ports kept.
        let m = parse(LinkType::Ethernet, 0, 2_000, &frame[..2_000]);
        assert_eq!(fields(&m), v6_fields());
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Ipv6)));
    }

    #[test]
    fn ipv6_payload_length_zero_without_option_takes_the_frame_length() {
        let frame = eth(0x86dd, &ipv6(0, 6, &tcp(70_000)));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v6_fields());
        assert_eq!((m.offload, m.malformed), (Some(Offload::ZeroLength), None));
        // Payload length 0 and no next header is just an empty packet (Ethernet pads it).
        let mut frame = eth(0x86dd, &ipv6(0, IPV6_NO_NEXT, &[]));
        frame.resize(60, 0);
        let m = parse(LinkType::Ethernet, 0, 60, &frame);
        assert_eq!(
            (m.offload, m.malformed, m.protocol),
            (None, None, Some(IpProto(59)))
        );
    }

    #[test]
    fn ipv6_payload_length_past_the_frame_is_truncated_and_keeps_ports() {
        let frame = eth(0x86dd, &ipv6(1_000, 6, &tcp(4)));
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v6_fields());
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Ipv6)));
        // An extension header longer than the packet it is in is impossible, not cut.
        let frame = eth(
            0x86dd,
            &ipv6(8, 0, &[6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        );
        let m = parse(LinkType::Ethernet, 0, len32(&frame), &frame);
        assert_eq!(m.malformed, Some(Malformed::Invalid(Layer::Ipv6Extension)));
        assert_eq!(m.protocol, Some(IpProto(0)));
        // Cut by the snaplen in the same place: the protocol beyond it is unknown, not the header's.
        let m = parse(LinkType::Ethernet, 0, len32(&frame) + 100, &frame[..60]);
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Ipv6Extension)));
        assert_eq!(m.protocol, None);
    }

    #[test]
    fn jumbo_option_walks_padding_and_other_options() {
        assert_eq!(
            jumbo_option(&[6, 0, 1, 0, IPV6_OPT_JUMBO, 4, 0, 1]),
            Jumbo::Absent
        );
        assert_eq!(
            jumbo_option(&[6, 1, 0, 1, 1, 0, IPV6_OPT_JUMBO, 4, 0, 1, 0, 0, 1, 2, 0, 0]),
            Jumbo::Length(0x0001_0000)
        );
        assert_eq!(jumbo_option(&[6, 0, IPV6_OPT_JUMBO, 4, 0, 1]), Jumbo::Cut);
        assert_eq!(jumbo_option(&[6]), Jumbo::Cut);
        // An option whose length runs past the header ends the walk.
        assert_eq!(jumbo_option(&[6, 0, 5, 200, 0, 0, 0, 0]), Jumbo::Absent);
    }

    #[test]
    fn ppp_with_and_without_hdlc_bytes_and_compressed_protocol() {
        let ip = ipv4_tcp(40, 0);
        for header in [
            &[0xff, 0x03, 0x00, 0x21][..],
            &[0x00, 0x21],
            &[0x21],
            &[0xff, 0x03, 0x21],
            &[0x08, 0x00],
        ] {
            let mut frame = header.to_vec();
            frame.extend(&ip);
            let m = parse(LinkType::Ppp, 0, len32(&frame), &frame);
            assert_eq!((fields(&m), m.malformed), (v4_fields(), None), "{header:02x?}");
            assert_eq!(m.payload_offset, u16::try_from(header.len() + 40).ok());
        }
        let mut frame = vec![0x00, 0x57];
        frame.extend(ipv6(20, 6, &tcp(0)));
        let m = parse(LinkType::Ppp, 0, len32(&frame), &frame);
        assert_eq!((fields(&m), m.malformed), (v6_fields(), None));
        // LCP: link control, nothing to read and nothing wrong.
        let lcp = [0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4];
        let m = parse(LinkType::Ppp, 0, 8, &lcp);
        assert_eq!(
            (m.network, m.src_ip, m.malformed),
            (NetworkKind::Unknown, None, None)
        );
        assert_eq!(
            parse(LinkType::Ppp, 0, 1, &[0x00]).malformed,
            Some(Malformed::Truncated(Layer::Link))
        );
    }

    #[test]
    fn ppp_hdlc_and_cisco_hdlc() {
        let ip = ipv4_tcp(40, 0);
        for (link, header) in [
            (LinkType::PppHdlc, [0xff, 0x03, 0x00, 0x21]),
            (LinkType::PppHdlc, [0x0f, 0x00, 0x08, 0x00]),
            (LinkType::CHdlc, [0x0f, 0x00, 0x08, 0x00]),
            (LinkType::CHdlc, [0x8f, 0x00, 0x08, 0x00]),
        ] {
            let mut frame = header.to_vec();
            frame.extend(&ip);
            let m = parse(link, 0, len32(&frame), &frame);
            assert_eq!(
                (fields(&m), m.malformed),
                (v4_fields(), None),
                "{link:?} {header:02x?}"
            );
        }
        let mut frame = vec![0x8f, 0x00, 0x86, 0xdd];
        frame.extend(ipv6(20, 6, &tcp(0)));
        assert_eq!(
            fields(&parse(LinkType::CHdlc, 0, len32(&frame), &frame)),
            v6_fields()
        );
        // SLARP keepalive: another EtherType.
        let slarp = [0x8f, 0x00, 0x80, 0x35, 0, 0, 0, 2];
        assert_eq!(
            parse(LinkType::CHdlc, 0, 8, &slarp).network,
            NetworkKind::OtherEtherType(0x8035)
        );
        let m = parse(LinkType::PppHdlc, 0, 4, &[0x42, 0x03, 0x00, 0x21]);
        assert_eq!(m.malformed, Some(Malformed::Invalid(Layer::Link)));
    }

    #[test]
    fn ipoib_reads_past_the_pseudo_header() {
        let mut frame = vec![0u8; 40];
        frame.extend([0x08, 0x00, 0, 0]);
        frame.extend(ipv4_tcp(40, 0));
        let m = parse(LinkType::IpoIb, 0, len32(&frame), &frame);
        assert_eq!((fields(&m), m.malformed), (v4_fields(), None));
        assert_eq!(m.payload_offset, Some(44 + 40));
        let m = parse(LinkType::IpoIb, 0, 43, &frame[..43]);
        assert_eq!(
            (m.network, m.malformed),
            (NetworkKind::Unknown, Some(Malformed::Truncated(Layer::Link)))
        );
    }

    /// An NFLOG message: header, a prefix TLV (padded), the payload TLV, and a TLV after it.
    fn nflog(family: u8, packet: &[u8]) -> Vec<u8> {
        let tlv = |kind: u16, value: &[u8]| {
            let len = u16::try_from(4 + value.len()).unwrap();
            let mut t = len.to_ne_bytes().to_vec();
            t.extend(kind.to_ne_bytes());
            t.extend(value);
            t.resize(t.len().div_ceil(4) * 4, 0);
            t
        };
        let mut f = vec![family, 0, 0, 5];
        f.extend(tlv(10, b"drop\0"));
        f.extend(tlv(NFULA_PAYLOAD, packet));
        f.extend(tlv(11, &1000u32.to_be_bytes()));
        f
    }

    #[test]
    fn nflog_finds_the_payload_tlv() {
        let frame = nflog(2, &ipv4_tcp(45, 5));
        let m = parse(LinkType::Nflog, 0, len32(&frame), &frame);
        assert_eq!((fields(&m), m.malformed), (v4_fields(), None));
        assert_eq!(m.payload_offset, Some(4 + 12 + 4 + 40));
        let frame = nflog(10, &ipv6(20, 6, &tcp(0)));
        let m = parse(LinkType::Nflog, 0, len32(&frame), &frame);
        assert_eq!((fields(&m), m.malformed), (v6_fields(), None));
        // The packet's IP length runs past its TLV into the next one: truncated, not read from the next TLV.
        let frame = nflog(2, &ipv4_tcp(48, 5));
        let m = parse(LinkType::Nflog, 0, len32(&frame), &frame);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Ipv4)));
        // Cut inside the payload TLV: what is there is read.
        let frame = nflog(2, &ipv4_tcp(45, 5));
        let m = parse(LinkType::Nflog, 0, 30 + 20, &frame[..30 + 20]);
        assert_eq!(fields(&m), v4_fields());
        assert_eq!(m.malformed, Some(Malformed::Truncated(Layer::Link)));
        let m = parse(LinkType::Nflog, 0, len32(&frame) + 10, &frame[..30 + 20]);
        assert_eq!(
            (fields(&m), m.malformed),
            (v4_fields(), Some(Malformed::Truncated(Layer::Tcp))),
            "a snaplen cut marks the header it cut, not the link"
        );
        // A zero-length TLV would loop forever: refused.
        let m = parse(LinkType::Nflog, 0, 8, &[2, 0, 0, 5, 0, 0, 9, 0]);
        assert_eq!(m.malformed, Some(Malformed::Invalid(Layer::Link)));
        // A message that logged no packet.
        let m = parse(LinkType::Nflog, 0, 4, &[2, 0, 0, 5]);
        assert_eq!((m.network, m.malformed), (NetworkKind::Unknown, None));
    }

    #[test]
    fn link_type_numbers_round_trip() {
        for link in links() {
            assert_eq!(LinkType::from_dlt(link.to_linktype()), link);
        }
        assert_eq!(LinkType::from_dlt(9), LinkType::Ppp);
        assert_eq!(LinkType::from_dlt(50), LinkType::PppHdlc);
        assert_eq!(LinkType::from_dlt(104), LinkType::CHdlc);
        assert_eq!(LinkType::from_dlt(242), LinkType::IpoIb);
        assert_eq!(LinkType::from_dlt(239), LinkType::Nflog);
        assert_eq!(LinkType::Nflog.name(), "nflog");
    }

    #[test]
    fn ethernet_ipv4_tcp_syn_exact_bytes() {
        let frame: [u8; 54] = [
            0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00, // Ethernet
            0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 1, 2, 3, 192, 168, 1, 50, // IPv4, DF
            0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, // TCP SYN
        ];
        let m = parse(LinkType::Ethernet, 7, 54, &frame);
        assert_eq!(m.network, NetworkKind::Ipv4);
        assert_eq!(m.src_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(m.dst_ip, Some("192.168.1.50".parse().unwrap()));
        assert_eq!(m.protocol, Some(IpProto::TCP));
        assert_eq!((m.src_port, m.dst_port), (Some(40_000), Some(22)));
        assert_eq!(m.tcp_flags, Some(TcpFlags(TcpFlags::SYN)));
        assert_eq!(m.payload_offset, Some(54));
        assert_eq!(m.fragment, Fragment::default(), "DF is not a fragment");
        assert_eq!((m.caplen, m.wire_len, m.ts_micros), (54, 54, 7));
        assert_eq!(m.malformed, None);
        // Ethernet padding after the IP packet is not an error.
        let mut padded = frame.to_vec();
        padded.extend([0; 6]);
        assert_eq!(parse(LinkType::Ethernet, 0, 60, &padded).malformed, None);
        // Cut by the snaplen inside the TCP header: ports kept, header truncated.
        let cut = parse(LinkType::Ethernet, 0, 54, &frame[..40]);
        assert_eq!(cut.malformed, Some(Malformed::Truncated(Layer::Tcp)));
        assert_eq!(cut.dst_port, Some(22));
        // The same bytes without a snaplen cut: the IP total length points past the frame, and the ports
        // are still read from what was captured.
        let short = parse(LinkType::Ethernet, 0, 40, &frame[..40]);
        assert_eq!(short.malformed, Some(Malformed::Truncated(Layer::Ipv4)));
        assert_eq!((short.src_port, short.dst_port), (Some(40_000), Some(22)));
    }

    proptest! {
        /// Random bytes on every link type never panic, with wire lengths up to BIG TCP's.
        #[test]
        fn random_bytes_never_panic(link in 0usize..14, bytes in prop::collection::vec(any::<u8>(), 0..300), extra in 0u32..70_000) {
            let link = links().nth(link).unwrap();
            let len = u32::try_from(bytes.len()).unwrap();
            let m = parse(link, 1, len + extra, &bytes);
            prop_assert_eq!(m.caplen, len);
            prop_assert_eq!(m.wire_len, len + extra);
        }

        #[test]
        fn ip_headers_with_random_tails_never_panic(v6 in any::<bool>(), tail in prop::collection::vec(any::<u8>(), 0..120)) {
            let mut frame = vec![0x45, 0, 0, 200, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
            if v6 {
                frame = vec![0x60, 0, 0, 0, 0, 100, 0, 64];
                frame.extend([0u8; 32]);
            }
            frame.extend(tail);
            let _ = parse(LinkType::Raw, 0, 300, &frame);
            let _ = parse(LinkType::Raw, 0, u32::try_from(frame.len()).unwrap(), &frame);
        }
    }
}
