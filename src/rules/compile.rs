//! Validation of the raw model into a [`RuleSet`]: parsed networks and port ranges, the matcher index,
//! per-rule hit counters, and the shared handle the capture thread evaluates through.
//!
//! Addresses: a bare IP is a /32 (IPv4) or /128 (IPv6) network. A CIDR with host bits set
//! (`10.0.0.5/8`) is accepted and matches the whole network (`10.0.0.0/8`), as `ip route` does; `lint`
//! reports it as broader than it looks.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use ipnet::IpNet;

use super::index::RuleIndex;
use super::locate::{self, FileSpans, Pos};
use super::predicate::Owner;
use super::{
    Action, Location, Protocol, RuleDirection, RuleError, RuleFile, RuleId, RuleRef, RuleSpec, Verdict,
};
use crate::audit::AuditConfig;
use crate::detect::DetectConfig;
use crate::packet::PacketMeta;

/// An inclusive range of ports; a single port is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port of the range.
    pub lo: u16,
    /// Last port of the range (inclusive).
    pub hi: u16,
}

impl PortRange {
    /// True when `port` is in the range.
    #[inline]
    #[must_use]
    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }

    /// Number of ports in the range.
    #[must_use]
    pub fn width(self) -> u32 {
        u32::from(self.hi) - u32::from(self.lo) + 1
    }

    /// Parses `"N"` or `"LO-HI"` (spaces around the numbers allowed). The error is the message shown to
    /// the user.
    pub fn parse(text: &str) -> Result<Self, String> {
        let one = |s: &str| -> Result<u16, String> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "invalid port {text:?} (expected N or LO-HI, ports 0-65535)"
                ));
            }
            s.parse::<u16>()
                .map_err(|_| format!("invalid port {text:?} (out of range 0-65535)"))
        };
        match text.split_once('-') {
            None => one(text).map(|p| Self { lo: p, hi: p }),
            Some((lo, hi)) => {
                let (lo, hi) = (one(lo)?, one(hi)?);
                if lo > hi {
                    return Err(format!("invalid port range {text:?} (start after end)"));
                }
                Ok(Self { lo, hi })
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Parses an IP (`"10.0.0.1"`, a /32 or /128) or a CIDR (`"10.0.0.0/8"`), in the form netwarden compares
/// and hands to the kernel (`blocklist::unmap_net`: an IPv4-mapped `::ffff:10.0.0.1` is the IPv4 address,
/// so the rule matches that host's IPv4 traffic and its kernel line is an IPv4 one). The error is the
/// user's message.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    let parsed = if t.contains('/') {
        t.parse::<IpNet>().ok()
    } else {
        t.parse::<IpAddr>().ok().map(IpNet::from)
    }
    .map(crate::blocklist::unmap_net);
    parsed.ok_or_else(|| {
        format!("invalid address {text:?} (expected an IP or CIDR such as 10.0.0.0/8 or 2001:db8::/32)")
    })
}

/// A validated rule, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique, non-empty name (shared cheaply with events).
    pub name: Arc<str>,
    /// Disabled rules never match.
    pub enabled: bool,
    /// What a matching packet gets.
    pub action: Action,
    /// Which packet directions the rule looks at.
    pub direction: RuleDirection,
    /// Transport protocol, normalised (`Number(6)` is `Tcp`).
    pub protocol: Protocol,
    /// Source networks; empty = any.
    pub src: Vec<IpNet>,
    /// Destination networks; empty = any.
    pub dst: Vec<IpNet>,
    /// Source port ranges; empty = any.
    pub src_ports: Vec<PortRange>,
    /// Destination port ranges; empty = any.
    pub dst_ports: Vec<PortRange>,
    /// Capture interface name; `None` = every interface.
    pub interface: Option<String>,
    /// Free text from the file.
    pub comment: String,
    /// The enforcement module also puts this (Block) rule into the kernel.
    pub enforce: bool,
    /// The program whose packets the rule looks at; `None` = every program.
    pub program: Option<ProgramMatch>,
    /// The user owning the packets' socket; `None` = every user.
    pub user: Option<UserMatch>,
    /// The systemd unit of the packets' program (`nginx.service`); `None` = every unit.
    pub unit: Option<Arc<str>>,
}

