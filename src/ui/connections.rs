//! The connections view: one row per flow of the engine's flow table (`flows::FlowSnapshot`) with the
//! program and user behind it, both ends, the remote host's name, first and last packet, packets and
//! bytes each way, the verdicts its packets got, the deciding rule and the TCP state; sortable by clicking a
//! header, filtered with the traffic table's language (`app:firefox user:alice port:443`), virtual-scrolled.
//!
//! Per frame the view costs O(visible rows): it reads the snapshot (one atomic load) and draws the rows it
//! shows, whose counters are live atomics. The list of shown flows (filter, ageing, sort) is rebuilt when
//! the engine publishes a new snapshot (flows came or went), the filter or sort changes, or once a second
//! for the live columns; a rebuild costs O(flows log flows) and is spaced out so it takes at most about 5%
//! of the time when the table is very large.
//!
//! Closed TCP connections age out after a time set in the tab (default 2 minutes, on packet time as the
//! engine's own ageing): the app starts capture with that time as the flow table's `closed_secs`, and
//! the view hides closed flows past it at once when it is lowered.
//!
//! Right-click, the Menu key or Shift+F10 on a row: block the remote address (the app's block action, a job
//! for the kernel guard), or open the rule editor with a new rule for this program or this user. For screen
//! readers the table is a `Table` node and each visible row a `Row` named by one sentence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::RichText;
use egui_extras::{Column, TableBuilder};

use super::details::program_lines;
use super::traffic::TrafficAction;
use super::widgets::{
    FilterBox, OwnerState, keyboard_menu_ui, menu_key_pressed, selection_move, sort_header_ui, table_row_ui,
    verdict_color,
};
use crate::attrib::Attribution;
use crate::detect::AlertKind;
use crate::filter::FilterSubject;
use crate::flows::{Endpoint, Flow, FlowDirection, FlowSnapshot, SharedFlows, TcpState};
use crate::packet::{Direction, IpProto, LinkType, NetworkKind, PacketMeta};
use crate::rules::{Action, RuleDirection, RuleSpec, UserSpec};
use crate::text::escape;

/// How long closed connections stay in the view by default (seconds of packet time).
pub const DEFAULT_KEEP_CLOSED_SECS: u32 = 120;
/// The live columns (counters, last seen, state) are re-sorted and re-filtered this often at most.
const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// A rebuild waits at least this many times its last cost after the previous one (about 5% of the time).
const REBUILD_SPACING: u32 = 20;
/// Columns of the table.
const COLUMNS: usize = 16;

/// Columns that can be sorted by clicking their header (every column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnColumn {
    Program,
    User,
    Direction,
    Protocol,
    Local,
    Remote,
    RemoteName,
    FirstSeen,
    LastSeen,
    PacketsOut,
    BytesOut,
    PacketsIn,
    BytesIn,
    Verdicts,
    Rule,
    State,
}

impl ConnColumn {
    const ALL: [Self; COLUMNS] = [
        Self::Program,
        Self::User,
        Self::Direction,
        Self::Protocol,
        Self::Local,
        Self::Remote,
        Self::RemoteName,
        Self::FirstSeen,
        Self::LastSeen,
        Self::PacketsOut,
        Self::BytesOut,
        Self::PacketsIn,
        Self::BytesIn,
        Self::Verdicts,
        Self::Rule,
        Self::State,
    ];

    /// The header text (also what tests click).
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Program => "Program",
            Self::User => "User",
            Self::Direction => "Dir",
            Self::Protocol => "Proto",
            Self::Local => "Local",
            Self::Remote => "Remote",
            Self::RemoteName => "Remote name",
            Self::FirstSeen => "First seen",
            Self::LastSeen => "Last seen",
            Self::PacketsOut => "Pkts out",
            Self::BytesOut => "Bytes out",
            Self::PacketsIn => "Pkts in",
            Self::BytesIn => "Bytes in",
            Self::Verdicts => "Verdicts",
            Self::Rule => "Rule",
            Self::State => "State",
        }
    }

    fn column(self) -> Column {
        // About 1,300 points in all: the window's default width.
        match self {
            Self::Program => Column::initial(110.0).at_least(60.0).clip(true),
            Self::User => Column::initial(64.0).clip(true),
            Self::Direction => Column::initial(34.0),
            Self::Protocol => Column::initial(36.0),
            Self::Local | Self::Remote => Column::initial(130.0).at_least(80.0).clip(true),
            Self::RemoteName => Column::initial(110.0).clip(true),
            Self::FirstSeen | Self::LastSeen => Column::initial(62.0),
            Self::PacketsOut | Self::PacketsIn => Column::initial(50.0),
            Self::BytesOut | Self::BytesIn => Column::initial(58.0),
            Self::Verdicts => Column::initial(64.0).clip(true),
            Self::Rule => Column::initial(84.0).clip(true),
            Self::State => Column::remainder().at_least(60.0).clip(true),
        }
    }
}

