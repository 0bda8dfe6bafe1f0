//! Warnings about rules that do not do what they seem to: rules an earlier rule hides, duplicates, and
//! rules broader than they look. Lint is conservative: it reports a shadowed rule only when it is
//! certain, field by field, that an earlier enabled rule matches every packet the later one could.

use std::collections::HashMap;
use std::fmt;

use ipnet::IpNet;

use super::compile::{PortRange, Rule};
use super::{Action, Protocol, RuleDirection, RuleId, RuleSet};

/// What a lint warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LintKind {
    /// An earlier enabled rule matches every packet this rule could match: it can never match.
    Shadowed {
        /// The earlier rule.
        by: RuleId,
    },
    /// An earlier enabled rule has exactly the same match fields (the action may differ).
    Duplicate {
        /// The earlier rule.
        of: RuleId,
    },
    /// The rule matches more than it seems to (host bits set, /0, every port, no constraints, enforce
    /// without addresses).
    Broad,
    /// The rule's `program` is an exact path that does not exist on this system (a typo, or not installed).
    MissingProgram,
}

/// One lint finding, with a message that names the rules involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// The rule the warning is about.
    pub rule: RuleId,
    /// What kind of problem.
    pub kind: LintKind,
    /// A sentence for the user, e.g. `rule 4 "ssh lan" can never match: rule 2 "no ssh" covers it`.
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn label(id: usize, rule: &Rule) -> String {
    format!("rule {} {:?}", id + 1, rule.name.as_ref())
}

fn sorted<T: Ord + Copy>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// The match fields of a rule in canonical form (sorted, deduplicated), computed once per rule so lint
/// stays allocation-free in its pairwise loop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MatchKey {
    direction: RuleDirection,
    protocol: Protocol,
    interface: Option<String>,
    src: Vec<IpNet>,
    dst: Vec<IpNet>,
    src_ports: Vec<PortRange>,
    dst_ports: Vec<PortRange>,
    program: Option<String>,
    uid: Option<u32>,
    unit: Option<String>,
}

impl MatchKey {
    fn of(r: &Rule) -> Self {
        Self {
            direction: r.direction,
            protocol: r.protocol,
            interface: r.interface.clone(),
            src: sorted(&r.src),
            dst: sorted(&r.dst),
            src_ports: sorted(&r.src_ports),
            dst_ports: sorted(&r.dst_ports),
            program: r.program.as_ref().map(|p| p.text.clone()),
            uid: r.user.as_ref().map(|u| u.uid),
            unit: r.unit.as_deref().map(str::to_owned),
        }
    }
}

/// Port ranges merged into disjoint, sorted intervals.
fn merge(ranges: &[PortRange]) -> Vec<(u32, u32)> {
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for r in sorted(ranges) {
        let (lo, hi) = (u32::from(r.lo), u32::from(r.hi));
        match merged.last_mut() {
            Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// Every network of `inner` lies inside some network of `outer` (an empty `outer` is "any").
fn nets_cover(outer: &[IpNet], inner: &[IpNet]) -> bool {
    outer.is_empty() || (!inner.is_empty() && inner.iter().all(|n| outer.iter().any(|o| o.contains(n))))
}

/// Every port of `inner` is in the union `outer` (merged intervals; empty = "any"). An empty `inner` also
/// matches packets without ports, which a non-empty `outer` does not.
fn ports_cover(outer: &[(u32, u32)], inner: &[PortRange]) -> bool {
    if outer.is_empty() {
        return true;
    }
    if inner.is_empty() {
        return false;
    }
    inner.iter().all(|r| {
        outer
            .iter()
            .any(|&(lo, hi)| lo <= u32::from(r.lo) && u32::from(r.hi) <= hi)
    })
}

fn protocol_covers(outer: Protocol, inner: Protocol) -> bool {
    outer == Protocol::Any || outer == inner
}

/// A rule with its merged port intervals, for coverage checks.
struct Cover<'a> {
    rule: &'a Rule,
    src_ports: Vec<(u32, u32)>,
    dst_ports: Vec<(u32, u32)>,
}

/// `earlier` matches every packet `later` could match.
fn covers(earlier: &Cover<'_>, later: &Rule) -> bool {
    let e = earlier.rule;
    e.direction.covers(later.direction)
        && super::predicate::interface_covers(e.interface.as_deref(), later.interface.as_deref())
        && protocol_covers(e.protocol, later.protocol)
        && nets_cover(&e.src, &later.src)
        && nets_cover(&e.dst, &later.dst)
        && ports_cover(&earlier.src_ports, &later.src_ports)
        && ports_cover(&earlier.dst_ports, &later.dst_ports)
        && owner_covers(e, later)
}

/// Every user and program `later` names is also named by `earlier` (a glob covers the exact paths it
/// matches; two different globs are not compared).
fn owner_covers(earlier: &Rule, later: &Rule) -> bool {
    let user = match (&earlier.user, &later.user) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => e.uid == l.uid,
    };
    let program = match (&earlier.program, &later.program) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => e.text == l.text || (!l.is_glob() && e.matches(&l.text)),
    };
    let unit = match (&earlier.unit, &later.unit) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => e == l,
    };
    user && program && unit
}

