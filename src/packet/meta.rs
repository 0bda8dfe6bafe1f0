//! `PacketMeta`: the small owned summary of one captured frame that every later stage (rules, detection,
//! audit, UI) works from. Broken frames are described by a `Malformed` mark, never by an error.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The link-layer header type of a capture (libpcap `DLT_*` / `LINKTYPE_*` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1), including 802.1Q / QinQ tagged frames.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113), the Linux "cooked" header used by the `any` device.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276).
    LinuxSll2,
    /// `LINKTYPE_RAW` (101) / `DLT_RAW` (12 or 14): a bare IPv4 or IPv6 packet.
    Raw,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte host-order address family.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, 4-byte network-order address family.
    Loop,
    /// `LINKTYPE_PPP` (9): a PPP protocol field (1 or 2 bytes), optionally after the HDLC address and
    /// control bytes `ff 03` (RFC 1661, RFC 1662).
    Ppp,
    /// `LINKTYPE_PPP_HDLC` (50, `DLT_PPP_SERIAL`): PPP in HDLC-like framing (`ff 03` then a 2-byte
    /// protocol), or Cisco HDLC when the first byte is `0f` or `8f`.
    PppHdlc,
    /// `LINKTYPE_C_HDLC` (104): Cisco HDLC, an address and a control byte, then an EtherType.
    CHdlc,
    /// `LINKTYPE_IPOIB` (242): IP over InfiniBand, a 40-byte pseudo header (the InfiniBand global route
    /// header) and the 4-byte IPoIB header of RFC 4391 (an EtherType and 2 reserved bytes).
    IpoIb,
    /// `LINKTYPE_NFLOG` (239): Linux netfilter log messages (the `nflog` device): a 4-byte header with the
    /// address family, then TLVs, one of which (`NFULA_PAYLOAD`) holds the IP packet.
    Nflog,
    /// Any other link type; frames are counted but not parsed (the engine says so once per capture).
    Other(i32),
}

impl LinkType {
    /// Every link type whose frames are parsed (all but `Other`).
    pub const PARSED: [Self; 13] = [
        Self::Ethernet,
        Self::LinuxSll,
        Self::LinuxSll2,
        Self::Raw,
        Self::Ipv4,
        Self::Ipv6,
        Self::Null,
        Self::Loop,
        Self::Ppp,
        Self::PppHdlc,
        Self::CHdlc,
        Self::IpoIb,
        Self::Nflog,
    ];

    /// Maps a libpcap data-link number to a `LinkType`.
    #[must_use]
    pub fn from_dlt(dlt: i32) -> Self {
        match dlt {
            1 => Self::Ethernet,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            12 | 14 | 101 => Self::Raw,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            0 => Self::Null,
            108 => Self::Loop,
            9 => Self::Ppp,
            50 => Self::PppHdlc,
            104 => Self::CHdlc,
            242 => Self::IpoIb,
            239 => Self::Nflog,
            other => Self::Other(other),
        }
    }

    /// The `LINKTYPE_*` number written into pcap files.
    #[must_use]
    pub fn to_linktype(self) -> i32 {
        match self {
            Self::Ethernet => 1,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Raw => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::Null => 0,
            Self::Loop => 108,
            Self::Ppp => 9,
            Self::PppHdlc => 50,
            Self::CHdlc => 104,
            Self::IpoIb => 242,
            Self::Nflog => 239,
            Self::Other(n) => n,
        }
    }

    /// Short lower-case name for tables, logs and JSON (`ethernet`, `linux_sll`, ..).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ethernet => "ethernet",
            Self::LinuxSll => "linux_sll",
            Self::LinuxSll2 => "linux_sll2",
            Self::Raw => "raw",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Null => "null",
            Self::Loop => "loop",
            Self::Ppp => "ppp",
            Self::PppHdlc => "ppp_hdlc",
            Self::CHdlc => "c_hdlc",
            Self::IpoIb => "ipoib",
            Self::Nflog => "nflog",
            Self::Other(_) => "other",
        }
    }
}

/// What the network layer of a frame turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum NetworkKind {
    /// Nothing could be identified (for example a runt frame).
    #[default]
    Unknown,
    Ipv4,
    Ipv6,
    Arp,
    /// Another EtherType (LLDP, ..), with its value.
    OtherEtherType(u16),
}

/// Transport protocol, as the IP protocol / IPv6 next-header number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct IpProto(pub u8);

impl IpProto {
    pub const ICMP: Self = Self(1);
    pub const TCP: Self = Self(6);
    pub const UDP: Self = Self(17);
    pub const ICMPV6: Self = Self(58);

    /// Short name (`tcp`, `udp`, `icmp`, `icmpv6`) or the number.
    #[must_use]
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self.0 {
            1 => "icmp".into(),
            2 => "igmp".into(),
            6 => "tcp".into(),
            17 => "udp".into(),
            47 => "gre".into(),
            50 => "esp".into(),
            58 => "icmpv6".into(),
            132 => "sctp".into(),
            n => n.to_string().into(),
        }
    }
}

/// TCP header flag bits (FIN = 0x01 .. CWR = 0x80), as in the TCP header's 13th byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    /// True when every bit of `mask` is set.
    #[must_use]
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// A SYN without ACK: the first packet of a connection attempt.
    #[must_use]
    pub fn is_syn_only(self) -> bool {
        self.has(Self::SYN) && !self.has(Self::ACK)
    }

    /// The flags as tcpdump-like letters, for example `SA` or `FPA` (empty for none).
    #[must_use]
    pub fn letters(self) -> String {
        const NAMES: [(u8, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'C'),
        ];
        NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, c)| *c)
            .collect()
    }
}

