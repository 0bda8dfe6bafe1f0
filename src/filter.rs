//! The traffic filter language shared by the GUI table, the log viewer and tests.
//!
//! A filter is a list of terms separated by spaces; a packet must match every term. `!` before a term negates
//! it. Terms:
//!
//! | term | matches |
//! | --- | --- |
//! | `src:ADDR` / `dst:ADDR` / `host:ADDR` | source / destination / either address in an IP or CIDR (`10.0.0.0/8`, `::1`); for `host:` also a host-name substring (`host:example.org`) |
//! | `port:P` / `sport:P` / `dport:P` | either / source / destination port, a number or a range `8000-8999` |
//! | `proto:P` | `tcp`, `udp`, `icmp`, `icmpv6`, `arp`, or an IP protocol number |
//! | `verdict:V` (or `action:V`) | `allow`, `block`, `log` |
//! | `rule:TEXT` | deciding rule name contains TEXT (case-insensitive; `rule:default` for the default policy) |
//! | `dir:D` | `in`, `out`, `local`, `unknown` |
//! | `iface:NAME` | the packet's interface (`veth+` for every name starting `veth`, as in rules) |
//! | `flags:LETTERS` | TCP flags include all of the letters (`flags:S`, `flags:SA`) |
//! | `alert` / `alert:KIND` | any detection alert / one kind (`port-scan`, `syn-flood`, `rate-exceeded`, `repeated-denied`) |
//! | `malformed`, `dropped` | malformed or truncated frames / packets the kernel drops (enforced block list) |
//! | `app:TEXT` | the program: a case-insensitive substring of its executable path, systemd unit or Flatpak/Snap app, or of its label when unknown (`app:unknown`, `app:offline`) |
//! | `user:NAME` / `user:UID` | the user owning the socket: a case-insensitive substring of the name, or the exact uid |
//! | any other word | a case-insensitive substring of the addresses, host names, rule name or protocol |
//!
//! Example: `src:10.0.0.0/8 port:22 proto:tcp verdict:block !dir:out`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::attrib::Attribution;
use crate::detect::AlertKind;
use crate::event::Event;
use crate::packet::{Direction, IpProto, NetworkKind, PacketMeta, TcpFlags};
use crate::rules::Action;

/// A filter that could not be parsed: the offending term, its 1-based character column and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter column {column}: {term:?}: {reason}")]
pub struct FilterError {
    pub column: usize,
    pub term: String,
    pub reason: String,
}

/// Read access to what a filter looks at. Implemented for `Event`; a UI can implement it for its own compact
/// row type.
pub trait FilterSubject {
    fn meta(&self) -> &PacketMeta;
    fn action(&self) -> Action;
    /// Deciding rule name, `None` for the default policy.
    fn rule_name(&self) -> Option<&str>;
    fn iface(&self) -> &str;
    fn alert_kind(&self) -> Option<AlertKind>;
    fn src_name(&self) -> Option<&str>;
    fn dst_name(&self) -> Option<&str>;
    fn kernel_dropped(&self) -> bool;
    /// The program and user behind the packet: `None` when untracked or still being looked up (then no
    /// `app:` or `user:` term matches).
    fn attribution(&self) -> Option<&Attribution> {
        None
    }
}

