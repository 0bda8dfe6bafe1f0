//! Statistics and threats: packets/s and bytes/s over time split by verdict, top talkers and ports, and
//! detection alerts plus unsolicited inbound traffic grouped by source.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::widgets::verdict_color;
use crate::event::Event;
use crate::packet::Direction;
use crate::rules::{Action, RuleSpec};

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
    ports: HashMap<u16, u64>,
    threats: HashMap<IpAddr, Threat>,
    /// Rules the user asked for from the threats view (drained by the app).
    pub actions: Vec<RuleSpec>,
    /// One-click timed blocks asked for from the threats view: (source, seconds, reason).
    pub blocks: Vec<(IpAddr, u64, String)>,
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
            }
            if let Some(port) = m.dst_port {
                *self.ports.entry(port).or_default() += 1;
            }
            // Unsolicited inbound: denied inbound packets, and anything that raised an alert.
            let hostile =
                e.alert.is_some() || (e.verdict.action == Action::Block && m.direction != Direction::Out);
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
                .legend(Legend::default())
                .allow_scroll(false)
                .show(ui, |plot| {
                    for (index, action) in [(0, Action::Allow), (1, Action::Block), (2, Action::Log)] {
                        plot.line(
                            Line::new(action.name(), PlotPoints::from(series(index, bytes)))
                                .color(verdict_color(action, dark)),
                        );
                    }
                });
        }
        ui.columns(2, |columns| {
            top_ui(&mut columns[0], "Top talkers (bytes)", &self.talkers, |ip| {
                ip.to_string()
            });
            top_ui(
                &mut columns[1],
                "Top destination ports (packets)",
                &self.ports,
                |p| p.to_string(),
            );
        });
    }

    /// The threats view: alerts and unsolicited inbound traffic by source, with a one-click block rule.
    pub fn threats_ui(&mut self, ui: &mut egui::Ui) {
        let threats: Vec<(IpAddr, Threat)> = self
            .threats()
            .into_iter()
            .map(|(ip, t)| (ip, t.clone()))
            .collect();
        if threats.is_empty() {
            ui.label("No alerts and no denied inbound traffic yet.");
            return;
        }
        egui::ScrollArea::vertical()
            .auto_shrink([false; 2])
            .show(ui, |ui| {
                egui::Grid::new("threats")
                    .striped(true)
                    .num_columns(7)
                    .show(ui, |ui| {
                        for title in [
                            "Source",
                            "Packets",
                            "Denied",
                            "Alerts",
                            "Ports touched",
                            "First / last seen",
                            "",
                        ] {
                            ui.strong(title);
                        }
                        ui.end_row();
                        for (ip, t) in threats.iter().take(500) {
                            ui.label(ip.to_string());
                            ui.label(t.packets.to_string());
                            ui.label(t.denied.to_string());
                            ui.label(t.alerts.iter().copied().collect::<Vec<_>>().join(", "));
                            let ports: Vec<String> =
                                t.ports.iter().take(12).map(ToString::to_string).collect();
                            let more = t.ports.len().saturating_sub(12);
                            ui.label(if more > 0 {
                                format!("{} (+{more})", ports.join(","))
                            } else {
                                ports.join(",")
                            });
                            let time =
                                |us: i64| crate::text::iso_time(us).get(11..19).unwrap_or("").to_owned();
                            ui.label(format!("{} / {}", time(t.first_micros), time(t.last_micros)));
                            let alerts = t.alerts.iter().copied().collect::<Vec<_>>().join(", ");
                            if ui.button(format!("Block {ip} for 1 hour")).clicked() {
                                self.blocks.push((
                                    *ip,
                                    3_600,
                                    format!("threats view: {alerts} ({} packets)", t.packets),
                                ));
                            }
                            if ui.button(format!("Block rule for {ip}")).clicked() {
                                self.actions.push(RuleSpec {
                                    name: format!("block {ip}"),
                                    action: Action::Block,
                                    src: vec![ip.to_string()],
                                    comment: format!(
                                        "from the threats view: {}",
                                        t.alerts.iter().copied().collect::<Vec<_>>().join(", ")
                                    ),
                                    ..RuleSpec::default()
                                });
                            }
                            ui.end_row();
                        }
                    });
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
                origin: crate::event::Origin::Untracked,
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