/// Why `text` is not a systemd unit name (`NAME.service`, `.scope`, `.slice`, `.socket`; letters, digits
/// and `:_.@\-`), if it is not. The kernel rule takes the name into a cgroup path, so nothing else may
/// reach it.
#[must_use]
pub fn unit_problem(text: &str) -> Option<String> {
    let suffixes = [".service", ".scope", ".slice", ".socket"];
    if !suffixes.iter().any(|s| text.len() > s.len() && text.ends_with(s)) {
        return Some(format!(
            "unit {text:?} is not a systemd unit name (NAME.service, .scope, .slice or .socket)"
        ));
    }
    if text.len() > 255
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@\\-".contains(c))
    {
        return Some(format!(
            "unit {text:?} may only hold letters, digits and `: _ . @ \\ -` (at most 255)"
        ));
    }
    None
}

/// A validated `program`: an exact executable path or a glob over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramMatch {
    /// As written in the file.
    pub text: String,
    /// The compiled glob, when the text has glob characters (`*`, `?`, `[`).
    glob: Option<glob::Pattern>,
}

/// Glob matching for `program`: `*` also crosses `/` (`"*/curl"` is every `curl`), case-sensitive.
const PROGRAM_GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl ProgramMatch {
    /// Validates a `program` value. The error is the user's message and the 0-based character offset of
    /// the problem in the text.
    pub fn parse(text: &str) -> Result<Self, (String, usize)> {
        if text.trim().is_empty() {
            return Err(("program is empty (leave it out to match every program)".into(), 0));
        }
        let glob = text.contains(['*', '?', '[']);
        if !text.starts_with('/') && !text.starts_with('*') {
            return Err((
                format!(
                    "program {text:?} is neither an absolute path nor a glob starting with `*` (such as \"/usr/bin/curl\" or \"*/curl\")"
                ),
                0,
            ));
        }
        let glob = if glob {
            Some(
                glob::Pattern::new(text)
                    .map_err(|e| (format!("malformed program glob {text:?}: {}", e.msg), e.pos))?,
            )
        } else {
            None
        };
        Ok(Self {
            text: text.to_owned(),
            glob,
        })
    }

    /// True for a glob, false for an exact path.
    #[must_use]
    pub fn is_glob(&self) -> bool {
        self.glob.is_some()
    }

    /// True when the executable path `exe` is this program.
    #[must_use]
    pub fn matches(&self, exe: &str) -> bool {
        match &self.glob {
            Some(pattern) => pattern.matches_with(exe, PROGRAM_GLOB),
            None => exe == self.text,
        }
    }
}

/// A validated `user`: the uid, and the text it was written as (a name or a number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserMatch {
    pub uid: u32,
    /// As written (`alice`, `1000`).
    pub text: String,
}

impl UserMatch {
    /// Resolves a `user` value: a uid as it is, a name through the system's user database.
    pub fn resolve(spec: &super::UserSpec) -> Result<Self, String> {
        let uid = match spec {
            super::UserSpec::Uid(uid) => *uid,
            super::UserSpec::Name(name) => match name.trim().parse::<u32>() {
                Ok(uid) => uid,
                Err(_) if name.trim().is_empty() => {
                    return Err("user is empty (leave it out to match every user)".into());
                }
                Err(_) => crate::attrib::users::uid_of(name.trim())?,
            },
        };
        Ok(Self {
            uid,
            text: spec.to_string(),
        })
    }
}

/// How often a rule matched, and when last (microseconds since the Unix epoch, from the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleHits {
    /// Packets this rule decided.
    pub count: u64,
    /// Capture time of the last one, if any.
    pub last_hit_micros: Option<i64>,
}

const NEVER: i64 = i64::MIN;

#[derive(Debug)]
struct HitCounter {
    count: AtomicU64,
    last: AtomicI64,
}

impl Default for HitCounter {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            last: AtomicI64::new(NEVER),
        }
    }
}

