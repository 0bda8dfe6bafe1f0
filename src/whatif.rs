//! What-if comparison of two rule sets over the same packets: which flows would change verdict under an
//! edited rule set. Used by `netwarden replay --compare` and the rule editor's preview before saving.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::packet::{IpProto, PacketMeta};
use crate::rules::{Action, RuleId, RuleSet};

/// A flow as the comparison groups packets: addresses, protocol and destination port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FlowKey {
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub protocol: Option<IpProto>,
    pub dst_port: Option<u16>,
}

impl FlowKey {
    /// The flow a packet belongs to.
    #[must_use]
    pub fn of(meta: &PacketMeta) -> Self {
        Self {
            src_ip: meta.src_ip,
            dst_ip: meta.dst_ip,
            protocol: meta.protocol,
            dst_port: meta.dst_port,
        }
    }

    /// `tcp 10.0.0.1 -> 10.0.0.2:22`, for reports.
    #[must_use]
    pub fn describe(&self) -> String {
        let proto = self
            .protocol
            .map_or_else(|| "non-ip".to_owned(), |p| p.name().into_owned());
        let src = self.src_ip.map_or_else(|| "?".to_owned(), |ip| ip.to_string());
        let dst = self.dst_ip.map_or_else(|| "?".to_owned(), |ip| ip.to_string());
        match self.dst_port {
            Some(port) if matches!(self.dst_ip, Some(IpAddr::V6(_))) => {
                format!("{proto} {src} -> [{dst}]:{port}")
            }
            Some(port) => format!("{proto} {src} -> {dst}:{port}"),
            None => format!("{proto} {src} -> {dst}"),
        }
    }
}

/// One flow whose verdict differs between the two rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowChange {
    pub flow: FlowKey,
    pub old_action: Action,
    /// Deciding rule name under the old rules (`default` for the default policy).
    pub old_rule: String,
    pub new_action: Action,
    pub new_rule: String,
    /// Packets of this flow that change.
    pub packets: u64,
    /// Capture time of the first changed packet, microseconds since the epoch.
    pub first_ts_micros: i64,
}

/// The result of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompareReport {
    pub packets: u64,
    /// Packets whose action differs.
    pub changed_packets: u64,
    /// Packets allowed before and denied after, and the reverse.
    pub newly_blocked: u64,
    pub newly_allowed: u64,
    /// Changed flows, most packets first.
    pub flows: Vec<FlowChange>,
}

/// The action and deciding rule for `meta` under `rules`, without touching hit counters.
#[must_use]
pub fn verdict(rules: &RuleSet, meta: &PacketMeta, iface: &str) -> (Action, Option<RuleId>) {
    let id = rules.matching_rule(meta, iface);
    let action = id
        .and_then(|id| rules.rules().get(id.index()))
        .map_or(rules.default_policy(), |rule| rule.action);
    (action, id)
}

fn rule_label(rules: &RuleSet, id: Option<RuleId>) -> String {
    id.and_then(|id| rules.rules().get(id.index()))
        .map_or_else(|| "default".to_owned(), |rule| rule.name.to_string())
}

/// Compares `old` and `new` over `packets` (each with its capture interface name).
pub fn compare<'a>(
    packets: impl IntoIterator<Item = (&'a PacketMeta, &'a str)>,
    old: &RuleSet,
    new: &RuleSet,
) -> CompareReport {
    let mut report = CompareReport::default();
    // (flow, old action, old rule, new action, new rule) -> (packets, first timestamp)
    type ChangeKey = (FlowKey, Action, Option<RuleId>, Action, Option<RuleId>);
    let mut flows: HashMap<ChangeKey, (u64, i64)> = HashMap::new();
    for (meta, iface) in packets {
        report.packets += 1;
        let (old_action, old_id) = verdict(old, meta, iface);
        let (new_action, new_id) = verdict(new, meta, iface);
        if old_action == new_action {
            continue;
        }
        report.changed_packets += 1;
        match (old_action, new_action) {
            (_, Action::Block) => report.newly_blocked += 1,
            (Action::Block, _) => report.newly_allowed += 1,
            _ => {}
        }
        let key = (FlowKey::of(meta), old_action, old_id, new_action, new_id);
        let entry = flows.entry(key).or_insert((0, meta.ts_micros));
        entry.0 += 1;
    }
    let mut changes: Vec<FlowChange> = flows
        .into_iter()
        .map(
            |((flow, old_action, old_id, new_action, new_id), (packets, first))| FlowChange {
                flow,
                old_action,
                old_rule: rule_label(old, old_id),
                new_action,
                new_rule: rule_label(new, new_id),
                packets,
                first_ts_micros: first,
            },
        )
        .collect();
    changes.sort_by(|a, b| b.packets.cmp(&a.packets).then_with(|| a.flow.cmp(&b.flow)));
    report.flows = changes;
    report
}
