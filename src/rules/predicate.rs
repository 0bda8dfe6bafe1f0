//! The per-field checks of a rule against one packet: the single source of truth used by the indexed
//! matcher, the linear reference and `explain`.
//!
//! Fields are checked in a fixed order (enabled, direction, interface, protocol, src, dst, src port,
//! dst port, user, program); the first failing one is reported as a [`Field`]. The last two look at the
//! packet's [`Owner`], which attribution fills in per flow; while it is unknown, rules with a `user` or
//! `program` do not match.

use std::net::IpAddr;

use ipnet::IpNet;

use super::compile::{PortRange, Rule};
use crate::packet::PacketMeta;

/// The first field of a rule that did not match a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The rule is disabled.
    Disabled,
    /// The packet's direction is not the rule's.
    Direction,
    /// The packet was captured on another interface.
    Interface,
    /// The packet's transport protocol is not the rule's.
    Protocol,
    /// The source address is not in the rule's `src` networks (or the packet has none).
    Src,
    /// The destination address is not in the rule's `dst` networks (or the packet has none).
    Dst,
    /// The source port is not in `src_ports` (or the packet has no ports).
    SrcPort,
    /// The destination port is not in `dst_ports` (or the packet has no ports).
    DstPort,
    /// The socket's user is not the rule's (or is not known).
    User,
    /// The program is not the rule's (or is not known).
    Program,
    /// The program's systemd unit is not the rule's (or is not known).
    Unit,
}

/// What the matcher knows of who sent or receives a packet: the program's executable path and the uid
/// owning its socket, each `None` while unknown (offline replay, lookup not finished, no permission).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner<'a> {
    /// Executable path (`/usr/bin/curl`).
    pub program: Option<&'a str>,
    /// Socket owner uid.
    pub uid: Option<u32>,
    /// The program's systemd unit (`nginx.service`), when it runs in one.
    pub unit: Option<&'a str>,
}

impl Owner<'_> {
    /// Nothing known.
    pub const UNKNOWN: Owner<'static> = Owner {
        program: None,
        uid: None,
        unit: None,
    };
}

/// True when `ip` is in one of `nets`; an empty list matches every packet (even one without an address).
/// An address of the other family never matches.
#[inline]
#[must_use]
pub fn nets_match(nets: &[IpNet], ip: Option<IpAddr>) -> bool {
    if nets.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    nets.iter().any(|n| n.contains(&ip))
}

/// True when `port` is in one of `ranges`; an empty list matches every packet, a non-empty one only
/// packets that have ports (TCP/UDP first fragments).
#[inline]
#[must_use]
pub fn ports_match(ranges: &[PortRange], port: Option<u16>) -> bool {
    if ranges.is_empty() {
        return true;
    }
    let Some(port) = port else { return false };
    ranges.iter().any(|r| r.contains(port))
}

/// True when the rule has no interface or names the packet's interface `iface`; a trailing `+` matches
/// every name that starts with what precedes it (`veth+`), as in iptables.
#[inline]
#[must_use]
pub fn interface_matches(want: Option<&str>, iface: &str) -> bool {
    want.is_none_or(|w| match w.strip_suffix('+') {
        Some(prefix) => iface.starts_with(prefix),
        None => w == iface,
    })
}

/// True when every interface `later` names is also named by `earlier` (`None` = every interface).
#[must_use]
pub fn interface_covers(earlier: Option<&str>, later: Option<&str>) -> bool {
    match (earlier, later) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => match (e.strip_suffix('+'), l.strip_suffix('+')) {
            (Some(prefix), Some(later_prefix)) => later_prefix.starts_with(prefix),
            (Some(prefix), None) => l.starts_with(prefix),
            (None, Some(_)) => false,
            (None, None) => e == l,
        },
    }
}