impl HitCounter {
    /// Counts a hit. Only the capture thread counts, so a plain load and store do (a locked read-modify-write
    /// per packet costs more); others only read, or seed a new set's counters before it is put in force.
    #[inline]
    fn record(&self, ts: i64) {
        self.count.store(
            self.count.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.last.store(ts, Ordering::Relaxed);
    }

    fn get(&self) -> RuleHits {
        let last = self.last.load(Ordering::Relaxed);
        RuleHits {
            count: self.count.load(Ordering::Relaxed),
            last_hit_micros: (last != NEVER).then_some(last),
        }
    }

    fn set(&self, h: RuleHits) {
        self.count.store(h.count, Ordering::Relaxed);
        self.last
            .store(h.last_hit_micros.unwrap_or(NEVER), Ordering::Relaxed);
    }
}

/// A validated, indexed rule set: what the engine evaluates packets against. Build it with
/// [`RuleSet::compile`], [`RuleSet::load`] or [`str::parse`].
#[derive(Debug)]
pub struct RuleSet {
    file: RuleFile,
    rules: Vec<Rule>,
    index: RuleIndex,
    hits: Box<[HitCounter]>,
    default_hits: HitCounter,
}

/// The rule set in force, shared between the capture thread (reads per packet, no lock) and whoever
/// reloads it (swaps it atomically).
pub type SharedRules = Arc<ArcSwap<RuleSet>>;

/// Wraps a rule set for sharing.
#[must_use]
pub fn shared(set: RuleSet) -> SharedRules {
    Arc::new(ArcSwap::from_pointee(set))
}

/// Publishes `new` in place of the current set, carrying hit counters over for rules with the same name.
/// Returns the previous set. Hits counted on the old set between the copy and the swap are lost (a few
/// packets at most).
pub fn swap_rules(shared: &ArcSwap<RuleSet>, new: RuleSet) -> Arc<RuleSet> {
    new.carry_hits_from(&shared.load());
    shared.swap(Arc::new(new))
}

/// Lazily computed positions of the rules in the source text.
struct Positions<'a> {
    text: Option<&'a str>,
    spans: Option<FileSpans>,
}

impl Positions<'_> {
    fn rule(&mut self, index: usize, pick: impl FnOnce(&locate::RuleSpan) -> Pos) -> Option<Pos> {
        let text = self.text?;
        let spans = self.spans.get_or_insert_with(|| locate::scan(text));
        spans.rules.get(index).map(pick)
    }
}

fn invalid(pos: Option<Pos>, index: usize, name: &str, message: String) -> RuleError {
    RuleError::Invalid {
        location: Location {
            path: None,
            line_col: pos,
        },
        rule: Some(RuleRef {
            index,
            name: name.to_owned(),
        }),
        message,
    }
}

