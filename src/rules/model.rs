//! The rule model as written in `rules.ron` (the raw, unvalidated form) and the small value types shared
//! by the matcher, the audit log and the UI.
//!
//! A raw `RuleFile` is turned into a validated `RuleSet` by `rules::compile`; the engine accepts only the
//! validated form. The raw form stays serializable so the editor can change and save it.

use serde::{Deserialize, Serialize};

use crate::audit::AuditConfig;
use crate::detect::DetectConfig;
use crate::packet::{Direction, IpProto};

use super::{Location, RuleError};

/// What a matching rule decides. A verdict is the monitor's judgement: libpcap sees packets, it cannot stop
/// them. `Block` means denied (logged, counted, shown red, fed to detection); the kernel drops traffic only
/// for block-list entries and rules marked `enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Action {
    /// Allowed: shown, counted, not logged.
    Allow,
    /// Denied: logged, counted, shown red, fed to detection (and dropped by the kernel for `enforce` rules).
    Block,
    /// Allowed, but recorded in the audit log as suspicious. Terminal like the others: first match wins.
    Log,
}

impl Action {
    /// Lower-case name for logs and messages (`allow`, `block`, `log`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
            Self::Log => "log",
        }
    }
}

/// Index of a rule in its `RuleSet` (0-based, in file order). Stable until the rules are reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId(pub u32);

impl RuleId {
    /// The index as `usize`, for slices.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The outcome of evaluating one packet: the action and the rule that decided it (`None` = default policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// What to do with the packet.
    pub action: Action,
    /// The deciding rule; `None` when the default policy decided.
    pub rule: Option<RuleId>,
}

/// Which packets a rule looks at, relative to the capturing host (`PacketMeta::direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RuleDirection {
    /// Incoming packets (and loopback packets, which are both).
    In,
    /// Outgoing packets (and loopback packets).
    Out,
    /// Every packet, including those whose direction is unknown.
    #[default]
    Any,
}

impl RuleDirection {
    /// Lower-case name for messages (`in`, `out`, `any`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Any => "any",
        }
    }

    /// True when a packet travelling `dir` is one this rule looks at. `Local` (loopback) counts as both
    /// `In` and `Out`; `Unknown` only matches `Any`.
    #[must_use]
    pub fn matches(self, dir: Direction) -> bool {
        match self {
            Self::Any => true,
            Self::In => matches!(dir, Direction::In | Direction::Local),
            Self::Out => matches!(dir, Direction::Out | Direction::Local),
        }
    }

    /// True when every packet this direction matches is also matched by `self` (for lint).
    #[must_use]
    pub fn covers(self, other: Self) -> bool {
        self == Self::Any || self == other
    }
}

/// The transport protocol a rule looks at. `Number(6)` / `Number(17)` / `Number(1)` / `Number(58)` are
/// normalised to the named variants when the rule is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Protocol {
    /// Every packet, including non-IP frames (ARP, ..).
    #[default]
    Any,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP for IPv4 (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
    /// Any other IP protocol / IPv6 next-header number, e.g. `Number(47)` for GRE.
    Number(u8),
}

impl Protocol {
    /// The IP protocol number, or `None` for `Any`.
    #[must_use]
    pub fn number(self) -> Option<u8> {
        match self {
            Self::Any => None,
            Self::Tcp => Some(IpProto::TCP.0),
            Self::Udp => Some(IpProto::UDP.0),
            Self::Icmp => Some(IpProto::ICMP.0),
            Self::Icmpv6 => Some(IpProto::ICMPV6.0),
            Self::Number(n) => Some(n),
        }
    }

    /// The canonical form: numbers of named protocols become the named variant.
    #[must_use]
    pub fn normalized(self) -> Self {
        match self {
            Self::Number(6) => Self::Tcp,
            Self::Number(17) => Self::Udp,
            Self::Number(1) => Self::Icmp,
            Self::Number(58) => Self::Icmpv6,
            other => other,
        }
    }

    /// True for protocols whose packets can carry ports in `PacketMeta` (TCP, UDP, or any protocol).
    #[must_use]
    pub fn can_have_ports(self) -> bool {
        matches!(self.normalized(), Self::Any | Self::Tcp | Self::Udp)
    }

