//! The live traffic table: every captured packet with its verdict, virtual scrolling over up to a million
//! stored rows, the engine's filter language, follow/pause, column sort, a row cap with oldest-first
//! eviction, a details pane (layers, hex dump, why) and a right-click menu.

use std::collections::VecDeque;

use egui::RichText;
use egui_extras::{Column, TableBuilder};

use super::rules::action_color;
use crate::engine::RawStore;
use crate::event::Event;
use crate::filter::Filter;
use crate::packet::{self, IpProto};
use crate::rules::{Action, Protocol, RuleDirection, RuleSet, RuleSpec};

/// What the table asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficAction {
    /// Open the rule editor with this rule pre-filled.
    EditNewRule(RuleSpec),
    /// Put this address on the block list (enforced in the kernel when possible), for `secs` or for good.
    Block {
        addr: std::net::IpAddr,
        secs: Option<u64>,
        reason: String,
    },
}

/// Columns that can be sorted by clicking their header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Time,
    Protocol,
    Source,
    Destination,
    DstPort,
    Length,
    Verdict,
}

/// The table's state.
pub struct TrafficPanel {
    rows: VecDeque<Event>,
    /// Absolute index of `rows[0]`; grows as old rows are evicted.
    first_index: u64,
    /// Stored rows at most (oldest evicted first).
    pub row_cap: usize,
    evicted: u64,
    filter_text: String,
    filter: Filter,
    filter_error: Option<String>,
    /// Absolute indices of the rows that pass the filter, in display order.
    view: Vec<u64>,
    sort: Option<(SortColumn, bool)>,
    /// While paused (or sorted), only the first `n` entries of `view` are shown; rows keep arriving.
    frozen_len: Option<usize>,
    selected: Option<u64>,
    focus_filter: bool,
    /// Requests for the app, drained each frame.
    pub actions: Vec<TrafficAction>,
}

impl Default for TrafficPanel {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

impl TrafficPanel {
    /// An empty table keeping at most `row_cap` rows.
    #[must_use]
    pub fn new(row_cap: usize) -> Self {
        Self {
            rows: VecDeque::new(),
            first_index: 0,
            row_cap: row_cap.max(1),
            evicted: 0,
            filter_text: String::new(),
            filter: Filter::default(),
            filter_error: None,
            view: Vec::new(),
            sort: None,
            frozen_len: None,
            selected: None,
            focus_filter: false,
            actions: Vec::new(),
        }
    }

    /// Stores new events (O(batch)); evicts the oldest past the cap.
    pub fn push(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            let index = self.first_index + self.rows.len() as u64;
            if self.filter.matches(&event) {
                self.view.push(index);
            }
            self.rows.push_back(event);
        }
        let excess = self.rows.len().saturating_sub(self.row_cap);
        if excess > 0 {
            self.rows.drain(..excess);
            self.first_index += excess as u64;
            self.evicted += excess as u64;
            let first = self.first_index;
            if self.sort.is_some() {
                self.view.retain(|i| *i >= first);
            } else {
                let gone = self.view.partition_point(|i| *i < first);
                self.view.drain(..gone);
                if let Some(n) = self.frozen_len.as_mut() {
                    *n = n.saturating_sub(gone);
                }
            }
        }
    }

