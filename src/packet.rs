//! Frame parsing: link-type dispatch and `etherparse` behind a small owned `PacketMeta`.

pub mod meta;

pub use meta::*;

// STUB(lead): replaced by the packet module's real parser at merge.
/// Parses one frame.
#[must_use]
pub fn parse(link: LinkType, ts_micros: i64, wire_len: u32, data: &[u8]) -> PacketMeta {
    PacketMeta::new(
        ts_micros,
        u32::try_from(data.len()).unwrap_or(u32::MAX),
        wire_len,
        link,
    )
}

/// The capturing host's own addresses.
#[derive(Debug, Clone, Default)]
pub struct LocalAddrs(Vec<std::net::IpAddr>);

impl LocalAddrs {
    pub fn new(addrs: impl IntoIterator<Item = std::net::IpAddr>) -> Self {
        Self(addrs.into_iter().collect())
    }
    #[must_use]
    pub fn from_system() -> Self {
        Self::default()
    }
    pub fn classify(&self, meta: &mut PacketMeta) {
        let _ = (meta, &self.0);
    }
}

/// One parsed layer for the details pane.
#[derive(Debug, Clone, Default)]
pub struct LayerInfo {
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// Every parsed layer of a frame.
#[must_use]
pub fn describe(link: LinkType, data: &[u8]) -> Vec<LayerInfo> {
    let _ = (link, data);
    Vec::new()
}

/// Offset / hex / ASCII dump.
#[must_use]
pub fn hex_dump(data: &[u8]) -> String {
    format!("{data:02x?}")
}
