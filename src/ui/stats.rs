//! Statistics and threats: packets/s and bytes/s over time split by verdict, top talkers and ports, and
//! detection alerts plus unsolicited inbound traffic grouped by source.
//!
//! The rate plots come from the engine's own counters (`StatsSnapshot`), sampled on the wall clock: every
//! packet counts, including those the table had no time to show, a quiet second is a zero, and a demo
//! capture that starts over does not pile into the second its timestamps repeat.
//!
//! Per-program totals (bytes out and in, connections) come from the flow table's snapshot, once a second
//! at most (O(flows)): the live flows' counters plus the last counts of flows that have left the table.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::widgets::verdict_color;
use crate::engine::StatsSnapshot;
use crate::event::Event;
use crate::flows::{Flow, FlowSnapshot};
use crate::packet::Direction;
use crate::rules::{Action, RuleSpec};

/// Seconds of history kept for the plots.
const HISTORY_SECS: usize = 300;
/// Sources and ports tracked at most (the smallest are dropped past this).
const MAX_TRACKED: usize = 10_000;
/// Destination ports remembered per source for the threats view.
const MAX_PORTS_PER_SOURCE: usize = 65_536;

/// The engine's counts in one wall-clock second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    /// Unix time of the second.
    pub second: i64,
    /// Packets allowed, blocked and logged.
    pub packets: [f64; 3],
    /// Bytes of the same.
    pub bytes: [f64; 3],
    /// Packets the table had no time to take (counted above all the same).
    pub shed: f64,
}

/// The counters the plots use, from a snapshot.
fn counters(s: &StatsSnapshot) -> [u64; 7] {
    [
        s.allowed,
        s.blocked,
        s.logged,
        s.allowed_bytes,
        s.blocked_bytes,
        s.logged_bytes,
        s.display_dropped,
    ]
}

/// Programs listed in the statistics view.
const PROGRAMS_SHOWN: usize = 10;
/// Per-program totals are recounted this often at most.
const PROGRAMS_INTERVAL: Duration = Duration::from_secs(1);

/// What one program did since the capture started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramTotals {
    /// Flows (connections) it had.
    pub connections: u64,
    /// Bytes it sent.
    pub bytes_out: u64,
    /// Bytes it received.
    pub bytes_in: u64,
}

impl ProgramTotals {
    fn add(&mut self, flow: &Flow) {
        self.connections += 1;
        self.bytes_out += flow.tx().1;
        self.bytes_in += flow.rx().1;
    }
}

/// The program a flow's bytes count for: its executable path, `unknown (REASON)`, `(offline)` or
/// `unknown (pending)`.
fn program_of(flow: &Flow) -> String {
    flow.attribution().map_or_else(
        || crate::attrib::PENDING_LABEL.to_owned(),
        |a| a.program_label().into_owned(),
    )
}

/// Per-program totals over the flow table's snapshots: flows still in the table are counted live; a flow
/// that leaves is added to `retired` with its last counts (its counters stop when it leaves).
#[derive(Default)]
struct ProgramStats {
    /// The snapshot counted last.
    last: Option<Arc<FlowSnapshot>>,
    retired: HashMap<String, ProgramTotals>,
    /// Every program, most bytes first, as of the last count.
    totals: Vec<(String, ProgramTotals)>,
    counted_at: Option<Instant>,
}

