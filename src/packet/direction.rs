//! Direction from the capturing host's own addresses: a packet to one of them is `In`, from one is `Out`.

use std::collections::HashSet;
use std::net::IpAddr;

use super::meta::{Direction, PacketMeta};

/// The capturing host's own addresses (loopback always counts as ours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    addrs: HashSet<IpAddr>,
}

impl LocalAddrs {
    /// A set of addresses to treat as the host's own.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        Self {
            addrs: addrs.into_iter().collect(),
        }
    }

    /// The addresses of every interface of this host, as libpcap lists them; empty when it cannot.
    #[must_use]
    pub fn from_system() -> Self {
        let devices = pcap::Device::list().unwrap_or_default();
        Self::new(devices.into_iter().flat_map(|d| d.addresses).map(|a| a.addr))
    }

    /// True when `ip` is one of ours or a loopback address.
    #[inline]
    #[must_use]
    pub fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || (!self.addrs.is_empty() && self.addrs.contains(&ip))
    }

    /// Sets `meta.direction` from its addresses.
    #[inline]
    pub fn classify(&self, meta: &mut PacketMeta) {
        let src = meta.src_ip.is_some_and(|ip| self.is_local(ip));
        let dst = meta.dst_ip.is_some_and(|ip| self.is_local(ip));
        meta.direction = match (src, dst) {
            (true, true) => Direction::Local,
            (true, false) => Direction::Out,
            (false, true) => Direction::In,
            (false, false) => Direction::Unknown,
        };
    }

    /// The addresses, sorted.
    #[must_use]
    pub fn addrs(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.addrs.iter().copied().collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::LinkType;

    fn meta(src: &str, dst: &str) -> PacketMeta {
        let mut m = PacketMeta::new(0, 0, 0, LinkType::Ethernet);
        m.src_ip = Some(src.parse().unwrap());
        m.dst_ip = Some(dst.parse().unwrap());
        m
    }

    #[test]
    fn direction_follows_our_addresses() {
        let local = LocalAddrs::new(["192.168.1.50".parse().unwrap(), "fd00::50".parse().unwrap()]);
        let cases = [
            ("10.0.0.1", "192.168.1.50", Direction::In),
            ("192.168.1.50", "10.0.0.1", Direction::Out),
            ("fd00::50", "2001:db8::1", Direction::Out),
            ("127.0.0.1", "127.0.0.1", Direction::Local),
            ("10.0.0.1", "10.0.0.2", Direction::Unknown),
        ];
        for (src, dst, want) in cases {
            let mut m = meta(src, dst);
            local.classify(&mut m);
            assert_eq!(m.direction, want, "{src} -> {dst}");
        }
        assert_eq!(local.addrs().len(), 2);
    }
}
