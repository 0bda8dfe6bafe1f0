//! The rule editor: the ordered rule list with hit counts and lint warnings, a form that validates every
//! field as you type, undo, import/export, and a what-if preview over recently captured packets before the
//! rules are saved atomically and put in force without restarting capture.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use egui::{Color32, RichText};

use super::dialog::{DialogKind, PathField};
use crate::packet::PacketMeta;
use crate::rules::{
    Action, LintWarning, PortRange, Protocol, RuleDirection, RuleError, RuleFile, RuleSet, RuleSpec,
    SharedRules, UserSpec, lint, save_atomic, save_edited, swap_rules,
};
use crate::whatif::{self, CompareReport};

/// Recently captured packets for the what-if preview, with the interface each was captured on.
pub type RecentPackets = Vec<(PacketMeta, Arc<str>)>;

/// Rule sets larger than this are linted on request, not after every edit (lint compares every pair).
const AUTO_LINT_MAX_RULES: usize = 2_000;

/// The editor's state: a draft of the rules file, separate from the rules in force until saved.
pub struct RulesPanel {
    path: PathBuf,
    /// What is on disk and in force, as last loaded or saved by this panel.
    saved: RuleFile,
    /// The edited copy.
    draft: RuleFile,
    undo: Vec<RuleFile>,
    selected: Option<usize>,
    form: Option<RuleForm>,
    check: DraftCheck,
    /// Shown before saving: how recent traffic would change under the draft.
    preview: Option<CompareReport>,
    message: Option<(bool, String)>,
    /// The shared set this panel last saw, to notice reloads from the file watcher.
    seen: Option<Arc<RuleSet>>,
    /// The file changed on disk while the draft had unsaved edits.
    outside_change: Option<RuleFile>,
    import: PathField,
    import_preview: Option<ImportPreview>,
    export: PathField,
    kernel: KernelRulesState,
}

/// Where the `enforce: true` rules stand in the kernel, for the rule list (the app fills it in; the list
/// never says a rule is in force when the kernel does not hold it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KernelRulesState {
    /// Not known here (the panel on its own): rows only mark `enforce`.
    #[default]
    Unknown,
    /// Nothing can be enforced (no privilege, iptables missing, `--no-enforce`): why.
    Unavailable(String),
    /// What the kernel holds.
    Known {
        /// Names of the rules in the kernel now.
        in_kernel: std::collections::BTreeSet<String>,
        /// Rules the kernel cannot take, with the reason.
        refused: std::collections::BTreeMap<String, String>,
        /// A risky change is applied and waits for "Keep this change".
        awaiting_confirmation: bool,
    },
}

/// The kernel status line of a `program` rule with `enforce: true`.
const PROGRAM_MONITOR_ONLY: &str = "kernel: monitor-only (iptables cannot match a program path; the monitor \
     still judges this rule, the kernel does not drop its traffic)";

/// What the kernel will make of the form's rule when it asks for enforcement: a program rule is
/// monitor-only, a user rule is enforced on outbound traffic only.
fn kernel_note(spec: &RuleSpec) -> Option<&'static str> {
    if !spec.enforce {
        return None;
    }
    if spec.program.is_some() {
        Some(
            "A program rule is monitor-only: iptables cannot match a program path, so the kernel will not \
             drop this traffic (a user rule can be enforced).",
        )
    } else if spec.user.is_some() && spec.direction != RuleDirection::Out {
        Some(
            "In the kernel a user rule works on outbound traffic only (the owner match): set the direction \
             to out, or the kernel refuses it.",
        )
    } else {
        None
    }
}

/// How a kernel status line is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLevel {
    /// The kernel holds the rule.
    Good,
    /// Nothing wrong (the rule is off).
    Info,
    /// The kernel does not hold a rule the user asked for, or holds it only for now.
    Warn,
}

impl KernelRulesState {
    /// The status line of an `enforce: true` rule, with how to show it; `None` when unknown.
    #[must_use]
    pub fn of(&self, spec: &RuleSpec) -> Option<(StatusLevel, String)> {
        if !spec.enforce {
            return None;
        }
        // iptables cannot match a program path, whatever the kernel's state.
        if spec.program.is_some() {
            return Some((StatusLevel::Warn, PROGRAM_MONITOR_ONLY.to_owned()));
        }
        match self {
            Self::Unknown => None,
            Self::Unavailable(why) => Some((StatusLevel::Warn, format!("kernel: not enforced ({why})"))),
            Self::Known {
                in_kernel,
                refused,
                awaiting_confirmation,
            } => Some(if let Some(reason) = refused.get(&spec.name) {
                (StatusLevel::Warn, format!("kernel: refused ({reason})"))
            } else if in_kernel.contains(&spec.name) && *awaiting_confirmation {
                (
                    StatusLevel::Warn,
                    "kernel: in force until the change is kept (banner above), else rolled back".into(),
                )
            } else if in_kernel.contains(&spec.name) {
                (StatusLevel::Good, "kernel: in force".into())
            } else if !spec.enabled {
                (StatusLevel::Info, "kernel: not in force (rule disabled)".into())
            } else {
                (
                    StatusLevel::Warn,
                    "kernel: not in force (not saved yet, rolled back, or failed: see Block list)".into(),
                )
            }),
        }
    }
}

/// The draft compiled and linted once per change.
#[derive(Default)]
struct DraftCheck {
    error: Option<String>,
    /// Lint warnings by rule index.
    warnings: HashMap<usize, Vec<String>>,
    linted: bool,
}

struct ImportPreview {
    file: RuleFile,
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
}