impl Rule {
    /// Checks every field in order; `Err` names the first one that does not match.
    #[inline]
    pub fn check(&self, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> Result<(), Field> {
        self.check_packet(meta, iface)?;
        self.check_owner(owner)
    }

    /// The packet's own fields (everything but user and program), in order.
    #[inline]
    fn check_packet(&self, meta: &PacketMeta, iface: &str) -> Result<(), Field> {
        if !self.enabled {
            return Err(Field::Disabled);
        }
        if !self.direction.matches(meta.direction) {
            return Err(Field::Direction);
        }
        if !interface_matches(self.interface.as_deref(), iface) {
            return Err(Field::Interface);
        }
        if !self.protocol.matches(meta.protocol) {
            return Err(Field::Protocol);
        }
        if !nets_match(&self.src, meta.src_ip) {
            return Err(Field::Src);
        }
        if !nets_match(&self.dst, meta.dst_ip) {
            return Err(Field::Dst);
        }
        if !ports_match(&self.src_ports, meta.src_port) {
            return Err(Field::SrcPort);
        }
        if !ports_match(&self.dst_ports, meta.dst_port) {
            return Err(Field::DstPort);
        }
        Ok(())
    }

    /// The user and program fields against what is known of the packet's owner.
    #[inline]
    fn check_owner(&self, owner: Owner<'_>) -> Result<(), Field> {
        if let Some(user) = &self.user
            && owner.uid != Some(user.uid)
        {
            return Err(Field::User);
        }
        if let Some(program) = &self.program
            && !owner.program.is_some_and(|exe| program.matches(exe))
        {
            return Err(Field::Program);
        }
        if let Some(unit) = &self.unit
            && owner.unit != Some(&**unit)
        {
            return Err(Field::Unit);
        }
        Ok(())
    }

    /// True when the rule is enabled and every field matches the packet.
    #[inline]
    #[must_use]
    pub fn matches(&self, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> bool {
        self.check(meta, iface, owner).is_ok()
    }

    /// As [`Rule::matches`], with the owner checked only after every packet field matched (the matcher's
    /// hot path: most candidates fail on a packet field, and most rules name no owner).
    #[inline]
    #[must_use]
    pub(crate) fn matches_packet_then(&self, meta: &PacketMeta, iface: &str, owner: &Owner<'_>) -> bool {
        self.check_packet(meta, iface).is_ok()
            && ((self.user.is_none() && self.program.is_none() && self.unit.is_none())
                || self.check_owner(*owner).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn nets() {
        assert!(nets_match(&[], None));
        assert!(nets_match(&[], ip("1.2.3.4")));
        assert!(!nets_match(&[net("10.0.0.0/8")], None));
        assert!(nets_match(&[net("10.0.0.0/8")], ip("10.9.8.7")));
        assert!(!nets_match(&[net("10.0.0.0/8")], ip("11.0.0.1")));
        // Other family never matches, even the v4-mapped form.
        assert!(!nets_match(&[net("10.0.0.0/8")], ip("::ffff:10.0.0.1")));
        assert!(!nets_match(&[net("::/0")], ip("10.0.0.1")));
        assert!(nets_match(
            &[net("10.0.0.0/8"), net("2001:db8::/32")],
            ip("2001:db8::1")
        ));
        // Host bits set: contains() works on the network.
        assert!(nets_match(&[net("10.0.0.5/8")], ip("10.200.0.1")));
    }

    #[test]
    fn ports() {
        let r = [PortRange { lo: 22, hi: 22 }, PortRange { lo: 8000, hi: 8999 }];
        assert!(ports_match(&[], None));
        assert!(!ports_match(&r, None));
        assert!(ports_match(&r, Some(22)));
        assert!(ports_match(&r, Some(8000)));
        assert!(ports_match(&r, Some(8999)));
        assert!(!ports_match(&r, Some(9000)));
        assert!(!ports_match(&r, Some(23)));
    }

    #[test]
    fn interface() {
        assert!(interface_matches(None, "eth0"));
        assert!(interface_matches(Some("eth0"), "eth0"));
        assert!(!interface_matches(Some("eth0"), "eth1"));
        assert!(interface_matches(Some("veth+"), "veth12ab"));
        assert!(interface_matches(Some("veth+"), "veth"));
        assert!(!interface_matches(Some("veth+"), "eth0"));
        assert!(interface_matches(Some("+"), "lo"));
        assert!(!interface_matches(Some("eth0"), "eth0+"));
        assert!(interface_covers(None, Some("eth0")));
        assert!(interface_covers(Some("eth+"), Some("eth0")));
        assert!(interface_covers(Some("eth+"), Some("eth1+")));
        assert!(!interface_covers(Some("eth1+"), Some("eth+")));
        assert!(!interface_covers(Some("eth0"), Some("eth+")));
        assert!(!interface_covers(Some("eth0"), None));
        assert!(interface_covers(Some("eth0"), Some("eth0")));
    }
}