impl ProgramStats {
    fn update(&mut self, snapshot: &Arc<FlowSnapshot>, now: Instant) {
        if self
            .counted_at
            .is_some_and(|at| now.saturating_duration_since(at) < PROGRAMS_INTERVAL)
        {
            return;
        }
        self.counted_at = Some(now);
        if let Some(last) = self.last.take().filter(|last| !Arc::ptr_eq(last, snapshot)) {
            let current: HashSet<*const Flow> = snapshot.flows.iter().map(Arc::as_ptr).collect();
            for flow in last.flows.iter().filter(|f| !current.contains(&Arc::as_ptr(f))) {
                self.retired.entry(program_of(flow)).or_default().add(flow);
            }
        }
        self.last = Some(Arc::clone(snapshot));
        let mut totals = self.retired.clone();
        for flow in &snapshot.flows {
            totals.entry(program_of(flow)).or_default().add(flow);
        }
        let mut totals: Vec<(String, ProgramTotals)> = totals.into_iter().collect();
        totals.sort_by(|a, b| {
            (b.1.bytes_out + b.1.bytes_in)
                .cmp(&(a.1.bytes_out + a.1.bytes_in))
                .then_with(|| a.0.cmp(&b.0))
        });
        self.totals = totals;
    }
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

/// Aggregates fed by every event batch, and the per-second series sampled from the engine's counters.
#[derive(Default)]
pub struct StatsPanel {
    seconds: VecDeque<Second>,
    /// The last sample: its time (Unix seconds, fractional) and counters.
    last_sample: Option<(f64, [u64; 7])>,
    /// Destination ports of the inbound packets of each source, so a threat lists every port it touched,
    /// also those probed before it raised an alert or was denied.
    inbound_ports: HashMap<IpAddr, BTreeSet<u16>>,
    talkers: HashMap<IpAddr, u64>,
    ports: HashMap<u16, u64>,
    threats: HashMap<IpAddr, Threat>,
    /// Rules the user asked for from the threats view (drained by the app).
    pub actions: Vec<RuleSpec>,
    /// One-click timed blocks asked for from the threats view: (source, seconds, reason).
    pub blocks: Vec<(IpAddr, u64, String)>,
    programs: ProgramStats,
}

/// Sources listed in the threats view at most (the most active).
const THREATS_SHOWN: usize = 500;

/// Every port of a set, runs written as ranges, with the count: `1-30, 443 (31 ports)`.
#[must_use]
pub fn ports_text(ports: &BTreeSet<u16>) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &port in ports {
        match runs.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(port) => *end = port,
            _ => runs.push((port, port)),
        }
    }
    let list: Vec<String> = runs
        .iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect();
    match ports.len() {
        0 => String::new(),
        1 => list.join(", "),
        n => format!("{} ({n} ports)", list.join(", ")),
    }
}

/// A number for an axis or a sentence: `950`, `12.5k`, `3.2M` (no trailing `.0`).
#[must_use]
pub fn si_number(value: f64) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = if scaled.abs() >= 100.0 || scaled.fract().abs() < 0.05 {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.1}")
    };
    format!("{text}{suffix}")
}

impl StatsPanel {
    /// Adds what the engine counted since the last sample to the seconds it was counted in. `now` is the
    /// wall clock in Unix seconds. The difference is spread over the time since the last sample at an even
    /// rate (frames come many times a second while packets flow, so this only matters when the window was
    /// not drawn for a while); seconds without traffic get zeros. A counter going down means a new engine
    /// run: it counts from zero.
    pub fn sample(&mut self, snapshot: &StatsSnapshot, now: f64) {
        let current = counters(snapshot);
        let Some((last_time, last)) = self.last_sample.replace((now, current)) else {
            return;
        };
        let restarted = current.iter().zip(&last).any(|(c, l)| c < l);
        #[expect(clippy::cast_precision_loss, reason = "rates for a plot")]
        let delta: [f64; 7] =
            std::array::from_fn(|k| if restarted { current[k] } else { current[k] - last[k] } as f64);
        let now = now.max(last_time);
        #[expect(clippy::cast_possible_truncation, reason = "Unix seconds")]
        let (from, to) = (last_time.floor() as i64, now.floor() as i64);
        // Never more seconds than the history, whatever the clock did.
        let first = from.max(to - HISTORY_SECS as i64);
        let span = now - last_time;
        for second in first..=to {
            #[expect(clippy::cast_precision_loss, reason = "Unix seconds")]
            let (start, end) = (second as f64, (second + 1) as f64);
            // The share of the interval that fell in this second (all of it for an instant sample).
            let share = if span > 0.0 {
                (end.min(now) - start.max(last_time)).max(0.0) / span
            } else if second == to {
                1.0
            } else {
                0.0
            };
            if self.seconds.back().is_none_or(|s| s.second < second) {
                self.seconds.push_back(Second {
                    second,
                    ..Second::default()
                });
            }
            if let Some(s) = self.seconds.iter_mut().rev().find(|s| s.second == second) {
                for k in 0..3 {
                    s.packets[k] += delta[k] * share;
                    s.bytes[k] += delta[k + 3] * share;
                }
                s.shed += delta[6] * share;
            }
        }
        while self.seconds.len() > HISTORY_SECS {
            self.seconds.pop_front();
        }
    }

    /// Forgets the previous engine run's last sample (the next engine counts from zero) and its programs.
    pub fn new_run(&mut self) {
        self.last_sample = None;
        self.programs = ProgramStats::default();
    }

