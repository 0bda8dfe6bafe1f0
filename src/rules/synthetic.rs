//! Rule sets for benchmarks: the 10 rules of the C ceiling (`/work/shared/bench/README.md`, also in
//! `benches/rules/ceiling10.ron`) and a generator of large realistic sets with the same verdicts on the
//! benchmark traffic.
//!
//! The extra rules are placed *before* the 10 ceiling rules and only name addresses the benchmark capture
//! never uses (198.18.0.0/15, the RFC 2544 benchmarking range, and the ULA prefix fd5e:cafe::/32), so they
//! can never match it: with 10 or 10,000 rules every packet gets the same verdict, and only the index keeps
//! the cost flat.

use super::{Action, Protocol, RuleDirection, RuleFile, RuleSpec};

fn spec(name: &str, action: Action) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        action,
        ..RuleSpec::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The 10 rules of the C ceiling, in order (default policy: Block).
#[must_use]
pub fn ceiling_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            src: strings(&["192.168.1.1"]),
            ..spec("allow 192.168.1.1", Action::Allow)
        },
        RuleSpec {
            src: strings(&["192.168.1.2"]),
            ..spec("allow 192.168.1.2", Action::Allow)
        },
        RuleSpec {
            protocol: Protocol::Tcp,
            dst_ports: strings(&["22"]),
            ..spec("block ssh", Action::Block)
        },
        RuleSpec {
            protocol: Protocol::Tcp,
            dst_ports: strings(&["80"]),
            ..spec("block http", Action::Block)
        },
        RuleSpec {
            protocol: Protocol::Tcp,
            src: strings(&["10.0.0.0/8"]),
            dst_ports: strings(&["443"]),
            ..spec("allow https from 10/8", Action::Allow)
        },
        RuleSpec {
            protocol: Protocol::Udp,
            dst_ports: strings(&["53"]),
            ..spec("allow dns", Action::Allow)
        },
        RuleSpec {
            protocol: Protocol::Udp,
            dst_ports: strings(&["123"]),
            ..spec("allow ntp", Action::Allow)
        },
        RuleSpec {
            src: strings(&["203.0.113.0/24"]),
            ..spec("block 203.0.113.0/24", Action::Block)
        },
        RuleSpec {
            protocol: Protocol::Tcp,
            dst_ports: strings(&["8000-8999"]),
            ..spec("allow tcp 8000-8999", Action::Allow)
        },
        RuleSpec {
            protocol: Protocol::Icmp,
            ..spec("allow icmp", Action::Allow)
        },
    ]
}

/// A rule file with `n` rules (at least the 10 ceiling rules): `n - 10` varied rules that never match the
/// benchmark traffic, then the 10 ceiling rules; default policy Block.
#[doc(hidden)]
#[must_use]
pub fn synthetic_rules(n: usize) -> RuleFile {
    let extra = n.saturating_sub(10);
    let mut rules = Vec::with_capacity(extra + 10);
    const PORTS: [&str; 8] = ["22", "25", "80", "443", "3306", "5432", "6379", "8080"];
    for k in 0..extra {
        let (a, b) = ((k / 256) % 256, k % 256);
        let port = PORTS[k % PORTS.len()];
        let name = format!("synthetic {k}");
        let r = match k % 8 {
            0 => RuleSpec {
                src: vec![format!("198.18.{a}.{b}")],
                ..spec(&name, Action::Block)
            },
            1 => RuleSpec {
                protocol: Protocol::Tcp,
                src: vec![format!("198.18.{a}.{}/29", b & 0xf8)],
                dst_ports: vec![port.into()],
                ..spec(&name, Action::Block)
            },
            2 => RuleSpec {
                protocol: Protocol::Udp,
                dst: vec![format!("198.19.{a}.{b}")],
                dst_ports: strings(&["5000-5100"]),
                ..spec(&name, Action::Allow)
            },
            3 => RuleSpec {
                src: vec![format!("fd5e:cafe:{a:x}:{b:x}::/64")],
                ..spec(&name, Action::Block)
            },
            4 => RuleSpec {
                protocol: Protocol::Tcp,
                dst: vec![format!("fd5e:cafe::{a:x}:{b:x}")],
                dst_ports: vec![port.into(), "8443".into()],
                ..spec(&name, Action::Log)
            },
            5 => RuleSpec {
                direction: RuleDirection::In,
                protocol: Protocol::Udp,
                src: vec![format!("198.18.{a}.{}/29", b & 0xf8)],
                ..spec(&name, Action::Block)
            },
            6 => RuleSpec {
                protocol: Protocol::Icmp,
                enabled: k % 5 != 0,
                src: vec![format!("198.19.{a}.{}/29", b & 0xf8)],
                ..spec(&name, Action::Block)
            },
            _ => RuleSpec {
                protocol: Protocol::Tcp,
                src: vec![format!("198.18.{a}.{b}"), format!("fd5e:cafe:ffff::{b:x}")],
                dst: strings(&["10.200.0.0/24"]),
                dst_ports: vec![port.into()],
                comment: "synthetic admin access".into(),
                ..spec(&name, Action::Allow)
            },
        };
        rules.push(r);
    }
    rules.extend(ceiling_rules());
    RuleFile {
        default_policy: Action::Block,
        rules,
        ..RuleFile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    #[test]
    fn ceiling_file_matches_the_generator() {
        let text = include_str!("../../benches/rules/ceiling10.ron");
        let file = RuleFile::parse(text).unwrap();
        assert_eq!(file.default_policy, Action::Block);
        assert_eq!(file.rules, ceiling_rules());
        RuleSet::compile(file, Some(text)).unwrap();
    }

    #[test]
    fn synthetic_sets_compile_with_the_ceiling_rules_last() {
        let f = synthetic_rules(10_000);
        assert_eq!(f.rules.len(), 10_000);
        assert_eq!(f.rules[9_990..], ceiling_rules()[..]);
        let set = RuleSet::compile(f, None).unwrap();
        assert_eq!(set.rules().len(), 10_000);
        assert_eq!(synthetic_rules(3).rules, ceiling_rules());
        // Realistic means no copy-paste: no rule duplicates or hides another.
        assert_eq!(crate::rules::lint(&set), []);
    }
}