impl FilterSubject for Event {
    fn meta(&self) -> &PacketMeta {
        &self.meta
    }
    fn action(&self) -> Action {
        self.verdict.action
    }
    fn rule_name(&self) -> Option<&str> {
        self.rule_name.as_deref()
    }
    fn iface(&self) -> &str {
        &self.iface
    }
    fn alert_kind(&self) -> Option<AlertKind> {
        self.alert.as_ref().map(|a| a.kind)
    }
    fn src_name(&self) -> Option<&str> {
        self.src_name.as_deref()
    }
    fn dst_name(&self) -> Option<&str> {
        self.dst_name.as_deref()
    }
    fn kernel_dropped(&self) -> bool {
        self.kernel_dropped
    }
    fn attribution(&self) -> Option<&Attribution> {
        Event::attribution(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Proto {
    Ip(IpProto),
    Arp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Net(Side, IpNet),
    HostName(String),
    Port(Side, u16, u16),
    Proto(Proto),
    Action(Action),
    Rule(String),
    Direction(Direction),
    Iface(String),
    Flags(u8),
    AnyAlert,
    Alert(AlertKind),
    Malformed,
    Dropped,
    Program(String),
    UserName(String),
    Uid(u32),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negated: bool,
    test: Test,
}

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

impl Filter {
    /// Parses filter text.
    ///
    /// # Errors
    /// An unknown key, a bad address, port, protocol, verdict or direction, naming the term and its column.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let mut terms = Vec::new();
        let mut column = 1;
        for raw in text.split(' ') {
            let start = column;
            column += raw.chars().count() + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let raw = raw.trim();
            let error = |reason: String| FilterError {
                column: start,
                term: raw.to_owned(),
                reason,
            };
            let (negated, body) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw),
            };
            if body.is_empty() {
                return Err(error("`!` needs a term after it".into()));
            }
            let test = parse_test(body).map_err(error)?;
            terms.push(Term { negated, test });
        }
        Ok(Self { terms })
    }

    /// True for the empty filter.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// True when a term looks at the program or user (`app:`, `user:`): a packet whose lookup is still
    /// running cannot be judged yet.
    #[must_use]
    pub fn uses_owner(&self) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t.test, Test::Program(_) | Test::UserName(_) | Test::Uid(_)))
    }

    /// True when `subject` satisfies every term.
    #[must_use]
    pub fn matches(&self, subject: &impl FilterSubject) -> bool {
        self.terms.iter().all(|t| test(&t.test, subject) != t.negated)
    }
}

fn parse_test(body: &str) -> Result<Test, String> {
    let Some((key, value)) = body.split_once(':') else {
        return Ok(match body.to_ascii_lowercase().as_str() {
            "alert" => Test::AnyAlert,
            "malformed" => Test::Malformed,
            "dropped" => Test::Dropped,
            other => Test::Text(other.to_owned()),
        });
    };
    // IPv6 addresses contain colons: a bare `::1` or `fe80::1` is a text/address term, not a key.
    if body.parse::<IpAddr>().is_ok() || body.parse::<IpNet>().is_ok() {
        return Ok(Test::Net(Side::Either, parse_net(body)?));
    }
    if value.is_empty() {
        return Err(format!("`{key}:` needs a value"));
    }
    match key.to_ascii_lowercase().as_str() {
        "src" => Ok(Test::Net(Side::Src, parse_net(value)?)),
        "dst" => Ok(Test::Net(Side::Dst, parse_net(value)?)),
        "host" => Ok(match parse_net(value) {
            Ok(net) => Test::Net(Side::Either, net),
            Err(_) => Test::HostName(value.to_ascii_lowercase()),
        }),
        "port" => parse_ports(value).map(|(lo, hi)| Test::Port(Side::Either, lo, hi)),
        "sport" => parse_ports(value).map(|(lo, hi)| Test::Port(Side::Src, lo, hi)),
        "dport" => parse_ports(value).map(|(lo, hi)| Test::Port(Side::Dst, lo, hi)),
        "proto" => parse_proto(value).map(Test::Proto),
        "verdict" | "action" => match value.to_ascii_lowercase().as_str() {
            "allow" | "allowed" => Ok(Test::Action(Action::Allow)),
            "block" | "blocked" | "deny" | "denied" => Ok(Test::Action(Action::Block)),
            "log" | "logged" => Ok(Test::Action(Action::Log)),
            other => Err(format!("unknown verdict {other:?} (allow, block, log)")),
        },
        "rule" => Ok(Test::Rule(value.to_ascii_lowercase())),
        "dir" => match value.to_ascii_lowercase().as_str() {
            "in" => Ok(Test::Direction(Direction::In)),
            "out" => Ok(Test::Direction(Direction::Out)),
            "local" => Ok(Test::Direction(Direction::Local)),
            "unknown" | "?" => Ok(Test::Direction(Direction::Unknown)),
            other => Err(format!("unknown direction {other:?} (in, out, local, unknown)")),
        },
        "iface" => Ok(Test::Iface(value.to_owned())),
        "flags" => parse_flags(value).map(Test::Flags),
        "app" | "program" => Ok(Test::Program(value.to_lowercase())),
        "user" => Ok(match value.parse::<u32>() {
            Ok(uid) => Test::Uid(uid),
            Err(_) => Test::UserName(value.to_lowercase()),
        }),
        "alert" => match value.to_ascii_lowercase().as_str() {
            "port-scan" | "scan" => Ok(Test::Alert(AlertKind::PortScan)),
            "syn-flood" | "flood" => Ok(Test::Alert(AlertKind::SynFlood)),
            "rate-exceeded" | "rate" => Ok(Test::Alert(AlertKind::RateExceeded)),
            "repeated-denied" | "denied" => Ok(Test::Alert(AlertKind::RepeatedDenied)),
            other => Err(format!(
                "unknown alert kind {other:?} (port-scan, syn-flood, rate-exceeded, repeated-denied)"
            )),
        },
        other => Err(format!(
            "unknown key {other:?}: use src, dst, host, port, sport, dport, proto, verdict, rule, dir, iface, \
             flags, alert, app or user"
        )),
    }
}

