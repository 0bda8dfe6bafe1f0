//! The details pane under the traffic table: the row as text, the program behind it (PID, executable,
//! command line, user, systemd unit, Flatpak or Snap app), WHY it got its verdict (each rule tried, from
//! `RuleSet::explain_with_owner`, so `program` and `user` rules are explained with the packet's owner, with
//! the rules that judged the packet; when they have changed since, also what the current rules would do),
//! every parsed layer (`packet::describe` on the raw bytes from the `RawStore`) and a hex dump.

use egui::RichText;

use super::traffic::row_text;
use super::widgets::OwnerState;
use crate::engine::{RawStore, RulesHistory};
use crate::event::Event;
use crate::packet;
use crate::rules::RuleSet;

/// Which rules explain a packet: the set that judged it, and whether the rules in force differ.
#[derive(Debug, Clone, Copy)]
pub enum Judged<'a> {
    /// The rules in force judged it.
    Current,
    /// An earlier rule set judged it.
    Earlier(&'a RuleSet),
    /// The set that judged it is no longer kept (`RulesHistory` keeps the newest 64).
    Forgotten,
}

/// Finds the rule set that judged `event`, compared with the rules in force.
#[must_use]
pub fn judged_by<'a>(
    event: &Event,
    current: &RuleSet,
    history: Option<&RulesHistory>,
    kept: &'a mut Option<std::sync::Arc<RuleSet>>,
) -> Judged<'a> {
    let Some(history) = history.filter(|_| event.rules_version != 0) else {
        return Judged::Current;
    };
    *kept = history.get(event.rules_version);
    match kept.as_deref() {
        Some(set) if std::ptr::eq(set, current) => Judged::Current,
        Some(set) => Judged::Earlier(set),
        None => Judged::Forgotten,
    }
}

/// The program behind a packet, one labelled line per fact (what the details pane shows; escaped, since
/// paths and command lines are chosen by whoever started the program).
#[must_use]
pub fn program_lines(owner: OwnerState<'_>) -> Vec<String> {
    use crate::text::escape;
    let Some(attribution) = owner.attribution() else {
        return vec![match owner {
            OwnerState::Pending => format!("Program: {}", crate::attrib::PENDING_LABEL),
            _ => "Program: not tracked (no flow: attribution is off or the packet has no ports)".to_owned(),
        }];
    };
    let user = attribution.user().map(|u| match &u.name {
        Some(name) => format!("User: {} (uid {})", escape(name), u.uid),
        None => format!("User: uid {}", u.uid),
    });
    let Some(process) = attribution.process() else {
        return std::iter::once(format!("Program: {}", attribution.program_label()))
            .chain(user)
            .collect();
    };
    let mut lines = vec![
        format!("Program: {}", escape(process.name())),
        format!("PID: {}", process.pid),
        format!("Executable: {}", escape(&process.exe)),
        format!("Command line: {}", escape(&process.command_line())),
    ];
    lines.extend(user);
    if let Some(unit) = &process.unit {
        lines.push(format!("Systemd unit: {}", escape(unit)));
    }
    match &process.app {
        Some(crate::attrib::App::Flatpak(id)) => lines.push(format!("Flatpak app: {}", escape(id))),
        Some(crate::attrib::App::Snap(name)) => lines.push(format!("Snap: {}", escape(name))),
        None => {}
    }
    lines
}

/// The details pane: summary, the program, why (each rule tried), every parsed layer and a hex dump.
pub fn details_ui(
    ui: &mut egui::Ui,
    event: &Event,
    owner: OwnerState<'_>,
    (current, judged): (&RuleSet, Judged<'_>),
    raw: &RawStore,
    alert_reason: Option<&str>,
) {
    ui.strong(row_text(event));
    if event.kernel_dropped {
        ui.label("The source is on the enforced block list: the kernel drops this packet after capture.");
    }
    let owner_rules = owner
        .attribution()
        .map_or(crate::rules::Owner::UNKNOWN, crate::attrib::Attribution::owner);
    ui.columns(2, |columns| {
        let left = &mut columns[0];
        left.heading("Program");
        for line in program_lines(owner) {
            left.label(line);
        }
        left.heading("Why this verdict");
        let rules = match judged {
            Judged::Earlier(set) => set,
            Judged::Current | Judged::Forgotten => current,
        };
        if matches!(judged, Judged::Forgotten) {
            left.label(
                RichText::new(
                    "The rules that judged this packet are no longer kept (many rule changes ago); \
                     this is what the current rules do:",
                )
                .color(left.visuals().warn_fg_color),
            );
        }
        let explanation = rules.explain_with_owner(&event.meta, &event.iface, owner_rules);
        for step in &explanation.steps {
            let text = match &step.outcome {
                crate::rules::StepOutcome::Matched => {
                    format!("rule {} {:?}: MATCHED", step.rule.0 + 1, &*step.name)
                }
                crate::rules::StepOutcome::Skipped(reason) => {
                    format!("rule {} {:?}: skipped, {reason}", step.rule.0 + 1, &*step.name)
                }
            };
            left.label(crate::text::escape(&text));
        }
        left.label(RichText::new(crate::text::escape(&explanation.summary())).strong());
        if let Judged::Earlier(_) = judged {
            let now = current.explain_with_owner(&event.meta, &event.iface, owner_rules);
            let verdict = if now.verdict.action == explanation.verdict.action {
                "the same verdict"
            } else {
                "a different verdict"
            };
            left.label(
                RichText::new(format!(
                    "The rules have changed since this packet was judged. With the current rules: {} \
                     ({verdict}).",
                    crate::text::escape(&now.summary())
                ))
                .color(left.visuals().warn_fg_color),
            );
        }
        if let Some(alert) = &event.alert {
            left.label(format!(
                "Detection: {} from {} ({})",
                alert.kind.name(),
                alert.src_ip,
                crate::text::escape(alert_reason.unwrap_or(&alert.reason))
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