/// A sort key: every flow of one column gives the same variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Number(i128),
    Text(String),
    End(Endpoint),
}

fn sort_key(column: ConnColumn, flow: &Flow) -> SortKey {
    let owner = OwnerState::of_flow(Some(flow));
    match column {
        ConnColumn::Program => SortKey::Text(owner.program_text().into_owned()),
        ConnColumn::User => SortKey::Text(owner.user_text()),
        ConnColumn::Direction => SortKey::Text(flow.direction.name().to_owned()),
        ConnColumn::Protocol => SortKey::Number(i128::from(flow.key.protocol)),
        ConnColumn::Local => SortKey::End(flow.local),
        ConnColumn::Remote => SortKey::End(flow.remote),
        ConnColumn::RemoteName => {
            SortKey::Text(flow.remote_name().map(|n| n.to_string()).unwrap_or_default())
        }
        ConnColumn::FirstSeen => SortKey::Number(i128::from(flow.first_seen_micros)),
        ConnColumn::LastSeen => SortKey::Number(i128::from(flow.last_seen_micros())),
        ConnColumn::PacketsOut => SortKey::Number(i128::from(flow.tx().0)),
        ConnColumn::BytesOut => SortKey::Number(i128::from(flow.tx().1)),
        ConnColumn::PacketsIn => SortKey::Number(i128::from(flow.rx().0)),
        ConnColumn::BytesIn => SortKey::Number(i128::from(flow.rx().1)),
        ConnColumn::Verdicts => SortKey::Number(i128::from(verdict_rank(&flow.verdicts_seen()))),
        ConnColumn::Rule => SortKey::Text(flow.rule().map(|r| r.to_string()).unwrap_or_default()),
        ConnColumn::State => SortKey::Number(flow.tcp_state() as i128),
    }
}

/// The strictest verdict a flow's packets got: block, else log, else allow.
fn strictest(verdicts: &[Action]) -> Action {
    [Action::Block, Action::Log, Action::Allow]
        .into_iter()
        .find(|a| verdicts.contains(a))
        .unwrap_or(Action::Allow)
}

/// Orders flows by their verdicts: allow only < log < block, and mixed ones after pure ones.
fn verdict_rank(verdicts: &[Action]) -> u8 {
    let strict = match strictest(verdicts) {
        Action::Allow => 0,
        Action::Log => 2,
        Action::Block => 4,
    };
    strict + u8::from(verdicts.len() > 1)
}

/// A flow seen through the filter's eyes: the packet facts of its first packet (source is who opened it),
/// the strictest verdict its packets got, its last rule, and its owner.
pub struct FlowSubject<'a> {
    flow: &'a Flow,
    meta: PacketMeta,
    action: Action,
    rule: Option<Arc<str>>,
}

