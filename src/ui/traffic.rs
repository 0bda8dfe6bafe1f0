//! The live traffic table: every captured packet with its verdict, virtual scrolling over up to a million
//! stored rows, the engine's filter language, follow/pause, column sort, a row cap with oldest-first
//! eviction, the details pane (`details.rs`) and a right-click menu (block, make a rule, copy). The Program
//! and User columns come from the engine's attribution (`model::Owners`); a row whose flow is still being
//! looked up says `unknown (pending)` and gets its program a few milliseconds later.
//!
//! Per frame the table costs O(new rows + visible rows): new rows are tested against the filter once when
//! they arrive and appended to the index list `view`; the full list is rebuilt only when the filter or the
//! sort changes.
//!
//! Keyboard: Up/Down/PageUp/PageDown/Home/End move the selection (and pause following so it stays in
//! view), Enter shows or hides the details, the Menu key or Shift+F10 opens the row menu, Space pauses.
//! For screen readers the table is a `Table` node and each visible row a `Row` named by one sentence
//! (`in tcp 203.0.113.7 port 30001 to 192.168.1.50 port 22, block, rule no ssh`, then `, program curl, user
//! alice` when known) that takes the keyboard focus when selected.

use std::collections::VecDeque;

use egui::{Key, Modifiers, RichText};
use egui_extras::{Column, TableBuilder};

use super::details::{details_ui, judged_by};
use super::model::{OWNER_PENDING, Row, RowStore, RowSubject};
use super::widgets::{
    FilterBox, flags_text, header_label_ui, keyboard_menu_ui, menu_key_pressed, names_text, row_sentence,
    selection_move, sort_header_ui, table_row_ui, time_text, verdict_rich_text,
};
use crate::engine::RawStore;
use crate::event::Event;
use crate::packet::{IpProto, PacketMeta};
use crate::rules::{Action, Protocol, RuleDirection, RuleSet, RuleSpec};
use crate::text::escape;

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
    Program,
    User,
}

/// Columns of the table.
const COLUMNS: usize = 15;