/// Which way a packet travels relative to the capturing host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Direction {
    /// Destination is one of the host's own addresses.
    In,
    /// Source is one of the host's own addresses.
    Out,
    /// Both ends are the host's own addresses (loopback traffic).
    Local,
    /// Neither end is ours (forwarded, promiscuous, or an offline capture without local addresses).
    #[default]
    Unknown,
}

impl Direction {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Local => "local",
            Self::Unknown => "?",
        }
    }
}

/// Why a frame could not be fully parsed. The frame is still counted, evaluated on what was parsed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Malformed {
    /// The capture holds fewer bytes than the headers need (snaplen cut or a runt frame), or fewer than an
    /// IP header says the packet has (layer `ipv4` / `ipv6`) though the frame on the wire was no longer.
    /// Whatever was captured is still parsed: addresses and ports survive, and the rules judge them.
    Truncated(Layer),
    /// A header field is impossible (IPv4 IHL < 5, TCP data offset past the segment, bad version, ..).
    Invalid(Layer),
}

impl Malformed {
    #[must_use]
    pub fn layer(self) -> Layer {
        match self {
            Self::Truncated(l) | Self::Invalid(l) => l,
        }
    }

    /// `truncated` or `malformed`, followed by the layer, for logs and tables.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Self::Truncated(l) => format!("truncated {}", l.name()),
            Self::Invalid(l) => format!("malformed {}", l.name()),
        }
    }
}

/// Protocol layer named in a `Malformed` mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layer {
    Link,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Ipv6Extension,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Layer {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Vlan => "vlan",
            Self::Arp => "arp",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Ipv6Extension => "ipv6-ext",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Icmpv6 => "icmpv6",
        }
    }
}

/// An IP packet whose header does not give its length in the usual field: a Linux GSO / BIG TCP
/// super-packet, captured on the sending (or GRO-receiving) host before the NIC cuts it into segments.
/// A valid encoding, not a fault, so it is not a `Malformed` mark: the packet is parsed from its captured
/// bytes, ports and all, as tcpdump and tshark do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Offload {
    /// IPv4 total length 0 (BIG TCP for IPv4, Linux 6.3+, or TSO as some capture paths show it), or IPv6
    /// payload length 0 without a jumbo option: the frame on the wire gives the length.
    ZeroLength,
    /// IPv6 payload length 0 with a hop-by-hop jumbo payload option (RFC 2675; BIG TCP for IPv6, Linux
    /// 5.19+), which gives the length.
    Jumbogram,
}

impl Offload {
    /// A short phrase for the details pane and logs.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::ZeroLength => "length 0 in the IP header (GSO / BIG TCP): length taken from the capture",
            Self::Jumbogram => "IPv6 jumbo payload option (RFC 2675, BIG TCP)",
        }
    }
}

/// IP fragmentation facts of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Fragment {
    /// The packet is a fragment (IPv4 MF or offset != 0, or an IPv6 fragment header).
    pub is_fragment: bool,
    /// Fragment offset in 8-byte units; 0 for the first fragment (the only one with ports).
    pub offset: u16,
    pub more_fragments: bool,
}

/// One parsed frame. Small and owned: built per packet without heap allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketMeta {
    /// Capture time, microseconds since the Unix epoch.
    pub ts_micros: i64,
    /// Bytes present in the capture.
    pub caplen: u32,
    /// Bytes on the wire (may exceed `caplen` when the snaplen cut the frame).
    pub wire_len: u32,
    pub link: LinkType,
    /// 802.1Q / 802.1ad VLAN ids, outer first; 0 = no tag at that position.
    pub vlan_ids: [u16; 2],
    pub network: NetworkKind,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    /// Transport protocol (after IPv6 extension headers); `None` for non-IP frames.
    pub protocol: Option<IpProto>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub tcp_flags: Option<TcpFlags>,
    /// ICMP / ICMPv6 type and code.
    pub icmp_type_code: Option<(u8, u8)>,
    pub fragment: Fragment,
    /// Offset of the transport payload in the captured bytes (for DNS decoding and hex dumps).
    pub payload_offset: Option<u16>,
    pub direction: Direction,
    /// Kernel index of the interface the frame crossed, from a Linux cooked v2 (SLL2) header; 0 when the
    /// link type does not say (every other link type).
    pub if_index: u32,
    /// Set on a GSO / BIG TCP super-packet (see `Offload`); `None` for every ordinary packet.
    pub offload: Option<Offload>,
    pub malformed: Option<Malformed>,
}

impl PacketMeta {
    /// An empty meta with only the capture facts filled in; the parser fills the rest.
    #[must_use]
    pub fn new(ts_micros: i64, caplen: u32, wire_len: u32, link: LinkType) -> Self {
        Self {
            ts_micros,
            caplen,
            wire_len,
            link,
            vlan_ids: [0, 0],
            network: NetworkKind::Unknown,
            src_ip: None,
            dst_ip: None,
            protocol: None,
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            icmp_type_code: None,
            fragment: Fragment::default(),
            payload_offset: None,
            direction: Direction::Unknown,
            if_index: 0,
            offload: None,
            malformed: None,
        }
    }

    /// Protocol name for display: `tcp`, `udp`, `icmp`, `arp`, `ipv4`, `ethertype 0x88cc`, `unknown`.
    #[must_use]
    pub fn protocol_name(&self) -> String {
        if let Some(p) = self.protocol {
            return p.name().into_owned();
        }
        match self.network {
            NetworkKind::Arp => "arp".into(),
            NetworkKind::Ipv4 => "ipv4".into(),
            NetworkKind::Ipv6 => "ipv6".into(),
            NetworkKind::OtherEtherType(t) => format!("ethertype 0x{t:04x}"),
            NetworkKind::Unknown => "unknown".into(),
        }
    }
}
