//! Statistics and threats: packets/s and bytes/s over time split by verdict, top talkers and ports, and
//! the aggregates behind the threats view (`threats.rs`): detection alerts plus unsolicited inbound traffic
//! grouped by source.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::rules::action_color;
use crate::event::Event;
use crate::packet::Direction;
use crate::rules::Action;

/// Seconds of history kept for the plots.
const HISTORY_SECS: usize = 300;
/// Sources and ports tracked at most (the smallest are dropped past this).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy, Default)]
struct Second {
    second: i64,
    packets: [u64; 3],
    bytes: [u64; 3],
}

/// What one source did that looks hostile.
#[derive(Debug, Clone, Default)]
pub struct Threat {
    pub packets: u64,
    pub alerts: BTreeSet<&'static str>,
    pub ports: BTreeSet<u16>,
    pub first_micros: i64,
    pub last_micros: i64,
    pub denied: u64,
}

/// Aggregates fed by every event batch.
#[derive(Default)]
pub struct StatsPanel {
    seconds: VecDeque<Second>,
    talkers: HashMap<IpAddr, u64>,
    /// Host names of talkers, learned from the events' passive DNS names.
    names: HashMap<IpAddr, std::sync::Arc<str>>,
    ports: HashMap<u16, u64>,
    threats: HashMap<IpAddr, Threat>,
}

fn slot(action: Action) -> usize {
    match action {
        Action::Allow => 0,
        Action::Block => 1,
        Action::Log => 2,
    }
}

impl StatsPanel {
    /// Counts a batch.
    pub fn push<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            let m = &e.meta;
            let second = m.ts_micros.div_euclid(1_000_000);
            if self.seconds.back().is_none_or(|s| s.second < second) {
                self.seconds.push_back(Second {
                    second,
                    ..Second::default()
                });
                while self.seconds.len() > HISTORY_SECS {
                    self.seconds.pop_front();
                }
            }
            if let Some(s) = self.seconds.back_mut() {
                s.packets[slot(e.verdict.action)] += 1;
                s.bytes[slot(e.verdict.action)] += u64::from(m.wire_len);
            }
            if let Some(src) = m.src_ip {
                *self.talkers.entry(src).or_default() += u64::from(m.wire_len);
                if let Some(name) = &e.src_name
                    && !self.names.contains_key(&src)
                {
                    self.names.insert(src, std::sync::Arc::clone(name));
                }
            }
            if let Some(port) = m.dst_port {
                *self.ports.entry(port).or_default() += 1;
            }
            // Unsolicited inbound: connection attempts to us (SYN without ACK), denied inbound packets, and
            // anything that raised an alert.
            let inbound = m.direction != Direction::Out;
            let syn_to_us =
                m.direction == Direction::In && m.tcp_flags.is_some_and(crate::packet::TcpFlags::is_syn_only);
            let hostile = e.alert.is_some() || syn_to_us || (e.verdict.action == Action::Block && inbound);
            if hostile && let Some(src) = m.src_ip {
                let t = self.threats.entry(src).or_insert_with(|| Threat {
                    first_micros: m.ts_micros,
                    ..Threat::default()
                });
                t.packets += 1;
                t.last_micros = m.ts_micros;
                if e.verdict.action == Action::Block {
                    t.denied += 1;
                }
                if let Some(alert) = &e.alert {
                    t.alerts.insert(alert.kind.name());
                }
                if let Some(port) = m.dst_port
                    && t.ports.len() < 1_000
                {
                    t.ports.insert(port);
                }
            }
        }
        trim(&mut self.talkers);
        if self.names.len() > MAX_TRACKED {
            let talkers = &self.talkers;
            self.names.retain(|ip, _| talkers.contains_key(ip));
        }
        trim(&mut self.ports);
        if self.threats.len() > MAX_TRACKED {
            let mut by_last: Vec<(IpAddr, i64)> =
                self.threats.iter().map(|(k, t)| (*k, t.last_micros)).collect();
            by_last.sort_by_key(|(_, last)| std::cmp::Reverse(*last));
            for (ip, _) in by_last.into_iter().skip(MAX_TRACKED / 2) {
                self.threats.remove(&ip);
            }
        }
    }

    /// Sources grouped as threats, most packets first.
    #[must_use]
    pub fn threats(&self) -> Vec<(IpAddr, &Threat)> {
        let mut v: Vec<(IpAddr, &Threat)> = self.threats.iter().map(|(k, t)| (*k, t)).collect();
        v.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(&b.0)));
        v
    }

    /// The statistics view.
    pub fn stats_ui(&mut self, ui: &mut egui::Ui) {
        let dark = ui.visuals().dark_mode;
        let origin = self.seconds.front().map_or(0, |s| s.second);
        let series = |index: usize, bytes: bool| -> Vec<[f64; 2]> {
            self.seconds
                .iter()
                .map(|s| {
                    let v = if bytes { s.bytes[index] } else { s.packets[index] };
                    #[expect(clippy::cast_precision_loss, reason = "plot coordinates")]
                    let point = [(s.second - origin) as f64, v as f64];
                    point
                })
                .collect()
        };
        for (title, bytes) in [("Packets per second", false), ("Bytes per second", true)] {
            ui.strong(title);
            Plot::new(title)
                .height(160.0)
                .x_axis_label("seconds")
                .legend(Legend::default())
                .allow_scroll(false)
                .show(ui, |plot| {
                    // Block last, so the red line is drawn on top.
                    for (index, action) in [(2, Action::Log), (0, Action::Allow), (1, Action::Block)] {
                        plot.line(
                            Line::new(action.name(), PlotPoints::from(series(index, bytes)))
                                .color(action_color(action, dark)),
                        );
                    }
                });
        }
        ui.columns(2, |columns| {
            let names = &self.names;
            top_ui(
                &mut columns[0],
                "Top talkers (bytes)",
                &self.talkers,
                |ip| match names.get(&ip) {
                    Some(name) => format!("{ip} ({name})"),
                    None => ip.to_string(),
                },
            );
            top_ui(
                &mut columns[1],
                "Top destination ports (packets)",
                &self.ports,
                |p| p.to_string(),
            );
        });
    }
}

