//! `Event`: one evaluated packet as the engine hands it to its front ends (UI table, CLI output, audit log,
//! exports).

use std::sync::Arc;

use serde::Serialize;

use crate::attrib::{Attribution, OFFLINE};
use crate::detect::Alert;
use crate::flows::Flow;
use crate::packet::PacketMeta;
use crate::rules::{Action, Verdict};

/// Where an event's program and user come from.
#[derive(Debug, Clone, Default)]
pub enum Origin {
    /// Not known: attribution is off for this run, or the packet belongs to no tracked flow (not IP, a
    /// fragment without ports, a full flow table).
    #[default]
    Untracked,
    /// Replayed from a file: the sockets are long gone (`(offline)`).
    Offline,
    /// A tracked flow; its attribution is filled in when the lookup finishes, so reading it later (when the
    /// row is shown or printed) usually finds it even for the flow's first packet.
    Flow(Arc<Flow>),
}

/// One captured packet with its verdict, and anything detection or passive DNS added to it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Monotonic sequence number within one engine run (1-based); links an event to its raw bytes.
    pub seq: u64,
    pub meta: PacketMeta,
    pub verdict: Verdict,
    /// Name of the deciding rule at evaluation time (`None` = default policy).
    pub rule_name: Option<Arc<str>>,
    /// Name of the capture interface (`file` for offline captures).
    pub iface: Arc<str>,
    /// Raised by detection on this packet, if any.
    pub alert: Option<Alert>,
    /// Host names learned passively from DNS answers for the source and destination addresses.
    pub src_name: Option<Arc<str>>,
    pub dst_name: Option<Arc<str>>,
    /// The source is on the kernel block list (enforced), so the kernel drops this packet after capture.
    pub kernel_dropped: bool,
    /// The flow the packet belongs to, with its program and user once known.
    #[serde(skip)]
    pub origin: Origin,
    /// The rule set that judged it, in the engine's `RulesHistory` (0: not recorded).
    pub rules_version: u32,
}

impl Event {
    /// Denied by a rule or the default policy.
    #[must_use]
    pub fn is_denied(&self) -> bool {
        self.verdict.action == Action::Block
    }

    /// Goes to the audit log: denied, matched a `Log` rule, or raised an alert.
    #[must_use]
    pub fn is_notable(&self) -> bool {
        self.verdict.action != Action::Allow || self.alert.is_some()
    }

    /// The rule name for display: the rule's name or `default`.
    #[must_use]
    pub fn rule_label(&self) -> &str {
        self.rule_name.as_deref().unwrap_or("default")
    }

    /// The flow this packet belongs to, when tracked.
    #[must_use]
    pub fn flow(&self) -> Option<&Arc<Flow>> {
        match &self.origin {
            Origin::Flow(flow) => Some(flow),
            Origin::Untracked | Origin::Offline => None,
        }
    }

    /// The program and user, as far as known now: `None` when untracked or the lookup is still running.
    #[must_use]
    pub fn attribution(&self) -> Option<&Attribution> {
        match &self.origin {
            Origin::Untracked => None,
            Origin::Offline => Some(&OFFLINE),
            Origin::Flow(flow) => flow.attribution(),
        }
    }

    /// True while the packet's flow is still being looked up.
    #[must_use]
    pub fn attribution_pending(&self) -> bool {
        matches!(&self.origin, Origin::Flow(flow) if flow.attribution().is_none())
    }
}

/// A denied inbound TCP SYN (10.0.0.1:40000 -> 192.168.1.50:22, rule "no ssh", eth0, seq 7) for unit tests
/// of the writers.
#[cfg(test)]
pub(crate) fn sample_event() -> Event {
    use crate::packet::{Direction, IpProto, LinkType, NetworkKind, TcpFlags};
    let mut meta = PacketMeta::new(1_700_000_000_000_001, 60, 60, LinkType::Ethernet);
    meta.network = NetworkKind::Ipv4;
    meta.src_ip = Some(std::net::IpAddr::from([10, 0, 0, 1]));
    meta.dst_ip = Some(std::net::IpAddr::from([192, 168, 1, 50]));
    meta.protocol = Some(IpProto::TCP);
    meta.src_port = Some(40_000);
    meta.dst_port = Some(22);
    meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
    meta.direction = Direction::In;
    Event {
        seq: 7,
        meta,
        verdict: Verdict {
            action: Action::Block,
            rule: Some(crate::rules::RuleId(2)),
        },
        rule_name: Some(Arc::from("no ssh")),
        iface: Arc::from("eth0"),
        alert: None,
        src_name: None,
        dst_name: None,
        kernel_dropped: false,
        origin: Origin::Untracked,
        rules_version: 0,
    }
}

/// Events for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::Event;
    use crate::packet::{Direction, IpProto, LinkType, PacketMeta};
    use crate::rules::{Action, Verdict};

    /// An inbound SSH probe from 203.0.113.7 to 192.168.1.50, blocked by "no ssh", at `ts_micros`.
    #[must_use]
    pub fn ssh_probe(seq: u64, ts_micros: i64, src_port: u16) -> Event {
        let mut meta = PacketMeta::new(ts_micros, 60, 60, LinkType::Ethernet);
        meta.src_ip = "203.0.113.7".parse().ok();
        meta.dst_ip = "192.168.1.50".parse().ok();
        meta.protocol = Some(IpProto::TCP);
        meta.src_port = Some(src_port);
        meta.dst_port = Some(22);
        meta.direction = Direction::In;
        Event {
            seq,
            meta,
            verdict: Verdict {
                action: Action::Block,
                rule: None,
            },
            rule_name: Some(Arc::from("no ssh")),
            iface: Arc::from("eth0"),
            alert: None,
            src_name: None,
            dst_name: None,
            kernel_dropped: false,
            origin: super::Origin::Untracked,
            rules_version: 0,
        }
    }
}
