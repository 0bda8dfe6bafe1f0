//! Small widgets shared by the panels.

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
