//! Confirm-or-roll-back for changes that could cut the user off (a block broader than /16 IPv4 or /48
//! IPv6, a forced block of a protected address, a kernel rule that drops all traffic or SSH for everyone,
//! for broad networks or for a protected address): the change is applied at once and undone automatically
//! when it is not confirmed before the deadline. The decisions are pure functions here; `Enforcer` applies,
//! confirms and rolls back (`Enforcer::confirm`, `Enforcer::tick`), and the guard ticks it every second.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BlockRequest, KernelRule, Protected, is_broad};

/// The SSH port: a rule dropping it for everyone cuts off a remote user as surely as one on all traffic.
const SSH_PORT: u16 = 22;

/// Why `rule` could cut the user off, if it could: it drops every port (or SSH's) for wide addresses (none,
/// or broader than /16 or /48) on both sides, or for a protected address (loopback, this host, the
/// gateway, the SSH peer) with the other side wide. A rule on some other port, or between narrow networks,
/// cannot. An interface limit does not lower the risk: the user may well be connected through it.
#[must_use]
pub fn rule_risk(rule: &KernelRule, protected: &Protected) -> Option<String> {
    let any_port = rule.dst_ports.is_empty() && rule.src_ports.is_empty();
    let ssh = matches!(rule.protocol, None | Some(6))
        && rule
            .dst_ports
            .iter()
            .chain(&rule.src_ports)
            .any(|&(low, high)| (low.min(high)..=low.max(high)).contains(&SSH_PORT));
    let what = if any_port {
        "all its traffic"
    } else if ssh {
        "SSH (port 22)"
    } else {
        return None;
    };
    // The lines are every (src, dst) pair, so one side is wide when it is empty or holds a broad network,
    // and a protected address matters only when the other side is wide.
    let wide = |side: &[ipnet::IpNet]| side.is_empty() || side.iter().any(is_broad);
    let covered = |side: &[ipnet::IpNet]| side.iter().find_map(|net| protected.refusal(net));
    let why = match (wide(&rule.src), wide(&rule.dst)) {
        (true, true) if rule.src.is_empty() && rule.dst.is_empty() => "for every address".to_owned(),
        (true, true) => "for networks broader than /16 (/48)".to_owned(),
        (false, true) => format!("of the {}", covered(&rule.src)?),
        (true, false) => format!("of the {}", covered(&rule.dst)?),
        (false, false) => return None,
    };
    Some(format!("`{}` drops {what} {why}", rule.name))
}

/// A change that may need confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskyChange {
    /// Block an address or network.
    Block(BlockRequest),
    /// Replace the kernel rules.
    Rules(Vec<KernelRule>),
}

impl RiskyChange {
    /// Why the change could cut the user off, one sentence per reason; empty when it cannot (then it needs
    /// no `PendingConfirm`). `current` are the kernel rules in force: a risky rule already there (confirmed
    /// before) does not ask again.
    #[must_use]
    pub fn risks(&self, current: &[KernelRule], protected: &Protected) -> Vec<String> {
        match self {
            Self::Block(request) => {
                let mut risks = Vec::new();
                if is_broad(&request.net) {
                    risks.push(format!("blocking {} (broader than /16 or /48)", request.net));
                }
                if let Some(why) = protected.refusal(&request.net) {
                    risks.push(format!("blocking {} covers the {why}", request.net));
                }
                risks
            }
            Self::Rules(rules) => rules
                .iter()
                .filter(|rule| !current.contains(rule))
                .filter_map(|rule| rule_risk(rule, protected))
                .collect(),
        }
    }
}

/// An applied change waiting for confirmation, as saved in the state directory (`pending.ron`), so every
/// netwarden process sees it: `netwarden confirm` or the app's "Keep this change" keeps it, and whichever
/// process ticks first after the deadline (the app, `run --enforce`, the next command that changes the list)
/// undoes it. A pending block also carries a kernel timeout that ends at the deadline, so the kernel lifts it
/// on time even when no netwarden process is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// What was applied.
    pub change: RiskyChange,
    /// Kernel rules the change added (not in force before): what a roll-back takes out again.
    #[serde(default)]
    pub added_rules: Vec<KernelRule>,
    /// Why it could cut the user off, one sentence per reason joined with `; `.
    pub what: String,
    /// When it is undone unless confirmed.
    pub deadline: DateTime<Utc>,
}