fn compile_rule(spec: &RuleSpec, index: usize, pos: &mut Positions<'_>) -> Result<Rule, RuleError> {
    let name = spec.name.as_str();
    if name.trim().is_empty() {
        let at = pos.rule(index, |r| r.value_pos("name"));
        return Err(invalid(at, index, "", "name is empty".into()));
    }
    if spec.enforce && spec.action != Action::Block {
        let at = pos.rule(index, |r| r.field_pos("enforce"));
        let msg = format!(
            "enforce is only valid on Block rules (this rule is {})",
            spec.action.name()
        );
        return Err(invalid(at, index, name, msg));
    }
    if let Some(i) = &spec.interface
        && i.trim().is_empty()
    {
        let at = pos.rule(index, |r| r.value_pos("interface"));
        return Err(invalid(
            at,
            index,
            name,
            "interface is empty (leave it out to match every interface)".into(),
        ));
    }
    let protocol = spec.protocol.normalized();
    let mut nets = |field: &'static str, list: &[String]| -> Result<Vec<IpNet>, RuleError> {
        let mut out = Vec::with_capacity(list.len());
        for (j, s) in list.iter().enumerate() {
            match parse_net(s) {
                Ok(n) => out.push(n),
                Err(m) => return Err(invalid(pos.rule(index, |r| r.item_pos(field, j)), index, name, m)),
            }
        }
        Ok(out)
    };
    let src = nets("src", &spec.src)?;
    let dst = nets("dst", &spec.dst)?;
    let mut ports = |field: &'static str, list: &[String]| -> Result<Vec<PortRange>, RuleError> {
        let mut out = Vec::with_capacity(list.len());
        for (j, s) in list.iter().enumerate() {
            match PortRange::parse(s) {
                Ok(r) => out.push(r),
                Err(m) => return Err(invalid(pos.rule(index, |r| r.item_pos(field, j)), index, name, m)),
            }
        }
        if !out.is_empty() && !protocol.can_have_ports() {
            let msg = format!(
                "{field} can never match protocol {} (only TCP and UDP packets have ports)",
                protocol.name()
            );
            return Err(invalid(pos.rule(index, |r| r.field_pos(field)), index, name, msg));
        }
        Ok(out)
    };
    let src_ports = ports("src_ports", &spec.src_ports)?;
    let dst_ports = ports("dst_ports", &spec.dst_ports)?;
    let program = match &spec.program {
        None => None,
        Some(text) => match ProgramMatch::parse(text) {
            Ok(program) => Some(program),
            Err((message, offset)) => {
                // Point into the string: one past the opening quote, then the offset of the problem.
                let at = pos
                    .rule(index, |r| r.item_pos("program", 0))
                    .map(|(line, col)| (line, col + 1 + offset));
                return Err(invalid(at, index, name, message));
            }
        },
    };
    let user = match &spec.user {
        None => None,
        Some(user) => match UserMatch::resolve(user) {
            Ok(user) => Some(user),
            Err(message) => {
                let at = pos.rule(index, |r| r.item_pos("user", 0));
                return Err(invalid(at, index, name, message));
            }
        },
    };
    let unit = match &spec.unit {
        None => None,
        Some(text) => match unit_problem(text) {
            None => Some(Arc::from(text.as_str())),
            Some(message) => {
                let at = pos.rule(index, |r| r.item_pos("unit", 0));
                return Err(invalid(at, index, name, message));
            }
        },
    };
    Ok(Rule {
        name: Arc::from(name),
        enabled: spec.enabled,
        action: spec.action,
        direction: spec.direction,
        protocol,
        src,
        dst,
        src_ports,
        dst_ports,
        interface: spec.interface.clone(),
        comment: spec.comment.clone(),
        enforce: spec.enforce,
        program,
        user,
        unit,
    })
}

impl RuleSet {
    /// Validates a parsed file. `source_text` is the text it was parsed from, used only to give errors a
    /// line and column; without it errors name the rule but no position. Stops at the first error (in file
    /// order).
    pub fn compile(file: RuleFile, source_text: Option<&str>) -> Result<Self, RuleError> {
        let mut pos = Positions {
            text: source_text,
            spans: None,
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        let mut seen = std::collections::HashMap::with_capacity(file.rules.len());
        for (i, spec) in file.rules.iter().enumerate() {
            let rule = compile_rule(spec, i, &mut pos)?;
            if let Some(first) = seen.insert(rule.name.clone(), i) {
                let at = pos.rule(i, |r| r.value_pos("name"));
                let msg = format!("duplicate name (rule {} has the same name)", first + 1);
                return Err(invalid(at, i, &spec.name, msg));
            }
            rules.push(rule);
        }
        let index = RuleIndex::build(&rules);
        let hits = rules.iter().map(|_| HitCounter::default()).collect();
        Ok(Self {
            file,
            rules,
            index,
            hits,
            default_hits: HitCounter::default(),
        })
    }

    /// Parses and validates RON text (no file: errors carry line:column only).
    pub fn from_ron(text: &str) -> Result<Self, RuleError> {
        let file = RuleFile::parse(text)?;
        Self::compile(file, Some(text))
    }

    /// Reads, parses and validates a rule file; errors read `path:line:col: ..`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RuleError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_ron(&text).map_err(|e| e.with_path(path))
    }