impl RulesPanel {
    /// An editor for the rules file at `path`, starting from the rules in force.
    #[must_use]
    pub fn new(path: PathBuf, current: &RuleSet) -> Self {
        let file = current.file().clone();
        let export = PathField::new("rules-export.ron");
        let mut panel = Self {
            path,
            saved: file.clone(),
            draft: file,
            undo: Vec::new(),
            selected: None,
            form: None,
            check: DraftCheck::default(),
            preview: None,
            message: None,
            seen: None,
            outside_change: None,
            import: PathField::default(),
            import_preview: None,
            export,
            kernel: KernelRulesState::default(),
        };
        panel.recheck();
        panel
    }

    /// Tells the list where the `enforce: true` rules stand in the kernel.
    pub fn set_kernel_state(&mut self, state: KernelRulesState) {
        self.kernel = state;
    }

    /// True when the draft differs from the rules in force.
    #[must_use]
    pub fn is_dirty(&self) -> bool {
        self.draft != self.saved
    }

    /// The rules being edited.
    #[must_use]
    pub fn draft(&self) -> &RuleFile {
        &self.draft
    }

    /// The last status or error line.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(_, m)| m.as_str())
    }

    /// Opens the form pre-filled with `spec` (from the traffic table's "make a rule" menu).
    pub fn start_new_rule(&mut self, spec: RuleSpec) {
        self.form = Some(RuleForm::from_spec(None, &spec));
    }

    /// Deletes the selected rule (the Delete key), keeping an undo step.
    pub fn delete_selected(&mut self) {
        if let Some(index) = self.selected.filter(|i| *i < self.draft.rules.len()) {
            self.edit(|draft| {
                draft.rules.remove(index);
            });
            self.selected = None;
        }
    }

    fn edit(&mut self, change: impl FnOnce(&mut RuleFile)) {
        self.undo.push(self.draft.clone());
        if self.undo.len() > 100 {
            self.undo.remove(0);
        }
        change(&mut self.draft);
        self.preview = None;
        self.recheck();
    }

    fn recheck(&mut self) {
        self.check = DraftCheck::default();
        match RuleSet::compile(self.draft.clone(), None) {
            Ok(set) => {
                if set.rules().len() <= AUTO_LINT_MAX_RULES {
                    self.check.warnings = group_warnings(&lint(&set));
                    self.check.linted = true;
                }
            }
            Err(e) => self.check.error = Some(e.to_string()),
        }
    }

    /// Notices rules stored by someone else (the file watcher after a hand edit) since the last frame.
    fn follow_shared(&mut self, shared: &SharedRules) {
        let current = shared.load_full();
        if self.seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &current)) {
            return;
        }
        let first_look = self.seen.is_none();
        self.seen = Some(Arc::clone(&current));
        if first_look || *current.file() == self.saved {
            return;
        }
        if self.is_dirty() {
            self.outside_change = Some(current.file().clone());
        } else {
            self.saved = current.file().clone();
            self.draft = self.saved.clone();
            self.recheck();
            self.message = Some((
                false,
                format!("{} changed on disk: reloaded", self.path.display()),
            ));
        }
    }

    /// Computes the what-if preview of the draft against the rules in force.
    pub fn compute_preview(&mut self, shared: &SharedRules, recent: &RecentPackets) -> Result<(), RuleError> {
        let draft = RuleSet::compile(self.draft.clone(), None)?;
        let current = shared.load_full();
        self.preview = Some(whatif::compare(
            recent.iter().map(|(meta, iface)| (meta, iface.as_ref())),
            &current,
            &draft,
        ));
        Ok(())
    }

    /// Makes "Save and apply" write `path` from now on (the editor then names that file).
    pub fn set_save_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Validates, writes the file atomically and puts the draft in force. Only what the draft changed is
    /// rewritten: comments and untouched rules keep their text (`rules::save_edited`).
    ///
    /// # Errors
    /// The draft is invalid or the file cannot be written; nothing changes then.
    pub fn save(&mut self, shared: &SharedRules) -> Result<(), RuleError> {
        save_edited(&self.draft, &self.saved, &self.path)?;
        let set = RuleSet::compile(self.draft.clone(), None)?;
        swap_rules(shared, set);
        self.seen = Some(shared.load_full());
        self.saved = self.draft.clone();
        self.outside_change = None;
        self.preview = None;
        self.message = Some((false, format!("saved {} and applied", self.path.display())));
        Ok(())
    }

    /// Shows the editor. `recent` is asked for only when a preview is computed.
    pub fn ui(&mut self, ui: &mut egui::Ui, shared: &SharedRules, recent: &dyn Fn() -> RecentPackets) {
        self.follow_shared(shared);
        let in_force = shared.load_full();
        self.keyboard_ui(ui);
        self.toolbar_ui(ui, shared, recent);
        self.banners_ui(ui);
        ui.separator();
        if let Some(form) = self.form.as_mut() {
            let mut outcome = FormOutcome::None;
            egui::Frame::group(ui.style()).show(ui, |ui| {
                outcome = form.ui(ui, &self.draft);
            });
            match outcome {
                FormOutcome::None => {}
                FormOutcome::Cancel => self.form = None,
                FormOutcome::Apply(index, spec) => {
                    self.edit(|draft| match index {
                        Some(i) if i < draft.rules.len() => draft.rules[i] = *spec,
                        _ => draft.rules.push(*spec),
                    });
                    self.selected = Some(index.unwrap_or(self.draft.rules.len().saturating_sub(1)));
                    self.form = None;
                }
            }
            ui.separator();
        }
        self.list_ui(ui, &in_force);
    }

    fn keyboard_ui(&mut self, ui: &egui::Ui) {
        let typing = ui.ctx().egui_wants_keyboard_input();
        if typing {
            return;
        }
        if ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Delete)) {
            self.delete_selected();
        }
        if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z)) {
            self.undo_last();
        }
    }

    fn undo_last(&mut self) {
        if let Some(previous) = self.undo.pop() {
            self.draft = previous;
            self.preview = None;
            self.recheck();
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, shared: &SharedRules, recent: &dyn Fn() -> RecentPackets) {
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!("Rules file: {}", self.path.display()));
            ui.separator();
            let label = ui.label("Default policy:");
            let mut policy = self.draft.default_policy;
            egui::ComboBox::from_id_salt("default-policy")
                .selected_text(policy.name())
                .show_ui(ui, |ui| {
                    for action in [Action::Allow, Action::Block, Action::Log] {
                        ui.selectable_value(&mut policy, action, action.name());
                    }
                })
                .response
                .labelled_by(label.id);
            if policy != self.draft.default_policy {
                self.edit(|draft| draft.default_policy = policy);
            }
            ui.separator();
            if ui.button("Add rule").clicked() {
                self.form = Some(RuleForm::from_spec(None, &RuleSpec::default()));
            }
            if ui
                .add_enabled(!self.undo.is_empty(), egui::Button::new("Undo"))
                .clicked()
            {
                self.undo_last();
            }
            if !self.check.linted
                && ui.button("Lint").clicked()
                && let Ok(set) = RuleSet::compile(self.draft.clone(), None)
            {
                self.check.warnings = group_warnings(&lint(&set));
                self.check.linted = true;
            }
            ui.separator();
            let dirty = self.is_dirty();
            let valid = self.check.error.is_none();
            if ui
                .add_enabled(dirty && valid, egui::Button::new("Preview changes"))
                .clicked()
                && let Err(e) = self.compute_preview(shared, &recent())
            {
                self.message = Some((true, e.to_string()));
            }
            let save = ui.add_enabled(dirty && valid, egui::Button::new("Save and apply"));
            if save.clicked() {
                if self.preview.is_none() {
                    if let Err(e) = self.compute_preview(shared, &recent()) {
                        self.message = Some((true, e.to_string()));
                    }
                } else if let Err(e) = self.save(shared) {
                    self.message = Some((true, format!("not saved: {e}")));
                }
            }
            if ui
                .add_enabled(dirty, egui::Button::new("Discard edits"))
                .clicked()
            {
                let saved = self.saved.clone();
                self.edit(|draft| *draft = saved);
            }
            if dirty {
                ui.label(RichText::new("unsaved changes").color(ui.visuals().warn_fg_color));
            }
        });
        ui.collapsing("Import / export", |ui| self.import_export_ui(ui));
    }

    fn banners_ui(&mut self, ui: &mut egui::Ui) {
        if let Some(error) = &self.check.error {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("The draft is invalid: {error}"),
            );
        }
        super::widgets::status_message_ui(ui, self.message.as_ref());
        if let Some(file) = self.outside_change.clone() {
            ui.horizontal(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{} changed on disk while you were editing.", self.path.display()),
                );
                if ui.button("Load file (drop my edits)").clicked() {
                    self.saved = file.clone();
                    self.draft = file.clone();
                    self.outside_change = None;
                    self.recheck();
                }
                if ui.button("Keep my edits").clicked() {
                    self.saved = file.clone();
                    self.outside_change = None;
                }
            });
        }
        if let Some(preview) = &self.preview {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.strong(format!(
                    "What-if on {} recent packets: {} would change verdict ({} newly blocked, {} newly allowed)",
                    preview.packets, preview.changed_packets, preview.newly_blocked, preview.newly_allowed
                ));
                for change in preview.flows.iter().take(8) {
                    ui.label(format!(
                        "{} pkts  {}: {} ({}) -> {} ({})",
                        change.packets,
                        change.flow.describe(),
                        change.old_action.name(),
                        change.old_rule,
                        change.new_action.name(),
                        change.new_rule
                    ));
                }
                ui.label("Press \"Save and apply\" again to write the file and apply the rules.");
            });
        }
    }

    fn import_export_ui(&mut self, ui: &mut egui::Ui) {
        self.import
            .ui(ui, "Import from", DialogKind::Open, ("RON rules", &["ron"]));
        ui.horizontal(|ui| {
            if ui.button("Preview import").clicked() {
                match self.import.path().map(RuleSet::load) {
                    Some(Ok(set)) => {
                        self.import_preview = Some(ImportPreview::new(&self.draft, set.file().clone()));
                    }
                    Some(Err(e)) => self.message = Some((true, format!("cannot import: {e}"))),
                    None => self.message = Some((true, "type or pick a file to import".into())),
                }
            }
        });
        if let Some(import) = &self.import_preview {
            ui.label(format!(
                "Replace: {} added, {} changed, {} removed. Append: {} rules after yours (same names are skipped).",
                import.added.len(),
                import.changed.len(),
                import.removed.len(),
                import.added.len()
            ));
            for (label, names) in [
                ("added", &import.added),
                ("changed", &import.changed),
                ("removed", &import.removed),
            ] {
                if !names.is_empty() {
                    ui.label(crate::text::escape(&format!("{label}: {}", names.join(", "))));
                }
            }
            let mut apply: Option<bool> = None;
            ui.horizontal(|ui| {
                if ui.button("Import: replace").clicked() {
                    apply = Some(true);
                }
                if ui.button("Import: append").clicked() {
                    apply = Some(false);
                }
                if ui.button("Cancel import").clicked() {
                    apply = None;
                    self.import_preview = None;
                }
            });
            if let (Some(replace), Some(import)) = (apply, self.import_preview.take()) {
                self.edit(|draft| {
                    if replace {
                        *draft = import.file;
                    } else {
                        for spec in import.file.rules {
                            if !draft.rules.iter().any(|r| r.name == spec.name) {
                                draft.rules.push(spec);
                            }
                        }
                    }
                });
                self.message = Some((false, "imported into the draft: review, then save".into()));
            }
        }
        ui.separator();
        self.export
            .ui(ui, "Export to", DialogKind::Save, ("RON rules", &["ron"]));
        if ui.button("Export draft").clicked() {
            self.message = Some(match self.export.path() {
                Some(path) => match save_atomic(&self.draft, &path) {
                    Ok(()) => (
                        false,
                        format!("exported {} rules to {}", self.draft.rules.len(), path.display()),
                    ),
                    Err(e) => (true, format!("export failed: {e}")),
                },
                None => (true, "type or pick a file to export to".into()),
            });
        }
    }

    fn list_ui(&mut self, ui: &mut egui::Ui, in_force: &RuleSet) {
        let hits: HashMap<&str, u64> = in_force
            .rules()
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let id = crate::rules::RuleId(u32::try_from(i).unwrap_or(u32::MAX));
                (rule.name.as_ref(), in_force.hits(id).count)
            })
            .collect();
        let mut action: Option<RowAction> = None;
        let count = self.draft.rules.len();
        egui::ScrollArea::vertical()
            .auto_shrink([false; 2])
            .show(ui, |ui| {
                egui::Grid::new("rules-grid")
                    .striped(true)
                    .num_columns(6)
                    .show(ui, |ui| {
                        ui.strong("#");
                        ui.strong("On");
                        ui.strong("Rule");
                        ui.strong("Hits");
                        ui.strong("Match");
                        ui.strong("");
                        ui.end_row();
                        for (index, spec) in self.draft.rules.iter().enumerate() {
                            ui.label((index + 1).to_string());
                            let mut enabled = spec.enabled;
                            let checkbox = ui.checkbox(&mut enabled, "").on_hover_text("enable / disable");
                            let checked = spec.enabled;
                            checkbox.widget_info(|| {
                                egui::WidgetInfo::selected(
                                    egui::accesskit::Role::CheckBox,
                                    true,
                                    checked,
                                    format!("Enabled: {}", spec.name),
                                )
                            });
                            if checkbox.changed() {
                                action = Some(RowAction::Toggle(index));
                            }
                            let color = super::widgets::verdict_color(spec.action, ui.visuals().dark_mode);
                            let title = RichText::new(format!(
                                "{} {}",
                                spec.action.name().to_uppercase(),
                                crate::text::escape(&spec.name)
                            ))
                            .color(color);
                            if ui.selectable_label(self.selected == Some(index), title).clicked() {
                                self.selected = Some(index);
                            }
                            ui.label(hits.get(spec.name.as_str()).copied().unwrap_or(0).to_string());
                            ui.horizontal(|ui| {
                                // Short visible text; the accessible name says which rule it acts on.
                                let buttons = [
                                    (
                                        "Up",
                                        "Move up",
                                        index > 0,
                                        RowAction::Move(index, index.saturating_sub(1)),
                                    ),
                                    (
                                        "Down",
                                        "Move down",
                                        index + 1 < count,
                                        RowAction::Move(index, index + 1),
                                    ),
                                    ("Edit", "Edit", true, RowAction::Edit(index)),
                                    ("Duplicate", "Duplicate", true, RowAction::Duplicate(index)),
                                    ("Delete", "Delete", true, RowAction::Delete(index)),
                                ];
                                for (text, verb, enabled, row_action) in buttons {
                                    let button = ui.add_enabled(enabled, egui::Button::new(text).small());
                                    let name = format!("{verb} rule {}", spec.name);
                                    super::widgets::name_control(
                                        &button,
                                        egui::accesskit::Role::Button,
                                        &name,
                                    );
                                    if button.on_hover_text(&name).clicked() {
                                        action = Some(row_action);
                                    }
                                }
                            });
                            ui.vertical(|ui| {
                                ui.add(
                                    egui::Label::new(describe(spec)).wrap_mode(egui::TextWrapMode::Extend),
                                );
                                if let Some((level, status)) = self.kernel.of(spec) {
                                    let color = match level {
                                        StatusLevel::Warn => ui.visuals().warn_fg_color,
                                        StatusLevel::Info => ui.visuals().weak_text_color(),
                                        StatusLevel::Good => super::widgets::verdict_color(
                                            crate::rules::Action::Allow,
                                            ui.visuals().dark_mode,
                                        ),
                                    };
                                    ui.label(RichText::new(status).color(color));
                                }
                                for warning in self.check.warnings.get(&index).into_iter().flatten() {
                                    ui.label(
                                        RichText::new(format!("warning: {warning}"))
                                            .color(ui.visuals().warn_fg_color),
                                    );
                                }
                            });
                            ui.end_row();
                        }
                    });
                if count == 0 {
                    ui.label(format!(
                        "No rules: every packet gets the default policy ({}).",
                        self.draft.default_policy.name()
                    ));
                }
            });
        match action {
            None => {}
            Some(RowAction::Toggle(i)) => self.edit(|d| {
                if let Some(r) = d.rules.get_mut(i) {
                    r.enabled = !r.enabled;
                }
            }),
            Some(RowAction::Move(from, to)) => {
                self.edit(|d| {
                    if from < d.rules.len() && to < d.rules.len() {
                        d.rules.swap(from, to);
                    }
                });
                self.selected = Some(to);
            }
            Some(RowAction::Edit(i)) => {
                if let Some(spec) = self.draft.rules.get(i) {
                    self.form = Some(RuleForm::from_spec(Some(i), spec));
                }
            }
            Some(RowAction::Duplicate(i)) => {
                if let Some(spec) = self.draft.rules.get(i).cloned() {
                    let name = unique_name(&self.draft, &spec.name);
                    self.edit(|d| d.rules.insert(i + 1, RuleSpec { name, ..spec }));
                    self.selected = Some(i + 1);
                }
            }
            Some(RowAction::Delete(i)) => {
                self.selected = Some(i);
                self.delete_selected();
                self.message = Some((false, "rule deleted (Undo brings it back)".into()));
            }
        }
    }
}

