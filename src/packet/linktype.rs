//! Link-type dispatch and the layer-by-layer parse of one frame into a `PacketMeta`.
//!
//! IPv4, IPv6, TCP and ARP headers are decoded and validated with `etherparse`'s header slices; the thin
//! link headers (Ethernet, 802.1Q/QinQ tags, Linux cooked SLL/SLL2, BSD NULL/LOOP), the IPv6 extension
//! header walk, UDP and ICMP are read directly. Every read is bounds-checked: a short or impossible header
//! becomes a `Malformed` mark on what was parsed so far, never a panic or an error.
//!
//! Snaplen: when the capture kept fewer bytes than were on the wire (`caplen < wire_len`), a payload that
//! runs past the captured bytes is expected and not marked; a header that runs past them is `Truncated`.
//! When the whole frame was captured, a length field that points past its end is `Invalid`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::{LenError, ipv4, ipv6, tcp};
use etherparse::{ArpPacketSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice};

use super::meta::{Fragment, IpProto, Layer, LinkType, Malformed, NetworkKind, PacketMeta, TcpFlags};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Parses one captured frame. `data` is what the capture kept; `wire_len` what was on the wire.
#[must_use]
pub fn parse(link: LinkType, ts_micros: i64, wire_len: u32, data: &[u8]) -> PacketMeta {
    let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut parser = Parser {
        meta: PacketMeta::new(ts_micros, caplen, wire_len, link),
        data,
        cut: caplen < wire_len,
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
        LinkType::Other(_) => {}
    }
    parser.meta
}

struct Parser<'a> {
    meta: PacketMeta,
    data: &'a [u8],
    /// The snaplen cut this frame: running out of bytes in a payload is expected.
    cut: bool,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

impl<'a> Parser<'a> {
    fn rest(&self, offset: usize) -> &'a [u8] {
        self.data.get(offset..).unwrap_or(&[])
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
        match be16(self.data, 0) {
            Some(protocol) if self.data.len() >= 20 => {
                self.meta.if_index =
                    u32::from_be_bytes([self.data[4], self.data[5], self.data[6], self.data[7]]);
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
                // Addresses may still be there when only options are missing.
                if let (Some(src), Some(dst)) = (rest.get(12..16), rest.get(16..20)) {
                    self.meta.src_ip = Some(IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])));
                    self.meta.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3])));
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
        let total_len = usize::from(header.total_len());
        if total_len < header_len {
            self.mark(Malformed::Invalid(Layer::Ipv4));
            return;
        }
        // Ethernet pads short frames: the IP total length, not the frame, ends the packet.
        let end = if total_len > rest.len() {
            if !self.cut {
                self.mark(Malformed::Invalid(Layer::Ipv4));
                return;
            }
            rest.len()
        } else {
            total_len
        };
        if offset != 0 {
            return; // Only the first fragment carries the transport header.
        }
        let payload = rest.get(header_len..end).unwrap_or(&[]);
        let expected = total_len.saturating_sub(header_len);
        self.transport(protocol, at + header_len, payload, expected);
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
        let payload_len = usize::from(header.payload_length());
        let available = rest.len().saturating_sub(40);
        let end = if payload_len > available {
            if !self.cut {
                self.mark(Malformed::Invalid(Layer::Ipv6));
                self.meta.protocol = Some(IpProto(header.next_header().0));
                return;
            }
            rest.len()
        } else if payload_len == 0 {
            // A jumbogram (RFC 2675) has payload length 0; take what was captured.
            rest.len()
        } else {
            40 + payload_len
        };
        let mut next = header.next_header().0;
        let mut pos = 40;
        let mut remaining_expected = payload_len;
        // Hop-by-hop, routing, fragment, destination options, AH, mobility: walk at most 8 of them.
        for _ in 0..8 {
            let ext_len = match next {
                0 | 43 | 60 | 135 => rest.get(pos + 1).map(|l| (usize::from(*l) + 1) * 8),
                44 => Some(8),
                51 => rest.get(pos + 1).map(|l| (usize::from(*l) + 2) * 4),
                _ => break,
            };
            let (Some(len), Some(following)) = (ext_len, rest.get(pos).copied()) else {
                self.meta.protocol = Some(IpProto(next));
                self.mark(Malformed::Truncated(Layer::Ipv6Extension));
                return;
            };
            if pos + len > end {
                self.meta.protocol = Some(IpProto(next));
                self.mark(if self.cut && pos + len > rest.len() {
                    Malformed::Truncated(Layer::Ipv6Extension)
                } else {
                    Malformed::Invalid(Layer::Ipv6Extension)
                });
                return;
            }
            if next == 44 {
                let field = be16(rest, pos + 2).unwrap_or(0);
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
            remaining_expected = remaining_expected.saturating_sub(len);
        }
        let protocol = IpProto(next);
        self.meta.protocol = Some(protocol);
        let payload = rest.get(pos..end).unwrap_or(&[]);
        self.transport(protocol, at + pos, payload, remaining_expected);
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

    const LINKS: [LinkType; 10] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Other(147),
        LinkType::Ethernet,
    ];

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
        // The same bytes without a snaplen cut: the IP total length points past the frame.
        let short = parse(LinkType::Ethernet, 0, 40, &frame[..40]);
        assert_eq!(short.malformed, Some(Malformed::Invalid(Layer::Ipv4)));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(link in 0usize..10, bytes in prop::collection::vec(any::<u8>(), 0..200), extra in 0u32..100) {
            let link = LINKS[link];
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