impl<'a> FlowSubject<'a> {
    /// Wraps `flow` for `Filter::matches`.
    #[must_use]
    pub fn new(flow: &'a Flow) -> Self {
        let mut meta = PacketMeta::new(flow.first_seen_micros, 0, 0, LinkType::Ethernet);
        let (src, dst) = if flow.direction == FlowDirection::Inbound {
            (flow.remote, flow.local)
        } else {
            (flow.local, flow.remote)
        };
        meta.network = if src.ip.is_ipv4() {
            NetworkKind::Ipv4
        } else {
            NetworkKind::Ipv6
        };
        meta.src_ip = Some(src.ip);
        meta.dst_ip = Some(dst.ip);
        meta.protocol = Some(IpProto(flow.key.protocol));
        let ports = flow.key.protocol == IpProto::TCP.0 || flow.key.protocol == IpProto::UDP.0;
        meta.src_port = ports.then_some(src.port);
        meta.dst_port = ports.then_some(dst.port);
        meta.direction = match flow.direction {
            FlowDirection::Outbound => Direction::Out,
            FlowDirection::Inbound => Direction::In,
            FlowDirection::Local => Direction::Local,
            FlowDirection::Unknown => Direction::Unknown,
        };
        Self {
            flow,
            meta,
            action: strictest(&flow.verdicts_seen()),
            rule: flow.rule(),
        }
    }

    fn remote_is_source(&self) -> bool {
        self.flow.direction == FlowDirection::Inbound
    }
}

impl FilterSubject for FlowSubject<'_> {
    fn meta(&self) -> &PacketMeta {
        &self.meta
    }
    fn action(&self) -> Action {
        self.action
    }
    fn rule_name(&self) -> Option<&str> {
        self.rule.as_deref()
    }
    fn iface(&self) -> &str {
        &self.flow.iface
    }
    fn alert_kind(&self) -> Option<AlertKind> {
        None
    }
    fn src_name(&self) -> Option<&str> {
        self.flow
            .remote_name()
            .filter(|_| self.remote_is_source())
            .map(|n| &**n)
    }
    fn dst_name(&self) -> Option<&str> {
        self.flow
            .remote_name()
            .filter(|_| !self.remote_is_source())
            .map(|n| &**n)
    }
    fn kernel_dropped(&self) -> bool {
        false
    }
    fn attribution(&self) -> Option<&Attribution> {
        self.flow.attribution()
    }
}

/// The panel's state.
pub struct ConnectionsPanel {
    /// The snapshot `view` indexes.
    snapshot: Option<Arc<FlowSnapshot>>,
    /// A newer snapshot, shown from the next rebuild.
    next: Option<Arc<FlowSnapshot>>,
    /// Indices into the snapshot's flows that are shown, in display order.
    view: Vec<usize>,
    /// Closed flows hidden by ageing at the last rebuild.
    aged_out: usize,
    filter: FilterBox,
    sort: Option<(ConnColumn, bool)>,
    keep_closed_secs: u32,
    /// The `closed_secs` the running capture's flow table was started with.
    engine_closed_secs: Option<u32>,
    /// The filter, sort or ageing changed: rebuild on the next frame.
    dirty: bool,
    last_rebuild: Option<Instant>,
    rebuild_cost: Duration,
    selected: Option<Arc<Flow>>,
    scroll_to: Option<usize>,
    focus_selected: bool,
    open_menu: bool,
    page_rows: usize,
    /// Ids of the rows drawn last frame: the table has the keyboard when one of them has focus.
    row_ids: Vec<egui::Id>,
    /// Requests for the app (block the remote, open the rule editor), drained each frame.
    pub actions: Vec<TrafficAction>,
}

impl Default for ConnectionsPanel {
    fn default() -> Self {
        Self::new(DEFAULT_KEEP_CLOSED_SECS)
    }
}