enum RowAction {
    Toggle(usize),
    Move(usize, usize),
    Edit(usize),
    Duplicate(usize),
    Delete(usize),
}

impl ImportPreview {
    fn new(current: &RuleFile, incoming: RuleFile) -> Self {
        let old: HashMap<&str, &RuleSpec> = current.rules.iter().map(|r| (r.name.as_str(), r)).collect();
        let new: HashMap<&str, &RuleSpec> = incoming.rules.iter().map(|r| (r.name.as_str(), r)).collect();
        let mut added = Vec::new();
        let mut changed = Vec::new();
        for rule in &incoming.rules {
            match old.get(rule.name.as_str()) {
                None => added.push(rule.name.clone()),
                Some(existing) if *existing != rule => changed.push(rule.name.clone()),
                Some(_) => {}
            }
        }
        let removed = current
            .rules
            .iter()
            .filter(|r| !new.contains_key(r.name.as_str()))
            .map(|r| r.name.clone())
            .collect();
        Self {
            file: incoming,
            added,
            changed,
            removed,
        }
    }
}

fn group_warnings(warnings: &[LintWarning]) -> HashMap<usize, Vec<String>> {
    let mut by_rule: HashMap<usize, Vec<String>> = HashMap::new();
    for w in warnings {
        by_rule.entry(w.rule.index()).or_default().push(w.message.clone());
    }
    by_rule
}

