//! Small widgets shared by the panels: status lines, table cell texts and verdict colours.

use egui::{Color32, RichText};

use super::model::Row;
use crate::attrib::Attribution;
use crate::filter::Filter;
use crate::rules::Action;

/// Shows a panel's status line: red for an error, normal text otherwise.
pub fn status_message_ui(ui: &mut egui::Ui, message: Option<&(bool, String)>) {
    if let Some((is_error, text)) = message {
        let color = if *is_error {
            ui.visuals().error_fg_color
        } else {
            ui.visuals().text_color()
        };
        ui.colored_label(color, text);
    }
}

/// Gives a control the accessible name `name` (what a screen reader says, what tests look it up by),
/// keeping its short visible text: `Delete` reads "Delete rule no ssh".
pub fn name_control(response: &egui::Response, role: egui::accesskit::Role, name: &str) {
    let enabled = response.enabled();
    response.widget_info(|| egui::WidgetInfo::labeled(role, enabled, name));
}

/// Colour of a verdict: block red, log amber, allow green (readable on both themes).
#[must_use]
pub fn verdict_color(action: Action, dark_mode: bool) -> Color32 {
    match (action, dark_mode) {
        (Action::Block, true) => Color32::from_rgb(255, 110, 100),
        (Action::Block, false) => Color32::from_rgb(190, 30, 30),
        (Action::Log, true) => Color32::from_rgb(255, 190, 70),
        (Action::Log, false) => Color32::from_rgb(160, 100, 0),
        (Action::Allow, true) => Color32::from_rgb(120, 210, 120),
        (Action::Allow, false) => Color32::from_rgb(20, 120, 40),
    }
}

/// `HH:MM:SS.micros` (UTC) of a capture time.
#[must_use]
pub fn time_text(ts_micros: i64) -> String {
    crate::text::iso_time(ts_micros)
        .get(11..26)
        .unwrap_or("")
        .to_owned()
}

/// TCP flags as letters, or ICMP `type/code`, or nothing.
#[must_use]
pub fn flags_text(row: &Row) -> String {
    match (row.tcp_flags, row.icmp_type_code) {
        (Some(f), _) => f.letters(),
        (None, Some((t, c))) => format!("{t}/{c}"),
        _ => String::new(),
    }
}

/// The verdict as words: the rules' action, or `kernel drop` when the kernel drops the packet (an
/// enforced block, whatever the monitor's rules said), then a malformed mark.
#[must_use]
pub fn verdict_text(row: &Row) -> String {
    let mut text = if row.kernel_dropped {
        "kernel drop".to_owned()
    } else {
        row.action.name().to_owned()
    };
    if let Some(m) = row.malformed {
        text.push_str(", ");
        text.push_str(&m.describe());
    }
    text
}

/// The verdict cell: `verdict_text`, in the block colour for kernel drops, else the action's colour.
#[must_use]
pub fn verdict_rich_text(row: &Row, dark_mode: bool) -> RichText {
    let shown = if row.kernel_dropped {
        Action::Block
    } else {
        row.action
    };
    RichText::new(verdict_text(row))
        .color(verdict_color(shown, dark_mode))
        .strong()
}

