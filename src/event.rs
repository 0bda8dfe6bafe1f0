//! `Event`: one evaluated packet as the engine hands it to its front ends (UI table, CLI output, audit log,
//! exports).

use std::sync::Arc;

use serde::Serialize;

use crate::detect::Alert;
use crate::packet::PacketMeta;
use crate::rules::{Action, Verdict};

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
    }
}