fn unique_name(file: &RuleFile, base: &str) -> String {
    (2..)
        .map(|n| format!("{base} ({n})"))
        .find(|candidate| !file.rules.iter().any(|r| &r.name == candidate))
        .unwrap_or_else(|| format!("{base} copy"))
}

/// One line describing what a rule matches: `in tcp 10.0.0.0/8 -> any :22`.
#[must_use]
pub fn describe(spec: &RuleSpec) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "any".to_owned()
        } else {
            v.join(",")
        }
    };
    let mut text = format!(
        "{} {} {} -> {}",
        spec.direction.name(),
        spec.protocol.name(),
        list(&spec.src),
        list(&spec.dst)
    );
    if !spec.src_ports.is_empty() {
        text.push_str(&format!(" sport {}", spec.src_ports.join(",")));
    }
    if !spec.dst_ports.is_empty() {
        text.push_str(&format!(" dport {}", spec.dst_ports.join(",")));
    }
    if let Some(iface) = &spec.interface {
        text.push_str(&format!(" on {iface}"));
    }
    if let Some(program) = &spec.program {
        text.push_str(&format!(" program {program}"));
    }
    if let Some(user) = &spec.user {
        text.push_str(&format!(" user {user}"));
    }
    if let Some(unit) = &spec.unit {
        text.push_str(&format!(" unit {unit}"));
    }
    if spec.enforce {
        text.push_str(" [kernel]");
    }
    if !spec.comment.is_empty() {
        text.push_str(&format!("  // {}", spec.comment));
    }
    text
}