impl ConnectionsPanel {
    /// An empty view keeping closed connections `keep_closed_secs` seconds.
    #[must_use]
    pub fn new(keep_closed_secs: u32) -> Self {
        Self {
            snapshot: None,
            next: None,
            view: Vec::new(),
            aged_out: 0,
            filter: FilterBox::default(),
            sort: None,
            keep_closed_secs,
            engine_closed_secs: None,
            dirty: true,
            last_rebuild: None,
            rebuild_cost: Duration::ZERO,
            selected: None,
            scroll_to: None,
            focus_selected: false,
            open_menu: false,
            page_rows: 20,
            row_ids: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// How long closed connections are kept (seconds).
    #[must_use]
    pub fn keep_closed_secs(&self) -> u32 {
        self.keep_closed_secs
    }

    /// Changes how long closed connections are kept; the view follows at once.
    pub fn set_keep_closed_secs(&mut self, secs: u32) {
        if secs != self.keep_closed_secs {
            self.keep_closed_secs = secs;
            self.dirty = true;
        }
    }

    /// Tells the view how long the running capture's flow table keeps closed flows (`None`: no capture).
    pub fn set_engine_closed_secs(&mut self, secs: Option<u32>) {
        self.engine_closed_secs = secs;
    }

    /// Sets the filter text; on a syntax error the old filter stays and the error is shown.
    pub fn set_filter(&mut self, text: &str) {
        if self.filter.set(text) {
            self.dirty = true;
        }
    }

    /// The current filter error, if the text does not parse.
    #[must_use]
    pub fn filter_error(&self) -> Option<&str> {
        self.filter.error()
    }

    /// Keyboard focus goes to the filter box on the next frame (Ctrl+F).
    pub fn focus_filter(&mut self) {
        self.filter.focus();
    }

    /// Sorts by `column` (again: reverses).
    pub fn sort_by(&mut self, column: ConnColumn) {
        let ascending = match self.sort {
            Some((c, asc)) if c == column => !asc,
            _ => true,
        };
        self.sort = Some((column, ascending));
        self.dirty = true;
    }

    /// Flows in the snapshot shown now, and how many of those the view shows.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (
            self.snapshot.as_ref().map_or(0, |s| s.flows.len()),
            self.view.len(),
        )
    }

    /// The flows shown, in display order.
    pub fn shown(&self) -> impl Iterator<Item = &Arc<Flow>> {
        let flows = self.snapshot.as_ref().map(|s| &s.flows);
        self.view
            .iter()
            .filter_map(move |i| flows.and_then(|f| f.get(*i)))
    }

    /// The selected flow, if any.
    #[must_use]
    pub fn selected(&self) -> Option<&Arc<Flow>> {
        self.selected.as_ref()
    }

    /// Selects the `n`-th shown flow (tests and the screenshot script).
    pub fn select_shown(&mut self, n: usize) {
        let flow = self.shown().nth(n).cloned();
        self.selected = flow;
        self.scroll_to = Some(n);
    }