/// The table's state.
pub struct TrafficPanel {
    store: RowStore,
    filter: FilterBox,
    /// Absolute indices of the rows that pass the filter, in display order. A deque, so evicting from the
    /// front costs O(evicted), not a shift of a million entries.
    view: VecDeque<u64>,
    sort: Option<(SortColumn, bool)>,
    /// While paused (or sorted), only the first `n` entries of `view` are shown; rows keep arriving.
    frozen_len: Option<usize>,
    selected: Option<u64>,
    /// Scroll the table to this shown row on the next frame.
    scroll_to: Option<usize>,
    /// The details pane is shown for the selected row (Enter toggles it).
    details_open: bool,
    /// Give the selected row the keyboard focus on the next frame (after a keyboard move).
    focus_selected: bool,
    /// Open the selected row's menu on the next frame (Menu key, Shift+F10).
    open_menu: bool,
    /// Rows that fit in the table's height last frame (PageUp/PageDown).
    page_rows: usize,
    /// Ids of the rows drawn last frame: the table has the keyboard when one of them has focus.
    row_ids: Vec<egui::Id>,
    /// The rule sets rows were judged with, for "Why this verdict".
    rules_history: Option<std::sync::Arc<crate::engine::RulesHistory>>,
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
            store: RowStore::new(row_cap),
            filter: FilterBox::default(),
            view: VecDeque::new(),
            sort: None,
            frozen_len: None,
            selected: None,
            scroll_to: None,
            details_open: true,
            focus_selected: false,
            open_menu: false,
            page_rows: 20,
            row_ids: Vec::new(),
            rules_history: None,
            actions: Vec::new(),
        }
    }

    /// The engine's record of rule sets, so a row is explained with the rules that judged it.
    pub fn set_rules_history(&mut self, history: std::sync::Arc<crate::engine::RulesHistory>) {
        self.rules_history = Some(history);
    }

    /// Stores new events (O(batch)); evicts the oldest past the cap.
    pub fn push(&mut self, events: impl IntoIterator<Item = Event>) {
        // A filter on the program or user cannot judge a row whose lookup is still running: such rows join
        // the view when their owner is known (`settle_owners`).
        let wait_for_owner = self.filter.filter().uses_owner();
        for event in events {
            let index = self.store.push(&event);
            if !(wait_for_owner && event.attribution_pending()) && self.filter.filter().matches(&event) {
                self.view.push_back(index);
            }
        }
        self.settle_owners();
        let before = self.store.first_index();
        let first = self.store.evict();
        if first != before {
            if self.sort.is_some() {
                self.view.retain(|i| *i >= first);
                if let Some(n) = self.frozen_len.as_mut() {
                    *n = (*n).min(self.view.len());
                }
            } else {
                let gone = self.view.partition_point(|i| *i < first);
                self.view.drain(..gone);
                if let Some(n) = self.frozen_len.as_mut() {
                    *n = n.saturating_sub(gone);
                }
            }
        }
    }

    /// Gives rows whose program lookup finished their owner; with a filter on the program or user, the
    /// ones it accepts join the view in arrival order. O(rows still pending); called per batch and frame.
    pub fn settle_owners(&mut self) {
        let resolved = self.store.resolve_pending();
        if resolved.is_empty() || !self.filter.filter().uses_owner() {
            return;
        }
        for index in resolved {
            let Some(row) = self.store.get(index) else {
                continue;
            };
            if !self.filter.filter().matches(&RowSubject::new(row, &self.store)) {
                continue;
            }
            if self.sort.is_some() {
                // A sorted view takes new rows at its end, past the frozen part, as `push` does.
                self.view.push_back(index);
            } else {
                let at = self.view.partition_point(|i| *i < index);
                self.view.insert(at, index);
                if let Some(n) = self.frozen_len.as_mut()
                    && at < *n
                {
                    *n += 1;
                }
            }
        }
    }

    /// Changes the row cap (oldest rows go at the next batch).
    pub fn set_row_cap(&mut self, cap: usize) {
        self.store.set_cap(cap);
    }

    /// The row cap.
    #[must_use]
    pub fn row_cap(&self) -> usize {
        self.store.cap()
    }

    /// The stored rows.
    #[must_use]
    pub fn store(&self) -> &RowStore {
        &self.store
    }

    /// Stored rows, rows passing the filter, rows evicted by the cap.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, u64) {
        (self.store.len(), self.view.len(), self.store.evicted())
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
            self.pause();
        }
    }

    /// Stops following: the shown rows stay as they are while new ones are buffered.
    pub fn pause(&mut self) {
        if self.frozen_len.is_none() {
            self.frozen_len = Some(self.view.len());
        }
    }

    /// Unpauses, clears any sort, and follows the newest rows again, scrolled to the newest.
    pub fn jump_to_live(&mut self) {
        self.frozen_len = None;
        if self.sort.take().is_some() {
            self.rebuild_view();
        }
        self.scroll_to = self.view.len().checked_sub(1);
    }

    /// Sets the filter text; on a syntax error the old filter stays and the error is shown.
    pub fn set_filter(&mut self, text: &str) {
        if self.filter.set(text) {
            self.rebuild_view();
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

    fn rebuild_view(&mut self) {
        let store = &self.store;
        let filter = self.filter.filter();
        let wait_for_owner = filter.uses_owner();
        self.view = if filter.is_empty() {
            (self.store.first_index()..self.store.end_index()).collect()
        } else {
            store
                .iter()
                .filter(|(_, row)| {
                    !(wait_for_owner && row.owner == OWNER_PENDING)
                        && filter.matches(&RowSubject::new(row, store))
                })
                .map(|(i, _)| i)
                .collect()
        };
        if let Some((column, ascending)) = self.sort {
            self.sort_view(column, ascending);
        }
        if self.frozen_len.is_some() {
            self.frozen_len = Some(self.view.len());
        }
    }

    fn sort_view(&mut self, column: SortColumn, ascending: bool) {
        let store = &self.store;
        // Program and user order by their text: rank the few distinct owners once, then compare ranks.
        let ranks = match column {
            SortColumn::Program => owner_ranks(store, |o| o.program_text().into_owned()),
            SortColumn::User => owner_ranks(store, |o| o.user_text()),
            _ => Vec::new(),
        };
        let rank = |row: &Row| -> u32 {
            let slot = if row.owner == OWNER_PENDING {
                ranks.len().saturating_sub(1)
            } else {
                usize::try_from(row.owner).unwrap_or(usize::MAX)
            };
            ranks.get(slot).copied().unwrap_or(u32::MAX)
        };
        // A stable sort keeps arrival order among equal keys.
        self.view.make_contiguous().sort_by(|a, b| {
            let (Some(x), Some(y)) = (store.get(*a), store.get(*b)) else {
                return std::cmp::Ordering::Equal;
            };
            let ordering = match column {
                SortColumn::Time => x.ts_micros.cmp(&y.ts_micros),
                SortColumn::Protocol => x.protocol.cmp(&y.protocol),
                SortColumn::Source => x.src_ip.cmp(&y.src_ip),
                SortColumn::Destination => x.dst_ip.cmp(&y.dst_ip),
                SortColumn::DstPort => x.dst_port.cmp(&y.dst_port),
                SortColumn::Length => x.wire_len.cmp(&y.wire_len),
                SortColumn::Verdict => x.action.cmp(&y.action),
                SortColumn::Program | SortColumn::User => rank(x).cmp(&rank(y)),
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

    /// The selected row, if still stored.
    #[must_use]
    pub fn selected(&self) -> Option<&Row> {
        self.selected.and_then(|i| self.store.get(i))
    }

    /// The selected row as an `Event`, if still stored.
    #[must_use]
    pub fn selected_event(&self) -> Option<Event> {
        self.selected().map(|row| row.to_event(&self.store))
    }

    /// Selects the first shown row `wanted` accepts and pauses there, so it stays in view (the screenshot
    /// script's `--tab details`). Returns false while there is no such row.
    pub fn select_first_where(&mut self, wanted: impl Fn(&Row) -> bool) -> bool {
        let found = self
            .view
            .iter()
            .position(|i| self.store.get(*i).is_some_and(&wanted));
        let Some(n) = found else { return false };
        self.selected = self.view.get(n).copied();
        self.scroll_to = Some(n);
        if self.frozen_len.is_none() {
            self.frozen_len = Some(self.view.len());
        }
        true
    }

    /// Selects the `n`-th shown row (tests and keyboard).
    pub fn select_shown(&mut self, n: usize) {
        self.selected = self.view.get(n).copied();
    }

    /// Where the selected row is among the shown rows.
    fn selected_position(&self) -> Option<usize> {
        let selected = self.selected?;
        let shown = self.shown_len();
        if self.sort.is_none() {
            // Unsorted, the view is in arrival (index) order.
            self.view.binary_search(&selected).ok().filter(|n| *n < shown)
        } else {
            self.view.iter().take(shown).position(|i| *i == selected)
        }
    }

    /// Rows shown now (the frozen count while paused).
    fn shown_len(&self) -> usize {
        self.frozen_len.unwrap_or(self.view.len()).min(self.view.len())
    }

    /// Moves the selection by `delta` rows (clamped; `isize::MIN`/`MAX` for the first and last), pauses
    /// following so it stays put, and gives it the keyboard focus.
    pub fn move_selection(&mut self, delta: isize) {
        let shown = self.shown_len();
        if shown == 0 {
            return;
        }
        let target = match self.selected_position() {
            Some(at) => at.saturating_add_signed(delta).min(shown - 1),
            // Nothing selected yet: start from the end a user is looking at.
            None if delta < 0 || self.frozen_len.is_none() => shown - 1,
            None => 0,
        };
        self.pause();
        self.selected = self.view.get(target).copied();
        self.scroll_to = Some(target);
        self.focus_selected = true;
    }

    /// True while the details pane is shown for the selected row.
    #[must_use]
    pub fn details_open(&self) -> bool {
        self.details_open && self.selected().is_some()
    }

    /// The table's keys, when the focus is on a row of the table or on nothing (so never while typing in
    /// a field or on a focused button).
    fn keyboard_ui(&mut self, ui: &egui::Ui) {
        let ctx = ui.ctx();
        let focused = ctx.memory(egui::Memory::focused);
        if focused.is_some_and(|id| !self.row_ids.contains(&id)) {
            return;
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Space)) {
            self.toggle_pause();
        }
        if let Some(delta) = selection_move(ctx, self.page_rows) {
            self.move_selection(delta);
        }
        if self.selected.is_some() {
            if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter)) {
                self.details_open = !self.details_open;
                self.focus_selected = true;
            }
            if menu_key_pressed(ctx) {
                self.open_menu = true;
            }
            if self.focus_selected || self.open_menu {
                // The details pane changes the table's height: keep the row in view.
                self.scroll_to = self.selected_position();
            }
        }
    }

    /// Rows currently shown (filtered), in display order.
    pub fn shown(&self) -> impl Iterator<Item = &Row> {
        self.view.iter().filter_map(|i| self.store.get(*i))
    }

    /// Rows currently shown, as events (exports).
    pub fn shown_events(&self) -> impl Iterator<Item = Event> {
        self.shown().map(|row| row.to_event(&self.store))
    }

    /// The packet facts and interface of the most recent `n` stored rows (the rule editor's what-if).
    #[must_use]
    pub fn recent_packets(&self, n: usize) -> Vec<(PacketMeta, std::sync::Arc<str>)> {
        let skip = self.store.len().saturating_sub(n);
        self.store
            .iter()
            .skip(skip)
            .map(|(_, row)| {
                let iface = self
                    .store
                    .strings()
                    .get(row.iface)
                    .cloned()
                    .unwrap_or_else(|| std::sync::Arc::from(""));
                (row.meta(), iface)
            })
            .collect()
    }

    /// Shows the toolbar, the table and, for a selected row, the details pane.
    pub fn ui(&mut self, ui: &mut egui::Ui, rules: &RuleSet, raw: &RawStore) {
        self.settle_owners();
        self.keyboard_ui(ui);
        self.toolbar_ui(ui);
        let selected = self
            .selected()
            .filter(|_| self.details_open)
            .map(|row| (row.to_event(&self.store), row.owner));
        let details_height = if selected.is_some() {
            ui.available_height() * 0.45
        } else {
            0.0
        };
        let table_height = (ui.available_height() - details_height).max(120.0);
        ui.allocate_ui(egui::vec2(ui.available_width(), table_height), |ui| {
            self.table_ui(ui);
        });
        if let Some((event, owner)) = selected {
            ui.separator();
            let owner = match owner {
                super::model::OWNER_NONE => super::widgets::OwnerState::Untracked,
                OWNER_PENDING => super::widgets::OwnerState::Pending,
                id => self.store.owners().get(id).map_or(
                    super::widgets::OwnerState::Untracked,
                    super::widgets::OwnerState::Known,
                ),
            };
            egui::ScrollArea::vertical()
                .id_salt("details")
                .auto_shrink([false; 2])
                .show(ui, |ui| {
                    let mut kept = None;
                    let judged = judged_by(&event, rules, self.rules_history.as_deref(), &mut kept);
                    details_ui(
                        ui,
                        &event,
                        owner,
                        (rules, judged),
                        raw,
                        self.store.alert_reason(event.seq),
                    );
                });
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if self.filter.ui(
                ui,
                "src:10.0.0.0/8 port:22 proto:tcp verdict:block !dir:out host:example.com app:curl",
                460.0,
            ) {
                self.rebuild_view();
            }
            // One state, said once: following (with a Pause button) or paused (with the way back).
            if self.is_paused() {
                let waiting = self.view.len().saturating_sub(self.frozen_len.unwrap_or(0));
                let why = if self.sort.is_some() { "Sorted" } else { "Paused" };
                ui.label(RichText::new(why).color(ui.visuals().warn_fg_color).strong());
                if ui
                    .button(format!("Jump to live ({waiting} new)"))
                    .on_hover_text("Follow the newest packets again (Space)")
                    .clicked()
                {
                    self.jump_to_live();
                }
            } else {
                ui.label(RichText::new("Following live").strong());
                if ui
                    .button("Pause")
                    .on_hover_text("Stop scrolling; new packets are kept (Space)")
                    .clicked()
                {
                    self.pause();
                }
            }
            let (stored, shown, evicted) = self.counts();
            ui.label(format!(
                "{stored} stored, {shown} shown, {evicted} evicted (cap {})",
                self.store.cap()
            ));
        });
        self.filter.error_ui(ui);
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one column per statement, clearer in one place"
    )]
    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let shown = self.shown_len();
        let follow = self.frozen_len.is_none();
        // Both wait for a frame in which the selected row is drawn (it may be scrolled to first).
        let (focus_selected, open_menu) = (self.focus_selected, self.open_menu);
        let mut selected_drawn = false;
        let wheel_up = ui.input(|i| i.smooth_scroll_delta.y > 0.0);
        let mut row_ids = Vec::with_capacity(64);
        let dark = ui.visuals().dark_mode;
        let mut clicked: Option<(u64, usize)> = None;
        let mut sort_clicked: Option<SortColumn> = None;
        let mut menu_action: Option<(u64, MenuChoice)> = None;
        let sort_state = self.sort;
        // Clicks select rows; selectable labels would swallow them for text selection.
        ui.style_mut().interaction.selectable_labels = false;
        let store = &self.store;
        let view = &self.view;
        let selected = self.selected;
        self.page_rows = ((ui.available_height() - 20.0) / 18.0).max(1.0) as usize;
        let mut table = TableBuilder::new(ui);
        if let Some(n) = self.scroll_to.take() {
            let align = if follow && n + 1 >= shown {
                egui::Align::BOTTOM
            } else {
                egui::Align::Center
            };
            table = table.scroll_to_row(n, Some(align));
        }
        let output = table
            .striped(true)
            .stick_to_bottom(follow)
            .sense(egui::Sense::click())
            .column(Column::initial(118.0).at_least(90.0))
            .column(Column::initial(32.0))
            .column(Column::initial(104.0).clip(true))
            .column(Column::initial(60.0).clip(true))
            .column(Column::initial(44.0))
            .column(Column::initial(50.0))
            .column(Column::initial(150.0).at_least(80.0).clip(true))
            .column(Column::initial(48.0))
            .column(Column::initial(150.0).at_least(80.0).clip(true))
            .column(Column::initial(48.0))
            .column(Column::initial(42.0))
            .column(Column::initial(46.0))
            .column(Column::initial(96.0).clip(true))
            .column(Column::initial(110.0).clip(true))
            .column(Column::remainder().at_least(80.0).clip(true))
            .header(20.0, |mut header| {
                let titles: [(&str, Option<SortColumn>); COLUMNS] = [
                    ("Time", Some(SortColumn::Time)),
                    ("Dir", None),
                    ("Program", Some(SortColumn::Program)),
                    ("User", Some(SortColumn::User)),
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
                        if let Some(column) = column {
                            let sorted = sort_state.filter(|(c, _)| *c == column).map(|(_, asc)| asc);
                            if sort_header_ui(ui, title, sorted) {
                                sort_clicked = Some(column);
                            }
                        } else {
                            header_label_ui(ui, title);
                        }
                    });
                }
            })
            .body(|mut body| {
                let table_id = body.ui_mut().unique_id();
                body.ui_mut().ctx().accesskit_node_builder(table_id, |node| {
                    node.set_role(egui::accesskit::Role::Table);
                    node.set_label(format!("Traffic: {shown} packets shown"));
                    node.set_row_count(shown);
                    node.set_column_count(COLUMNS);
                });
                body.rows(18.0, shown, |mut row| {
                    let Some(&index) = view.get(row.index()) else {
                        return;
                    };
                    let Some(r) = store.get(index) else {
                        return;
                    };
                    row.set_selected(selected == Some(index));
                    row.col(|ui| {
                        ui.label(time_text(r.ts_micros));
                    });
                    row.col(|ui| {
                        ui.label(r.direction.name());
                    });
                    let owner = store.owner_state(r);
                    row.col(|ui| {
                        ui.label(escape(&owner.program_text())).on_hover_ui(|ui| {
                            ui.label(escape(&owner.program_hover()));
                        });
                    });
                    row.col(|ui| {
                        ui.label(escape(&owner.user_text()));
                    });
                    // Names come from the network and the rules file: shown escaped (`text::escape`).
                    row.col(|ui| {
                        ui.label(escape(store.text(r.iface)));
                    });
                    row.col(|ui| {
                        ui.label(r.meta().protocol_name());
                    });
                    row.col(|ui| {
                        ui.label(r.src_ip.map(|ip| ip.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(r.src_port.map(|p| p.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(r.dst_ip.map(|ip| ip.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(r.dst_port.map(|p| p.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        ui.label(r.wire_len.to_string());
                    });
                    row.col(|ui| {
                        ui.label(flags_text(r));
                    });
                    row.col(|ui| {
                        ui.label(verdict_rich_text(r, dark));
                    });
                    row.col(|ui| {
                        let mut text = store.text(r.rule_name).to_owned();
                        if text.is_empty() {
                            text.push_str("default");
                        }
                        if let Some(kind) = r.alert {
                            text = format!("{text} [{}]", kind.name());
                        }
                        ui.label(escape(&text));
                    });
                    row.col(|ui| {
                        ui.label(escape(&names_text(
                            store.text(r.src_name),
                            store.text(r.dst_name),
                        )));
                    });
                    let response = row.response();
                    let is_selected = selected == Some(index);
                    row_ids.push(response.id);
                    selected_drawn |= is_selected;
                    // For screen readers the row is one sentence, selected or not (built only when asked).
                    let pressed = table_row_ui(&response, is_selected, focus_selected, || {
                        row_sentence(r, store.text(r.rule_name)) + &owner.sentence()
                    });
                    if pressed {
                        clicked = Some((index, row.index()));
                    }
                    response.context_menu(|ui| {
                        if let Some(choice) = menu_ui(ui, r, false) {
                            menu_action = Some((index, choice));
                            ui.close();
                        }
                    });
                    // The same menu from the keyboard, under the row, with the focus on its first item.
                    if is_selected {
                        keyboard_menu_ui(&response, open_menu, |ui| {
                            if let Some(choice) = menu_ui(ui, r, open_menu) {
                                menu_action = Some((index, choice));
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
        if let Some((index, position)) = clicked {
            // The details pane takes part of the height: keep the selected row in view.
            self.scroll_to = Some(position);
            self.selected = if self.selected == Some(index) {
                None
            } else {
                Some(index)
            };
            self.details_open = true;
            self.focus_selected = self.selected.is_some();
            // Selecting a row pauses following so it stays in view; "Jump to live" resumes.
            if self.selected.is_some() {
                self.pause();
            }
        } else if follow && Self::user_scrolled_away(ui, &output, wheel_up) {
            // Scrolling up stops following: say so (the toolbar shows "Paused").
            self.pause();
        }
        if let Some(column) = sort_clicked {
            self.sort_by(column);
        }
        if let Some((index, choice)) = menu_action {
            self.apply_menu(ui, index, choice);
        }
    }

    /// True when, while following, the user scrolled the table away from its newest row this frame.
    /// `wheel_up` is the scroll input seen before the table took it.
    fn user_scrolled_away(
        ui: &egui::Ui,
        output: &egui::scroll_area::ScrollAreaOutput<()>,
        wheel_up: bool,
    ) -> bool {
        let bottom_gap = output.content_size.y - output.inner_rect.height() - output.state.clamped_offset().y;
        let scrolled = wheel_up
            && output
                .inner_rect
                .contains(ui.input(|i| i.pointer.hover_pos()).unwrap_or_default());
        let dragged_bar = ui.input(|i| i.pointer.is_decidedly_dragging())
            && output
                .inner_rect
                .expand(16.0)
                .contains(ui.input(|i| i.pointer.press_origin()).unwrap_or_default());
        bottom_gap > 18.0 && (scrolled || dragged_bar)
    }

    fn apply_menu(&mut self, ui: &egui::Ui, index: u64, choice: MenuChoice) {
        let Some(event) = self.store.get(index).map(|row| row.to_event(&self.store)) else {
            return;
        };
        match choice {
            MenuChoice::Rule(action, side) => {
                if let Some(spec) = rule_from(&event, action, side) {
                    self.actions.push(TrafficAction::EditNewRule(spec));
                }
            }
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
            MenuChoice::Copy => ui.ctx().copy_text(row_text(&event)),
            MenuChoice::Select => self.selected = Some(index),
        }
    }
}

/// The sort rank of every owner by `text`: index 0 is `OWNER_NONE`, 1..=n the interned owners, n+1
/// `OWNER_PENDING`. O(owners log owners), once per sort.
fn owner_ranks(store: &RowStore, text: impl Fn(super::widgets::OwnerState<'_>) -> String) -> Vec<u32> {
    use super::widgets::OwnerState;
    let owners = store.owners();
    let mut keyed: Vec<(String, usize)> = std::iter::once(OwnerState::Untracked)
        .chain((1..=owners.len()).map(|id| {
            u32::try_from(id)
                .ok()
                .and_then(|id| owners.get(id))
                .map_or(OwnerState::Untracked, OwnerState::Known)
        }))
        .chain(std::iter::once(OwnerState::Pending))
        .map(&text)
        .enumerate()
        .map(|(slot, key)| (key, slot))
        .collect();
    keyed.sort();
    let mut ranks = vec![0; keyed.len()];
    for (rank, (_, slot)) in keyed.into_iter().enumerate() {
        if let Some(r) = ranks.get_mut(slot) {
            *r = u32::try_from(rank).unwrap_or(u32::MAX);
        }
    }
    ranks
}

/// The right-click menu's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuChoice {
    Rule(Action, Side),
    Block(Side, Option<u64>),
    Copy,
    Select,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
    Flow,
}

/// The row menu; `focus_first` gives its first item the keyboard focus (opened with the Menu key).
fn menu_ui(ui: &mut egui::Ui, row: &Row, focus_first: bool) -> Option<MenuChoice> {
    let mut choice = None;
    if row.src_ip.is_some() {
        for (label, secs) in [
            ("Block source", None),
            ("Block source for 10 min", Some(600)),
            ("Block source for 1 hour", Some(3_600)),
            ("Block source for 1 day", Some(86_400)),
        ] {
            let button = ui.button(label);
            if focus_first && secs.is_none() {
                button.request_focus();
            }
            if button.clicked() {
                choice = Some(MenuChoice::Block(Side::Source, secs));
            }
        }
    } else if focus_first {
        // No source address: the first item is further down; focus the rule items' first.
        ui.memory_mut(|m| m.move_focus(egui::FocusDirection::Next));
    }
    if row.dst_ip.is_some() && ui.button("Block destination").clicked() {
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
    ui.separator();
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
            crate::text::iso_time(m.ts_micros)
        ),
        ..spec
    })
}

/// The row as one line of text (the CLI's format), for the clipboard.
#[must_use]
pub fn row_text(event: &Event) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    crate::export::write_text_line(event, &mut out).ok();
    String::from_utf8_lossy(&out).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::packet::LinkType;
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
            origin: crate::event::Origin::Untracked,
            rules_version: 0,
        }
    }

    #[test]
    fn cap_evicts_oldest_and_keeps_the_view_consistent() {
        let mut t = TrafficPanel::new(100);
        t.set_filter("port:22");
        t.push((0..250).map(|i| event(i, "10.0.0.1", if i % 2 == 0 { 22 } else { 80 }, Action::Allow)));
        assert_eq!(t.counts(), (100, 50, 150));
        assert_eq!(t.shown().next().unwrap().seq, 150);
        assert!(t.shown().all(|r| r.dst_port == Some(22)));
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