fn parse_net(value: &str) -> Result<IpNet, String> {
    if let Ok(net) = value.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    value
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{value:?} is not an IP address or CIDR network"))
}

fn parse_ports(value: &str) -> Result<(u16, u16), String> {
    let parse_one = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("{s:?} is not a port number (0-65535)"))
    };
    match value.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (parse_one(lo)?, parse_one(hi)?);
            if lo > hi {
                return Err(format!("port range {value:?} starts after it ends"));
            }
            Ok((lo, hi))
        }
        None => parse_one(value).map(|p| (p, p)),
    }
}

fn parse_proto(value: &str) -> Result<Proto, String> {
    match value.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Ip(IpProto::TCP)),
        "udp" => Ok(Proto::Ip(IpProto::UDP)),
        "icmp" => Ok(Proto::Ip(IpProto::ICMP)),
        "icmpv6" | "icmp6" => Ok(Proto::Ip(IpProto::ICMPV6)),
        "arp" => Ok(Proto::Arp),
        other => other
            .parse::<u8>()
            .map(|n| Proto::Ip(IpProto(n)))
            .map_err(|_| format!("unknown protocol {other:?} (tcp, udp, icmp, icmpv6, arp or a number)")),
    }
}

fn parse_flags(value: &str) -> Result<u8, String> {
    value.chars().try_fold(0u8, |acc, c| {
        let bit = match c.to_ascii_uppercase() {
            'F' => TcpFlags::FIN,
            'S' => TcpFlags::SYN,
            'R' => TcpFlags::RST,
            'P' => TcpFlags::PSH,
            'A' => TcpFlags::ACK,
            'U' => TcpFlags::URG,
            'E' => TcpFlags::ECE,
            'C' => TcpFlags::CWR,
            other => return Err(format!("unknown TCP flag {other:?} (F S R P A U E C)")),
        };
        Ok(acc | bit)
    })
}

fn side_matches<T>(side: &Side, src: Option<T>, dst: Option<T>, f: impl Fn(T) -> bool) -> bool {
    match side {
        Side::Src => src.is_some_and(&f),
        Side::Dst => dst.is_some_and(&f),
        Side::Either => src.is_some_and(&f) || dst.is_some_and(&f),
    }
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle_lower)
}

/// `app:TEXT`: the executable path, systemd unit or sandbox app, or the label of an unknown program
/// (`unknown (no permission)`, `(offline)`), as a case-insensitive substring (`text` is lower case).
fn program_matches(attribution: &Attribution, text: &str) -> bool {
    let hit = |s: &str| s.to_lowercase().contains(text);
    match attribution.process() {
        Some(process) => {
            hit(&process.exe)
                || process.unit.as_deref().is_some_and(hit)
                || process.app.as_ref().is_some_and(|app| hit(&app.to_string()))
        }
        None => hit(&attribution.program_label()),
    }
}

