//! Pure builders and parsers for iptables/ip6tables: our chain layout, `iptables-restore` scripts, kernel
//! rules as iptables lines, and the parts of `iptables-save` output we need to reconcile. No I/O here.
//!
//! Layout in the `filter` table, per family: `NETWARDEN` (block-list set matches and `Any`-direction
//! rules) is jumped to from `INPUT`, `OUTPUT` and `FORWARD`; `NETWARDEN-IN` (inbound rules) from `INPUT`;
//! `NETWARDEN-OUT` (outbound rules) from `OUTPUT`. The jumps are inserted first in each built-in chain. A
//! `:CHAIN` line in `iptables-restore --noflush` flushes that chain, so each apply rewrites our chains in
//! one transaction and leaves every other chain alone.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{EnforceError, Family};

/// Our main chain (block list and `Any` rules).
pub const CHAIN: &str = "NETWARDEN";
/// Our chain for inbound rules.
pub const CHAIN_IN: &str = "NETWARDEN-IN";
/// Our chain for outbound rules.
pub const CHAIN_OUT: &str = "NETWARDEN-OUT";
/// All our chains.
pub const CHAINS: [&str; 3] = [CHAIN, CHAIN_IN, CHAIN_OUT];
/// The (built-in chain, our chain) jumps we keep, in the order they should appear.
pub const JUMPS: [(&str, &str); 5] = [
    ("INPUT", CHAIN),
    ("INPUT", CHAIN_IN),
    ("OUTPUT", CHAIN),
    ("OUTPUT", CHAIN_OUT),
    ("FORWARD", CHAIN),
];

/// Which iptables implementation is installed (`iptables --version` says `(nf_tables)` or `(legacy)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// iptables-nft: the iptables syntax on nf_tables.
    Nft,
    /// The classic x_tables backend.
    Legacy,
    /// Neither marker was printed (old versions, dry run).
    Unknown,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Nft => "iptables-nft",
            Self::Legacy => "iptables-legacy",
            Self::Unknown => "iptables",
        })
    }
}

/// Reads the backend from `iptables --version` output.
#[must_use]
pub fn parse_backend(version_output: &str) -> Backend {
    if version_output.contains("(nf_tables)") {
        Backend::Nft
    } else if version_output.contains("(legacy)") {
        Backend::Legacy
    } else {
        Backend::Unknown
    }
}

/// Traffic direction of a kernel rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleDirection {
    /// Packets to this host (`INPUT`).
    In,
    /// Packets from this host (`OUTPUT`).
    Out,
    /// Both, plus forwarded traffic.
    Any,
}

/// A Block rule to put into the kernel as DROP lines; the lead converts `rules.ron` rules with
/// `enforce: true` into this. Empty `src`/`dst`/port lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRule {
    /// Rule name, kept in an iptables comment (sanitised to `[A-Za-z0-9_.:-]`).
    pub name: String,
    /// Which traffic it applies to.
    pub direction: RuleDirection,
    /// IP protocol number (6 = TCP, 17 = UDP, 1 = ICMP, 58 = ICMPv6); `None` = any.
    pub protocol: Option<u8>,
    /// Source networks.
    pub src: Vec<IpNet>,
    /// Destination networks.
    pub dst: Vec<IpNet>,
    /// Destination port ranges (inclusive); need protocol TCP, UDP, SCTP, DCCP or UDPLite.
    pub dst_ports: Vec<(u16, u16)>,
    /// Source port ranges (inclusive); same protocol rule as `dst_ports`.
    pub src_ports: Vec<(u16, u16)>,
    /// Network interface (`-i` inbound, `-o` outbound, either for `Any`); `None` = every interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Only packets of sockets owned by this uid (`-m owner --uid-owner`); outbound rules only, since the
    /// kernel knows a packet's owner only on its way out (`OUTPUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_owner: Option<u32>,
    /// Only packets of sockets in this cgroup (`-m cgroup --path`, cgroup v2, relative to its root: a
    /// system service is `system.slice/NAME.service`); outbound only, like `uid_owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
}

/// Protocols that `-m multiport` accepts, by number and iptables name.
fn port_protocol_name(protocol: u8) -> Option<&'static str> {
    match protocol {
        6 => Some("tcp"),
        17 => Some("udp"),
        33 => Some("dccp"),
        132 => Some("sctp"),
        136 => Some("udplite"),
        _ => None,
    }
}

/// Makes a rule name safe for an unquoted iptables comment.
fn comment_for(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("netwarden:{cleaned}")
}

