//! What the kernel drops, as the capture thread sees it: the enforced block list, looked up once per packet
//! in time that does not grow with the number of entries (one hash probe per distinct prefix length), so
//! 100,000 enforced addresses cost the capture thread what ten do.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashSet;

/// Kernel-enforced block list, to mark packets the kernel drops after libpcap saw them.
#[derive(Debug, Clone, Default)]
pub struct KernelBlocked {
    /// Network addresses (host bits cleared) per prefix length, IPv4 and IPv6 apart.
    v4: Vec<(u8, FxHashSet<u32>)>,
    v6: Vec<(u8, FxHashSet<u128>)>,
    len: usize,
    /// Names of the `enforce: true` Block rules that are in the kernel too (names are unique in a set).
    rules: FxHashSet<Box<str>>,
}

/// `ip` with all but the first `prefix` bits cleared (a /0 keeps nothing).
fn mask4(ip: u32, prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .map_or(0, |mask| ip & mask)
}

/// The IPv6 twin of `mask4`.
fn mask6(ip: u128, prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .map_or(0, |mask| ip & mask)
}

/// Adds `key` to the table of prefix length `prefix`, creating the table on first use.
fn insert<K: std::hash::Hash + Eq>(tables: &mut Vec<(u8, FxHashSet<K>)>, prefix: u8, key: K) {
    match tables.iter_mut().find(|(len, _)| *len == prefix) {
        Some((_, set)) => {
            set.insert(key);
        }
        None => tables.push((prefix, FxHashSet::from_iter([key]))),
    }
}

impl KernelBlocked {
    /// A set of enforced addresses and networks.
    #[must_use]
    pub fn new(nets: Vec<IpNet>) -> Self {
        let mut set = Self::default();
        for net in nets {
            match net {
                IpNet::V4(n) => {
                    let p = n.prefix_len();
                    insert(&mut set.v4, p, mask4(u32::from(n.network()), p));
                }
                IpNet::V6(n) => {
                    let p = n.prefix_len();
                    insert(&mut set.v6, p, mask6(u128::from(n.network()), p));
                }
            }
            set.len += 1;
        }
        set
    }

    /// True when `ip` lies in an enforced entry.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        // As the kernel does: an IPv6 packet (even from `::ffff:a.b.c.d`) meets only the IPv6 set.
        match ip {
            IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                self.v4.iter().any(|(p, set)| set.contains(&mask4(ip, *p)))
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                self.v6.iter().any(|(p, set)| set.contains(&mask6(ip, *p)))
            }
        }
    }

    /// The same set, plus the names of the `enforce: true` rules the kernel holds as well.
    #[must_use]
    pub fn with_rules<S: AsRef<str>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.rules = names.into_iter().map(|n| n.as_ref().into()).collect();
        self
    }

    /// True when the kernel also drops what the rule named `name` matches (only rules that really went in:
    /// one the kernel refused is not marked).
    #[must_use]
    pub fn rule_enforced(&self, name: &str) -> bool {
        !self.rules.is_empty() && self.rules.contains(name)
    }

    /// True when nothing is enforced (no entry and no rule).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn hosts_and_networks_of_every_length_match_like_ipnet() {
        let list = nets(&[
            "203.0.113.7/32",
            "198.51.100.0/24",
            "10.0.0.0/8",
            "2001:db8:bad::/48",
            "fd00::1/128",
        ]);
        let blocked = KernelBlocked::new(list.clone());
        for ip in [
            "203.0.113.7",
            "203.0.113.8",
            "198.51.100.255",
            "198.51.101.0",
            "10.200.3.4",
            "11.0.0.0",
            "2001:db8:bad:ffff::1",
            "2001:db8:bae::1",
            "fd00::1",
            "fd00::2",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let expected = list.iter().any(|n| n.contains(&ip));
            assert_eq!(blocked.contains(ip), expected, "{ip}");
        }
        assert!(!blocked.is_empty());
        assert!(KernelBlocked::default().is_empty());
    }

    #[test]
    fn zero_prefix_covers_everything_of_its_family() {
        let blocked = KernelBlocked::new(nets(&["0.0.0.0/0"]));
        assert!(blocked.contains("192.0.2.1".parse().unwrap()));
        assert!(!blocked.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn only_rules_in_the_kernel_are_enforced() {
        let blocked = KernelBlocked::default().with_rules(["no telnet", "no smb"]);
        assert!(blocked.rule_enforced("no telnet") && blocked.rule_enforced("no smb"));
        assert!(!blocked.rule_enforced("refused by the kernel"));
        assert!(!KernelBlocked::default().rule_enforced("no telnet"));
        assert!(!blocked.is_empty());
    }
}