    /// Stored rows, rows passing the filter, rows evicted by the cap.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, u64) {
        (self.rows.len(), self.view.len(), self.evicted)
    }

    /// True while the view is frozen (paused or sorted).
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.frozen_len.is_some()
    }

    /// Pauses (keeps buffering) or resumes following the newest rows.
    pub fn toggle_pause(&mut self) {
        if self.frozen_len.is_some() {
            self.jump_to_live();
        } else {
            self.frozen_len = Some(self.view.len());
        }
    }

    /// Unpauses, clears any sort, and follows the newest rows again.
    pub fn jump_to_live(&mut self) {
        self.frozen_len = None;
        if self.sort.take().is_some() {
            self.rebuild_view();
        }
    }

    /// Sets the filter text; on a syntax error the old filter stays and the error is shown.
    pub fn set_filter(&mut self, text: &str) {
        self.filter_text = text.to_owned();
        match Filter::parse(text) {
            Ok(filter) => {
                self.filter = filter;
                self.filter_error = None;
                self.rebuild_view();
            }
            Err(e) => self.filter_error = Some(e.to_string()),
        }
    }

    /// The current filter error, if the text does not parse.
    #[must_use]
    pub fn filter_error(&self) -> Option<&str> {
        self.filter_error.as_deref()
    }

    /// Keyboard focus goes to the filter box on the next frame (Ctrl+F).
    pub fn focus_filter(&mut self) {
        self.focus_filter = true;
    }

    fn rebuild_view(&mut self) {
        let first = self.first_index;
        self.view = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, e)| self.filter.matches(*e))
            .map(|(i, _)| first + i as u64)
            .collect();
        if let Some((column, ascending)) = self.sort {
            self.sort_view(column, ascending);
        }
        if self.frozen_len.is_some() {
            self.frozen_len = Some(self.view.len());
        }
    }

    fn sort_view(&mut self, column: SortColumn, ascending: bool) {
        let rows = &self.rows;
        let first = self.first_index;
        let get = |i: &u64| usize::try_from(i - first).ok().and_then(|k| rows.get(k));
        self.view.sort_by(|a, b| {
            let (Some(x), Some(y)) = (get(a), get(b)) else {
                return std::cmp::Ordering::Equal;
            };
            let ordering = match column {
                SortColumn::Time => x.meta.ts_micros.cmp(&y.meta.ts_micros),
                SortColumn::Protocol => x.meta.protocol.cmp(&y.meta.protocol),
                SortColumn::Source => x.meta.src_ip.cmp(&y.meta.src_ip),
                SortColumn::Destination => x.meta.dst_ip.cmp(&y.meta.dst_ip),
                SortColumn::DstPort => x.meta.dst_port.cmp(&y.meta.dst_port),
                SortColumn::Length => x.meta.wire_len.cmp(&y.meta.wire_len),
                SortColumn::Verdict => x.verdict.action.cmp(&y.verdict.action),
            };
            if ascending { ordering } else { ordering.reverse() }
        });
    }

    /// Sorts by `column` (again: reverses). A sorted view is frozen until "Jump to live".
    pub fn sort_by(&mut self, column: SortColumn) {
        let ascending = match self.sort {
            Some((c, asc)) if c == column => !asc,
            _ => true,
        };
        self.sort = Some((column, ascending));
        self.sort_view(column, ascending);
        self.frozen_len = Some(self.view.len());
    }

    fn row(&self, index: u64) -> Option<&Event> {
        usize::try_from(index.checked_sub(self.first_index)?)
            .ok()
            .and_then(|k| self.rows.get(k))
    }

    /// The selected event, if still stored.
    #[must_use]
    pub fn selected(&self) -> Option<&Event> {
        self.selected.and_then(|i| self.row(i))
    }

    /// Selects the `n`-th shown row (tests and keyboard).
    pub fn select_shown(&mut self, n: usize) {
        self.selected = self.view.get(n).copied();
    }

    /// Events currently shown (filtered), oldest first, for exports and the what-if preview.
    pub fn shown(&self) -> impl Iterator<Item = &Event> {
        self.view.iter().filter_map(|i| self.row(*i))
    }

    /// The most recent `n` stored events (any filter).
    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Event> {
        self.rows.iter().skip(self.rows.len().saturating_sub(n))
    }

    /// Shows the toolbar, the table and, for a selected row, the details pane.
    pub fn ui(&mut self, ui: &mut egui::Ui, rules: &RuleSet, raw: &RawStore) {
        self.toolbar_ui(ui);
        let details_height = if self.selected().is_some() {
            ui.available_height() * 0.42
        } else {
            0.0
        };
        let table_height = (ui.available_height() - details_height).max(120.0);
        ui.allocate_ui(egui::vec2(ui.available_width(), table_height), |ui| {
            self.table_ui(ui)
        });
        if let Some(event) = self.selected().cloned() {
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt("details")
                .auto_shrink([false; 2])
                .show(ui, |ui| details_ui(ui, &event, rules, raw));
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Filter:");
            let mut text = self.filter_text.clone();
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text("src:10.0.0.0/8 port:22 proto:tcp verdict:block !dir:out")
                        .desired_width(420.0),
                )
                .labelled_by(label.id);
            if self.focus_filter {
                edit.request_focus();
                self.focus_filter = false;
            }
            if text != self.filter_text {
                self.set_filter(&text);
            }
            let pause_label = if self.is_paused() { "Resume" } else { "Pause" };
            if ui.button(pause_label).clicked() {
                self.toggle_pause();
            }
            if self.is_paused() {
                let waiting = self.view.len().saturating_sub(self.frozen_len.unwrap_or(0));
                if ui.button(format!("Jump to live ({waiting} new)")).clicked() {
                    self.jump_to_live();
                }
            }
            let (stored, shown, evicted) = self.counts();
            ui.label(format!(
                "{stored} stored, {shown} shown, {evicted} evicted (cap {})",
                self.row_cap
            ));
        });
        if let Some(error) = &self.filter_error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
    }

    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let shown = self.frozen_len.unwrap_or(self.view.len()).min(self.view.len());
        let follow = self.frozen_len.is_none();
        let dark = ui.visuals().dark_mode;
        let mut clicked: Option<u64> = None;
        let mut sort_clicked: Option<SortColumn> = None;
        let mut menu_action: Option<(u64, MenuChoice)> = None;
        let sort_state = self.sort;
        // Clicks select rows; selectable labels would swallow them for text selection.
        ui.style_mut().interaction.selectable_labels = false;
        TableBuilder::new(ui)
            .striped(true)
            .stick_to_bottom(follow)
            .sense(egui::Sense::click())
            .column(Column::initial(150.0).at_least(90.0))
            .column(Column::initial(40.0))
            .column(Column::initial(55.0))
            .column(Column::initial(55.0))
            .column(Column::initial(180.0).at_least(80.0))
            .column(Column::initial(55.0))
            .column(Column::initial(180.0).at_least(80.0))
            .column(Column::initial(55.0))
            .column(Column::initial(50.0))
            .column(Column::initial(55.0))
            .column(Column::initial(95.0))
            .column(Column::initial(110.0))
            .column(Column::remainder().at_least(80.0))
            .header(20.0, |mut header| {
                let titles: [(&str, Option<SortColumn>); 13] = [
                    ("Time", Some(SortColumn::Time)),
                    ("Dir", None),
                    ("Iface", None),
                    ("Proto", Some(SortColumn::Protocol)),
                    ("Source", Some(SortColumn::Source)),
                    ("SPort", None),
                    ("Destination", Some(SortColumn::Destination)),
                    ("DPort", Some(SortColumn::DstPort)),
                    ("Len", Some(SortColumn::Length)),
                    ("Flags", None),
                    ("Verdict", Some(SortColumn::Verdict)),
                    ("Rule", None),
                    ("Names", None),
                ];
                for (title, column) in titles {
                    header.col(|ui| {
                        let marker = match (column, sort_state) {
                            (Some(c), Some((s, asc))) if c == s => {
                                if asc {
                                    " ^"
                                } else {
                                    " v"
                                }
                            }
                            _ => "",
                        };
                        let text = RichText::new(format!("{title}{marker}")).strong();
                        if let Some(column) = column {
                            if ui.add(egui::Button::new(text).frame(false)).clicked() {
                                sort_clicked = Some(column);
                            }
                        } else {
                            ui.label(text);
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, shown, |mut row| {
                    let Some(&index) = self.view.get(row.index()) else {
                        return;
                    };
                    let Some(event) = self.row(index) else {
                        return;
                    };
                    row.set_selected(self.selected == Some(index));
                    let m = &event.meta;
                    row.col(|ui| {
                        ui.label(
                            crate::cli::output::iso_time(m.ts_micros)
                                .get(11..26)
                                .unwrap_or(""),
                        );
                    });
                    row.col(|ui| {
                        ui.label(m.direction.name());
                    });
                    row.col(|ui| {
                        ui.label(&*event.iface);
                    });
                    row.col(|ui| {
                        ui.label(m.protocol_name());
                    });
                    row.col(|ui| {
                        ui.label(m.src_ip.map(|ip| ip.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(m.src_port.map(|p| p.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(m.dst_ip.map(|ip| ip.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(m.dst_port.map(|p| p.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(m.wire_len.to_string());
                    });
                    row.col(|ui| {
                        let text = match (m.tcp_flags, m.icmp_type_code) {
                            (Some(f), _) => f.letters(),
                            (None, Some((t, c))) => format!("{t}/{c}"),
                            _ => String::new(),
                        };
                        ui.label(text);
                    });
                    row.col(|ui| {
                        let mut text = event.verdict.action.name().to_owned();
                        if event.kernel_dropped {
                            text.push_str(" (kernel drop)");
                        }
                        if m.malformed.is_some() {
                            text.push_str(" !");
                        }
                        ui.label(
                            RichText::new(text)
                                .color(action_color(event.verdict.action, dark))
                                .strong(),
                        );
                    });
                    row.col(|ui| {
                        let mut text = event.rule_label().to_owned();
                        if let Some(alert) = &event.alert {
                            text = format!("{text} [{}]", alert.kind.name());
                        }
                        ui.label(text);
                    });
                    row.col(|ui| {
                        let names = match (&event.src_name, &event.dst_name) {
                            (Some(s), Some(d)) => format!("{s} -> {d}"),
                            (Some(s), None) => s.to_string(),
                            (None, Some(d)) => format!("-> {d}"),
                            (None, None) => String::new(),
                        };
                        ui.label(names);
                    });
                    let response = row.response();
                    if response.clicked() {
                        clicked = Some(index);
                    }
                    response.context_menu(|ui| {
                        if let Some(choice) = menu_ui(ui) {
                            menu_action = Some((index, choice));
                            ui.close();
                        }
                    });
                });
            });
        if let Some(index) = clicked {
            self.selected = if self.selected == Some(index) {
                None
            } else {
                Some(index)
            };
        }
        if let Some(column) = sort_clicked {
            self.sort_by(column);
        }
        if let Some((index, choice)) = menu_action {
            self.apply_menu(ui, index, choice);
        }
    }

    fn apply_menu(&mut self, ui: &egui::Ui, index: u64, choice: MenuChoice) {
        let Some(event) = self.row(index).cloned() else {
            return;
        };
        match choice {
            MenuChoice::Block(side, secs) => {
                let addr = if side == Side::Destination {
                    event.meta.dst_ip
                } else {
                    event.meta.src_ip
                };
                if let Some(addr) = addr {
                    let reason = format!(
                        "from the traffic table: {} {} rule {}",
                        event.meta.protocol_name(),
                        event.verdict.action.name(),
                        event.rule_label()
                    );
                    self.actions.push(TrafficAction::Block { addr, secs, reason });
                }
            }
            MenuChoice::Rule(action, side) => {
                if let Some(spec) = rule_from(&event, action, side) {
                    self.actions.push(TrafficAction::EditNewRule(spec));
                }
            }
            MenuChoice::Copy => ui.ctx().copy_text(row_text(&event)),
            MenuChoice::Select => self.selected = Some(index),
        }
    }
}

/// The right-click menu's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuChoice {
    Block(Side, Option<u64>),
    Rule(Action, Side),
    Copy,
    Select,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
    Flow,
}

fn menu_ui(ui: &mut egui::Ui) -> Option<MenuChoice> {
    let mut choice = None;
    for (label, secs) in [
        ("Block source", None),
        ("Block source for 10 min", Some(600)),
        ("Block source for 1 hour", Some(3_600)),
        ("Block source for 1 day", Some(86_400)),
    ] {
        if ui.button(label).clicked() {
            choice = Some(MenuChoice::Block(Side::Source, secs));
        }
    }
    if ui.button("Block destination").clicked() {
        choice = Some(MenuChoice::Block(Side::Destination, None));
    }
    ui.separator();
    if ui.button("Block rule for source").clicked() {
        choice = Some(MenuChoice::Rule(Action::Block, Side::Source));
    }
    if ui.button("Block rule for destination").clicked() {
        choice = Some(MenuChoice::Rule(Action::Block, Side::Destination));
    }
    if ui.button("Block rule for this flow").clicked() {
        choice = Some(MenuChoice::Rule(Action::Block, Side::Flow));
    }
    if ui.button("Allow rule for this flow").clicked() {
        choice = Some(MenuChoice::Rule(Action::Allow, Side::Flow));
    }
    if ui.button("Show details").clicked() {
        choice = Some(MenuChoice::Select);
    }
    if ui.button("Copy row").clicked() {
        choice = Some(MenuChoice::Copy);
    }
    choice
}

/// A pre-filled rule for the editor, made from one packet.
fn rule_from(event: &Event, action: Action, side: Side) -> Option<RuleSpec> {
    let m = &event.meta;
    let protocol = match m.protocol {
        Some(IpProto::TCP) => Protocol::Tcp,
        Some(IpProto::UDP) => Protocol::Udp,
        Some(IpProto::ICMP) => Protocol::Icmp,
        Some(IpProto::ICMPV6) => Protocol::Icmpv6,
        Some(IpProto(n)) => Protocol::Number(n),
        None => Protocol::Any,
    };
    let verb = if action == Action::Block { "block" } else { "allow" };
    let spec = match side {
        Side::Source => RuleSpec {
            name: format!("{verb} {}", m.src_ip?),
            action,
            src: vec![m.src_ip?.to_string()],
            ..RuleSpec::default()
        },
        Side::Destination => RuleSpec {
            name: format!("{verb} {}", m.dst_ip?),
            action,
            dst: vec![m.dst_ip?.to_string()],
            ..RuleSpec::default()
        },
        Side::Flow => RuleSpec {
            name: format!("{verb} {} {} -> {}", protocol.name(), m.src_ip?, m.dst_ip?),
            action,
            protocol,
            src: vec![m.src_ip?.to_string()],
            dst: vec![m.dst_ip?.to_string()],
            dst_ports: m
                .dst_port
                .filter(|_| protocol.can_have_ports())
                .map(|p| vec![p.to_string()])
                .unwrap_or_default(),
            direction: RuleDirection::Any,
            ..RuleSpec::default()
        },
    };
    Some(RuleSpec {
        comment: format!(
            "made from a packet seen at {}",
            crate::cli::output::iso_time(m.ts_micros)
        ),
        ..spec
    })
}

/// The row as one line of text (the CLI's format), for the clipboard.
#[must_use]
pub fn row_text(event: &Event) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    crate::cli::output::write_text_line(event, &mut out).ok();
    String::from_utf8_lossy(&out).trim_end().to_owned()
}

/// The details pane: summary, why (each rule tried), every parsed layer and a hex dump.
fn details_ui(ui: &mut egui::Ui, event: &Event, rules: &RuleSet, raw: &RawStore) {
    ui.strong(row_text(event));
    ui.columns(2, |columns| {
        let left = &mut columns[0];
        left.heading("Why this verdict");
        let explanation = rules.explain(&event.meta, &event.iface);
        for step in &explanation.steps {
            let text = match &step.outcome {
                crate::rules::StepOutcome::Matched => {
                    format!("rule {} {:?}: MATCHED", step.rule.0 + 1, &*step.name)
                }
                crate::rules::StepOutcome::Skipped(reason) => {
                    format!("rule {} {:?}: skipped, {reason}", step.rule.0 + 1, &*step.name)
                }
            };
            left.label(text);
        }
        left.label(RichText::new(explanation.summary()).strong());
        if let Some(alert) = &event.alert {
            left.label(format!(
                "Detection: {} from {} ({})",
                alert.kind.name(),
                alert.src_ip,
                alert.reason
            ));
        }
        let right = &mut columns[1];
        match raw.get(event.seq) {
            Some(frame) => {
                right.heading("Layers");
                for layer in packet::describe(frame.link, &frame.data) {
                    egui::CollapsingHeader::new(&layer.name)
                        .default_open(true)
                        .show(right, |ui| {
                            for (name, value) in &layer.fields {
                                ui.label(format!("{name}: {value}"));
                            }
                        });
                }
                right.heading("Bytes");
                right.label(RichText::new(packet::hex_dump(&frame.data)).monospace());
            }
            None => {
                right.label("The raw bytes of this packet are no longer held (recent packets only).");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::packet::{LinkType, PacketMeta};
    use crate::rules::Verdict;

    pub(crate) fn event(seq: u64, src: &str, dport: u16, action: Action) -> Event {
        let mut meta = PacketMeta::new(i64::try_from(seq).unwrap() * 1000, 60, 60, LinkType::Ethernet);
        meta.src_ip = Some(src.parse().unwrap());
        meta.dst_ip = Some("192.168.1.50".parse().unwrap());
        meta.protocol = Some(IpProto::TCP);
        meta.src_port = Some(40_000);
        meta.dst_port = Some(dport);
        Event {
            seq,
            meta,
            verdict: Verdict { action, rule: None },
            rule_name: None,
            iface: Arc::from("eth0"),
            alert: None,
            src_name: None,
            dst_name: None,
            kernel_dropped: false,
        }
    }

    #[test]
    fn cap_evicts_oldest_and_keeps_the_view_consistent() {
        let mut t = TrafficPanel::new(100);
        t.set_filter("port:22");
        t.push((0..250).map(|i| event(i, "10.0.0.1", if i % 2 == 0 { 22 } else { 80 }, Action::Allow)));
        assert_eq!(t.counts(), (100, 50, 150));
        assert_eq!(t.shown().next().unwrap().seq, 150);
        assert!(t.shown().all(|e| e.meta.dst_port == Some(22)));
    }

    #[test]
    fn pause_buffers_and_jump_to_live_returns() {
        let mut t = TrafficPanel::new(1000);
        t.push((0..10).map(|i| event(i, "10.0.0.1", 22, Action::Allow)));
        t.toggle_pause();
        t.push((10..20).map(|i| event(i, "10.0.0.1", 22, Action::Allow)));
        assert_eq!(t.frozen_len, Some(10));
        assert_eq!(t.counts().1, 20, "nothing is lost while paused");
        t.jump_to_live();
        assert!(!t.is_paused());
    }

    #[test]
    fn sort_freezes_and_orders() {
        let mut t = TrafficPanel::new(1000);
        t.push([
            event(1, "10.0.0.3", 80, Action::Block),
            event(2, "10.0.0.1", 22, Action::Allow),
        ]);
        t.sort_by(SortColumn::Source);
        assert_eq!(t.shown().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
        t.sort_by(SortColumn::Source);
        assert_eq!(t.shown().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert!(t.is_paused());
    }

    #[test]
    fn rules_made_from_a_packet() {
        let e = event(1, "203.0.113.7", 22, Action::Allow);
        let spec = rule_from(&e, Action::Block, Side::Flow).unwrap();
        assert_eq!(spec.name, "block tcp 203.0.113.7 -> 192.168.1.50");
        assert_eq!(spec.dst_ports, vec!["22"]);
        assert_eq!(spec.protocol, Protocol::Tcp);
        let spec = rule_from(&e, Action::Block, Side::Source).unwrap();
        assert_eq!(spec.src, vec!["203.0.113.7"]);
        assert!(spec.dst.is_empty());
    }
}