    /// Takes the engine's latest snapshot, and rebuilds the shown list when it is due: at once after a
    /// filter, sort or ageing change; for a new snapshot or the live columns, spaced by its cost.
    pub fn refresh(&mut self, flows: Option<&SharedFlows>) {
        if let Some(shared) = flows {
            let latest = shared.snapshot();
            let current = self.next.as_ref().or(self.snapshot.as_ref());
            if current.is_none_or(|c| !Arc::ptr_eq(c, &latest)) {
                self.next = Some(latest);
            }
        }
        let since = self.last_rebuild.map(|t| t.elapsed());
        let spacing = (self.rebuild_cost * REBUILD_SPACING).min(LIVE_REFRESH);
        let due =
            self.dirty || since.is_none_or(|s| s >= LIVE_REFRESH || (self.next.is_some() && s >= spacing));
        if due {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let start = Instant::now();
        if let Some(next) = self.next.take() {
            self.snapshot = Some(next);
        }
        self.dirty = false;
        let Some(snapshot) = &self.snapshot else {
            self.view.clear();
            return;
        };
        // Flows age on packet time, as in the engine: the clock is the newest packet seen.
        let clock = snapshot
            .flows
            .iter()
            .map(|f| f.last_seen_micros())
            .max()
            .unwrap_or(0);
        let keep_micros = i64::from(self.keep_closed_secs) * 1_000_000;
        let filter = self.filter.filter();
        let mut aged_out = 0;
        let mut view: Vec<usize> = snapshot
            .flows
            .iter()
            .enumerate()
            .filter(|(_, flow)| {
                if flow.tcp_state() == TcpState::Closed
                    && clock.saturating_sub(flow.last_seen_micros()) > keep_micros
                {
                    aged_out += 1;
                    return false;
                }
                filter.is_empty() || filter.matches(&FlowSubject::new(flow))
            })
            .map(|(i, _)| i)
            .collect();
        if let Some((column, ascending)) = self.sort {
            let mut keyed: Vec<(SortKey, usize)> = view
                .iter()
                .filter_map(|i| snapshot.flows.get(*i).map(|f| (sort_key(column, f), *i)))
                .collect();
            // Stable: equal keys keep the order of first packet.
            keyed.sort_by(|a, b| {
                let ordering = a.0.cmp(&b.0);
                if ascending { ordering } else { ordering.reverse() }
            });
            view = keyed.into_iter().map(|(_, i)| i).collect();
        }
        // A selected flow the engine has dropped is no longer selected.
        if self
            .selected
            .as_ref()
            .is_some_and(|selected| !snapshot.flows.iter().any(|f| Arc::ptr_eq(f, selected)))
        {
            self.selected = None;
        }
        self.view = view;
        self.aged_out = aged_out;
        self.rebuild_cost = start.elapsed();
        self.last_rebuild = Some(Instant::now());
    }

    /// Where the selected flow is among the shown ones (O(shown); only on keyboard moves and menus).
    fn selected_position(&self) -> Option<usize> {
        let selected = self.selected.as_ref()?;
        self.shown().position(|f| Arc::ptr_eq(f, selected))
    }

    /// Moves the selection by `delta` rows (clamped; `isize::MIN`/`MAX` for the first and last) and gives
    /// it the keyboard focus.
    pub fn move_selection(&mut self, delta: isize) {
        let shown = self.view.len();
        if shown == 0 {
            return;
        }
        let target = match self.selected_position() {
            Some(at) => at.saturating_add_signed(delta).min(shown - 1),
            None if delta < 0 => shown - 1,
            None => 0,
        };
        let flow = self.shown().nth(target).cloned();
        self.selected = flow;
        self.scroll_to = Some(target);
        self.focus_selected = true;
    }

    /// The view's keys, when the focus is on one of its rows or on nothing.
    fn keyboard_ui(&mut self, ui: &egui::Ui) {
        let ctx = ui.ctx();
        let focused = ctx.memory(egui::Memory::focused);
        if focused.is_some_and(|id| !self.row_ids.contains(&id)) {
            return;
        }
        if let Some(delta) = selection_move(ctx, self.page_rows) {
            self.move_selection(delta);
        }
        if self.selected.is_some() && menu_key_pressed(ctx) {
            self.open_menu = true;
            self.scroll_to = self.selected_position();
        }
    }

    /// Shows the toolbar, the table and one line on the selected connection's program. `flows` is the
    /// running capture's table (`None`: no capture; the last snapshot stays).
    pub fn ui(&mut self, ui: &mut egui::Ui, flows: Option<&SharedFlows>) {
        self.refresh(flows);
        self.keyboard_ui(ui);
        self.toolbar_ui(ui);
        if self.snapshot.is_none() {
            ui.label(
                "No flow table: start a capture (live, or the demo) to see its connections. Programs are \
                 named for live captures; a replayed file says (offline).",
            );
            return;
        }
        let selected_line = self
            .selected
            .as_ref()
            .map(|flow| program_lines(OwnerState::of_flow(Some(flow))).join("  ·  "));
        let footer = if selected_line.is_some() { 26.0 } else { 0.0 };
        let table_height = (ui.available_height() - footer).max(120.0);
        ui.allocate_ui(egui::vec2(ui.available_width(), table_height), |ui| {
            self.table_ui(ui);
        });
        if let Some(line) = selected_line {
            ui.separator();
            ui.label(line);
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            if self.filter.ui(ui, "app:firefox user:alice port:443 !dir:in", 320.0) {
                self.dirty = true;
            }
            ui.separator();
            let label = ui.label("Keep closed connections for");
            let mut keep = self.keep_closed_secs;
            ui.add(
                egui::DragValue::new(&mut keep)
                    .range(0..=86_400)
                    .suffix(" s"),
            )
            .labelled_by(label.id)
            .on_hover_text(
                "A TCP connection closed by FIN or RST leaves the view this long after its last packet \
                 (packet time). Other flows leave after 5 minutes without packets.",
            );
            self.set_keep_closed_secs(keep);
            if let Some(engine) = self.engine_closed_secs
                && keep > engine
            {
                ui.label(
                    RichText::new(format!(
                        "this capture drops closed flows after {engine} s: restart capture to keep them longer"
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
            }
            ui.separator();
            let (total, shown) = self.counts();
            let stats = self.snapshot.as_ref().map(|s| s.stats).unwrap_or_default();
            let mut text = format!(
                "{total} connections, {shown} shown, {} aged out (closed)",
                self.aged_out
            );
            if stats.untracked > 0 {
                text.push_str(&format!(", {} packets untracked (table full)", stats.untracked));
            }
            if stats.attribution_dropped > 0 {
                text.push_str(&format!(
                    ", {} not looked up (attribution busy)",
                    stats.attribution_dropped
                ));
            }
            ui.label(text);
        });
        self.filter.error_ui(ui);
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one column per statement, clearer in one place"
    )]
    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let Some(snapshot) = self.snapshot.clone() else {
            return;
        };
        let shown = self.view.len();
        let (focus_selected, open_menu) = (self.focus_selected, self.open_menu);
        let mut selected_drawn = false;
        let mut row_ids = Vec::with_capacity(64);
        let dark = ui.visuals().dark_mode;
        let mut clicked: Option<(Arc<Flow>, usize)> = None;
        let mut sort_clicked: Option<ConnColumn> = None;
        let mut menu_action: Option<(Arc<Flow>, MenuChoice)> = None;
        let sort_state = self.sort;
        ui.style_mut().interaction.selectable_labels = false;
        let view = &self.view;
        let selected = self.selected.clone();
        self.page_rows = ((ui.available_height() - 20.0) / 18.0).max(1.0) as usize;
        let mut table = TableBuilder::new(ui);
        if let Some(n) = self.scroll_to.take() {
            table = table.scroll_to_row(n, Some(egui::Align::Center));
        }
        let mut table = table
            .id_salt("connections")
            .striped(true)
            .sense(egui::Sense::click());
        for column in ConnColumn::ALL {
            table = table.column(column.column());
        }
        table
            .header(20.0, |mut header| {
                for column in ConnColumn::ALL {
                    header.col(|ui| {
                        let sorted = sort_state.filter(|(c, _)| *c == column).map(|(_, asc)| asc);
                        if sort_header_ui(ui, column.title(), sorted) {
                            sort_clicked = Some(column);
                        }
                    });
                }
            })
            .body(|mut body| {
                let table_id = body.ui_mut().unique_id();
                body.ui_mut().ctx().accesskit_node_builder(table_id, |node| {
                    node.set_role(egui::accesskit::Role::Table);
                    node.set_label(format!("Connections: {shown} shown"));
                    node.set_row_count(shown);
                    node.set_column_count(COLUMNS);
                });
                body.rows(18.0, shown, |mut row| {
                    let Some(flow) = view.get(row.index()).and_then(|i| snapshot.flows.get(*i)) else {
                        return;
                    };
                    let is_selected = selected.as_ref().is_some_and(|s| Arc::ptr_eq(s, flow));
                    row.set_selected(is_selected);
                    let owner = OwnerState::of_flow(Some(flow));
                    let ((tx_packets, tx_bytes), (rx_packets, rx_bytes)) = (flow.tx(), flow.rx());
                    let verdicts = flow.verdicts_seen();
                    // Names come from processes, the network and the rules file: shown escaped.
                    row.col(|ui| {
                        ui.label(escape(&owner.program_text())).on_hover_ui(|ui| {
                            ui.label(escape(&owner.program_hover()));
                        });
                    });
                    row.col(|ui| {
                        ui.label(escape(&owner.user_text()));
                    });
                    row.col(|ui| {
                        ui.label(flow.direction.name());
                    });
                    row.col(|ui| {
                        ui.label(IpProto(flow.key.protocol).name());
                    });
                    row.col(|ui| {
                        ui.label(flow.local.to_string());
                    });
                    row.col(|ui| {
                        ui.label(flow.remote.to_string());
                    });
                    row.col(|ui| {
                        ui.label(flow.remote_name().map(|n| escape(n)).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(clock_text(flow.first_seen_micros));
                    });
                    row.col(|ui| {
                        ui.label(clock_text(flow.last_seen_micros()));
                    });
                    row.col(|ui| {
                        ui.label(tx_packets.to_string());
                    });
                    row.col(|ui| {
                        ui.label(bytes_text(tx_bytes));
                    });
                    row.col(|ui| {
                        ui.label(rx_packets.to_string());
                    });
                    row.col(|ui| {
                        ui.label(bytes_text(rx_bytes));
                    });
                    row.col(|ui| {
                        ui.label(
                            RichText::new(verdicts_text(&verdicts))
                                .color(verdict_color(strictest(&verdicts), dark))
                                .strong(),
                        );
                    });
                    row.col(|ui| {
                        ui.label(
                            flow.rule()
                                .map_or_else(|| "default".into(), |r| escape(&r).into_owned()),
                        );
                    });
                    row.col(|ui| {
                        ui.label(flow.tcp_state().name());
                    });
                    let response = row.response();
                    row_ids.push(response.id);
                    selected_drawn |= is_selected;
                    if table_row_ui(&response, is_selected, focus_selected, || flow_sentence(flow)) {
                        clicked = Some((Arc::clone(flow), row.index()));
                    }
                    response.context_menu(|ui| {
                        if let Some(choice) = menu_ui(ui, flow, false) {
                            menu_action = Some((Arc::clone(flow), choice));
                            ui.close();
                        }
                    });
                    if is_selected {
                        keyboard_menu_ui(&response, open_menu, |ui| {
                            if let Some(choice) = menu_ui(ui, flow, open_menu) {
                                menu_action = Some((Arc::clone(flow), choice));
                                ui.close();
                            }
                        });
                    }
                });
            });
        self.row_ids = row_ids;
        if selected_drawn {
            self.focus_selected = false;
            self.open_menu = false;
        }
        if let Some((flow, position)) = clicked {
            let again = self.selected.as_ref().is_some_and(|s| Arc::ptr_eq(s, &flow));
            self.selected = if again { None } else { Some(flow) };
            self.focus_selected = self.selected.is_some();
            self.scroll_to = Some(position);
        }
        if let Some(column) = sort_clicked {
            self.sort_by(column);
        }
        if let Some((flow, choice)) = menu_action {
            self.apply_menu(ui, &flow, choice);
        }
    }

    fn apply_menu(&mut self, ui: &egui::Ui, flow: &Flow, choice: MenuChoice) {
        let owner = OwnerState::of_flow(Some(flow));
        match choice {
            MenuChoice::Block(secs) => self.actions.push(TrafficAction::Block {
                addr: flow.remote.ip,
                secs,
                reason: format!(
                    "from the connections view: {} {} {} -> {}",
                    owner.program_text(),
                    IpProto(flow.key.protocol).name(),
                    flow.local,
                    flow.remote
                ),
            }),
            MenuChoice::ProgramRule => {
                if let Some(spec) = program_rule(flow) {
                    self.actions.push(TrafficAction::EditNewRule(spec));
                }
            }
            MenuChoice::UserRule => {
                if let Some(spec) = user_rule(flow) {
                    self.actions.push(TrafficAction::EditNewRule(spec));
                }
            }
            MenuChoice::Copy => {
                let mut out = Vec::new();
                // Writing to a Vec cannot fail.
                crate::export::export_flows_jsonl([flow], &mut out).ok();
                ui.ctx()
                    .copy_text(String::from_utf8_lossy(&out).trim_end().to_owned());
            }
        }
    }
}

/// The row menu's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuChoice {
    Block(Option<u64>),
    ProgramRule,
    UserRule,
    Copy,
}

/// The row menu; `focus_first` gives its first item the keyboard focus (opened with the Menu key).
fn menu_ui(ui: &mut egui::Ui, flow: &Flow, focus_first: bool) -> Option<MenuChoice> {
    let mut choice = None;
    for (label, secs) in [
        ("Block remote", None),
        ("Block remote for 1 hour", Some(3_600)),
        ("Block remote for 1 day", Some(86_400)),
    ] {
        let button = ui.button(label);
        if focus_first && secs.is_none() {
            button.request_focus();
        }
        if button.clicked() {
            choice = Some(MenuChoice::Block(secs));
        }
    }
    ui.separator();
    let attribution = flow.attribution();
    let program = attribution.and_then(Attribution::process).is_some();
    if ui
        .add_enabled(program, egui::Button::new("Rule for this program"))
        .on_disabled_hover_text("The program is not known")
        .clicked()
    {
        choice = Some(MenuChoice::ProgramRule);
    }
    let user = attribution.and_then(Attribution::user).is_some();
    if ui
        .add_enabled(user, egui::Button::new("Rule for this user"))
        .on_disabled_hover_text("The user is not known")
        .clicked()
    {
        choice = Some(MenuChoice::UserRule);
    }
    ui.separator();
    if ui.button("Copy row").clicked() {
        choice = Some(MenuChoice::Copy);
    }
    choice
}

/// Where a rule made from a connection comes from, for its comment.
fn made_from(flow: &Flow) -> String {
    format!(
        "made from a {} connection {} -> {} seen at {}",
        IpProto(flow.key.protocol).name(),
        flow.local,
        flow.remote,
        crate::text::iso_time(flow.first_seen_micros)
    )
}

/// A new Block rule for the flow's program (its executable path), for the editor; `None` when the
/// program is not known.
#[must_use]
pub fn program_rule(flow: &Flow) -> Option<RuleSpec> {
    let process = flow.attribution()?.process()?;
    Some(RuleSpec {
        name: format!("block {}", process.name()),
        action: Action::Block,
        program: Some(process.exe.clone()),
        comment: made_from(flow),
        ..RuleSpec::default()
    })
}

/// A new Block rule for the flow's user (by name when known, else uid), outbound for an outbound flow (the
/// direction the kernel can enforce a user rule in); `None` when the user is not known.
#[must_use]
pub fn user_rule(flow: &Flow) -> Option<RuleSpec> {
    let user = flow.attribution()?.user()?;
    let spec = match &user.name {
        Some(name) => UserSpec::Name(name.to_string()),
        None => UserSpec::Uid(user.uid),
    };
    Some(RuleSpec {
        name: format!("block user {spec}"),
        action: Action::Block,
        direction: if flow.direction == FlowDirection::Outbound {
            RuleDirection::Out
        } else {
            RuleDirection::Any
        },
        user: Some(spec),
        comment: made_from(flow),
        ..RuleSpec::default()
    })
}

/// `HH:MM:SS` (UTC) of a capture time.
fn clock_text(ts_micros: i64) -> String {
    crate::text::iso_time(ts_micros)
        .get(11..19)
        .unwrap_or("")
        .to_owned()
}

/// Bytes for a table cell: `950B`, `12.5kB`, `3.2MB`.
#[must_use]
pub fn bytes_text(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a rounded figure for display")]
    let value = bytes as f64;
    format!("{}B", super::stats::si_number(value))
}

/// The verdicts a flow's packets got: `allow`, `allow, block`.
fn verdicts_text(verdicts: &[Action]) -> String {
    verdicts.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// The flow as one sentence for a screen reader: `out tcp curl user alice 10.0.0.1:40000 to
/// 192.0.2.9:443 (example.org), established, 3 packets out, 2 in, allow, rule default`.
#[must_use]
pub fn flow_sentence(flow: &Flow) -> String {
    let owner = OwnerState::of_flow(Some(flow));
    let mut text = format!(
        "{} {} {}",
        flow.direction.name(),
        IpProto(flow.key.protocol).name(),
        escape(&owner.program_text())
    );
    let user = owner.user_text();
    if !user.is_empty() {
        text.push_str(" user ");
        text.push_str(&escape(&user));
    }
    text.push_str(&format!(" {} to {}", flow.local, flow.remote));
    if let Some(name) = flow.remote_name() {
        text.push_str(&format!(" ({})", escape(name)));
    }
    let state = flow.tcp_state();
    if state != TcpState::None {
        text.push_str(", ");
        text.push_str(state.name());
    }
    text.push_str(&format!(
        ", {} packets out, {} in, {}, rule {}",
        flow.tx().0,
        flow.rx().0,
        verdicts_text(&flow.verdicts_seen()),
        flow.rule()
            .map_or_else(|| "default".into(), |r| escape(&r).into_owned())
    ));
    text
}