/// The protocol choice in the form (`Number` keeps its text separately so it can be typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProtocolChoice {
    Any,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Number,
}

/// The add/edit form: every field as text, validated every frame.
#[derive(Debug, Clone)]
struct RuleForm {
    /// `None` adds a rule; `Some(i)` replaces rule `i`.
    index: Option<usize>,
    name: String,
    enabled: bool,
    action: Action,
    direction: RuleDirection,
    protocol: ProtocolChoice,
    protocol_number: String,
    src: String,
    dst: String,
    src_ports: String,
    dst_ports: String,
    interface: String,
    /// Executable path or glob; empty = every program.
    program: String,
    /// User name or uid; empty = every user.
    user: String,
    /// systemd unit; empty = every unit.
    unit: String,
    comment: String,
    enforce: bool,
}

enum FormOutcome {
    None,
    Cancel,
    Apply(Option<usize>, Box<RuleSpec>),
}

/// Per-field problems of a form, `None` where the field is fine.
#[derive(Debug, Default, PartialEq, Eq)]
struct FieldErrors {
    name: Option<String>,
    protocol: Option<String>,
    src: Option<String>,
    dst: Option<String>,
    src_ports: Option<String>,
    dst_ports: Option<String>,
    interface: Option<String>,
    program: Option<String>,
    user: Option<String>,
    unit: Option<String>,
    rule: Option<String>,
}

fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_nets(text: &str) -> Option<String> {
    split_list(text)
        .iter()
        .find_map(|item| crate::rules::compile::parse_net(item).err())
}

fn check_ports(text: &str) -> Option<String> {
    split_list(text)
        .iter()
        .find_map(|item| PortRange::parse(item).err())
}

impl RuleForm {
    fn from_spec(index: Option<usize>, spec: &RuleSpec) -> Self {
        let (protocol, protocol_number) = match spec.protocol.normalized() {
            Protocol::Any => (ProtocolChoice::Any, String::new()),
            Protocol::Tcp => (ProtocolChoice::Tcp, String::new()),
            Protocol::Udp => (ProtocolChoice::Udp, String::new()),
            Protocol::Icmp => (ProtocolChoice::Icmp, String::new()),
            Protocol::Icmpv6 => (ProtocolChoice::Icmpv6, String::new()),
            Protocol::Number(n) => (ProtocolChoice::Number, n.to_string()),
        };
        Self {
            index,
            name: spec.name.clone(),
            enabled: spec.enabled,
            action: spec.action,
            direction: spec.direction,
            protocol,
            protocol_number,
            src: spec.src.join(", "),
            dst: spec.dst.join(", "),
            src_ports: spec.src_ports.join(", "),
            dst_ports: spec.dst_ports.join(", "),
            interface: spec.interface.clone().unwrap_or_default(),
            program: spec.program.clone().unwrap_or_default(),
            user: spec.user.as_ref().map(ToString::to_string).unwrap_or_default(),
            unit: spec.unit.clone().unwrap_or_default(),
            comment: spec.comment.clone(),
            enforce: spec.enforce,
        }
    }