/// The row as one sentence for a screen reader: `in tcp 203.0.113.7 port 30001 to 192.168.1.50 port 22,
/// block, rule no ssh`.
#[must_use]
pub fn row_sentence(row: &Row, rule_name: &str) -> String {
    let end = |ip: Option<std::net::IpAddr>, port: Option<u16>| match (ip, port) {
        (Some(ip), Some(port)) => format!("{ip} port {port}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "unknown".to_owned(),
    };
    let verdict = if row.kernel_dropped {
        format!("dropped by the kernel (rules say {})", row.action.name())
    } else {
        row.action.name().to_owned()
    };
    let mut text = format!(
        "{} {} {} to {}, {verdict}, rule {}",
        row.direction.name(),
        row.meta().protocol_name(),
        end(row.src_ip, row.src_port),
        end(row.dst_ip, row.dst_port),
        if rule_name.is_empty() {
            std::borrow::Cow::Borrowed("default")
        } else {
            crate::text::escape(rule_name)
        },
    );
    if let Some(m) = row.malformed {
        text.push_str(", ");
        text.push_str(&m.describe());
    }
    if let Some(kind) = row.alert {
        text.push_str(", alert ");
        text.push_str(kind.name());
    }
    text
}

/// A table's filter field: the text as typed, the last filter that parsed (a syntax error keeps it and is
/// shown under the toolbar), and a focus request for the next frame (Ctrl+F). The traffic and connections
/// tables each hold one.
#[derive(Default)]
pub struct FilterBox {
    text: String,
    filter: Filter,
    error: Option<String>,
    focus: bool,
}

impl FilterBox {
    /// Sets the text. Returns true when the filter changed; on a syntax error the old filter stays and the
    /// error is kept for `error_ui`.
    pub fn set(&mut self, text: &str) -> bool {
        text.clone_into(&mut self.text);
        match Filter::parse(text) {
            Ok(filter) => {
                self.filter = filter;
                self.error = None;
                true
            }
            Err(e) => {
                self.error = Some(e.to_string());
                false
            }
        }
    }

    /// The filter in force.
    #[must_use]
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The syntax error of the text typed, if it does not parse.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Keyboard focus goes to the field on the next frame.
    pub fn focus(&mut self) {
        self.focus = true;
    }

    /// "Filter:" and the text field, `width` wide with `hint` while empty. Returns true when the filter
    /// changed.
    pub fn ui(&mut self, ui: &mut egui::Ui, hint: &str, width: f32) -> bool {
        let label = ui.label("Filter:");
        let mut text = self.text.clone();
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut text)
                    .hint_text(hint)
                    .desired_width(width),
            )
            .labelled_by(label.id);
        if std::mem::take(&mut self.focus) {
            edit.request_focus();
        }
        text != self.text && self.set(&text)
    }

    /// The error line, when the text typed does not parse.
    pub fn error_ui(&self, ui: &mut egui::Ui) {
        if let Some(error) = &self.error {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Filter not applied: {error}"),
            );
        }
    }
}

/// A sortable column header: the title with ` ^` (ascending) or ` v` (descending) when the table is sorted
/// by it (`sorted`). Returns true when clicked.
pub fn sort_header_ui(ui: &mut egui::Ui, title: &str, sorted: Option<bool>) -> bool {
    let marker = match sorted {
        Some(true) => " ^",
        Some(false) => " v",
        None => "",
    };
    let text = RichText::new(format!("{title}{marker}")).strong();
    ui.add(egui::Button::new(text).frame(false))
        .on_hover_text("Sort (click again to reverse)")
        .clicked()
}

/// A column title that does not sort, on the same line as the sortable ones (a frameless button is
/// `interact_size` tall with its text centred).
pub fn header_label_ui(ui: &mut egui::Ui, title: &str) {
    let size = egui::vec2(ui.available_width(), ui.spacing().interact_size.y);
    ui.allocate_ui_with_layout(size, egui::Layout::left_to_right(egui::Align::Center), |ui| {
        ui.label(RichText::new(title).strong());
    });
}

/// The selection move a key asks for, in rows (`isize::MIN`/`MAX`: the first / last), when pressed now
/// (consumed): Up/Down, PageUp/PageDown by `page_rows`, Home/End.
pub fn selection_move(ctx: &egui::Context, page_rows: usize) -> Option<isize> {
    use egui::{Key, Modifiers};
    let page = isize::try_from(page_rows.max(1)).unwrap_or(20);
    let moves = [
        (Key::ArrowUp, -1),
        (Key::ArrowDown, 1),
        (Key::PageUp, -page),
        (Key::PageDown, page),
        (Key::Home, isize::MIN),
        (Key::End, isize::MAX),
    ];
    moves
        .into_iter()
        .find(|(key, _)| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, *key)))
        .map(|(_, delta)| delta)
}

/// True when the row menu key was pressed now (the Menu key or Shift+F10; consumed).
pub fn menu_key_pressed(ctx: &egui::Context) -> bool {
    use egui::{Key, Modifiers};
    ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Menu) || i.consume_key(Modifiers::SHIFT, Key::F10))
}

/// A drawn table row for screen readers and the keyboard: a `Row` node named by `sentence` (built only when
/// asked) and marked selected; the selected row takes the focus when `focus` is set and keeps the arrow
/// keys for the table while it has it. Returns true when the row was pressed now: select on press, not on
/// click, since rows that move between press and release would rarely take a click.
pub fn table_row_ui(
    response: &egui::Response,
    is_selected: bool,
    focus: bool,
    sentence: impl Fn() -> String,
) -> bool {
    response.widget_info(|| egui::WidgetInfo {
        label: Some(sentence()),
        selected: Some(is_selected),
        ..egui::WidgetInfo::new(egui::accesskit::Role::Row)
    });
    if is_selected {
        if focus {
            response.request_focus();
        }
        response.ctx.memory_mut(|m| {
            m.set_focus_lock_filter(
                response.id,
                egui::EventFilter {
                    vertical_arrows: true,
                    horizontal_arrows: true,
                    ..Default::default()
                },
            );
        });
    }
    response.hovered() && response.ctx.input(|i| i.pointer.primary_pressed())
}