/// Splits port ranges into `multiport` lists of at most 15 slots (a range takes two).
fn port_chunks(ports: &[(u16, u16)]) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut slots = 0;
    for &(low, high) in ports {
        let (low, high) = (low.min(high), low.max(high));
        let (text, cost) = if low == high {
            (low.to_string(), 1)
        } else {
            (format!("{low}:{high}"), 2)
        };
        if slots + cost > 15 {
            chunks.push(current.join(","));
            current.clear();
            slots = 0;
        }
        current.push(text);
        slots += cost;
    }
    if !current.is_empty() {
        chunks.push(current.join(","));
    }
    chunks
}

/// Why `name` cannot be a kernel interface name, if it cannot: Linux names are 1-15 bytes; we accept
/// the characters real names use (and iptables' trailing `+` wildcard), so nothing else can reach an
/// `iptables-restore` line.
fn interface_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 15 {
        return Some(format!("interface {name:?} must be 1-15 characters long"));
    }
    if name == "any" {
        return Some(
            "interface \"any\" is the capture pseudo-device; leave `interface` out to mean every \
             interface"
                .to_owned(),
        );
    }
    let base = name.strip_suffix('+').unwrap_or(name);
    if !base
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
    {
        return Some(format!(
            "interface {name:?} may only hold letters, digits and `_ . - @`, and `+` at the end"
        ));
    }
    None
}

/// Checks a rule before anything is generated.
///
/// # Errors
/// `BadRule` when ports are given without a port protocol, or the interface name is not one.
pub fn validate_rule(rule: &KernelRule) -> Result<(), EnforceError> {
    let bad = |reason: String| EnforceError::BadRule {
        name: rule.name.clone(),
        reason,
    };
    let has_ports = !rule.dst_ports.is_empty() || !rule.src_ports.is_empty();
    if has_ports && rule.protocol.and_then(port_protocol_name).is_none() {
        return Err(bad(
            "ports need protocol TCP (6), UDP (17), SCTP (132), DCCP (33) or UDPLite (136)".to_owned(),
        ));
    }
    if let Some(problem) = rule.interface.as_deref().and_then(interface_problem) {
        return Err(bad(problem));
    }
    if rule.uid_owner.is_some() && rule.direction != RuleDirection::Out {
        return Err(bad(USER_NEEDS_OUT.to_owned()));
    }
    if let Some(path) = &rule.cgroup_path {
        if rule.direction != RuleDirection::Out {
            return Err(bad(UNIT_NEEDS_OUT.to_owned()));
        }
        // The path reaches an iptables-restore line: only the characters unit names use, and `/`.
        if path.is_empty()
            || path.contains("..")
            || !path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":_.@-/".contains(c))
        {
            return Err(bad(format!(
                "cgroup path {path:?} holds characters a unit name never has"
            )));
        }
    }
    Ok(())
}

/// Why a `unit` rule that is not outbound cannot go into the kernel.
const UNIT_NEEDS_OUT: &str = "a unit rule can only be enforced on outbound traffic (the kernel knows a \
     packet's cgroup only as it leaves: iptables' cgroup match works in OUTPUT); set `direction: Out`, the \
     monitor still judges the other direction";

/// Why a `unit` rule other than a system service cannot go into the kernel.
const UNIT_SERVICE_ONLY: &str = "only a system service (NAME.service) can be enforced in the kernel: its \
     cgroup is system.slice/NAME.service; the monitor still judges other units";

/// Why a `user` rule that is not outbound cannot go into the kernel.
const USER_NEEDS_OUT: &str = "a user rule can only be enforced on outbound traffic (the kernel knows a \
     packet's owner only as it leaves: iptables' owner match works in OUTPUT); set `direction: Out`, the \
     monitor still judges the other direction";

/// Why a `program` rule cannot go into the kernel.
const PROGRAM_MONITOR_ONLY: &str = "monitor-only: iptables cannot match a program path (only a user, \
     through `-m owner`); the monitor still judges this rule, the kernel does not drop its traffic";