    /// The validated rules, in file order (`RuleId(i)` is `rules()[i]`).
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id, if it exists.
    #[must_use]
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id.index())
    }

    /// The name of a rule, for events and logs.
    #[must_use]
    pub fn rule_name(&self, id: RuleId) -> Option<&Arc<str>> {
        self.rule(id).map(|r| &r.name)
    }

    /// The action when no rule matches.
    #[must_use]
    pub fn default_policy(&self) -> Action {
        self.file.default_policy
    }

    /// The raw file this set was compiled from (for the editor).
    #[must_use]
    pub fn file(&self) -> &RuleFile {
        &self.file
    }

    /// The `detection` section.
    #[must_use]
    pub fn detection(&self) -> &DetectConfig {
        &self.file.detection
    }

    /// The `log` section.
    #[must_use]
    pub fn log(&self) -> &AuditConfig {
        &self.file.log
    }

    /// Decides one packet whose program and user are not known (offline, or attribution off): the first
    /// enabled matching rule, else the default policy. Rules with `program` or `user` do not match. Counts
    /// the hit (relaxed atomics, no lock, no allocation).
    #[inline]
    pub fn evaluate(&self, meta: &PacketMeta, iface: &str) -> Verdict {
        self.evaluate_with_owner(meta, iface, Owner::UNKNOWN)
    }

    /// Decides one packet of a known (or partly known) owner, as [`RuleSet::evaluate`].
    #[inline]
    pub fn evaluate_with_owner(&self, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> Verdict {
        match self.matching_rule_with_owner(meta, iface, owner) {
            Some(id) => {
                if let Some(c) = self.hits.get(id.index()) {
                    c.record(meta.ts_micros);
                }
                let action = self
                    .rules
                    .get(id.index())
                    .map_or(self.file.default_policy, |r| r.action);
                Verdict {
                    action,
                    rule: Some(id),
                }
            }
            None => {
                self.default_hits.record(meta.ts_micros);
                Verdict {
                    action: self.file.default_policy,
                    rule: None,
                }
            }
        }
    }

    /// The first enabled rule matching the packet, through the index. Pure: counts nothing.
    #[inline]
    #[must_use]
    pub fn matching_rule(&self, meta: &PacketMeta, iface: &str) -> Option<RuleId> {
        self.matching_rule_with_owner(meta, iface, Owner::UNKNOWN)
    }

    /// The first enabled rule matching the packet of `owner`, through the index. Pure: counts nothing.
    #[inline]
    #[must_use]
    pub fn matching_rule_with_owner(
        &self,
        meta: &PacketMeta,
        iface: &str,
        owner: Owner<'_>,
    ) -> Option<RuleId> {
        self.index.first_match(&self.rules, meta, iface, owner)
    }

    /// The reference matcher: a linear scan of every rule. Same answer as
    /// [`RuleSet::matching_rule_with_owner`] (checked by property tests), slower with many rules.
    #[doc(hidden)]
    #[must_use]
    pub fn matching_rule_linear(&self, meta: &PacketMeta, iface: &str, owner: Owner<'_>) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| r.matches(meta, iface, owner))
            .and_then(|i| u32::try_from(i).ok())
            .map(RuleId)
    }

    /// Hit counter of a rule (zero for an unknown id).
    #[must_use]
    pub fn hits(&self, id: RuleId) -> RuleHits {
        self.hits.get(id.index()).map(HitCounter::get).unwrap_or_default()
    }

    /// Packets decided by the default policy.
    #[must_use]
    pub fn default_hits(&self) -> RuleHits {
        self.default_hits.get()
    }

    /// Copies hit counters from `old` for every rule with the same name (and the default policy's), so a
    /// reload does not reset the statistics of rules that did not change.
    pub fn carry_hits_from(&self, old: &RuleSet) {
        for (rule, counter) in self.rules.iter().zip(self.hits.iter()) {
            if let Some(i) = old.rules.iter().position(|r| r.name == rule.name)
                && let Some(c) = old.hits.get(i)
            {
                counter.set(c.get());
            }
        }
        self.default_hits.set(old.default_hits.get());
    }
}

impl FromStr for RuleSet {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Self, RuleError> {
        Self::from_ron(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Direction, IpProto, LinkType};

    fn err(text: &str) -> String {
        RuleSet::from_ron(text).unwrap_err().to_string()
    }