    /// Lower-case name for messages (`any`, `tcp`, `udp`, `icmp`, `icmpv6`, or the number / known name).
    #[must_use]
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self.number() {
            None => "any".into(),
            Some(n) => IpProto(n).name(),
        }
    }

    /// True when a packet of transport protocol `proto` (`None` for non-IP frames) is one this rule
    /// looks at.
    #[must_use]
    pub fn matches(self, proto: Option<IpProto>) -> bool {
        match self.number() {
            None => true,
            Some(n) => proto == Some(IpProto(n)),
        }
    }
}

fn default_true() -> bool {
    true
}

// serde's `skip_serializing_if` passes a reference.
fn is_true(b: &bool) -> bool {
    *b
}

// serde's `skip_serializing_if` passes a reference.
fn is_false(b: &bool) -> bool {
    !*b
}

/// One rule as written in `rules.ron` (raw: addresses and ports are still strings). Every field except
/// `name` and `action` is optional; fields left at their default are not written back on save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique, non-empty name, shown in the table, the log and messages.
    pub name: String,
    /// Disabled rules stay in the file and the editor but never match.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// What a matching packet gets.
    pub action: Action,
    /// Incoming, outgoing or both.
    #[serde(default, skip_serializing_if = "is_default")]
    pub direction: RuleDirection,
    /// Transport protocol.
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: Protocol,
    /// Source addresses: IPs or CIDRs (`"10.0.0.0/8"`, `"::1"`); empty = any source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src: Vec<String>,
    /// Destination addresses, as `src`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst: Vec<String>,
    /// Source ports: `"N"` or `"LO-HI"`; empty = any (a rule with ports only matches packets with ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_ports: Vec<String>,
    /// Destination ports, as `src_ports`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_ports: Vec<String>,
    /// Capture interface name (`"eth0"`); absent = every interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Free text for the reader.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Opt-in: also have the kernel drop this traffic (Block rules only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub enforce: bool,
    /// The program whose packets the rule looks at: an absolute executable path (`"/usr/bin/curl"`) or a
    /// glob (`"*/curl"`, `"/opt/app/*"`; `*` also crosses `/`); absent = every program. Monitor only: the
    /// kernel cannot match a program path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The user owning the packets' socket: a name (`"alice"`) or a uid (`1000`); absent = every user. In
    /// the kernel an outbound rule becomes `-m owner --uid-owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserSpec>,
    /// The systemd unit whose packets the rule looks at (`"nginx.service"`, `"session-2.scope"`); absent =
    /// every unit. In the kernel an outbound rule on a system service (`NAME.service`) becomes
    /// `-m cgroup --path system.slice/NAME.service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A user as written in a rule: a name, resolved through the system's user database when the rules are
/// compiled, or a uid taken as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserSpec {
    /// A uid (`1000`).
    Uid(u32),
    /// A user name (`"alice"`), or a uid written as a string (`"1000"`).
    Name(String),
}

impl std::fmt::Display for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uid(uid) => write!(f, "{uid}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for RuleSpec {
    /// An enabled Block rule with no name and no constraints (the editor's "new rule").
    fn default() -> Self {
        Self {
            name: String::new(),
            enabled: true,
            action: Action::Block,
            direction: RuleDirection::Any,
            protocol: Protocol::Any,
            src: Vec::new(),
            dst: Vec::new(),
            src_ports: Vec::new(),
            dst_ports: Vec::new(),
            interface: None,
            comment: String::new(),
            enforce: false,
            program: None,
            user: None,
            unit: None,
        }
    }
}

/// The whole `rules.ron` in raw form: the default policy, ordered rules (first match wins) and the optional
/// `detection` and `log` sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The action for packets no rule matched.
    pub default_policy: Action,
    /// Ordered rules; the first enabled matching rule decides.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Detection thresholds (all defaulted when absent).
    #[serde(default)]
    pub detection: DetectConfig,
    /// Audit log settings (all defaulted when absent).
    #[serde(default)]
    pub log: AuditConfig,
}

impl Default for RuleFile {
    /// A monitor's neutral start: allow by default, no rules.
    fn default() -> Self {
        Self {
            default_policy: Action::Allow,
            rules: Vec::new(),
            detection: DetectConfig::default(),
            log: AuditConfig::default(),
        }
    }
}