/// The `iptables-restore` lines (`-A CHAIN ...`) for one rule in one family; empty when its addresses are
/// all of the other family.
///
/// # Errors
/// `BadRule` (see `validate_rule`).
pub fn rule_lines(rule: &KernelRule, family: Family) -> Result<Vec<String>, EnforceError> {
    validate_rule(rule)?;
    let of_family = |nets: &[IpNet]| -> Option<Vec<Option<IpNet>>> {
        if nets.is_empty() {
            return Some(vec![None]);
        }
        let kept: Vec<Option<IpNet>> = nets
            .iter()
            .filter(|n| Family::of(n) == family)
            .map(|n| Some(*n))
            .collect();
        (!kept.is_empty()).then_some(kept)
    };
    let (Some(srcs), Some(dsts)) = (of_family(&rule.src), of_family(&rule.dst)) else {
        return Ok(Vec::new());
    };
    let chain = match rule.direction {
        RuleDirection::In => CHAIN_IN,
        RuleDirection::Out => CHAIN_OUT,
        RuleDirection::Any => CHAIN,
    };
    let protocol = rule
        .protocol
        .map(|p| port_protocol_name(p).map_or_else(|| p.to_string(), str::to_owned));
    let optional_chunks = |ports: &[(u16, u16)]| -> Vec<Option<String>> {
        if ports.is_empty() {
            vec![None]
        } else {
            port_chunks(ports).into_iter().map(Some).collect()
        }
    };
    let sport_chunks = optional_chunks(&rule.src_ports);
    let dport_chunks = optional_chunks(&rule.dst_ports);
    // In the shared chain (reached from INPUT, OUTPUT and FORWARD) an interface limit is two lines, one
    // per side: `-i` never matches in OUTPUT nor `-o` in INPUT, so each covers its own traffic.
    let interfaces: Vec<Option<String>> = match (&rule.interface, rule.direction) {
        (None, _) => vec![None],
        (Some(name), RuleDirection::In) => vec![Some(format!(" -i {name}"))],
        (Some(name), RuleDirection::Out) => vec![Some(format!(" -o {name}"))],
        (Some(name), RuleDirection::Any) => {
            vec![Some(format!(" -i {name}")), Some(format!(" -o {name}"))]
        }
    };
    let comment = comment_for(&rule.name);
    let mut lines = Vec::new();
    for interface in &interfaces {
        for src in &srcs {
            for dst in &dsts {
                for sports in &sport_chunks {
                    for dports in &dport_chunks {
                        let mut line = format!("-A {chain}");
                        if let Some(interface) = interface {
                            line.push_str(interface);
                        }
                        if let Some(protocol) = &protocol {
                            line.push_str(&format!(" -p {protocol}"));
                        }
                        if let Some(src) = src {
                            line.push_str(&format!(" -s {src}"));
                        }
                        if let Some(dst) = dst {
                            line.push_str(&format!(" -d {dst}"));
                        }
                        if let Some(sports) = sports {
                            line.push_str(&format!(" -m multiport --sports {sports}"));
                        }
                        if let Some(dports) = dports {
                            line.push_str(&format!(" -m multiport --dports {dports}"));
                        }
                        if let Some(uid) = rule.uid_owner {
                            line.push_str(&format!(" -m owner --uid-owner {uid}"));
                        }
                        if let Some(path) = &rule.cgroup_path {
                            line.push_str(&format!(" -m cgroup --path {path}"));
                        }
                        line.push_str(&format!(" -m comment --comment {comment} -j DROP"));
                        lines.push(line);
                    }
                }
            }
        }
    }
    Ok(lines)
}

/// The two lines that drop traffic from and to the block-list set of `family`.
#[must_use]
pub fn set_lines(family: Family) -> [String; 2] {
    let set = family.set_name();
    [
        format!("-A {CHAIN} -m set --match-set {set} src -j DROP"),
        format!("-A {CHAIN} -m set --match-set {set} dst -j DROP"),
    ]
}

/// What `iptables-save -t filter` says about our chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    /// Our chains that exist.
    pub chains: BTreeSet<String>,
    /// How many times each (built-in, ours) plain jump exists.
    pub jumps: BTreeMap<(String, String), usize>,
    /// Lines (as saved) of other chains that reference one of our chains, to delete on flush.
    pub references: Vec<String>,
    /// Rule lines in each of our chains, as saved.
    pub rules: BTreeMap<String, Vec<String>>,
}

impl ChainState {
    /// Number of rules in our chain `chain` (0 when missing).
    #[must_use]
    pub fn rule_count(&self, chain: &str) -> usize {
        self.rules.get(chain).map_or(0, Vec::len)
    }
}

/// Parses the `filter` table of `iptables-save` output, keeping what concerns our chains.
#[must_use]
pub fn parse_save(text: &str) -> ChainState {
    let mut state = ChainState::default();
    let mut in_filter = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(table) = line.strip_prefix('*') {
            in_filter = table == "filter";
            continue;
        }
        if !in_filter {
            continue;
        }
        if let Some(chain_line) = line.strip_prefix(':') {
            let name = chain_line.split_whitespace().next().unwrap_or_default();
            if CHAINS.contains(&name) {
                state.chains.insert(name.to_owned());
            }
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("-A") {
            continue;
        }
        let Some(chain) = words.next() else { continue };
        if CHAINS.contains(&chain) {
            state
                .rules
                .entry(chain.to_owned())
                .or_default()
                .push(line.to_owned());
            continue;
        }
        let rest: Vec<&str> = words.collect();
        if let [flag, target] = rest.as_slice()
            && (*flag == "-j" || *flag == "-g")
            && CHAINS.contains(target)
        {
            *state
                .jumps
                .entry((chain.to_owned(), (*target).to_owned()))
                .or_default() += 1;
        }
        let jumps_to_ours = rest.windows(2).any(
            |w| matches!(w, [flag, target] if (*flag == "-j" || *flag == "-g") && CHAINS.contains(target)),
        );
        if jumps_to_ours {
            state.references.push(line.to_owned());
        }
    }
    state
}

