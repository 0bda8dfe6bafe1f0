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
            rules_version: 0,
        }
    }
}