    #[test]
    fn port_range_parse() {
        assert_eq!(PortRange::parse("22"), Ok(PortRange { lo: 22, hi: 22 }));
        assert_eq!(PortRange::parse("0"), Ok(PortRange { lo: 0, hi: 0 }));
        assert_eq!(PortRange::parse(" 80 - 90 "), Ok(PortRange { lo: 80, hi: 90 }));
        assert_eq!(PortRange::parse("0-65535"), Ok(PortRange { lo: 0, hi: 65535 }));
        assert_eq!(
            PortRange::parse("90-80"),
            Err("invalid port range \"90-80\" (start after end)".into())
        );
        assert_eq!(
            PortRange::parse("70000"),
            Err("invalid port \"70000\" (out of range 0-65535)".into())
        );
        assert_eq!(
            PortRange::parse("ssh"),
            Err("invalid port \"ssh\" (expected N or LO-HI, ports 0-65535)".into())
        );
        assert_eq!(
            PortRange::parse("-5"),
            Err("invalid port \"-5\" (expected N or LO-HI, ports 0-65535)".into())
        );
        assert_eq!(
            PortRange::parse("1-2-3"),
            Err("invalid port \"1-2-3\" (expected N or LO-HI, ports 0-65535)".into())
        );
        assert_eq!(
            PortRange::parse("+5"),
            Err("invalid port \"+5\" (expected N or LO-HI, ports 0-65535)".into())
        );
        assert_eq!(PortRange { lo: 8000, hi: 8999 }.to_string(), "8000-8999");
        assert_eq!(PortRange { lo: 22, hi: 22 }.to_string(), "22");
    }

    #[test]
    fn units_are_systemd_unit_names_and_match_the_programs_unit() {
        let text = "(default_policy: Allow, rules: [\n  (name: \"u\", action: Block,\n   unit: \"nginx\")])";
        let err = RuleSet::compile(RuleFile::parse(text).unwrap(), Some(text))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("3:10: rule \"u\": unit \"nginx\" is not a systemd unit name"),
            "{err}"
        );
        assert!(unit_problem("web;reboot.service").is_some());
        assert!(unit_problem("getty@tty1.service").is_none());
        let set = RuleSet::compile(
            RuleFile::parse(
                r#"(default_policy: Allow, rules: [(name: "web", action: Block, unit: "nginx.service")])"#,
            )
            .unwrap(),
            None,
        )
        .unwrap();
        let m = PacketMeta::new(1, 60, 60, LinkType::Ethernet);
        let nginx = Owner {
            program: Some("/usr/sbin/nginx"),
            uid: Some(33),
            unit: Some("nginx.service"),
        };
        assert_eq!(set.evaluate_with_owner(&m, "eth0", nginx).action, Action::Block);
        let other = Owner {
            unit: Some("cron.service"),
            ..nginx
        };
        assert_eq!(set.evaluate_with_owner(&m, "eth0", other).action, Action::Allow);
        assert_eq!(
            set.evaluate(&m, "eth0").action,
            Action::Allow,
            "unknown owner: no match"
        );
        let explained = set.explain_with_owner(&m, "eth0", other).to_string();
        assert!(
            explained.contains("unit cron.service is not nginx.service"),
            "{explained}"
        );
    }