/// The `iptables-restore --noflush` script that (re)writes our chains for `family` with the block-list set
/// rules plus `rule_lines`, and adds missing jumps / removes duplicate ones given the current `state`.
#[must_use]
pub fn restore_script(family: Family, state: &ChainState, rule_lines: &[String]) -> String {
    let mut script = String::from("*filter\n");
    for chain in CHAINS {
        script.push_str(&format!(":{chain} - [0:0]\n"));
    }
    for line in set_lines(family) {
        script.push_str(&line);
        script.push('\n');
    }
    for line in rule_lines {
        script.push_str(line);
        script.push('\n');
    }
    // Insert missing jumps in reverse so the final order at the top of each chain follows `JUMPS`.
    for (builtin, ours) in JUMPS.iter().rev() {
        let count = state
            .jumps
            .get(&((*builtin).to_owned(), (*ours).to_owned()))
            .copied()
            .unwrap_or(0);
        if count == 0 {
            script.push_str(&format!("-I {builtin} 1 -j {ours}\n"));
        }
        for _ in 1..count {
            script.push_str(&format!("-D {builtin} -j {ours}\n"));
        }
    }
    script.push_str("COMMIT\n");
    script
}

/// The script that removes every reference to our chains and then the chains themselves; `None` when
/// nothing of ours is there.
#[must_use]
pub fn flush_script(state: &ChainState) -> Option<String> {
    if state.chains.is_empty() && state.references.is_empty() {
        return None;
    }
    let mut script = String::from("*filter\n");
    for line in &state.references {
        if let Some(spec) = line.strip_prefix("-A ") {
            script.push_str(&format!("-D {spec}\n"));
        }
    }
    for chain in &state.chains {
        script.push_str(&format!("-F {chain}\n"));
    }
    for chain in &state.chains {
        script.push_str(&format!("-X {chain}\n"));
    }
    script.push_str("COMMIT\n");
    Some(script)
}

/// What `check_chains` found in one family's chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainCheck {
    /// Every difference from what netwarden wrote, one sentence each (without foreign lines).
    pub problems: Vec<String>,
    /// The problems that stop the block-list sets from dropping traffic (our main chain, its set rules or
    /// a jump to it missing): while there is one, no entry of this family is really enforced.
    pub set_broken: Vec<String>,
    /// The problems that stop some `enforce: true` rule from dropping traffic.
    pub rules_broken: Vec<String>,
    /// Lines in our chains that netwarden did not write (added by hand or by another tool), as saved.
    pub foreign: Vec<String>,
}

/// True for a saved line netwarden wrote: its rules carry a `netwarden:` comment, the set rules match
/// our sets.
fn is_ours(line: &str) -> bool {
    line.contains("--comment netwarden:")
        || line.contains("--comment \"netwarden:")
        || Family::ALL
            .iter()
            .any(|f| line.contains(&format!("--match-set {} ", f.set_name())))
}

/// Compares our chains as saved (`state`) with what they should hold: the set rules and `rule_lines`,
/// and exactly one jump from each built-in chain of `JUMPS`.
#[must_use]
pub fn check_chains(family: Family, state: &ChainState, rule_lines: &[String]) -> ChainCheck {
    let mut check = ChainCheck::default();
    let tool = family.iptables();
    for chain in CHAINS {
        let wanted_rules = rule_lines
            .iter()
            .filter(|line| line.starts_with(&format!("-A {chain} ")))
            .count();
        if !state.chains.contains(chain) {
            let problem = format!("{tool}: chain {chain} is missing");
            if chain == CHAIN {
                check.set_broken.push(problem.clone());
            }
            if chain == CHAIN || wanted_rules > 0 {
                check.rules_broken.push(problem.clone());
            }
            check.problems.push(problem);
            continue;
        }
        let saved = state.rules.get(chain).map_or(&[][..], Vec::as_slice);
        let (ours, foreign): (Vec<&String>, Vec<&String>) = saved.iter().partition(|line| is_ours(line));
        check.foreign.extend(foreign.into_iter().cloned());
        let want = wanted_rules + if chain == CHAIN { 2 } else { 0 };
        if ours.len() != want {
            let problem = format!(
                "{tool}: chain {chain} holds {} rules of netwarden, expected {want}",
                ours.len()
            );
            check.rules_broken.push(problem.clone());
            check.problems.push(problem);
        }
    }
    for line in set_lines(family) {
        if state.chains.contains(CHAIN) && !state.rules.get(CHAIN).is_some_and(|rules| rules.contains(&line))
        {
            let problem = format!("{tool}: rule `{line}` is missing");
            check.set_broken.push(problem.clone());
            check.problems.push(problem);
        }
    }
    for (builtin, ours) in JUMPS {
        let count = state
            .jumps
            .get(&(builtin.to_owned(), ours.to_owned()))
            .copied()
            .unwrap_or(0);
        if count == 1 {
            continue;
        }
        let problem = if count == 0 {
            format!("{tool}: the jump from {builtin} to {ours} is missing")
        } else {
            format!("{tool}: {count} jumps from {builtin} to {ours}, expected 1")
        };
        if count == 0 {
            if ours == CHAIN {
                check.set_broken.push(problem.clone());
            }
            check.rules_broken.push(problem.clone());
        }
        check.problems.push(problem);
    }
    check
}

