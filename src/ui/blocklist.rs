//! The block-list panel. PLACEHOLDER: the block-list helper replaces this file with the real panel (entries,
//! expiry, enforcement state). Until then it lists the block requests queued in the model, so a user sees
//! that "Block source" was heard and why it is not applied yet.

use super::model::{Model, UiAction};

/// The block-list panel's state.
#[derive(Debug, Default)]
pub struct BlocklistPanel {}

impl BlocklistPanel {
    /// Shows the queued block requests and says that the block list is not wired up yet.
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &mut Model) {
        ui.heading("Block list");
        if !model.blocklist_available {
            ui.label("The block list is not available yet in this build: block requests are queued here.");
        }
        let mut remove = None;
        egui::Grid::new("queued-blocks").striped(true).show(ui, |ui| {
            for (index, action) in model.actions.iter().enumerate() {
                if let UiAction::Block {
                    addr,
                    duration,
                    reason,
                } = action
                {
                    ui.label(addr.to_string());
                    ui.label(duration.label());
                    ui.label(reason);
                    if ui.button(format!("Forget request for {addr}")).clicked() {
                        remove = Some(index);
                    }
                    ui.end_row();
                }
            }
        });
        if let Some(index) = remove
            && index < model.actions.len()
        {
            model.actions.remove(index);
        }
    }
}