    #[test]
    fn net_parse() {
        assert_eq!(parse_net("10.0.0.1"), Ok("10.0.0.1/32".parse().unwrap()));
        assert_eq!(parse_net("::1"), Ok("::1/128".parse().unwrap()));
        assert_eq!(parse_net("10.0.0.5/8"), Ok("10.0.0.5/8".parse().unwrap()));
        assert_eq!(parse_net("::ffff:10.0.0.1"), Ok("10.0.0.1/32".parse().unwrap()));
        assert_eq!(
            parse_net("::ffff:10.0.0.0/104"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("").is_err());
        assert_eq!(
            parse_net("10.0.0.300"),
            Err(
                "invalid address \"10.0.0.300\" (expected an IP or CIDR such as 10.0.0.0/8 or 2001:db8::/32)"
                    .into()
            )
        );
    }

    #[test]
    fn bad_port_range_points_at_the_string() {
        let text = "(\n  default_policy: Allow,\n  rules: [\n    (name: \"no ssh\", action: Block, dst_ports: [\"22\", \"90-80\"]),\n  ],\n)";
        assert_eq!(
            err(text),
            "4:55: rule \"no ssh\": invalid port range \"90-80\" (start after end)"
        );
    }

    #[test]
    fn bad_address_points_at_the_string() {
        let text = "(default_policy: Allow, rules: [\n(name: \"a\", action: Allow),\n(name: \"b\", action: Allow,\n  src: [\"10.0.0.1\", \"10.0.0.300\"])])";
        assert_eq!(
            err(text),
            "4:21: rule \"b\": invalid address \"10.0.0.300\" (expected an IP or CIDR such as 10.0.0.0/8 or 2001:db8::/32)"
        );
    }

    #[test]
    fn empty_and_duplicate_names() {
        let text = "(default_policy: Allow, rules: [\n  (name: \"\", action: Allow)])";
        assert_eq!(err(text), "2:10: rule 1: name is empty");
        let text = "(default_policy: Allow, rules: [\n  (name: \"a\", action: Allow),\n  (name: \"a\", action: Block)])";
        assert_eq!(
            err(text),
            "3:10: rule \"a\": duplicate name (rule 1 has the same name)"
        );
    }

    #[test]
    fn enforce_only_on_block() {
        let text = "(default_policy: Allow, rules: [\n  (name: \"a\", action: Allow, enforce: true)])";
        assert_eq!(
            err(text),
            "2:30: rule \"a\": enforce is only valid on Block rules (this rule is allow)"
        );
        assert!(
            RuleSet::from_ron(
                "(default_policy: Allow, rules: [(name: \"a\", action: Block, enforce: true)])"
            )
            .is_ok()
        );
    }

    #[test]
    fn ports_with_icmp_and_empty_interface() {
        let text = "(default_policy: Allow, rules: [\n  (name: \"p\", action: Block, protocol: Icmp, dst_ports: [\"1\"])])";
        assert_eq!(
            err(text),
            "2:46: rule \"p\": dst_ports can never match protocol icmp (only TCP and UDP packets have ports)"
        );
        let text = "(default_policy: Allow, rules: [\n  (name: \"p\", action: Block, protocol: Number(47), src_ports: [\"1\"])])";
        assert_eq!(
            err(text),
            "2:52: rule \"p\": src_ports can never match protocol gre (only TCP and UDP packets have ports)"
        );
        let text = "(default_policy: Allow, rules: [\n  (name: \"i\", action: Block, interface: \" \")])";
        assert_eq!(
            err(text),
            "2:41: rule \"i\": interface is empty (leave it out to match every interface)"
        );
    }

    #[test]
    fn bad_program_globs_and_unknown_users_point_at_the_value() {
        let text =
            "(default_policy: Allow, rules: [\n  (name: \"g\", action: Block, program: \"/usr/bin/[ab\")])";
        assert_eq!(
            err(text),
            "2:49: rule \"g\": malformed program glob \"/usr/bin/[ab\": invalid range pattern"
        );
        let text = "(default_policy: Allow, rules: [\n  (name: \"r\", action: Block, program: \"curl\")])";
        assert!(
            err(text).starts_with("2:40: rule \"r\": program \"curl\" is neither an absolute path"),
            "{}",
            err(text)
        );
        let text = "(default_policy: Allow, rules: [\n  (name: \"u\", action: Block,\n   user: \"no-such-user-nw\")])";
        assert_eq!(
            err(text),
            "3:10: rule \"u\": unknown user \"no-such-user-nw\" (no such user on this system)"
        );
        let text = "(default_policy: Allow, rules: [(name: \"e\", action: Block, user: \"\")])";
        assert!(err(text).contains("user is empty"), "{}", err(text));
        let set = RuleSet::from_ron(
            "(default_policy: Allow, rules: [(name: \"a\", action: Block, user: \"root\", program: \"*/curl\"), (name: \"b\", action: Block, user: \"1000\")])",
        )
        .unwrap();
        assert_eq!(set.rules()[0].user.as_ref().map(|u| u.uid), Some(0));
        assert_eq!(set.rules()[1].user.as_ref().map(|u| u.uid), Some(1000));
        let program = set.rules()[0].program.as_ref().unwrap();
        assert!(program.is_glob());
        assert!(program.matches("/usr/local/bin/curl"));
        assert!(!program.matches("/usr/bin/curly"));
    }

    #[test]
    fn rules_by_program_and_user_match_only_a_known_owner() {
        let set = RuleSet::from_ron(
            "(default_policy: Allow, rules: [(name: \"curl as root\", action: Block, user: 0, program: \"/usr/bin/curl\")])",
        )
        .unwrap();
        let m = PacketMeta::new(1, 60, 60, LinkType::Ethernet);
        let root_curl = Owner {
            program: Some("/usr/bin/curl"),
            uid: Some(0),
            unit: None,
        };
        assert_eq!(
            set.evaluate_with_owner(&m, "eth0", root_curl).action,
            Action::Block
        );
        assert_eq!(set.evaluate(&m, "eth0").action, Action::Allow);
        let other_user = Owner {
            uid: Some(4_000_000),
            ..root_curl
        };
        assert_eq!(
            set.evaluate_with_owner(&m, "eth0", other_user).action,
            Action::Allow
        );
        let explained = set.explain_with_owner(&m, "eth0", other_user).to_string();
        assert!(explained.contains("user 4000000 is not 0"), "{explained}");
        let explained = set.explain(&m, "eth0").to_string();
        assert!(
            explained.contains("user not known (yet), rule wants 0"),
            "{explained}"
        );
    }

    #[test]
    fn without_source_text_errors_have_no_position() {
        let file =
            RuleFile::parse("(default_policy: Allow, rules: [(name: \"a\", action: Allow, src: [\"x\"])])")
                .unwrap();
        let e = RuleSet::compile(file, None).unwrap_err();
        assert_eq!(e.line_col(), None);
        assert!(
            e.to_string()
                .starts_with("rules: rule \"a\": invalid address \"x\""),
            "{e}"
        );
    }

    #[test]
    fn number_protocols_are_normalised() {
        let s = RuleSet::from_ron(
            "(default_policy: Allow, rules: [(name: \"a\", action: Block, protocol: Number(17), dst_ports: [\"53\"])])",
        )
        .unwrap();
        assert_eq!(s.rules()[0].protocol, Protocol::Udp);
    }

    #[test]
    fn evaluate_counts_hits_and_carries_them_over() {
        let text = "(default_policy: Block, rules: [(name: \"dns\", action: Allow, protocol: Udp, dst_ports: [\"53\"]), (name: \"x\", action: Allow, protocol: Icmp)])";
        let set = RuleSet::from_ron(text).unwrap();
        let mut m = PacketMeta::new(1_000, 60, 60, LinkType::Ethernet);
        m.protocol = Some(IpProto::UDP);
        m.src_port = Some(5000);
        m.dst_port = Some(53);
        m.direction = Direction::Out;
        assert_eq!(
            set.evaluate(&m, "eth0"),
            Verdict {
                action: Action::Allow,
                rule: Some(RuleId(0))
            }
        );
        m.ts_micros = 2_000;
        set.evaluate(&m, "eth0");
        m.dst_port = Some(54);
        assert_eq!(
            set.evaluate(&m, "eth0"),
            Verdict {
                action: Action::Block,
                rule: None
            }
        );
        assert_eq!(
            set.hits(RuleId(0)),
            RuleHits {
                count: 2,
                last_hit_micros: Some(2_000)
            }
        );
        assert_eq!(set.hits(RuleId(1)), RuleHits::default());
        assert_eq!(set.hits(RuleId(9)), RuleHits::default());
        assert_eq!(
            set.default_hits(),
            RuleHits {
                count: 1,
                last_hit_micros: Some(2_000)
            }
        );

        let shared = shared(set);
        let text2 = "(default_policy: Block, rules: [(name: \"new\", action: Allow), (name: \"dns\", action: Allow, protocol: Udp)])";
        let old = swap_rules(&shared, RuleSet::from_ron(text2).unwrap());
        assert_eq!(old.rules()[0].name.as_ref(), "dns");
        let now = shared.load();
        assert_eq!(now.hits(RuleId(0)), RuleHits::default());
        assert_eq!(
            now.hits(RuleId(1)),
            RuleHits {
                count: 2,
                last_hit_micros: Some(2_000)
            }
        );
        assert_eq!(now.default_hits().count, 1);
    }
}
