//! The toolbar (interface picker, BPF filter, start/stop, demo, the privilege/demo banner and the tabs) and
//! the status bar (source, rules file, captured / shown / dropped-for-display / kernel-dropped counters, row
//! cap, queued block requests, the latest engine notice as one sentence).

use egui::RichText;

use super::app::{App, Mode, Tab};

impl App {
    pub(super) fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("netwarden");
            ui.separator();
            let label = ui.label("Interface:");
            let mut iface = self.state.iface.clone();
            egui::ComboBox::from_id_salt("iface")
                .selected_text(iface.clone())
                .show_ui(ui, |ui| {
                    for name in &self.interfaces {
                        ui.selectable_value(&mut iface, name.clone(), name);
                    }
                })
                .response
                .labelled_by(label.id);
            self.state.iface = iface;
            let label = ui.label("BPF:");
            ui.add(
                egui::TextEdit::singleline(&mut self.state.bpf)
                    .hint_text("tcp or udp")
                    .desired_width(160.0),
            )
            .labelled_by(label.id);
            let running = self.engine.is_some();
            if ui
                .button(if running {
                    "Restart capture"
                } else {
                    "Start capture"
                })
                .clicked()
            {
                self.refresh_interfaces();
                let watcher = self.watcher();
                self.start_live(watcher);
            }
            if ui
                .add_enabled(running, egui::Button::new("Stop capture"))
                .clicked()
            {
                self.stop();
            }
            if ui.button("Demo").clicked() {
                let watcher = self.watcher();
                self.start_demo("demo mode requested".into(), watcher);
            }
        });
        match &self.mode {
            Mode::Demo { why } => {
                let text = format!("DEMO: replaying {} because {why}", self.demo_file.display());
                ui.label(RichText::new(text).color(ui.visuals().warn_fg_color).strong());
                if why.contains("no permission") {
                    ui.label(
                        "To capture live: run `make run` (grants the binary cap_net_raw,cap_net_admin once with sudo), \
                         or start it with sudo -E; see the README.",
                    );
                }
            }
            Mode::Stopped => {
                ui.label(RichText::new("Capture stopped.").color(ui.visuals().warn_fg_color));
            }
            Mode::Live(_) => {}
        }
        ui.horizontal(|ui| {
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.state.tab, tab, tab.title());
            }
        });
    }

    pub(super) fn status_ui(&mut self, ui: &mut egui::Ui) {
        let s = &self.last_stats;
        let (stored, shown, evicted) = self.traffic.counts();
        ui.horizontal_wrapped(|ui| {
            let source = match &self.mode {
                Mode::Live(iface) => format!("live on {iface}"),
                Mode::Demo { .. } => "demo".to_owned(),
                Mode::Stopped => "stopped".to_owned(),
            };
            ui.label(source);
            ui.separator();
            ui.label(format!("rules: {}", self.rules_path.display()));
            ui.separator();
            ui.label(format!(
                "captured {} | denied {} | alerts {} | stored {stored} | shown {shown} | evicted {evicted} | \
                 dropped for display {} | kernel dropped {} (+{} by the interface)",
                s.packets, s.blocked, s.alerts, s.display_dropped, s.kernel_dropped, s.kernel_if_dropped
            ));
        });
        ui.horizontal(|ui| {
            let label = ui.label("Row cap:");
            let response = ui
                .add(
                    egui::DragValue::new(&mut self.state.row_cap)
                        .range(1_000..=20_000_000)
                        .speed(1_000),
                )
                .labelled_by(label.id);
            if response.changed() {
                self.traffic.set_row_cap(self.state.row_cap);
            }
            let store = self.traffic.store();
            ui.label(format!("~{} bytes per stored row", store.bytes_per_row()));
            let pending = self.model.pending_blocks();
            if pending > 0 && !self.model.blocklist_available {
                ui.separator();
                ui.label(
                    RichText::new(format!(
                        "block list not available yet: {pending} block request(s) queued (see the Block list tab)"
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
            }
        });
        if let Some(notice) = &self.notice {
            ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
        }
    }
}