fn trim<K: Copy + Eq + std::hash::Hash>(map: &mut HashMap<K, u64>) {
    if map.len() > MAX_TRACKED {
        let mut values: Vec<u64> = map.values().copied().collect();
        let middle = values.len() / 2;
        let (_, cut, _) = values.select_nth_unstable(middle);
        let cut = *cut;
        map.retain(|_, v| *v > cut);
    }
}

fn top_ui<K: Copy>(ui: &mut egui::Ui, title: &str, map: &HashMap<K, u64>, show: impl Fn(K) -> String) {
    ui.strong(title);
    let mut top: Vec<(K, u64)> = map.iter().map(|(k, v)| (*k, *v)).collect();
    top.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    egui::Grid::new(title).striped(true).show(ui, |ui| {
        for (key, value) in top.into_iter().take(10) {
            ui.label(show(key));
            ui.label(value.to_string());
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detect::{Alert, AlertKind};
    use crate::packet::{IpProto, LinkType, PacketMeta};
    use crate::rules::Verdict;

    #[test]
    fn threats_group_alerts_and_denied_inbound_by_source() {
        let mut stats = StatsPanel::default();
        let mut events = Vec::new();
        for port in [22u16, 23, 80] {
            let mut meta = PacketMeta::new(1_000_000 * i64::from(port), 60, 60, LinkType::Ethernet);
            meta.src_ip = Some("203.0.113.7".parse().unwrap());
            meta.protocol = Some(IpProto::TCP);
            meta.dst_port = Some(port);
            meta.direction = Direction::In;
            events.push(Event {
                seq: 1,
                meta,
                verdict: Verdict {
                    action: Action::Block,
                    rule: None,
                },
                rule_name: None,
                iface: Arc::from("eth0"),
                alert: (port == 80).then(|| Alert {
                    kind: AlertKind::PortScan,
                    src_ip: "203.0.113.7".parse().unwrap(),
                    ts_micros: 0,
                    reason: String::new(),
                }),
                src_name: None,
                dst_name: None,
                kernel_dropped: false,
            });
        }
        stats.push(&events);
        let threats = stats.threats();
        assert_eq!(threats.len(), 1);
        let (ip, t) = threats[0];
        assert_eq!(ip.to_string(), "203.0.113.7");
        assert_eq!((t.packets, t.denied), (3, 3));
        assert_eq!(t.ports.iter().copied().collect::<Vec<_>>(), vec![22, 23, 80]);
        assert_eq!(t.alerts.iter().copied().collect::<Vec<_>>(), vec!["port-scan"]);
    }
}