/// The row menu opened from the keyboard, under the selected row; `open` opens it this frame (the menu's
/// first item should then take the focus). Returns what `menu` returned.
pub fn keyboard_menu_ui<R>(
    response: &egui::Response,
    open: bool,
    menu: impl FnOnce(&mut egui::Ui) -> R,
) -> Option<R> {
    egui::Popup::from_response(response)
        .id(response.id.with("keyboard-menu"))
        .kind(egui::PopupKind::Menu)
        .layout(egui::Layout::top_down_justified(egui::Align::Min))
        .open_memory(open.then_some(egui::SetOpenCommand::Bool(true)))
        .show(menu)
        .map(|inner| inner.inner)
}

/// Where a row's or flow's program lookup stands.
#[derive(Debug, Clone, Copy)]
pub enum OwnerState<'a> {
    /// No flow: attribution is off for this capture, or the packet is not tracked (not IP, a full table).
    Untracked,
    /// The attribution thread is still looking.
    Pending,
    /// Known (possibly as `unknown (REASON)`).
    Known(&'a Attribution),
}

impl<'a> OwnerState<'a> {
    /// The state of a flow (`None`: untracked).
    #[must_use]
    pub fn of_flow(flow: Option<&'a crate::flows::Flow>) -> Self {
        match flow {
            None => Self::Untracked,
            Some(flow) => flow.attribution().map_or(Self::Pending, Self::Known),
        }
    }

    /// The attribution, when known.
    #[must_use]
    pub fn attribution(self) -> Option<&'a Attribution> {
        match self {
            Self::Known(attribution) => Some(attribution),
            Self::Untracked | Self::Pending => None,
        }
    }

    /// The program column: the executable's file name (`curl`), `unknown (REASON)`, `(offline)`,
    /// `unknown (pending)`, or nothing when untracked. Not escaped.
    #[must_use]
    pub fn program_text(self) -> std::borrow::Cow<'a, str> {
        match self {
            Self::Untracked => std::borrow::Cow::Borrowed(""),
            Self::Pending => std::borrow::Cow::Borrowed(crate::attrib::PENDING_LABEL),
            Self::Known(attribution) => match attribution.process() {
                Some(process) => std::borrow::Cow::Borrowed(process.name()),
                None => attribution.program_label(),
            },
        }
    }

    /// The user column: the name, else the uid, else nothing. Not escaped.
    #[must_use]
    pub fn user_text(self) -> String {
        self.attribution()
            .and_then(Attribution::user)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The program's full description for a tooltip: `/usr/bin/curl (pid 42)`. Not escaped.
    #[must_use]
    pub fn program_hover(self) -> String {
        match self.attribution().and_then(Attribution::process) {
            Some(process) => format!("{} (pid {})", process.exe, process.pid),
            None => self.program_text().into_owned(),
        }
    }

    /// The words a screen reader adds to a row: `, program curl, user alice` (empty when untracked). Escaped.
    #[must_use]
    pub fn sentence(self) -> String {
        let program = self.program_text();
        if program.is_empty() {
            return String::new();
        }
        let mut text = format!(", program {}", crate::text::escape(&program));
        let user = self.user_text();
        if !user.is_empty() {
            text.push_str(", user ");
            text.push_str(&crate::text::escape(&user));
        }
        text
    }
}

/// Host names of both ends: `a -> b`, `a`, `-> b` or nothing.
#[must_use]
pub fn names_text(src: &str, dst: &str) -> String {
    match (src.is_empty(), dst.is_empty()) {
        (false, false) => format!("{src} -> {dst}"),
        (false, true) => src.to_owned(),
        (true, false) => format!("-> {dst}"),
        (true, true) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_that_does_not_parse_keeps_the_one_in_force() {
        let mut filter = FilterBox::default();
        assert!(filter.set("port:22"));
        let in_force = filter.filter().clone();
        assert!(!filter.set("port:"));
        assert_eq!(filter.filter(), &in_force);
        assert!(filter.error().is_some());
        assert!(filter.set(""));
        assert_eq!(filter.filter(), &Filter::default());
        assert_eq!(filter.error(), None);
    }

    #[test]
    fn names_and_time() {
        assert_eq!(names_text("a", "b"), "a -> b");
        assert_eq!(names_text("", "b"), "-> b");
        assert_eq!(names_text("", ""), "");
        assert_eq!(time_text(1_764_000_000_123_456), "16:00:00.123456");
    }
}