    /// Builds the rule and checks every field, and the rule in the context of the draft (unique name,
    /// enforce only on Block, ports only with TCP/UDP).
    fn validate(&self, draft: &RuleFile) -> (RuleSpec, FieldErrors) {
        let mut errors = FieldErrors::default();
        let protocol = match self.protocol {
            ProtocolChoice::Any => Protocol::Any,
            ProtocolChoice::Tcp => Protocol::Tcp,
            ProtocolChoice::Udp => Protocol::Udp,
            ProtocolChoice::Icmp => Protocol::Icmp,
            ProtocolChoice::Icmpv6 => Protocol::Icmpv6,
            ProtocolChoice::Number => match self.protocol_number.trim().parse::<u8>() {
                Ok(n) => Protocol::Number(n),
                Err(_) => {
                    errors.protocol = Some("a protocol number is 0-255".into());
                    Protocol::Any
                }
            },
        };
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.name = Some("a rule needs a name".into());
        } else if draft
            .rules
            .iter()
            .enumerate()
            .any(|(i, r)| r.name == name && Some(i) != self.index)
        {
            errors.name = Some(format!("another rule is already called {name:?}"));
        }
        errors.src = check_nets(&self.src);
        errors.dst = check_nets(&self.dst);
        errors.src_ports = check_ports(&self.src_ports);
        errors.dst_ports = check_ports(&self.dst_ports);
        let interface = self.interface.trim();
        if interface.contains(char::is_whitespace) {
            errors.interface = Some("an interface name has no spaces".into());
        }
        let program = self.program.trim();
        if !program.is_empty()
            && let Err((message, _)) = crate::rules::compile::ProgramMatch::parse(program)
        {
            errors.program = Some(message);
        }
        let user = self.user.trim();
        let user = (!user.is_empty()).then(|| match user.parse::<u32>() {
            Ok(uid) => UserSpec::Uid(uid),
            Err(_) => UserSpec::Name(user.to_owned()),
        });
        if let Some(Err(message)) = user.as_ref().map(crate::rules::compile::UserMatch::resolve) {
            errors.user = Some(message);
        }
        let unit = self.unit.trim();
        if !unit.is_empty() {
            errors.unit = crate::rules::compile::unit_problem(unit);
        }
        let spec = RuleSpec {
            name,
            enabled: self.enabled,
            action: self.action,
            direction: self.direction,
            protocol,
            src: split_list(&self.src),
            dst: split_list(&self.dst),
            src_ports: split_list(&self.src_ports),
            dst_ports: split_list(&self.dst_ports),
            interface: (!interface.is_empty()).then(|| interface.to_owned()),
            comment: self.comment.trim().to_owned(),
            enforce: self.enforce,
            program: (!program.is_empty()).then(|| program.to_owned()),
            user,
            unit: (!unit.is_empty()).then(|| unit.to_owned()),
        };
        if errors == FieldErrors::default() {
            // Whole-rule checks come from the real validator, so the form can never accept what the file
            // loader would refuse.
            let mut candidate = draft.clone();
            match self.index {
                Some(i) if i < candidate.rules.len() => candidate.rules[i] = spec.clone(),
                _ => candidate.rules.push(spec.clone()),
            }
            if let Err(e) = RuleSet::compile(candidate, None) {
                let text = e.to_string();
                // Errors elsewhere in the draft are shown above the list, not blamed on this rule.
                if text.contains(&format!("{:?}", spec.name)) || self.index.is_none() {
                    errors.rule = Some(text);
                }
            }
        }
        (spec, errors)
    }

    fn ui(&mut self, ui: &mut egui::Ui, draft: &RuleFile) -> FormOutcome {
        let (spec, errors) = self.validate(draft);
        let error_color = ui.visuals().error_fg_color;
        ui.strong(if self.index.is_some() {
            "Edit rule"
        } else {
            "New rule"
        });
        egui::Grid::new("rule-form").num_columns(3).show(ui, |ui| {
            text_row(ui, "Name", &mut self.name, errors.name.as_deref(), error_color);
            let label = ui.label("Action");
            egui::ComboBox::from_id_salt("form-action")
                .selected_text(self.action.name())
                .show_ui(ui, |ui| {
                    for action in [Action::Allow, Action::Block, Action::Log] {
                        ui.selectable_value(&mut self.action, action, action.name());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Direction");
            egui::ComboBox::from_id_salt("form-direction")
                .selected_text(self.direction.name())
                .show_ui(ui, |ui| {
                    for dir in [RuleDirection::Any, RuleDirection::In, RuleDirection::Out] {
                        ui.selectable_value(&mut self.direction, dir, dir.name());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            let protocol_label = ui.label("Protocol");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("form-protocol")
                    .selected_text(format!("{:?}", self.protocol).to_lowercase())
                    .show_ui(ui, |ui| {
                        for (choice, label) in [
                            (ProtocolChoice::Any, "any"),
                            (ProtocolChoice::Tcp, "tcp"),
                            (ProtocolChoice::Udp, "udp"),
                            (ProtocolChoice::Icmp, "icmp"),
                            (ProtocolChoice::Icmpv6, "icmpv6"),
                            (ProtocolChoice::Number, "number"),
                        ] {
                            ui.selectable_value(&mut self.protocol, choice, label);
                        }
                    })
                    .response
                    .labelled_by(protocol_label.id);
                if self.protocol == ProtocolChoice::Number {
                    let label = ui.label("Protocol number");
                    ui.add(egui::TextEdit::singleline(&mut self.protocol_number).desired_width(50.0))
                        .labelled_by(label.id);
                }
            });
            if let Some(e) = &errors.protocol {
                ui.colored_label(error_color, e);
            }
            ui.end_row();
            text_row(
                ui,
                "Source addresses",
                &mut self.src,
                errors.src.as_deref(),
                error_color,
            );
            text_row(
                ui,
                "Destination addresses",
                &mut self.dst,
                errors.dst.as_deref(),
                error_color,
            );
            text_row(
                ui,
                "Source ports",
                &mut self.src_ports,
                errors.src_ports.as_deref(),
                error_color,
            );
            text_row(
                ui,
                "Destination ports",
                &mut self.dst_ports,
                errors.dst_ports.as_deref(),
                error_color,
            );
            text_row(
                ui,
                "Interface",
                &mut self.interface,
                errors.interface.as_deref(),
                error_color,
            );
            text_row(
                ui,
                "Program",
                &mut self.program,
                errors.program.as_deref(),
                error_color,
            );
            text_row(ui, "User", &mut self.user, errors.user.as_deref(), error_color);
            text_row(ui, "Unit", &mut self.unit, errors.unit.as_deref(), error_color);
            text_row(ui, "Comment", &mut self.comment, None, error_color);
            ui.label("");
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.enabled, "Enabled");
                ui.checkbox(&mut self.enforce, "Enforce in kernel");
            });
            ui.end_row();
        });
        ui.label(
            RichText::new(
                "Addresses: IPs or CIDRs separated by commas (10.0.0.0/8, ::1). Ports: 22, 8000-8999. \
                 Program: an executable path (/usr/bin/curl) or a glob (*/curl). User: a name or a uid.",
            )
            .small(),
        );
        if let Some(note) = kernel_note(&spec) {
            ui.label(RichText::new(note).color(ui.visuals().warn_fg_color));
        }
        if let Some(e) = &errors.rule {
            ui.colored_label(error_color, e);
        }
        let valid = errors == FieldErrors::default();
        let mut outcome = FormOutcome::None;
        ui.horizontal(|ui| {
            let apply_label = if self.index.is_some() {
                "Apply rule"
            } else {
                "Add to list"
            };
            if ui.add_enabled(valid, egui::Button::new(apply_label)).clicked() {
                outcome = FormOutcome::Apply(self.index, Box::new(spec));
            }
            if ui.button("Cancel").clicked() {
                outcome = FormOutcome::Cancel;
            }
        });
        outcome
    }
}

