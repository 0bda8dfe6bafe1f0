//! Pure builders and parsers for `ipset`: the block list lives in two `hash:net` sets (`netwarden4`,
//! `netwarden6`) created with `timeout 0`, so each entry may carry its own timeout and the kernel lifts a
//! ban on time even when netwarden is not running. Batches go through `ipset restore -exist`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::Family;

/// Largest per-entry timeout ipset accepts, in seconds (`IPSET_MAX_TIMEOUT`, about 24.8 days). Longer bans
/// are added without a kernel timeout and lifted by `Enforcer::tick`.
pub const MAX_TIMEOUT_SECS: u64 = 2_147_483;

/// Maximum entries per set.
pub const MAX_ELEMENTS: u32 = 1_048_576;

/// The `create` line for the set of `family` (idempotent under `-exist`).
#[must_use]
pub fn create_line(family: Family) -> String {
    format!(
        "create {} hash:net family {} hashsize 1024 maxelem {MAX_ELEMENTS} timeout 0",
        family.set_name(),
        family.ipset_family()
    )
}

/// One entry to add: the network and its kernel timeout in seconds (`None` = no timeout).
pub type SetAdd = (IpNet, Option<u64>);

/// An `ipset restore -exist` script adding `adds` (re-adding refreshes the timeout) and deleting
/// `removes`, each to the set of its family. Both sets are created first when `create` is set.
#[must_use]
pub fn ipset_script(adds: &[SetAdd], removes: &[IpNet], create: bool) -> String {
    let mut script = String::new();
    if create {
        for family in Family::ALL {
            script.push_str(&create_line(family));
            script.push('\n');
        }
    }
    for (net, timeout) in adds {
        let set = Family::of(net).set_name();
        match timeout {
            Some(secs) if *secs <= MAX_TIMEOUT_SECS => {
                script.push_str(&format!("add {set} {net} timeout {secs}\n"))
            }
            _ => script.push_str(&format!("add {set} {net}\n")),
        }
    }
    for net in removes {
        script.push_str(&format!("del {} {net}\n", Family::of(net).set_name()));
    }
    script
}

/// A script emptying both sets (they stay, referenced by our iptables rules).
#[must_use]
pub fn flush_sets_script() -> String {
    Family::ALL
        .iter()
        .map(|f| format!("flush {}\n", f.set_name()))
        .collect()
}

/// Our sets and their members as printed by `ipset save`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetState {
    /// Members per existing set of ours (set name -> networks).
    pub sets: BTreeMap<String, BTreeSet<IpNet>>,
}

impl SetState {
    /// True when the set of `family` exists.
    #[must_use]
    pub fn has_set(&self, family: Family) -> bool {
        self.sets.contains_key(family.set_name())
    }

    /// Every member of our sets, sorted.
    #[must_use]
    pub fn members(&self) -> BTreeSet<IpNet> {
        self.sets.values().flatten().copied().collect()
    }
}

/// Parses `ipset save` output, keeping only our sets; members that do not parse are skipped.
#[must_use]
pub fn parse_save(text: &str) -> SetState {
    let ours = |name: &str| Family::ALL.iter().any(|f| f.set_name() == name);
    let mut state = SetState::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("create"), Some(name), _) if ours(name) => {
                state.sets.entry(name.to_owned()).or_default();
            }
            (Some("add"), Some(name), Some(member)) if ours(name) => {
                let net = member
                    .parse::<IpNet>()
                    .ok()
                    .or_else(|| member.parse::<IpAddr>().ok().map(IpNet::from));
                if let Some(net) = net {
                    state.sets.entry(name.to_owned()).or_default().insert(net.trunc());
                }
            }
            _ => {}
        }
    }
    state
}

/// Reads the 1-based failing line from ipset's `Error in line N: ..` message.
#[must_use]
pub fn error_line(stderr: &str) -> Option<usize> {
    let rest = stderr.split("Error in line ").nth(1)?;
    rest.split(':').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn script_routes_by_family_and_caps_timeouts() {
        let script = ipset_script(
            &[
                (net("192.0.2.1/32"), Some(30)),
                (net("2001:db8::/48"), None),
                (net("10.0.0.0/8"), Some(MAX_TIMEOUT_SECS + 1)),
            ],
            &[net("192.0.2.9/32")],
            true,
        );
        assert_eq!(
            script,
            "create netwarden4 hash:net family inet hashsize 1024 maxelem 1048576 timeout 0\n\
             create netwarden6 hash:net family inet6 hashsize 1024 maxelem 1048576 timeout 0\n\
             add netwarden4 192.0.2.1/32 timeout 30\nadd netwarden6 2001:db8::/48\nadd netwarden4 10.0.0.0/8\n\
             del netwarden4 192.0.2.9/32\n"
        );
    }

    #[test]
    fn parse_save_keeps_only_our_sets() {
        let text = "create other hash:ip family inet\nadd other 1.1.1.1\n\
                    create netwarden4 hash:net family inet hashsize 1024 maxelem 65536 timeout 0\n\
                    add netwarden4 10.0.0.2 timeout 97\nadd netwarden4 10.1.0.0/16\n\
                    create netwarden6 hash:net family inet6 timeout 0\nadd netwarden6 fd00::2\n";
        let state = parse_save(text);
        assert!(state.has_set(Family::V4) && state.has_set(Family::V6));
        let members: Vec<String> = state.members().iter().map(ToString::to_string).collect();
        assert_eq!(members, vec!["10.0.0.2/32", "10.1.0.0/16", "fd00::2/128"]);
        assert_eq!(error_line("ipset v7.17: Error in line 2: Syntax error"), Some(2));
        assert_eq!(flush_sets_script(), "flush netwarden4\nflush netwarden6\n");
    }
}
