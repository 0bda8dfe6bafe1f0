//! The details pane under the traffic table: the row as text, WHY it got its verdict (each rule tried with
//! the current rules, from `RuleSet::explain`), every parsed layer (`packet::describe` on the raw bytes
//! from the `RawStore`) and a hex dump.

use egui::RichText;

use super::traffic::row_text;
use crate::engine::RawStore;
use crate::event::Event;
use crate::packet;
use crate::rules::RuleSet;

/// The details pane: summary, why (each rule tried), every parsed layer and a hex dump.
pub fn details_ui(
    ui: &mut egui::Ui,
    event: &Event,
    rules: &RuleSet,
    raw: &RawStore,
    alert_reason: Option<&str>,
) {
    ui.strong(row_text(event));
    if event.kernel_dropped {
        ui.label("The source is on the enforced block list: the kernel drops this packet after capture.");
    }
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
                alert_reason.unwrap_or(&alert.reason)
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