fn text_row(ui: &mut egui::Ui, label: &str, text: &mut String, error: Option<&str>, error_color: Color32) {
    let label = ui.label(label);
    ui.add(egui::TextEdit::singleline(text).desired_width(300.0))
        .labelled_by(label.id);
    match error {
        Some(e) => ui.colored_label(error_color, e),
        None => ui.label(""),
    };
    ui.end_row();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> RuleFile {
        RuleFile::parse(text).unwrap()
    }

    #[test]
    fn kernel_status_of_each_enforce_rule() {
        let rules = file(
            r#"(default_policy: Allow, rules: [
                (name: "in", action: Block, dst_ports: ["23"], protocol: Tcp, enforce: true),
                (name: "off", enabled: false, action: Block, dst_ports: ["24"], protocol: Tcp, enforce: true),
                (name: "new", action: Block, dst_ports: ["25"], protocol: Tcp, enforce: true),
                (name: "refused", action: Block, interface: "any", enforce: true),
                (name: "monitor", action: Block, dst_ports: ["26"], protocol: Tcp),
            ])"#,
        )
        .rules;
        let known = |awaiting_confirmation| KernelRulesState::Known {
            in_kernel: ["in".to_owned()].into(),
            refused: [("refused".to_owned(), "no such thing".to_owned())].into(),
            awaiting_confirmation,
        };
        let levels = |state: &KernelRulesState| -> Vec<Option<StatusLevel>> {
            rules
                .iter()
                .map(|r| state.of(r).map(|(level, _)| level))
                .collect()
        };
        use StatusLevel::{Good, Info, Warn};
        assert_eq!(
            levels(&known(false)),
            [Some(Good), Some(Info), Some(Warn), Some(Warn), None]
        );
        assert_eq!(known(true).of(&rules[0]).unwrap().0, Warn, "only until kept");
        assert_eq!(
            known(false).of(&rules[3]).unwrap().1,
            "kernel: refused (no such thing)"
        );
        let off = KernelRulesState::Unavailable("no CAP_NET_ADMIN".into());
        assert_eq!(
            off.of(&rules[0]).unwrap(),
            (Warn, "kernel: not enforced (no CAP_NET_ADMIN)".into())
        );
        assert!(rules.iter().all(|r| KernelRulesState::Unknown.of(r).is_none()));
    }

    #[test]
    fn form_reports_each_bad_field_and_accepts_a_good_rule() {
        let draft = file(
            r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"])])"#,
        );
        let mut form = RuleForm::from_spec(None, &RuleSpec::default());
        form.name = "no ssh".into();
        form.src = "10.0.0.0/8, 300.1.1.1".into();
        form.dst_ports = "90-80".into();
        let (_, errors) = form.validate(&draft);
        assert_eq!(
            errors.name.as_deref(),
            Some("another rule is already called \"no ssh\"")
        );
        assert!(errors.src.as_deref().unwrap().contains("300.1.1.1"), "{errors:?}");
        assert!(
            errors.dst_ports.as_deref().unwrap().contains("90-80"),
            "{errors:?}"
        );
        form.name = "lan web".into();
        form.src = "10.0.0.0/8".into();
        form.dst_ports = "80, 8000-8999".into();
        form.protocol = ProtocolChoice::Tcp;
        let (spec, errors) = form.validate(&draft);
        assert_eq!(errors, FieldErrors::default());
        assert_eq!(spec.src, vec!["10.0.0.0/8"]);
        assert_eq!(spec.dst_ports, vec!["80", "8000-8999"]);
    }

    #[test]
    fn program_rules_are_monitor_only_and_user_rules_get_the_kernel_status() {
        let rules = file(
            r#"(default_policy: Allow, rules: [
                (name: "curl", action: Block, program: "/usr/bin/curl", enforce: true),
                (name: "curl watch", action: Log, program: "*/curl"),
                (name: "daemon out", action: Block, direction: Out, user: 1, enforce: true),
                (name: "daemon in", action: Block, direction: In, user: 1, enforce: true),
            ])"#,
        )
        .rules;
        let state = KernelRulesState::Known {
            in_kernel: ["daemon out".to_owned()].into(),
            refused: [
                (
                    "curl".to_owned(),
                    "monitor-only: iptables cannot match a program path".to_owned(),
                ),
                (
                    "daemon in".to_owned(),
                    "a user rule can only be enforced on outbound traffic".to_owned(),
                ),
            ]
            .into(),
            awaiting_confirmation: false,
        };
        let (level, text) = state.of(&rules[0]).unwrap();
        assert_eq!(level, StatusLevel::Warn);
        assert!(
            text.starts_with("kernel: monitor-only (iptables cannot match"),
            "{text}"
        );
        // Whatever the kernel's state: a program path never goes in.
        assert_eq!(
            KernelRulesState::Unknown.of(&rules[0]).unwrap().1,
            text,
            "monitor-only is known without the kernel"
        );
        assert!(state.of(&rules[1]).is_none(), "not asked to enforce");
        assert_eq!(
            state.of(&rules[2]).unwrap(),
            (StatusLevel::Good, "kernel: in force".into())
        );
        assert_eq!(
            state.of(&rules[3]).unwrap().1,
            "kernel: refused (a user rule can only be enforced on outbound traffic)"
        );
        assert!(kernel_note(&rules[0]).unwrap().contains("monitor-only"));
        assert!(kernel_note(&rules[3]).unwrap().contains("outbound traffic only"));
        assert!(kernel_note(&rules[2]).is_none() && kernel_note(&rules[1]).is_none());
        assert_eq!(describe(&rules[2]), "out any any -> any user 1 [kernel]");
    }

    #[test]
    fn form_edits_program_and_user() {
        let draft = file(
            r#"(default_policy: Allow, rules: [(name: "curl", action: Block, program: "/usr/bin/curl", user: 0)])"#,
        );
        let mut form = RuleForm::from_spec(Some(0), &draft.rules[0]);
        assert_eq!(
            (form.program.as_str(), form.user.as_str()),
            ("/usr/bin/curl", "0")
        );
        form.program = "*/[curl".into();
        form.user = "no-such-user-nw".into();
        let (_, errors) = form.validate(&draft);
        assert!(
            errors
                .program
                .as_deref()
                .unwrap()
                .contains("malformed program glob"),
            "{errors:?}"
        );
        assert!(errors.user.is_some(), "{errors:?}");
        form.program = "curl".into();
        let (_, errors) = form.validate(&draft);
        assert!(
            errors
                .program
                .as_deref()
                .unwrap()
                .contains("neither an absolute path nor a glob"),
            "{errors:?}"
        );
        form.program = "*/wget".into();
        form.user = "root".into();
        let (spec, errors) = form.validate(&draft);
        assert_eq!(errors, FieldErrors::default());
        assert_eq!(spec.program.as_deref(), Some("*/wget"));
        assert_eq!(spec.user, Some(UserSpec::Name("root".into())));
        // Cleared fields leave the rule for every program and user.
        form.program = "  ".into();
        form.user = String::new();
        let (spec, errors) = form.validate(&draft);
        assert_eq!(errors, FieldErrors::default());
        assert_eq!((spec.program, spec.user), (None, None));
        form.user = "1000".into();
        assert_eq!(form.validate(&draft).0.user, Some(UserSpec::Uid(1000)));
    }

    #[test]
    fn whole_rule_checks_come_from_the_validator() {
        let draft = RuleFile::default();
        let mut form = RuleForm::from_spec(None, &RuleSpec::default());
        form.name = "ping ports".into();
        form.protocol = ProtocolChoice::Icmp;
        form.dst_ports = "22".into();
        let (_, errors) = form.validate(&draft);
        assert!(
            errors.rule.is_some(),
            "ports with ICMP must be refused: {errors:?}"
        );
        form.protocol = ProtocolChoice::Tcp;
        form.action = Action::Allow;
        form.enforce = true;
        let (_, errors) = form.validate(&draft);
        assert!(
            errors.rule.is_some(),
            "enforce on Allow must be refused: {errors:?}"
        );
    }

    #[test]
    fn import_preview_lists_added_changed_removed() {
        let current = file(
            r#"(default_policy: Allow, rules: [(name: "a", action: Block), (name: "b", action: Block)])"#,
        );
        let incoming = file(
            r#"(default_policy: Allow, rules: [(name: "b", action: Allow), (name: "c", action: Block)])"#,
        );
        let p = ImportPreview::new(&current, incoming);
        assert_eq!(
            (p.added, p.changed, p.removed),
            (vec!["c".to_owned()], vec!["b".to_owned()], vec!["a".to_owned()])
        );
    }

    #[test]
    fn duplicate_names_get_a_free_suffix() {
        let f = file(
            r#"(default_policy: Allow, rules: [(name: "x", action: Block), (name: "x (2)", action: Block)])"#,
        );
        assert_eq!(unique_name(&f, "x"), "x (3)");
    }
}
