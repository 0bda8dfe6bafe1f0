//! A readable account of every layer of one frame, and a hex dump, for the GUI's details pane. Allocates
//! freely: it runs for the one selected row, not per packet.

use std::fmt::Write as _;

use super::linktype::parse;
use super::meta::{LinkType, NetworkKind, PacketMeta};

/// One protocol layer with its fields as `(name, value)` text pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerInfo {
    pub name: String,
    pub fields: Vec<(String, String)>,
}

impl LayerInfo {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            fields: Vec::new(),
        }
    }

    fn field(&mut self, name: &str, value: impl ToString) {
        self.fields.push((name.to_owned(), value.to_string()));
    }
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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

/// Describes every parsed layer of `data` (link header, VLAN tags, network, transport, DNS) and the
/// malformed mark if any.
#[must_use]
pub fn describe(link: LinkType, data: &[u8]) -> Vec<LayerInfo> {
    let meta = parse(link, 0, u32::try_from(data.len()).unwrap_or(u32::MAX), data);
    let mut layers = Vec::new();
    let mut frame = LayerInfo::new("Frame");
    frame.field("link type", format!("{} ({})", link.name(), link.to_linktype()));
    frame.field("captured bytes", data.len());
    layers.push(frame);
    let mut l2 = LayerInfo::new(match link {
        LinkType::Ethernet => "Ethernet",
        LinkType::LinuxSll => "Linux cooked (SLL)",
        LinkType::LinuxSll2 => "Linux cooked v2 (SLL2)",
        LinkType::Null | LinkType::Loop => "BSD loopback",
        LinkType::Ppp => "PPP",
        LinkType::PppHdlc => "PPP in HDLC framing",
        LinkType::CHdlc => "Cisco HDLC",
        LinkType::IpoIb => "IP over InfiniBand",
        LinkType::Nflog => "NFLOG",
        _ => "Link",
    });
    match link {
        LinkType::Ethernet => {
            if let (Some(dst), Some(src)) = (data.get(0..6), data.get(6..12)) {
                l2.field("destination", mac(dst));
                l2.field("source", mac(src));
            }
            if let Some(t) = be16(data, 12) {
                l2.field("ethertype", format!("0x{t:04x}"));
            }
        }
        LinkType::LinuxSll => {
            if let Some(t) = be16(data, 0) {
                l2.field("packet type", t);
            }
            if let Some(p) = be16(data, 14) {
                l2.field("protocol", format!("0x{p:04x}"));
            }
        }
        LinkType::LinuxSll2 => {
            if let Some(p) = be16(data, 0) {
                l2.field("protocol", format!("0x{p:04x}"));
            }
            if let Some(i) = be32(data, 4) {
                l2.field("interface index", i);
            }
        }
        LinkType::Null | LinkType::Loop => {
            if let Some(f) = data.get(0..4) {
                l2.field("family bytes", mac(f));
            }
        }
        LinkType::Ppp | LinkType::PppHdlc | LinkType::CHdlc => {
            if let Some(header) = data.get(0..4) {
                l2.field("header bytes", mac(header));
            }
        }
        LinkType::IpoIb => {
            if let Some(t) = be16(data, 40) {
                l2.field("ethertype", format!("0x{t:04x}"));
            }
        }
        LinkType::Nflog => {
            if let Some(family) = data.first() {
                l2.field("address family", family);
            }
            if let Some(group) = be16(data, 2) {
                l2.field("group", group);
            }
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {}
        LinkType::Other(n) => l2.field("not parsed", format!("link type {n} is not supported")),
    }
    if !l2.fields.is_empty() {
        layers.push(l2);
    }
    for (i, vid) in meta.vlan_ids.iter().enumerate().filter(|(_, v)| **v != 0) {
        let mut vlan = LayerInfo::new(if i == 0 {
            "802.1Q VLAN (outer)"
        } else {
            "802.1Q VLAN (inner)"
        });
        vlan.field("id", vid);
        layers.push(vlan);
    }
    network_layers(&meta, &mut layers);
    if let Some(offset) = meta.payload_offset.map(usize::from)
        && matches!(meta.src_port, Some(53 | 5353))
        && let Some(payload) = data.get(offset..)
    {
        let answers = crate::names::parse_dns_answers(payload);
        if !answers.is_empty() {
            let mut dns = LayerInfo::new("DNS answer");
            for (ip, name) in answers {
                dns.field(&name, ip);
            }
            layers.push(dns);
        }
    }
    if let Some(mark) = meta.malformed {
        let mut bad = LayerInfo::new("Problem");
        bad.field("mark", mark.describe());
        layers.push(bad);
    }
    layers
}

fn network_layers(meta: &PacketMeta, layers: &mut Vec<LayerInfo>) {
    let name = match meta.network {
        NetworkKind::Ipv4 => "IPv4",
        NetworkKind::Ipv6 => "IPv6",
        NetworkKind::Arp => "ARP",
        NetworkKind::OtherEtherType(_) | NetworkKind::Unknown => return,
    };
    let mut net = LayerInfo::new(name);
    if let Some(src) = meta.src_ip {
        net.field("source", src);
    }
    if let Some(dst) = meta.dst_ip {
        net.field("destination", dst);
    }
    if let Some(p) = meta.protocol {
        net.field("protocol", format!("{} ({})", p.name(), p.0));
    }
    if let Some(offload) = meta.offload {
        net.field("length", offload.describe());
    }
    if meta.fragment.is_fragment {
        net.field(
            "fragment",
            format!(
                "offset {} x 8 bytes, more fragments: {}",
                meta.fragment.offset, meta.fragment.more_fragments
            ),
        );
    }
    layers.push(net);
    let mut l4 = match meta.protocol.map(|p| p.0) {
        Some(6) => LayerInfo::new("TCP"),
        Some(17) => LayerInfo::new("UDP"),
        Some(1) => LayerInfo::new("ICMP"),
        Some(58) => LayerInfo::new("ICMPv6"),
        _ => return,
    };
    if let Some(p) = meta.src_port {
        l4.field("source port", p);
    }
    if let Some(p) = meta.dst_port {
        l4.field("destination port", p);
    }
    if let Some(flags) = meta.tcp_flags {
        l4.field("flags", format!("{} (0x{:02x})", flags.letters(), flags.0));
    }
    if let Some((t, c)) = meta.icmp_type_code {
        l4.field("type / code", format!("{t} / {c}"));
    }
    if let Some(offset) = meta.payload_offset {
        l4.field("payload at byte", offset);
    }
    layers.push(l4);
}

/// Classic hex dump: offset, 16 bytes in hex, and their printable ASCII.
#[must_use]
pub fn hex_dump(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 + 16);
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:06x}  ", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_link_types_and_big_tcp_are_described() {
        // PPP with HDLC bytes, then IPv4 with total length 0 (BIG TCP) and a TCP header to port 22.
        let mut frame = vec![0xff, 0x03, 0x00, 0x21, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        frame.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        frame.extend([
            0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xfa, 0xf0, 0, 0, 0, 0,
        ]);
        let layers = describe(LinkType::Ppp, &frame);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            ["Frame", "PPP", "IPv4", "TCP"],
            "no Problem layer: {layers:?}"
        );
        let field = |layer: usize, name: &str| {
            layers[layer]
                .fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(field(0, "link type").as_deref(), Some("ppp (9)"));
        assert_eq!(field(1, "header bytes").as_deref(), Some("ff:03:00:21"));
        assert!(field(2, "length").unwrap().contains("BIG TCP"), "{layers:?}");
        assert_eq!(field(3, "destination port").as_deref(), Some("22"));
        let unsupported = describe(LinkType::Other(147), &[0; 8]);
        assert_eq!(unsupported[1].fields[0].1, "link type 147 is not supported");
    }

    #[test]
    fn hex_dump_rows_have_offset_hex_and_ascii() {
        let dump = hex_dump(b"GET / HTTP/1.1\r\nHost: x\r\n");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("000000  47 45 54 20"), "{dump}");
        assert!(lines[0].ends_with("GET / HTTP/1.1.."), "{dump}");
        assert!(lines[1].starts_with("000010  48 6f 73 74"), "{dump}");
    }
}