/// A script appending one `-s NET -j DROP` rule per network of `family` to chain `chain` (the plain-rules
/// path, for comparison benchmarks; the block list itself uses ipset).
#[must_use]
pub fn address_rules_script(chain: &str, family: Family, nets: &[IpNet]) -> String {
    let mut script = format!("*filter\n:{chain} - [0:0]\n");
    for net in nets.iter().filter(|n| Family::of(n) == family) {
        script.push_str(&format!("-A {chain} -s {net} -j DROP\n"));
    }
    script.push_str("COMMIT\n");
    script
}

/// The kernel rules for one `rules.ron` rule: enabled Block rules with `enforce: true` only (others give
/// none). Ports with protocol "any" become a TCP and a UDP rule, because iptables matches ports per
/// protocol, and that is what the monitor's matcher means by a port.
///
/// # Errors
/// `BadRule` for a rule the kernel cannot express exactly (an interface name iptables cannot take, ports
/// on a protocol without ports): putting in a broader rule than the user wrote would block more than they
/// asked.
pub fn kernel_rules_for(rule: &crate::rules::Rule) -> Result<Vec<KernelRule>, EnforceError> {
    use crate::rules::{Action, Protocol};
    if !rule.enforce || !rule.enabled || rule.action != Action::Block {
        return Ok(Vec::new());
    }
    if rule.program.is_some() {
        return Err(EnforceError::BadRule {
            name: rule.name.to_string(),
            reason: PROGRAM_MONITOR_ONLY.to_owned(),
        });
    }
    let cgroup_path = match rule.unit.as_deref() {
        None => None,
        Some(unit) if unit.ends_with(".service") => Some(format!("system.slice/{unit}")),
        Some(_) => {
            return Err(EnforceError::BadRule {
                name: rule.name.to_string(),
                reason: UNIT_SERVICE_ONLY.to_owned(),
            });
        }
    };
    let direction = match rule.direction {
        crate::rules::RuleDirection::In => RuleDirection::In,
        crate::rules::RuleDirection::Out => RuleDirection::Out,
        crate::rules::RuleDirection::Any => RuleDirection::Any,
    };
    let ports = |list: &[crate::rules::PortRange]| list.iter().map(|p| (p.lo, p.hi)).collect::<Vec<_>>();
    let (src_ports, dst_ports) = (ports(&rule.src_ports), ports(&rule.dst_ports));
    let protocols: Vec<Option<u8>> = match rule.protocol {
        Protocol::Any if src_ports.is_empty() && dst_ports.is_empty() => vec![None],
        Protocol::Any => vec![Some(6), Some(17)],
        Protocol::Tcp => vec![Some(6)],
        Protocol::Udp => vec![Some(17)],
        Protocol::Icmp => vec![Some(1)],
        Protocol::Icmpv6 => vec![Some(58)],
        Protocol::Number(n) => vec![Some(n)],
    };
    let rules = protocols
        .into_iter()
        .map(|protocol| KernelRule {
            name: rule.name.to_string(),
            direction,
            protocol,
            src: rule.src.clone(),
            dst: rule.dst.clone(),
            dst_ports: dst_ports.clone(),
            src_ports: src_ports.clone(),
            interface: rule.interface.clone(),
            uid_owner: rule.user.as_ref().map(|u| u.uid),
            cgroup_path: cgroup_path.clone(),
        })
        .collect::<Vec<_>>();
    rules.iter().try_for_each(validate_rule)?;
    Ok(rules)
}