fn test(test: &Test, s: &impl FilterSubject) -> bool {
    let meta = s.meta();
    match test {
        Test::Net(side, net) => side_matches(side, meta.src_ip, meta.dst_ip, |ip| net.contains(&ip)),
        Test::HostName(name) => {
            s.src_name().is_some_and(|n| contains_ci(n, name))
                || s.dst_name().is_some_and(|n| contains_ci(n, name))
        }
        Test::Port(side, lo, hi) => {
            side_matches(side, meta.src_port, meta.dst_port, |p| (*lo..=*hi).contains(&p))
        }
        Test::Proto(Proto::Ip(p)) => meta.protocol == Some(*p),
        Test::Proto(Proto::Arp) => meta.network == NetworkKind::Arp,
        Test::Action(a) => s.action() == *a,
        Test::Rule(text) => contains_ci(s.rule_name().unwrap_or("default"), text),
        Test::Direction(d) => meta.direction == *d,
        Test::Iface(name) => crate::rules::predicate::interface_matches(Some(name), s.iface()),
        Test::Flags(bits) => meta.tcp_flags.is_some_and(|f| f.has(*bits)),
        Test::AnyAlert => s.alert_kind().is_some(),
        Test::Alert(kind) => s.alert_kind() == Some(*kind),
        Test::Malformed => meta.malformed.is_some(),
        Test::Dropped => s.kernel_dropped(),
        Test::Program(text) => s.attribution().is_some_and(|a| program_matches(a, text)),
        Test::UserName(text) => s
            .attribution()
            .and_then(Attribution::user)
            .and_then(|u| u.name.as_deref())
            .is_some_and(|name| name.to_lowercase().contains(text.as_str())),
        Test::Uid(uid) => s
            .attribution()
            .and_then(Attribution::user)
            .is_some_and(|u| u.uid == *uid),
        Test::Text(text) => {
            let ip_hit = |ip: Option<IpAddr>| ip.is_some_and(|ip| ip.to_string().contains(text.as_str()));
            ip_hit(meta.src_ip)
                || ip_hit(meta.dst_ip)
                || s.src_name().is_some_and(|n| contains_ci(n, text))
                || s.dst_name().is_some_and(|n| contains_ci(n, text))
                || contains_ci(s.rule_name().unwrap_or("default"), text)
                || meta.protocol_name() == *text
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detect::Alert;
    use crate::packet::LinkType;
    use crate::rules::Verdict;

    fn event(src: &str, sport: u16, dst: &str, dport: u16, action: Action) -> Event {
        let mut meta = PacketMeta::new(0, 60, 60, LinkType::Ethernet);
        meta.src_ip = Some(src.parse().unwrap());
        meta.dst_ip = Some(dst.parse().unwrap());
        meta.protocol = Some(IpProto::TCP);
        meta.src_port = Some(sport);
        meta.dst_port = Some(dport);
        meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
        meta.direction = Direction::In;
        Event {
            seq: 1,
            meta,
            verdict: Verdict { action, rule: None },
            rule_name: Some(Arc::from("No SSH")),
            iface: Arc::from("eth0"),
            alert: None,
            src_name: Some(Arc::from("scanner.example.org")),
            dst_name: None,
            kernel_dropped: false,
            origin: crate::event::Origin::Untracked,
            rules_version: 0,
        }
    }

    fn m(filter: &str, e: &Event) -> bool {
        Filter::parse(filter).unwrap().matches(e)
    }

    #[test]
    fn documented_example_matches_and_negation_excludes() {
        let e = event("10.1.2.3", 40000, "192.168.1.50", 22, Action::Block);
        assert!(m("src:10.0.0.0/8 port:22 proto:tcp verdict:block !dir:out", &e));
        assert!(!m("src:10.0.0.0/8 port:22 proto:tcp verdict:block !dir:in", &e));
        assert!(!m("dst:10.0.0.0/8", &e));
        assert!(m("", &e));
    }

    #[test]
    fn every_key_tests_its_field() {
        let mut e = event("10.1.2.3", 40000, "2001:db8::1", 8080, Action::Log);
        assert!(m(
            "dst:2001:db8::/32 dport:8000-8999 sport:40000 verdict:log rule:ssh iface:eth0 flags:S",
            &e
        ));
        assert!(!m("flags:SA", &e));
        assert!(!m("iface:eth1", &e));
        assert!(m("iface:eth+", &e) && !m("iface:wl+", &e));
        assert!(m("host:example.org scanner", &e));
        assert!(m("2001:db8::1", &e));
        assert!(!m("alert", &e));
        e.alert = Some(Alert {
            kind: AlertKind::PortScan,
            src_ip: "10.1.2.3".parse().unwrap(),
            ts_micros: 0,
            reason: "x".into(),
        });
        e.kernel_dropped = true;
        assert!(m("alert alert:port-scan dropped !malformed", &e));
        assert!(!m("alert:syn-flood", &e));
        e.rule_name = None;
        assert!(m("rule:default", &e));
    }

    /// An event of a flow attributed to `attribution`.
    fn owned(attribution: Attribution) -> Event {
        let mut e = event("10.1.2.3", 40000, "192.0.2.9", 443, Action::Allow);
        let key = crate::flows::FlowKey::of(&e.meta).unwrap();
        let flow = Arc::new(crate::flows::Flow::new(key, &e.meta, Arc::from("eth0")));
        flow.set_attribution(attribution);
        e.origin = crate::event::Origin::Flow(flow);
        e
    }

    #[test]
    fn app_and_user_test_the_program_and_the_socket_owner() {
        use crate::attrib::{App, ProcessInfo, UnknownReason, UserId};
        let curl = owned(Attribution::Process {
            process: Arc::new(ProcessInfo {
                pid: 42,
                exe: "/usr/bin/curl".into(),
                cmdline: vec!["curl".into()],
                start_ticks: 1,
                unit: Some("session-2.scope".into()),
                app: Some(App::Flatpak("org.Example.Browser".into())),
            }),
            user: UserId {
                uid: 1000,
                name: Some(Arc::from("Alice")),
            },
        });
        assert!(m("app:curl user:alice user:1000", &curl));
        assert!(m("app:/usr/bin/ app:SESSION-2 app:flatpak:org.example", &curl));
        assert!(!m("app:wget", &curl) && !m("user:bob", &curl) && !m("user:100", &curl));
        assert!(m("!app:wget", &curl));
        let hidden = owned(Attribution::Unknown {
            reason: UnknownReason::NoPermission,
            user: Some(UserId { uid: 0, name: None }),
        });
        assert!(m("app:unknown app:permission user:0", &hidden));
        assert!(!m("app:curl", &hidden) && !m("user:root", &hidden));
        // Untracked or still being looked up: no owner term matches, and the filter says it needs one.
        let untracked = event("10.1.2.3", 40000, "192.0.2.9", 443, Action::Allow);
        assert!(!m("app:unknown", &untracked) && m("!user:0", &untracked));
        assert!(Filter::parse("port:22 user:x").unwrap().uses_owner());
        assert!(!Filter::parse("port:22 alert").unwrap().uses_owner());
        assert!(
            Filter::parse("app:")
                .unwrap_err()
                .reason
                .contains("needs a value")
        );
    }

    #[test]
    fn bad_syntax_names_term_and_column() {
        let err = Filter::parse("proto:tcp  port:99999").unwrap_err();
        assert_eq!(err.column, 12);
        assert_eq!(err.term, "port:99999");
        assert!(err.reason.contains("not a port number"), "{err}");
        assert!(
            Filter::parse("src:10.0.0.300")
                .unwrap_err()
                .reason
                .contains("not an IP address")
        );
        assert!(
            Filter::parse("colour:red")
                .unwrap_err()
                .reason
                .contains("unknown key")
        );
        assert!(Filter::parse("!").unwrap_err().reason.contains("needs a term"));
        assert!(
            Filter::parse("port:90-80")
                .unwrap_err()
                .reason
                .contains("starts after")
        );
        assert!(Filter::parse("verdict:maybe").is_err());
    }
}
