//! "Why did this packet get this verdict?": every rule in order, whether it matched or which field made
//! it skip, up to the first match, else the default policy.
//!
//! The decision for each rule comes from [`Rule::check`], the same per-field predicates the matcher uses;
//! this module only turns the failing [`Field`] into words.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::compile::{PortRange, Rule};
use super::predicate::{Field, Owner};
use super::{RuleId, RuleSet, Verdict};
use crate::packet::{Direction, PacketMeta};

/// Whether a rule matched the packet, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The rule matched and decided the verdict.
    Matched,
    /// The rule did not match; the reason names the first field that failed, e.g.
    /// `dst port 443 not in 22, 8000-8999`.
    Skipped(String),
}

/// One rule's part in an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainStep {
    /// The rule.
    pub rule: RuleId,
    /// Its name.
    pub name: Arc<str>,
    /// Matched or skipped (with the reason).
    pub outcome: StepOutcome,
}

/// The rules examined for one packet, in order, stopping at the first match; and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One step per rule examined.
    pub steps: Vec<ExplainStep>,
    /// The verdict (`rule: None` when the default policy decided).
    pub verdict: Verdict,
}

impl Explanation {
    /// One sentence on who decided: `rule 3 "no ssh" matched: block` or
    /// `no rule matched: default policy allow`.
    #[must_use]
    pub fn summary(&self) -> String {
        match (self.verdict.rule, self.steps.last()) {
            (Some(id), Some(step)) => {
                format!(
                    "rule {} {:?} matched: {}",
                    id.index() + 1,
                    step.name,
                    self.verdict.action.name()
                )
            }
            _ => format!("no rule matched: default policy {}", self.verdict.action.name()),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            let outcome = match &s.outcome {
                StepOutcome::Matched => "matched",
                StepOutcome::Skipped(why) => why,
            };
            writeln!(f, "rule {} {:?}: {outcome}", s.rule.index() + 1, s.name)?;
        }
        write!(f, "{}", self.summary())
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Unknown => "unknown",
        other => other.name(),
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn addr_reason(which: &str, ip: Option<IpAddr>, nets: &[ipnet::IpNet]) -> String {
    match ip {
        Some(ip) => format!("{which} {ip} not in {}", join(nets)),
        None => format!("packet has no {which} address, rule wants {}", join(nets)),
    }
}

fn port_reason(which: &str, port: Option<u16>, ranges: &[PortRange]) -> String {
    match port {
        Some(p) => format!("{which} port {p} not in {}", join(ranges)),
        None => "packet has no ports (fragment or non-TCP/UDP)".into(),
    }
}

/// Words for a failed field of `rule` against `meta` sent or received by `owner`.
#[must_use]
pub fn reason(rule: &Rule, field: Field, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> String {
    match field {
        Field::Disabled => "disabled".into(),
        Field::Direction => {
            format!(
                "direction {}, rule wants {}",
                direction_name(meta.direction),
                rule.direction.name()
            )
        }
        Field::Interface => {
            format!(
                "interface {iface}, rule wants {}",
                rule.interface.as_deref().unwrap_or_default()
            )
        }
        Field::Protocol => match meta.protocol {
            Some(p) => format!("protocol {} is not {}", p.name(), rule.protocol.name()),
            None => format!(
                "packet is not IP ({}), rule wants {}",
                meta.protocol_name(),
                rule.protocol.name()
            ),
        },
        Field::Src => addr_reason("src", meta.src_ip, &rule.src),
        Field::Dst => addr_reason("dst", meta.dst_ip, &rule.dst),
        Field::SrcPort => port_reason("src", meta.src_port, &rule.src_ports),
        Field::DstPort => port_reason("dst", meta.dst_port, &rule.dst_ports),
        Field::User => {
            let want = rule.user.as_ref().map_or_else(String::new, |u| u.text.clone());
            match owner.uid {
                Some(uid) => format!("user {} is not {want}", user_label(uid)),
                None => format!("user not known (yet), rule wants {want}"),
            }
        }
        Field::Program => {
            let want = rule.program.as_ref().map_or("", |p| p.text.as_str());
            match owner.program {
                Some(exe) => format!("program {exe} is not {want}"),
                None => format!("program not known (yet), rule wants {want}"),
            }
        }
        Field::Unit => {
            let want = rule.unit.as_deref().unwrap_or("");
            match (owner.unit, owner.program) {
                (Some(unit), _) => format!("unit {unit} is not {want}"),
                (None, Some(_)) => format!("program runs in no systemd unit, rule wants {want}"),
                (None, None) => format!("unit not known (yet), rule wants {want}"),
            }
        }
    }
}

/// `alice (1000)` when the system knows the name, else `1000`.
fn user_label(uid: u32) -> String {
    match crate::attrib::users::name_of(uid) {
        Some(name) => format!("{name} ({uid})"),
        None => uid.to_string(),
    }
}

impl RuleSet {
    /// Explains the verdict for one packet of unknown owner: each rule in order until the first match.
    /// Pure (counts nothing); agrees with [`RuleSet::matching_rule`].
    #[must_use]
    pub fn explain(&self, meta: &PacketMeta, iface: &str) -> Explanation {
        self.explain_with_owner(meta, iface, Owner::UNKNOWN)
    }

    /// Explains the verdict for one packet of `owner` (program and user), as [`RuleSet::explain`]; agrees
    /// with [`RuleSet::matching_rule_with_owner`].
    #[must_use]
    pub fn explain_with_owner(&self, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> Explanation {
        let mut steps = Vec::new();
        for (i, rule) in self.rules().iter().enumerate() {
            let Ok(id) = u32::try_from(i).map(RuleId) else {
                break;
            };
            match rule.check(meta, iface, owner) {
                Ok(()) => {
                    steps.push(ExplainStep {
                        rule: id,
                        name: rule.name.clone(),
                        outcome: StepOutcome::Matched,
                    });
                    return Explanation {
                        steps,
                        verdict: Verdict {
                            action: rule.action,
                            rule: Some(id),
                        },
                    };
                }
                Err(field) => steps.push(ExplainStep {
                    rule: id,
                    name: rule.name.clone(),
                    outcome: StepOutcome::Skipped(reason(rule, field, meta, iface, owner)),
                }),
            }
        }
        Explanation {
            steps,
            verdict: Verdict {
                action: self.default_policy(),
                rule: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{IpProto, LinkType, NetworkKind};

    const TEXT: &str = r#"(default_policy: Allow, rules: [
        (name: "off", action: Block, enabled: false),
        (name: "in only", action: Block, direction: In),
        (name: "eth0", action: Block, interface: "eth0"),
        (name: "tcp", action: Block, protocol: Tcp),
        (name: "lan", action: Block, src: ["192.168.0.0/16"]),
        (name: "v6", action: Block, dst: ["2001:db8::/32"]),
        (name: "sport", action: Block, src_ports: ["53"]),
        (name: "ports", action: Block, dst_ports: ["22", "8000-8999"]),
        (name: "any", action: Log),
    ])"#;

    fn reasons(meta: &PacketMeta, iface: &str) -> Vec<String> {
        let set: RuleSet = TEXT.parse().unwrap();
        set.explain(meta, iface)
            .steps
            .into_iter()
            .map(|s| match s.outcome {
                StepOutcome::Matched => format!("{}: matched", s.name),
                StepOutcome::Skipped(r) => format!("{}: {r}", s.name),
            })
            .collect()
    }

    #[test]
    fn every_field_has_a_reason() {
        let mut m = PacketMeta::new(0, 60, 60, LinkType::Ethernet);
        m.direction = Direction::Out;
        m.protocol = Some(IpProto::UDP);
        m.src_ip = Some("10.1.2.3".parse().unwrap());
        m.dst_ip = Some("10.9.9.9".parse().unwrap());
        m.src_port = Some(5353);
        m.dst_port = Some(443);
        assert_eq!(
            reasons(&m, "wlan0"),
            [
                "off: disabled",
                "in only: direction out, rule wants in",
                "eth0: interface wlan0, rule wants eth0",
                "tcp: protocol udp is not tcp",
                "lan: src 10.1.2.3 not in 192.168.0.0/16",
                "v6: dst 10.9.9.9 not in 2001:db8::/32",
                "sport: src port 5353 not in 53",
                "ports: dst port 443 not in 22, 8000-8999",
                "any: matched",
            ]
        );
    }

    #[test]
    fn missing_fields_are_explained() {
        let mut m = PacketMeta::new(0, 60, 60, LinkType::Ethernet);
        m.network = NetworkKind::Arp;
        let r = reasons(&m, "eth1");
        assert_eq!(r[1], "in only: direction unknown, rule wants in");
        assert_eq!(r[3], "tcp: packet is not IP (arp), rule wants tcp");
        assert_eq!(r[4], "lan: packet has no src address, rule wants 192.168.0.0/16");
        assert_eq!(r[6], "sport: packet has no ports (fragment or non-TCP/UDP)");
    }

    #[test]
    fn summary_and_display() {
        let set: RuleSet = "(default_policy: Block, rules: [(name: \"a\", action: Allow, protocol: Tcp)])"
            .parse()
            .unwrap();
        let m = PacketMeta::new(0, 60, 60, LinkType::Ethernet);
        let e = set.explain(&m, "eth0");
        assert_eq!(
            e.verdict,
            Verdict {
                action: super::super::Action::Block,
                rule: None
            }
        );
        assert_eq!(
            e.to_string(),
            "rule 1 \"a\": packet is not IP (unknown), rule wants tcp\nno rule matched: default policy block"
        );
    }
}