fn unconstrained(r: &Rule) -> bool {
    r.direction == RuleDirection::Any
        && r.protocol == Protocol::Any
        && r.interface.is_none()
        && r.src.is_empty()
        && r.dst.is_empty()
        && r.src_ports.is_empty()
        && r.dst_ports.is_empty()
        && r.program.is_none()
        && r.user.is_none()
        && r.unit.is_none()
}

fn broad_nets(i: usize, rule: &Rule, field: &str, nets: &[IpNet], out: &mut Vec<LintWarning>) {
    for n in nets {
        let message = if n.prefix_len() == 0 {
            let family = if matches!(n, IpNet::V4(_)) { "IPv4" } else { "IPv6" };
            format!("{}: {field} {n} matches every {family} address", label(i, rule))
        } else if n.addr() != n.network() {
            format!(
                "{}: {field} {n} has host bits set: it matches all of {}",
                label(i, rule),
                n.trunc()
            )
        } else {
            continue;
        };
        out.push(LintWarning {
            rule: rule_id(i),
            kind: LintKind::Broad,
            message,
        });
    }
}

fn rule_id(i: usize) -> RuleId {
    RuleId(u32::try_from(i).unwrap_or(u32::MAX))
}

/// Lints a rule set. Disabled rules are neither reported nor used to shadow others. Warnings come in rule
/// order; per rule: broad findings first, then at most one of duplicate / shadowed (duplicate preferred).
#[must_use]
pub fn lint(set: &RuleSet) -> Vec<LintWarning> {
    let rules = set.rules();
    let mut out = Vec::new();
    // Enabled rules seen so far: by canonical match fields (duplicates), and in order (coverage).
    let mut first_with_key: HashMap<MatchKey, usize> = HashMap::new();
    let mut earlier: Vec<(usize, Cover<'_>)> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if !rule.enabled {
            continue;
        }
        broad_nets(i, rule, "src", &rule.src, &mut out);
        broad_nets(i, rule, "dst", &rule.dst, &mut out);
        for (field, ranges) in [("src", &rule.src_ports), ("dst", &rule.dst_ports)] {
            if ranges.iter().any(|r| r.lo == 0 && r.hi == u16::MAX) {
                out.push(LintWarning {
                    rule: rule_id(i),
                    kind: LintKind::Broad,
                    message: format!(
                        "{}: {field} port range 0-65535 covers every port (but still skips packets without ports)",
                        label(i, rule)
                    ),
                });
            }
        }
        if unconstrained(rule) {
            let later = rules.iter().skip(i + 1).filter(|r| r.enabled).count();
            if later > 0 {
                out.push(LintWarning {
                    rule: rule_id(i),
                    kind: LintKind::Broad,
                    message: format!(
                        "{} matches every packet ({}): the {later} enabled rule(s) after it can never match",
                        label(i, rule),
                        rule.action.name()
                    ),
                });
            }
        }
        if let Some(program) = rule.program.as_ref().filter(|p| !p.is_glob())
            && !std::path::Path::new(&program.text).exists()
        {
            out.push(LintWarning {
                rule: rule_id(i),
                kind: LintKind::MissingProgram,
                message: format!(
                    "{}: program {} does not exist on this system",
                    label(i, rule),
                    program.text
                ),
            });
        }
        if rule.enforce
            && rule.action == Action::Block
            && rule.src.is_empty()
            && rule.dst.is_empty()
            && rule.user.is_none()
            && rule.unit.is_none()
        {
            out.push(LintWarning {
                rule: rule_id(i),
                kind: LintKind::Broad,
                message: format!(
                    "{} is enforced without src or dst: the kernel will drop this traffic for every address",
                    label(i, rule)
                ),
            });
        }
        let key = MatchKey::of(rule);
        if let Some(&j) = first_with_key.get(&key)
            && let Some(e) = rules.get(j)
        {
            let tail = if e.action == rule.action {
                String::new()
            } else {
                format!(
                    "; it can never {}, rule {} decides first with {}",
                    rule.action.name(),
                    j + 1,
                    e.action.name()
                )
            };
            out.push(LintWarning {
                rule: rule_id(i),
                kind: LintKind::Duplicate { of: rule_id(j) },
                message: format!(
                    "{} duplicates {} (same match fields){tail}",
                    label(i, rule),
                    label(j, e)
                ),
            });
        } else if let Some((j, e)) = earlier.iter().find(|(_, e)| covers(e, rule)) {
            out.push(LintWarning {
                rule: rule_id(i),
                kind: LintKind::Shadowed { by: rule_id(*j) },
                message: format!(
                    "{} can never match: {} covers it",
                    label(i, rule),
                    label(*j, e.rule)
                ),
            });
        }
        first_with_key.entry(key).or_insert(i);
        earlier.push((
            i,
            Cover {
                rule,
                src_ports: merge(&rule.src_ports),
                dst_ports: merge(&rule.dst_ports),
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn port_coverage_uses_the_union() {
        assert!(ports_cover(&merge(&[]), &[]));
        assert!(ports_cover(&merge(&[]), &[pr(1, 2)]));
        assert!(!ports_cover(&merge(&[pr(1, 2)]), &[]));
        assert!(ports_cover(&merge(&[pr(21, 30), pr(10, 20)]), &[pr(15, 25)]));
        assert!(!ports_cover(&merge(&[pr(10, 20), pr(22, 30)]), &[pr(15, 25)]));
        assert!(ports_cover(&merge(&[pr(0, 65535)]), &[pr(65535, 65535)]));
        assert_eq!(
            merge(&[pr(5, 9), pr(1, 3), pr(4, 4), pr(20, 30), pr(25, 26)]),
            [(1, 9), (20, 30)]
        );
    }

    #[test]
    fn net_coverage() {
        assert!(nets_cover(&[], &[]));
        assert!(!nets_cover(&[net("10.0.0.0/8")], &[]));
        assert!(nets_cover(
            &[net("10.0.0.0/8")],
            &[net("10.1.0.0/16"), net("10.2.3.4/32")]
        ));
        assert!(!nets_cover(
            &[net("10.0.0.0/8")],
            &[net("10.1.0.0/16"), net("11.0.0.0/16")]
        ));
        assert!(!nets_cover(&[net("10.0.0.0/8")], &[net("::/0")]));
    }

    #[test]
    fn missing_programs_and_owner_coverage() {
        let set: RuleSet = r#"(default_policy: Allow, rules: [
            (name: "no such", action: Block, program: "/usr/bin/netwarden-no-such-program"),
            (name: "sh", action: Block, program: "/bin/sh"),
            (name: "any env", action: Block, program: "*/env"),
            (name: "usr env", action: Block, program: "/usr/bin/env", protocol: Tcp),
            (name: "root", action: Block, user: 0),
            (name: "root tcp", action: Block, user: "root", protocol: Tcp),
            (name: "daemon env", action: Block, user: 1, program: "*/env"),
        ])"#
        .parse()
        .unwrap();
        let w = lint(&set);
        let msgs: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "rule 1 \"no such\": program /usr/bin/netwarden-no-such-program does not exist on this system",
                "rule 4 \"usr env\" can never match: rule 3 \"any env\" covers it",
                "rule 6 \"root tcp\" can never match: rule 5 \"root\" covers it",
                "rule 7 \"daemon env\" can never match: rule 3 \"any env\" covers it",
            ]
        );
        assert_eq!(w[0].kind, LintKind::MissingProgram);
    }

    #[test]
    fn direction_and_interface_coverage() {
        let set: RuleSet = r#"(default_policy: Allow, rules: [
            (name: "in", action: Block, direction: In),
            (name: "any", action: Block, protocol: Tcp),
            (name: "in tcp", action: Block, direction: In, protocol: Tcp),
            (name: "eth0", action: Block, interface: "eth0", protocol: Udp),
            (name: "out udp", action: Block, direction: Out, protocol: Udp),
            (name: "veths", action: Log, interface: "veth+", protocol: Icmp),
            (name: "veth0", action: Log, interface: "veth0", protocol: Icmp),
            (name: "all veth-ish", action: Log, interface: "vet+", protocol: Icmp),
        ])"#
        .parse()
        .unwrap();
        let w = lint(&set);
        let msgs: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "rule 3 \"in tcp\" can never match: rule 1 \"in\" covers it",
                "rule 7 \"veth0\" can never match: rule 6 \"veths\" covers it",
            ]
        );
    }
}