/// The kernel rules of a whole rule set, in order, with the rules that cannot be enforced reported apart.
#[must_use]
pub fn kernel_rules_of(set: &crate::rules::RuleSet) -> (Vec<KernelRule>, Vec<EnforceError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for rule in set.rules() {
        match kernel_rules_for(rule) {
            Ok(more) => rules.extend(more),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn rule() -> KernelRule {
        KernelRule {
            name: "no ssh; reboot".to_owned(),
            direction: RuleDirection::In,
            protocol: Some(6),
            src: vec![net("10.0.0.0/8"), net("fd00::/8")],
            dst: vec![],
            dst_ports: vec![(22, 22), (8000, 8080)],
            src_ports: vec![],
            interface: None,
            uid_owner: None,
            cgroup_path: None,
        }
    }

    #[test]
    fn backend_detection() {
        assert_eq!(parse_backend("iptables v1.8.9 (nf_tables)\n"), Backend::Nft);
        assert_eq!(parse_backend("iptables v1.8.7 (legacy)\n"), Backend::Legacy);
        assert_eq!(parse_backend(""), Backend::Unknown);
    }

    #[test]
    fn rule_lines_split_by_family() {
        assert_eq!(
            rule_lines(&rule(), Family::V4).unwrap(),
            vec![
                "-A NETWARDEN-IN -p tcp -s 10.0.0.0/8 -m multiport --dports 22,8000:8080 -m comment --comment netwarden:no_ssh__reboot -j DROP"
            ]
        );
        assert_eq!(
            rule_lines(&rule(), Family::V6).unwrap(),
            vec![
                "-A NETWARDEN-IN -p tcp -s fd00::/8 -m multiport --dports 22,8000:8080 -m comment --comment netwarden:no_ssh__reboot -j DROP"
            ]
        );
        let v6_only = KernelRule {
            src: vec![net("fd00::/8")],
            ..rule()
        };
        assert!(rule_lines(&v6_only, Family::V4).unwrap().is_empty());
    }

    #[test]
    fn ports_need_port_protocol_and_chunk_at_15() {
        let bad = KernelRule {
            protocol: Some(1),
            ..rule()
        };
        assert!(matches!(
            rule_lines(&bad, Family::V4),
            Err(EnforceError::BadRule { .. })
        ));
        let many: Vec<(u16, u16)> = (1..=20).map(|p| (p, p)).collect();
        let wide = KernelRule {
            src: vec![],
            dst_ports: many,
            direction: RuleDirection::Any,
            protocol: Some(17),
            ..rule()
        };
        let lines = rule_lines(&wide, Family::V4).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with(
                "-A NETWARDEN -p udp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 "
            )
        );
        assert!(lines[1].contains("--dports 16,17,18,19,20 "));
    }

    #[test]
    fn interface_limits_become_in_and_out_matches() {
        let on = |direction, interface: &str| KernelRule {
            direction,
            src: vec![net("10.0.0.0/8")],
            interface: Some(interface.to_owned()),
            ..rule()
        };
        let tail = "-p tcp -s 10.0.0.0/8 -m multiport --dports 22,8000:8080 -m comment --comment netwarden:no_ssh__reboot -j DROP";
        assert_eq!(
            rule_lines(&on(RuleDirection::In, "eth0"), Family::V4).unwrap(),
            vec![format!("-A NETWARDEN-IN -i eth0 {tail}")]
        );
        assert_eq!(
            rule_lines(&on(RuleDirection::In, "veth+"), Family::V4).unwrap(),
            vec![format!("-A NETWARDEN-IN -i veth+ {tail}")]
        );
        assert_eq!(
            rule_lines(&on(RuleDirection::Out, "wg-home.1"), Family::V4).unwrap(),
            vec![format!("-A NETWARDEN-OUT -o wg-home.1 {tail}")]
        );
        assert_eq!(
            rule_lines(&on(RuleDirection::Any, "veth@x"), Family::V4).unwrap(),
            vec![
                format!("-A NETWARDEN -i veth@x {tail}"),
                format!("-A NETWARDEN -o veth@x {tail}")
            ]
        );
        for bad in [
            "",
            "any",
            "averyveryverylongname",
            "eth0 -j ACCEPT",
            "eth0\n-A INPUT -j ACCEPT",
            "eth0;reboot",
            "eth/0",
            "eth\"0",
            "et+h0",
        ] {
            let err = rule_lines(&on(RuleDirection::In, bad), Family::V4).unwrap_err();
            assert!(
                matches!(&err, EnforceError::BadRule { reason, .. } if reason.contains("interface")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn kernel_rules_of_a_rule_file() {
        let text = r#"(default_policy: Allow, rules: [
            (name: "ssh on eth0", action: Block, protocol: Tcp, dst_ports: ["22"], interface: "eth0", enforce: true),
            (name: "telnet any", action: Block, direction: Out, dst_ports: ["23"], dst: ["192.0.2.0/24"], enforce: true),
            (name: "icmp", action: Block, protocol: Icmp, enforce: true),
            (name: "monitor only", action: Block, dst_ports: ["80"]),
            (name: "off", action: Block, dst_ports: ["81"], enabled: false, enforce: true),
            (name: "bad iface", action: Block, interface: "any", enforce: true),
        ])"#;
        let file = crate::rules::RuleFile::parse(text).unwrap();
        let set = crate::rules::RuleSet::compile(file, None).unwrap();
        let (rules, errors) = kernel_rules_of(&set);
        let summary: Vec<(&str, Option<u8>, Option<&str>, RuleDirection)> = rules
            .iter()
            .map(|r| (r.name.as_str(), r.protocol, r.interface.as_deref(), r.direction))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ssh on eth0", Some(6), Some("eth0"), RuleDirection::Any),
                ("telnet any", Some(6), None, RuleDirection::Out),
                ("telnet any", Some(17), None, RuleDirection::Out),
                ("icmp", Some(1), None, RuleDirection::Any),
            ]
        );
        assert_eq!(rules[1].dst, vec![net("192.0.2.0/24")]);
        assert_eq!(rules[1].dst_ports, vec![(23, 23)]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("bad iface"), "{}", errors[0]);
    }

    #[test]
    fn user_rules_become_owner_matches_outbound_only_and_program_rules_stay_in_the_monitor() {
        let text = r#"(default_policy: Allow, rules: [
            (name: "daemon out", action: Block, direction: Out, user: "daemon", enforce: true),
            (name: "daemon tcp 80", action: Block, direction: Out, user: 1, protocol: Tcp, dst_ports: ["80"], enforce: true),
            (name: "daemon in", action: Block, direction: In, user: 1, enforce: true),
            (name: "daemon any", action: Block, user: 1, enforce: true),
            (name: "curl", action: Block, direction: Out, program: "*/curl", enforce: true),
            (name: "curl seen", action: Block, program: "*/curl"),
        ])"#;
        let set = crate::rules::RuleSet::from_ron(text).unwrap();
        let (rules, errors) = kernel_rules_of(&set);
        let lines: Vec<String> = rules
            .iter()
            .flat_map(|r| rule_lines(r, Family::V4).unwrap())
            .collect();
        assert_eq!(
            lines,
            vec![
                "-A NETWARDEN-OUT -m owner --uid-owner 1 -m comment --comment netwarden:daemon_out -j DROP"
                    .to_owned(),
                "-A NETWARDEN-OUT -p tcp -m multiport --dports 80 -m owner --uid-owner 1 -m comment --comment netwarden:daemon_tcp_80 -j DROP"
                    .to_owned(),
            ]
        );
        let refused: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].starts_with("rule `daemon in`: a user rule can only be enforced on outbound"));
        assert!(refused[1].starts_with("rule `daemon any`: a user rule can only be enforced on outbound"));
        assert!(refused[2].starts_with("rule `curl`: monitor-only: iptables cannot match a program path"));
    }

    #[test]
    fn unit_rules_become_cgroup_matches_for_outbound_system_services_only() {
        let compile = |text: &str| {
            crate::rules::RuleSet::compile(crate::rules::RuleFile::parse(text).unwrap(), None).unwrap()
        };
        let set = compile(
            r#"(default_policy: Allow, rules: [
            (name: "web", action: Block, direction: Out, protocol: Tcp, dst_ports: ["25"], unit: "nginx.service", enforce: true),
            (name: "web in", action: Block, direction: In, unit: "nginx.service", enforce: true),
            (name: "session", action: Block, direction: Out, unit: "session-2.scope", enforce: true),
        ])"#,
        );
        let (rules, errors) = kernel_rules_of(&set);
        assert_eq!(rules.len(), 1);
        let lines = rule_lines(&rules[0], Family::V4).unwrap();
        assert!(
            lines[0].contains(" -m cgroup --path system.slice/nginx.service "),
            "{lines:?}"
        );
        let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            reasons[0].contains("only be enforced on outbound traffic"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("only a system service"), "{reasons:?}");
        let hostile = KernelRule {
            direction: RuleDirection::Out,
            cgroup_path: Some("system.slice/x.service -j ACCEPT".into()),
            ..rule()
        };
        assert!(rule_lines(&hostile, Family::V4).is_err());
    }

    #[test]
    fn ipv4_mapped_rule_addresses_become_ipv4_kernel_lines() {
        let text = r#"(default_policy: Allow, rules: [
            (name: "mapped", action: Block, protocol: Tcp, dst_ports: ["23"], dst: ["::ffff:192.0.2.0/120"], enforce: true),
        ])"#;
        let set = crate::rules::RuleSet::compile(crate::rules::RuleFile::parse(text).unwrap(), None).unwrap();
        let (rules, errors) = kernel_rules_of(&set);
        assert!(errors.is_empty(), "{errors:?}");
        let v4 = rule_lines(&rules[0], Family::V4).unwrap();
        assert_eq!(v4.len(), 1);
        assert!(v4[0].contains(" -d 192.0.2.0/24 "), "{v4:?}");
        assert!(
            rule_lines(&rules[0], Family::V6).unwrap().is_empty(),
            "nothing ::ffff: for ip6tables"
        );
    }

    const SAVED: &str = "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j NETWARDEN\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:NETWARDEN - [0:0]\n:OTHER - [0:0]\n-A INPUT -j NETWARDEN\n-A INPUT -j NETWARDEN\n-A INPUT -s 1.2.3.4/32 -j NETWARDEN\n-A INPUT -p tcp -j OTHER\n-A NETWARDEN -m set --match-set netwarden4 src -j DROP\nCOMMIT\n";

    #[test]
    fn parse_save_and_scripts() {
        let state = parse_save(SAVED);
        assert_eq!(state.chains, BTreeSet::from(["NETWARDEN".to_owned()]));
        assert_eq!(
            state.jumps.get(&("INPUT".to_owned(), "NETWARDEN".to_owned())),
            Some(&2)
        );
        assert_eq!(state.references.len(), 3);
        assert_eq!(state.rule_count(CHAIN), 1);
        let script = restore_script(Family::V4, &state, &[]);
        assert_eq!(
            script,
            "*filter\n:NETWARDEN - [0:0]\n:NETWARDEN-IN - [0:0]\n:NETWARDEN-OUT - [0:0]\n\
             -A NETWARDEN -m set --match-set netwarden4 src -j DROP\n-A NETWARDEN -m set --match-set netwarden4 dst -j DROP\n\
             -I FORWARD 1 -j NETWARDEN\n-I OUTPUT 1 -j NETWARDEN-OUT\n-I OUTPUT 1 -j NETWARDEN\n-I INPUT 1 -j NETWARDEN-IN\n\
             -D INPUT -j NETWARDEN\nCOMMIT\n"
        );
        assert_eq!(
            flush_script(&state).unwrap(),
            "*filter\n-D INPUT -j NETWARDEN\n-D INPUT -j NETWARDEN\n-D INPUT -s 1.2.3.4/32 -j NETWARDEN\n-F NETWARDEN\n-X NETWARDEN\nCOMMIT\n"
        );
        assert_eq!(flush_script(&ChainState::default()), None);
        let check = check_chains(Family::V4, &state, &[]);
        let problems = &check.problems;
        assert!(
            problems.contains(&"iptables: chain NETWARDEN-IN is missing".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"iptables: 2 jumps from INPUT to NETWARDEN, expected 1".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"iptables: chain NETWARDEN holds 1 rules of netwarden, expected 2".to_owned()),
            "{problems:?}"
        );
        assert!(
            check
                .set_broken
                .contains(&"iptables: the jump from OUTPUT to NETWARDEN is missing".to_owned()),
            "{check:?}"
        );
        assert!(check.foreign.is_empty());
    }

    #[test]
    fn lines_added_by_hand_to_our_chains_are_found() {
        let healthy = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            :NETWARDEN - [0:0]\n:NETWARDEN-IN - [0:0]\n:NETWARDEN-OUT - [0:0]\n\
            -A INPUT -j NETWARDEN-IN\n-A INPUT -j NETWARDEN\n-A FORWARD -j NETWARDEN\n\
            -A OUTPUT -j NETWARDEN-OUT\n-A OUTPUT -j NETWARDEN\n\
            -A NETWARDEN -m set --match-set netwarden4 src -j DROP\n\
            -A NETWARDEN -m set --match-set netwarden4 dst -j DROP\n\
            -A NETWARDEN-IN -p tcp -m multiport --dports 22 -m comment --comment netwarden:ssh -j DROP\n";
        let lines = vec![
            "-A NETWARDEN-IN -p tcp -m multiport --dports 22 -m comment --comment netwarden:ssh -j DROP"
                .to_owned(),
        ];
        let check = check_chains(Family::V4, &parse_save(&format!("{healthy}COMMIT\n")), &lines);
        assert_eq!(check, ChainCheck::default(), "healthy");
        let with_hand_rule = format!("{healthy}-A NETWARDEN-IN -s 192.0.2.9/32 -j ACCEPT\nCOMMIT\n");
        let check = check_chains(Family::V4, &parse_save(&with_hand_rule), &lines);
        assert_eq!(
            check.foreign,
            vec!["-A NETWARDEN-IN -s 192.0.2.9/32 -j ACCEPT".to_owned()]
        );
        assert!(check.problems.is_empty(), "ours are all there: {check:?}");
        let without_rule = format!("{}COMMIT\n", healthy.replace("-A NETWARDEN-IN -p tcp -m multiport --dports 22 -m comment --comment netwarden:ssh -j DROP\n", ""));
        let check = check_chains(Family::V4, &parse_save(&without_rule), &lines);
        assert!(
            check.set_broken.is_empty() && !check.rules_broken.is_empty(),
            "{check:?}"
        );
    }
}