    /// Recounts the per-program totals from the flow table's snapshot, at most once a second (`now`).
    /// O(flows).
    pub fn sample_flows(&mut self, snapshot: &Arc<FlowSnapshot>, now: Instant) {
        self.programs.update(snapshot, now);
    }

    /// Every program's totals since the capture started, most bytes first (as of the last count).
    #[must_use]
    pub fn program_totals(&self) -> &[(String, ProgramTotals)] {
        &self.programs.totals
    }

    /// The per-second series, oldest first (tests and the plots).
    #[must_use]
    pub fn seconds(&self) -> &VecDeque<Second> {
        &self.seconds
    }

    /// Counts a batch for the top lists and the threats view.
    pub fn push<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            let m = &e.meta;
            if m.direction != Direction::Out
                && let (Some(src), Some(port)) = (m.src_ip, m.dst_port)
            {
                let ports = self.inbound_ports.entry(src).or_default();
                if ports.len() < MAX_PORTS_PER_SOURCE {
                    ports.insert(port);
                }
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
            }
        }
        trim(&mut self.talkers);
        trim(&mut self.ports);
        if self.inbound_ports.len() > MAX_TRACKED {
            let threats = &self.threats;
            self.inbound_ports.retain(|ip, _| threats.contains_key(ip));
        }
        if self.threats.len() > MAX_TRACKED {
            let mut by_last: Vec<(IpAddr, i64)> =
                self.threats.iter().map(|(k, t)| (*k, t.last_micros)).collect();
            by_last.sort_by_key(|(_, last)| std::cmp::Reverse(*last));
            for (ip, _) in by_last.into_iter().skip(MAX_TRACKED / 2) {
                self.threats.remove(&ip);
            }
        }
    }

    /// The `limit` sources with most packets grouped as threats, most first, each with every inbound port
    /// it touched (also the ones it probed before it raised an alert or was denied).
    #[must_use]
    pub fn threats(&self, limit: usize) -> Vec<(IpAddr, Threat)> {
        let mut v: Vec<(IpAddr, &Threat)> = self.threats.iter().map(|(k, t)| (*k, t)).collect();
        v.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(&b.0)));
        v.into_iter()
            .take(limit)
            .map(|(ip, t)| {
                let mut t = t.clone();
                if let Some(ports) = self.inbound_ports.get(&ip) {
                    t.ports.clone_from(ports);
                }
                (ip, t)
            })
            .collect()
    }

    /// The statistics view: the rate plots (each with a text summary, also its accessible name) and the top
    /// lists.
    pub fn stats_ui(&mut self, ui: &mut egui::Ui) {
        let dark = ui.visuals().dark_mode;
        let now = self.seconds.back().map_or(0, |s| s.second);
        let any_shed = self.seconds.iter().any(|s| s.shed > 0.0);
        for (title, unit, bytes) in [
            ("Packets per second", "packets/s", false),
            ("Bytes per second", "bytes/s", true),
        ] {
            let summary = self.rate_summary(title, bytes);
            ui.strong(title);
            let values = |s: &Second| if bytes { s.bytes } else { s.packets };
            let peak = self
                .seconds
                .iter()
                .flat_map(|s| values(s).into_iter().chain([if bytes { 0.0 } else { s.shed }]))
                .fold(0.0_f64, f64::max);
            #[expect(clippy::cast_precision_loss, reason = "plot coordinates")]
            let series = |pick: &dyn Fn(&Second) -> f64| -> Vec<[f64; 2]> {
                self.seconds
                    .iter()
                    .map(|s| [(s.second - now) as f64, pick(s)])
                    .collect()
            };
            let response = Plot::new(title)
                .height(150.0)
                .legend(Legend::default())
                .allow_scroll(false)
                .include_y(0.0)
                // A flat zero line still gets a readable axis (0 to 1), and the peak some headroom.
                .include_y((peak * 1.1).max(1.0))
                .include_x(-60.0)
                .include_x(0.0)
                .x_axis_label("seconds ago")
                .y_axis_label(unit)
                .y_axis_formatter(|mark, _range| si_number(mark.value))
                .show(ui, |plot| {
                    for (index, action) in [(0, Action::Allow), (1, Action::Block), (2, Action::Log)] {
                        plot.line(
                            Line::new(action.name(), PlotPoints::from(series(&|s| values(s)[index])))
                                .color(verdict_color(action, dark)),
                        );
                    }
                    if any_shed && !bytes {
                        plot.line(
                            Line::new("not shown in the table", PlotPoints::from(series(&|s| s.shed)))
                                .color(egui::Color32::GRAY),
                        );
                    }
                })
                .response;
            response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, summary.clone()));
            ui.label(summary);
        }
        self.programs_ui(ui);
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

    /// The programs that moved the most bytes since the capture started, with their connections.
    fn programs_ui(&self, ui: &mut egui::Ui) {
        let totals = &self.programs.totals;
        if totals.is_empty() {
            return;
        }
        ui.strong(format!(
            "Top programs (bytes since the capture started, {} programs)",
            totals.len()
        ));
        egui::Grid::new("programs").striped(true).show(ui, |ui| {
            for title in ["Program", "Connections", "Bytes out", "Bytes in"] {
                ui.strong(title);
            }
            ui.end_row();
            for (program, t) in totals.iter().take(PROGRAMS_SHOWN) {
                let name = program.rsplit('/').next().unwrap_or(program);
                ui.label(crate::text::escape(name))
                    .on_hover_text(crate::text::escape(program));
                ui.label(t.connections.to_string());
                ui.label(super::connections::bytes_text(t.bytes_out));
                ui.label(super::connections::bytes_text(t.bytes_in));
                ui.end_row();
            }
        });
    }

    /// One sentence on a rate plot: the last full second, the peak and the average of the last minute.
    #[must_use]
    pub fn rate_summary(&self, title: &str, bytes: bool) -> String {
        let total = |s: &Second| -> f64 {
            let v = if bytes { s.bytes } else { s.packets };
            v.iter().sum()
        };
        // The newest second is still being counted: describe the one before.
        let complete: Vec<&Second> = self.seconds.iter().rev().skip(1).take(60).collect();
        let Some(last) = complete.first() else {
            return format!("{title}: no data yet.");
        };
        let split = if bytes { last.bytes } else { last.packets };
        let peak = complete.iter().map(|s| total(s)).fold(0.0_f64, f64::max);
        #[expect(clippy::cast_precision_loss, reason = "an average for display")]
        let average = complete.iter().map(|s| total(s)).sum::<f64>() / complete.len() as f64;
        let mut text = format!(
            "{title}: {} in the last second (allow {}, block {}, log {}); over the last {} s peak {}, average {}.",
            si_number(total(last)),
            si_number(split[0]),
            si_number(split[1]),
            si_number(split[2]),
            complete.len(),
            si_number(peak),
            si_number(average)
        );
        let shed: f64 = complete.iter().map(|s| s.shed).sum();
        if shed > 0.0 && !bytes {
            text.push_str(&format!(
                " {} packets were counted but not shown in the table (too many to draw).",
                si_number(shed)
            ));
        }
        text
    }

    /// The threats view: alerts and unsolicited inbound traffic by source, with a one-click block rule.
    pub fn threats_ui(&mut self, ui: &mut egui::Ui) {
        let threats = self.threats(THREATS_SHOWN);
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
                        for (ip, t) in &threats {
                            ui.label(ip.to_string());
                            ui.label(t.packets.to_string());
                            ui.label(t.denied.to_string());
                            ui.label(t.alerts.iter().copied().collect::<Vec<_>>().join(", "));
                            ui.add(
                                egui::Label::new(ports_text(&t.ports)).wrap_mode(egui::TextWrapMode::Wrap),
                            );
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

    fn snapshot(allowed: u64, blocked: u64, shed: u64) -> StatsSnapshot {
        StatsSnapshot {
            allowed,
            blocked,
            allowed_bytes: allowed * 100,
            blocked_bytes: blocked * 60,
            display_dropped: shed,
            ..StatsSnapshot::default()
        }
    }

    #[test]
    fn rates_come_per_wall_clock_second_and_quiet_seconds_are_zero() {
        let mut stats = StatsPanel::default();
        stats.sample(&snapshot(0, 0, 0), 1000.25);
        stats.sample(&snapshot(40, 5, 0), 1000.75);
        // Half of this interval is in 1000, half in 1001.
        stats.sample(&snapshot(50, 5, 0), 1001.25);
        // Five quiet seconds, then a burst of 1,000 of which 600 were not shown in the table.
        stats.sample(&snapshot(50, 5, 0), 1006.5);
        stats.sample(&snapshot(1_050, 5, 600), 1006.75);
        let seconds: Vec<(i64, f64, f64, f64)> = stats
            .seconds()
            .iter()
            .map(|s| (s.second, s.packets[0], s.packets[1], s.shed))
            .collect();
        assert_eq!(
            seconds,
            [
                (1000, 45.0, 5.0, 0.0),
                (1001, 5.0, 0.0, 0.0),
                (1002, 0.0, 0.0, 0.0),
                (1003, 0.0, 0.0, 0.0),
                (1004, 0.0, 0.0, 0.0),
                (1005, 0.0, 0.0, 0.0),
                (1006, 1_000.0, 0.0, 600.0),
            ]
        );
        assert_eq!(stats.seconds()[0].bytes[1], 300.0);
        let summary = stats.rate_summary("Packets per second", false);
        assert!(summary.contains("0 in the last second"), "{summary}");
        assert!(summary.contains("peak 50"), "{summary}");
    }

    #[test]
    fn a_gap_shares_its_count_and_a_new_run_starts_from_zero() {
        let mut stats = StatsPanel::default();
        stats.sample(&snapshot(100, 0, 0), 10.5);
        // No frame for three seconds (window hidden): 300 packets from 10.5 to 13.5.
        stats.sample(&snapshot(400, 0, 0), 13.5);
        let counts: Vec<f64> = stats.seconds().iter().map(|s| s.packets[0]).collect();
        assert_eq!(counts, [50.0, 100.0, 100.0, 50.0]);
        // The engine restarted (a demo loop is not a restart: its counters keep growing).
        stats.sample(&snapshot(7, 0, 0), 13.75);
        assert_eq!(stats.seconds().back().unwrap().packets[0], 57.0);
    }

    #[test]
    fn program_totals_count_live_flows_and_keep_those_that_left() {
        use crate::attrib::{Attribution, ProcessInfo, UserId};
        use crate::flows::{FlowConfig, FlowTable, Observed, SharedFlows};
        use crate::packet::TcpFlags;
        let shared = Arc::new(SharedFlows::default());
        let config = FlowConfig {
            closed_secs: 5,
            ..FlowConfig::default()
        };
        let mut table = FlowTable::new(config, Arc::clone(&shared));
        let iface: Arc<str> = Arc::from("eth0");
        let curl = Attribution::Process {
            process: Arc::new(ProcessInfo {
                pid: 42,
                exe: "/usr/bin/curl".into(),
                cmdline: Vec::new(),
                start_ticks: 1,
                unit: None,
                app: None,
            }),
            user: UserId {
                uid: 1000,
                name: None,
            },
        };
        // Two connections of curl (the first closed by RST) and one still being looked up.
        let send = |table: &mut FlowTable, port: u16, secs: i64, flags: u8, bytes: u32| {
            let mut meta = PacketMeta::new(secs * 1_000_000, bytes, bytes, LinkType::Ethernet);
            meta.src_ip = Some("10.0.0.1".parse().unwrap());
            meta.dst_ip = Some("192.0.2.9".parse().unwrap());
            meta.protocol = Some(IpProto::TCP);
            meta.src_port = Some(port);
            meta.dst_port = Some(443);
            meta.tcp_flags = Some(crate::packet::TcpFlags(flags));
            meta.direction = Direction::Out;
            let flow = match table.observe(&meta, &iface) {
                Observed::New(f) | Observed::Known(f) => Arc::clone(f),
                Observed::None => panic!(),
            };
            flow.record(&meta, Action::Allow, None);
            flow
        };
        send(&mut table, 1, 0, TcpFlags::SYN, 100).set_attribution(curl.clone());
        send(&mut table, 1, 1, TcpFlags::RST, 50);
        send(&mut table, 2, 1, TcpFlags::SYN, 1_000).set_attribution(curl);
        send(&mut table, 3, 1, TcpFlags::SYN, 7);
        table.publish();
        let mut stats = StatsPanel::default();
        let start = Instant::now();
        stats.sample_flows(&shared.snapshot(), start);
        assert_eq!(
            stats.program_totals(),
            [
                (
                    "/usr/bin/curl".to_owned(),
                    ProgramTotals {
                        connections: 2,
                        bytes_out: 1_150,
                        bytes_in: 0
                    }
                ),
                (
                    crate::attrib::PENDING_LABEL.to_owned(),
                    ProgramTotals {
                        connections: 1,
                        bytes_out: 7,
                        bytes_in: 0
                    }
                )
            ]
        );
        // Ten seconds later the closed connection leaves the table; the totals keep it.
        send(&mut table, 2, 11, TcpFlags::ACK, 10);
        table.expire();
        table.publish();
        assert_eq!(shared.snapshot().flows.len(), 2);
        stats.sample_flows(&shared.snapshot(), start + Duration::from_millis(500));
        assert_eq!(
            stats.program_totals()[0].1.bytes_out,
            1_150,
            "once a second at most"
        );
        stats.sample_flows(&shared.snapshot(), start + Duration::from_secs(1));
        assert_eq!(
            stats.program_totals()[0].1,
            ProgramTotals {
                connections: 2,
                bytes_out: 1_160,
                bytes_in: 0
            }
        );
        stats.new_run();
        assert!(stats.program_totals().is_empty());
    }

    #[test]
    fn ports_are_listed_as_ranges_with_their_count() {
        let scan: BTreeSet<u16> = (1..=30).chain([443, 8080, 8081]).collect();
        assert_eq!(ports_text(&scan), "1-30, 443, 8080-8081 (33 ports)");
        assert_eq!(ports_text(&[22].into()), "22");
        assert_eq!(si_number(45.0), "45");
        assert_eq!(si_number(12_500.0), "12.5k");
        assert_eq!(si_number(3_000_000.0), "3M");
        assert_eq!(si_number(0.25), "0.2");
    }

    /// An inbound TCP packet from `src` to `port` at `ts_micros`, judged `verdict`, with a port-scan alert
    /// from `src` when `scan_alert` is set.
    fn inbound_tcp(
        seq: u64,
        ts_micros: i64,
        src: &str,
        port: u16,
        verdict: Verdict,
        scan_alert: bool,
    ) -> Event {
        let mut meta = PacketMeta::new(ts_micros, 60, 60, LinkType::Ethernet);
        meta.src_ip = Some(src.parse().unwrap());
        meta.protocol = Some(IpProto::TCP);
        meta.dst_port = Some(port);
        meta.direction = Direction::In;
        Event {
            seq,
            verdict,
            meta,
            rule_name: None,
            iface: Arc::from("eth0"),
            alert: scan_alert.then(|| Alert {
                kind: AlertKind::PortScan,
                src_ip: src.parse().unwrap(),
                ts_micros,
                reason: String::new(),
            }),
            src_name: None,
            dst_name: None,
            kernel_dropped: false,
            origin: crate::event::Origin::Untracked,
            rules_version: 0,
        }
    }

    #[test]
    fn a_scan_lists_every_port_it_touched_not_only_the_denied_ones() {
        let mut stats = StatsPanel::default();
        let rules = crate::rules::RuleSet::from_ron(
            r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"])])"#,
        )
        .unwrap();
        let events: Vec<Event> = (1..=30u16)
            .map(|port| {
                let allow = Verdict {
                    action: Action::Allow,
                    rule: None,
                };
                let mut event = inbound_tcp(
                    u64::from(port),
                    i64::from(port),
                    "198.51.100.23",
                    port,
                    allow,
                    port == 30,
                );
                event.verdict = rules.evaluate(&event.meta, "eth0");
                event
            })
            .collect();
        stats.push(&events);
        let threats = stats.threats(10);
        assert_eq!(threats.len(), 1);
        assert_eq!(threats[0].1.ports.len(), 30);
        assert_eq!(ports_text(&threats[0].1.ports), "1-30 (30 ports)");
    }

    #[test]
    fn threats_group_alerts_and_denied_inbound_by_source() {
        let mut stats = StatsPanel::default();
        let mut events = Vec::new();
        for port in [22u16, 23, 80] {
            let block = Verdict {
                action: Action::Block,
                rule: None,
            };
            let ts_micros = 1_000_000 * i64::from(port);
            events.push(inbound_tcp(1, ts_micros, "203.0.113.7", port, block, port == 80));
        }
        stats.push(&events);
        let threats = stats.threats(10);
        assert_eq!(threats.len(), 1);
        let (ip, t) = &threats[0];
        assert_eq!(ip.to_string(), "203.0.113.7");
        assert_eq!((t.packets, t.denied), (3, 3));
        assert_eq!(t.ports.iter().copied().collect::<Vec<_>>(), vec![22, 23, 80]);
        assert_eq!(t.alerts.iter().copied().collect::<Vec<_>>(), vec!["port-scan"]);
    }
}