/// The RON options used for reading and writing rule files: `implicit_some` lets users write
/// `interface: "eth0"` (and `Some("eth0")` still works).
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

impl RuleFile {
    /// Parses RON text into the raw model: syntax, types and unknown fields only (values are checked by
    /// `RuleSet::compile`). Errors carry ron's line and column.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        ron_options().from_str(text).map_err(|e| RuleError::Syntax {
            location: Location::at(e.span.start.line, e.span.start.col),
            message: e.code.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_rule_gets_defaults() {
        let f = RuleFile::parse("(default_policy: Block, rules: [(name: \"a\", action: Allow)])").unwrap();
        assert_eq!(f.default_policy, Action::Block);
        assert_eq!(
            f.rules,
            vec![RuleSpec {
                name: "a".into(),
                action: Action::Allow,
                ..RuleSpec::default()
            }]
        );
        assert!(f.rules[0].enabled);
        assert_eq!(f.detection, DetectConfig::default());
        assert_eq!(f.log, AuditConfig::default());
    }

    #[test]
    fn interface_accepts_plain_and_some_strings() {
        for t in ["\"eth0\"", "Some(\"eth0\")"] {
            let text =
                format!("(default_policy: Allow, rules: [(name: \"a\", action: Allow, interface: {t})])");
            assert_eq!(
                RuleFile::parse(&text).unwrap().rules[0].interface.as_deref(),
                Some("eth0")
            );
        }
    }

    #[test]
    fn program_and_user_parse_as_name_or_uid() {
        let f = RuleFile::parse(
            r#"(default_policy: Allow, rules: [
                (name: "a", action: Block, program: "/usr/bin/curl", user: "alice"),
                (name: "b", action: Block, user: 1000),
            ])"#,
        )
        .unwrap();
        assert_eq!(f.rules[0].program.as_deref(), Some("/usr/bin/curl"));
        assert_eq!(f.rules[0].user, Some(UserSpec::Name("alice".into())));
        assert_eq!(f.rules[1].user, Some(UserSpec::Uid(1000)));
        let text = ron_options().to_string(&f.rules[1]).unwrap();
        assert!(
            text.contains("user:Some(1000)") || text.contains("user:1000"),
            "{text}"
        );
    }

    #[test]
    fn protocol_number_parses_and_normalizes() {
        let f = RuleFile::parse(
            "(default_policy: Allow, rules: [(name: \"a\", action: Allow, protocol: Number(6))])",
        )
        .unwrap();
        assert_eq!(f.rules[0].protocol, Protocol::Number(6));
        assert_eq!(f.rules[0].protocol.normalized(), Protocol::Tcp);
        assert_eq!(Protocol::Number(47).normalized(), Protocol::Number(47));
        assert_eq!(Protocol::Number(47).name(), "gre");
    }

    #[test]
    fn unknown_field_is_a_syntax_error_with_position() {
        let e = RuleFile::parse(
            "(\n  default_policy: Allow,\n  rules: [(name: \"a\", action: Allow, colour: 1)],\n)",
        )
        .unwrap_err();
        let RuleError::Syntax { location, message } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(location.line_col.map(|p| p.0), Some(3));
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn direction_predicate() {
        use Direction as D;
        let cases = [
            (RuleDirection::Any, [true, true, true, true]),
            (RuleDirection::In, [true, false, true, false]),
            (RuleDirection::Out, [false, true, true, false]),
        ];
        for (rule, want) in cases {
            let got = [D::In, D::Out, D::Local, D::Unknown].map(|d| rule.matches(d));
            assert_eq!(got, want, "{rule:?}");
        }
    }

    #[test]
    fn protocol_predicate() {
        assert!(Protocol::Any.matches(None));
        assert!(Protocol::Any.matches(Some(IpProto::UDP)));
        assert!(Protocol::Tcp.matches(Some(IpProto::TCP)));
        assert!(!Protocol::Tcp.matches(Some(IpProto::UDP)));
        assert!(!Protocol::Tcp.matches(None));
        assert!(Protocol::Number(47).matches(Some(IpProto(47))));
        assert!(Protocol::Icmpv6.matches(Some(IpProto::ICMPV6)));
        assert!(!Protocol::Icmp.matches(Some(IpProto::ICMPV6)));
    }
}