impl PendingChange {
    /// True once `now` reached the deadline.
    #[must_use]
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        now >= self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::RuleDirection;

    fn protected() -> Protected {
        Protected {
            addrs: vec![("203.0.113.5".parse().unwrap(), "SSH peer".into())],
        }
    }

    fn all() -> KernelRule {
        KernelRule {
            name: "all".into(),
            direction: RuleDirection::In,
            protocol: None,
            src: vec![],
            dst: vec![],
            dst_ports: vec![],
            src_ports: vec![],
            interface: None,
            uid_owner: None,
            cgroup_path: None,
        }
    }

    #[test]
    fn which_blocks_need_confirmation() {
        let p = protected();
        let block = |a: &str| RiskyChange::Block(BlockRequest::parse(a, "", None, true).unwrap());
        assert!(!block("10.0.0.0/8").risks(&[], &p).is_empty());
        assert!(block("10.1.0.0/16").risks(&[], &p).is_empty());
        assert!(!block("2001:db8::/32").risks(&[], &p).is_empty());
        assert!(block("2001:db8::/48").risks(&[], &p).is_empty());
        assert_eq!(
            block("203.0.113.0/24").risks(&[], &p),
            vec!["blocking 203.0.113.0/24 covers the SSH peer 203.0.113.5".to_owned()]
        );
    }

    #[test]
    fn which_rules_need_confirmation() {
        let p = protected();
        let net = |t: &str| t.parse().unwrap();
        let risk = |rule: KernelRule| rule_risk(&rule, &p);
        assert_eq!(
            risk(all()).as_deref(),
            Some("`all` drops all its traffic for every address")
        );
        let tcp = KernelRule {
            protocol: Some(6),
            ..all()
        };
        assert!(risk(tcp.clone()).is_some(), "all of TCP");
        let port = |ports: Vec<(u16, u16)>| KernelRule {
            dst_ports: ports,
            ..tcp.clone()
        };
        assert_eq!(risk(port(vec![(23, 23)])), None, "telnet only");
        assert_eq!(
            risk(port(vec![(20, 25)])).as_deref(),
            Some("`all` drops SSH (port 22) for every address")
        );
        assert_eq!(
            risk(KernelRule {
                protocol: Some(17),
                ..port(vec![(22, 22)])
            }),
            None,
            "UDP 22 is not SSH"
        );
        let from = |src: &str| KernelRule {
            src: vec![net(src)],
            ..all()
        };
        assert!(risk(from("10.0.0.0/8")).is_some(), "a broad network");
        assert_eq!(risk(from("10.1.0.0/16")), None, "a narrow network");
        assert_eq!(
            risk(from("203.0.113.0/24")).as_deref(),
            Some("`all` drops all its traffic of the SSH peer 203.0.113.5")
        );
        assert!(
            risk(KernelRule {
                dst: vec![net("192.0.2.7/32")],
                ..from("0.0.0.0/0")
            })
            .is_none(),
            "traffic to one server only"
        );
        assert!(
            risk(KernelRule {
                dst: vec![net("192.0.2.7/32")],
                ..from("203.0.113.0/24")
            })
            .is_none(),
            "the SSH peer's traffic to one other server only"
        );
        assert_eq!(
            risk(KernelRule {
                dst: vec![net("198.51.100.0/24"), net("10.0.0.0/8")],
                ..from("203.0.113.0/24")
            })
            .as_deref(),
            Some("`all` drops all its traffic of the SSH peer 203.0.113.5"),
            "one broad destination among narrow ones is enough"
        );
        // A risky rule already in force (confirmed before) does not ask again; a new one does.
        let change = RiskyChange::Rules(vec![all(), port(vec![(23, 23)])]);
        assert!(!change.risks(&[], &p).is_empty());
        assert!(change.risks(&[all()], &p).is_empty());
    }
}
