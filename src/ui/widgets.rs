//! Small widgets shared by the panels: status lines, table cell texts and verdict colours.

use egui::{Color32, RichText};

use super::model::Row;
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

/// The verdict cell: the action, coloured, marked when the kernel drops the packet or it is malformed.
#[must_use]
pub fn verdict_rich_text(row: &Row, dark_mode: bool) -> RichText {
    let mut text = row.action.name().to_owned();
    if row.kernel_dropped {
        text.push_str(", dropped by kernel");
    }
    if let Some(m) = row.malformed {
        text.push_str(", ");
        text.push_str(&m.describe());
    }
    RichText::new(text)
        .color(verdict_color(row.action, dark_mode))
        .strong()
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
    fn names_and_time() {
        assert_eq!(names_text("a", "b"), "a -> b");
        assert_eq!(names_text("", "b"), "-> b");
        assert_eq!(names_text("", ""), "");
        assert_eq!(time_text(1_764_000_000_123_456), "16:00:00.123456");
    }
}
