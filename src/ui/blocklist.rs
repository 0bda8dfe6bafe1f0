//! The block list panel: add an address or network with a reason and optional expiry, unblock one entry or
//! all, import and export the list, export the ban history, turn on auto-block, and see what the kernel
//! really does (enforced, or not and why). The panel is a thin client of the kernel guard
//! (`crate::enforce::guard`): it sends jobs and shows the guard's latest snapshot, so the window never
//! waits for iptables, reads or writes no file itself, and the timers (roll-back of an unconfirmed risky
//! change, expiry, drift repair) run whether or not a frame is drawn. Changes made by other processes
//! (`netwarden block` from a script) show within the guard's next tick.
//! Without privileges, without iptables or in demo mode the list is still kept and the panel says why
//! nothing is enforced.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::Utc;
use crossbeam_channel::Sender;
use egui::RichText;
use ipnet::IpNet;

use super::dialog::{DialogKind, PathField};
use crate::blocklist::{BlockEntry, EntryState, parse_duration, parse_net};
use crate::detect::Alert;
use crate::enforce::autoblock::AutoBlockConfig;
use crate::enforce::guard::{Guard, GuardConfig, GuardSnapshot, Job, Wake};
use crate::enforce::runner::CommandRunner;
use crate::enforce::{BlockRequest, EnforceConfig, KernelRule, PendingChange, Protected, Update};
use crate::engine::KernelBlocked;
use crate::rules::SharedRules;
use crate::text::escape;

/// How long a risky change waits for confirmation before it is rolled back.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Block list settings remembered between runs (part of the app's saved preferences): auto-block that was
/// on stays on after a restart, with its first ban and allow list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BlocklistPrefs {
    /// Auto-block was on.
    pub auto_block: bool,
    /// First ban length as typed (`10m`).
    pub first_ban: String,
    /// Never auto-block these, as typed (comma separated).
    pub allow: String,
    /// "Remove kernel rules on exit" was ticked.
    pub remove_on_exit: bool,
}

impl Default for BlocklistPrefs {
    fn default() -> Self {
        Self {
            auto_block: false,
            first_ban: "10m".into(),
            allow: String::new(),
            remove_on_exit: false,
        }
    }
}

/// How the panel reaches the kernel: a runner, or why it must not (no privilege, tools missing, demo).
pub type KernelAccess = Result<Arc<dyn CommandRunner>, String>;

/// The panel's state.
pub struct BlocklistPanel {
    dir: PathBuf,
    access: KernelAccess,
    protected: Protected,
    rules: Option<SharedRules>,
    /// The window's context, once known: the guard wakes it after each publication.
    context: Arc<OnceLock<egui::Context>>,
    guard: Option<Guard>,
    /// Kept when no guard runs, so the engine's handle stays valid.
    no_kernel_blocked: Arc<ArcSwap<KernelBlocked>>,
    snapshot: Arc<GuardSnapshot>,
    /// Jobs sent and not done yet: id -> the networks they are about ("working…").
    in_flight: BTreeMap<u64, Vec<IpNet>>,
    last_sent: u64,
    /// Settings that live in the guard, remembered here so a restarted guard gets them again.
    auto: Option<AutoBlockConfig>,
    confirm_timeout: Duration,
    /// Auto-block was asked for (saved preferences) but cannot run now (no enforcement): kept for the next
    /// run instead of being forgotten.
    auto_wanted: bool,
    auto_base: String,
    auto_allow: String,
    /// Remove our chains and sets from the kernel when the app exits.
    pub remove_on_exit: bool,
    addr: String,
    reason: String,
    duration: String,
    force: bool,
    import: PathField,
    export: PathField,
    history_export: PathField,
    message: Option<(bool, String)>,
}

impl BlocklistPanel {
    /// A panel over the block list in `dir`. `access` runs the kernel commands; `Err` says why the kernel
    /// is not touched (the list is then kept but not enforced). `protected` are the addresses refused
    /// without "force" (loopback always is). The guard starts at once.
    #[must_use]
    pub fn new(dir: PathBuf, access: KernelAccess, protected: Protected) -> Self {
        Self::with_rules(dir, access, protected, None)
    }

    /// As `new`, following the `enforce: true` rules of `rules` (the editor's saves, the file watcher's
    /// reloads): the guard puts them into the kernel, risky ones through confirm-or-roll-back.
    #[must_use]
    pub fn with_rules(
        dir: PathBuf,
        access: KernelAccess,
        protected: Protected,
        rules: Option<SharedRules>,
    ) -> Self {
        let mut panel = Self {
            import: PathField::new(dir.join("blocklist.txt").display().to_string()),
            export: PathField::new(dir.join("blocklist-export.csv").display().to_string()),
            history_export: PathField::new(dir.join("ban-history.csv").display().to_string()),
            dir,
            access,
            protected,
            rules,
            context: Arc::new(OnceLock::new()),
            guard: None,
            no_kernel_blocked: Arc::new(ArcSwap::from_pointee(KernelBlocked::default())),
            snapshot: Arc::new(GuardSnapshot::default()),
            in_flight: BTreeMap::new(),
            last_sent: 0,
            auto: None,
            confirm_timeout: CONFIRM_TIMEOUT,
            auto_wanted: false,
            auto_base: BlocklistPrefs::default().first_ban,
            auto_allow: String::new(),
            remove_on_exit: false,
            addr: String::new(),
            reason: String::new(),
            duration: String::new(),
            force: false,
            message: None,
        };
        panel.restart_guard();
        panel
    }

    /// Changes how the kernel is reached (live capture: the runner; demo: why not). Restarts the guard only
    /// when the kind of access changes.
    pub fn set_kernel_access(&mut self, access: KernelAccess) {
        let same = match (&self.access, &access) {
            (Ok(_), Ok(_)) => true,
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        self.access = access;
        if !same {
            self.restart_guard();
        }
    }

    /// The window's context: the guard wakes it when something changed (no polling repaint).
    pub fn set_context(&self, ctx: &egui::Context) {
        self.context.set(ctx.clone()).ok();
    }

    fn restart_guard(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.stop();
        }
        let config = GuardConfig {
            enforce: EnforceConfig {
                state_dir: Some(self.dir.clone()),
                protected: Some(self.protected.clone()),
                confirm_timeout: self.confirm_timeout,
                ..EnforceConfig::default()
            },
            list_only: self.access.as_ref().err().cloned(),
            auto_block: self.auto.clone(),
            remove_on_exit: self.remove_on_exit,
            ..GuardConfig::default()
        };
        let runner: Arc<dyn CommandRunner> = match &self.access {
            Ok(runner) => Arc::clone(runner),
            Err(_) => Arc::new(crate::enforce::runner::RecordingRunner::dry_run()),
        };
        let context = Arc::clone(&self.context);
        let wake: Wake = Arc::new(move || {
            if let Some(ctx) = context.get() {
                ctx.request_repaint();
            }
        });
        match Guard::spawn(config, runner, self.rules.clone(), Some(wake)) {
            Ok(guard) => {
                self.snapshot = guard.snapshot();
                self.guard = Some(guard);
            }
            Err(e) => self.message = Some((true, format!("cannot start kernel enforcement: {e}"))),
        }
        self.in_flight.clear();
        self.last_sent = 0;
    }

    /// The enforced entries and rules, shared with the engine to mark packets the kernel drops.
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<ArcSwap<KernelBlocked>> {
        self.guard
            .as_ref()
            .map_or_else(|| Arc::clone(&self.no_kernel_blocked), Guard::kernel_blocked)
    }

    /// Where live capture offers detection alerts for auto-block (never wire the demo to it).
    #[must_use]
    pub fn alert_sender(&self) -> Option<Sender<Alert>> {
        self.guard.as_ref().map(Guard::alert_sender)
    }

    /// The latest snapshot of the guard (tests, the rule editor's kernel status).
    #[must_use]
    pub fn snapshot(&self) -> &GuardSnapshot {
        &self.snapshot
    }

    /// The entries as last reported.
    #[must_use]
    pub fn list(&self) -> &crate::blocklist::BlockList {
        &self.snapshot.list
    }

    /// The last status line.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(_, m)| m.as_str())
    }

    /// Why nothing is enforced, if so.
    #[must_use]
    pub fn unavailable(&self) -> Option<&str> {
        self.snapshot.unavailable.as_deref().or(match &self.access {
            Err(why) => Some(why.as_str()),
            Ok(_) => None,
        })
    }

    /// Names of the `enforce: true` rules the kernel holds now.
    #[must_use]
    pub fn rules_in_kernel(&self) -> &[String] {
        &self.snapshot.rules_in_kernel
    }

    /// The risky change waiting for confirmation, if any.
    #[must_use]
    pub fn pending(&self) -> Option<&PendingChange> {
        self.snapshot.pending.as_ref()
    }

    /// True while jobs sent are not done, or before the guard opened the enforcer.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.guard.is_some() && (!self.snapshot.ready || self.last_sent > self.snapshot.jobs_done)
    }

    /// Turns auto-block on with `config` (or off with `None`).
    pub fn set_auto_block(&mut self, config: Option<AutoBlockConfig>) {
        self.auto.clone_from(&config);
        self.send(Job::AutoBlock(config));
    }

    /// True when auto-block is on.
    #[must_use]
    pub fn auto_block(&self) -> bool {
        self.snapshot.auto_block
    }

    /// The settings to remember.
    #[must_use]
    pub fn prefs(&self) -> BlocklistPrefs {
        BlocklistPrefs {
            auto_block: self.auto.is_some() || self.auto_wanted,
            first_ban: self.auto_base.clone(),
            allow: self.auto_allow.clone(),
            remove_on_exit: self.remove_on_exit,
        }
    }

    /// Restores remembered settings: auto-block comes back on when the saved settings are still valid (the
    /// guard keeps it off, and says so, without kernel enforcement).
    pub fn apply_prefs(&mut self, prefs: &BlocklistPrefs) {
        self.auto_base.clone_from(&prefs.first_ban);
        self.auto_allow.clone_from(&prefs.allow);
        if prefs.remove_on_exit && !self.remove_on_exit {
            self.set_remove_on_exit(true);
        }
        if !prefs.auto_block {
            return;
        }
        self.auto_wanted = true;
        match auto_config(&self.auto_base, &self.auto_allow) {
            Ok(config) => self.set_auto_block(Some(config)),
            Err(e) => {
                self.message = Some((true, format!("auto-block stays off: saved settings: {e}")));
            }
        }
    }

    /// Sets remove-on-exit (also in the running guard).
    pub fn set_remove_on_exit(&mut self, on: bool) {
        self.remove_on_exit = on;
        self.send(Job::RemoveOnExit(on));
    }

    /// Puts exactly these kernel rules in force (instead of following the rule set); a new rule that could
    /// cut the user off is rolled back unless confirmed.
    pub fn set_kernel_rules(&mut self, rules: Vec<KernelRule>) {
        self.send(Job::KernelRules(rules));
    }

    /// Sets how long a risky change waits for "Keep this change" before it is rolled back (default 30 s).
    pub fn set_confirm_timeout(&mut self, timeout: Duration) {
        self.confirm_timeout = timeout;
        self.send(Job::ConfirmTimeout(timeout));
    }

    /// Fills the import, export and history export path fields (what typing or "Browse…" does).
    pub fn set_paths(&mut self, import: &str, export: &str, history: &str) {
        self.import.text = import.to_owned();
        self.export.text = export.to_owned();
        self.history_export.text = history.to_owned();
    }

    /// Keeps the risky change that is waiting for confirmation.
    pub fn confirm(&mut self) {
        self.send(Job::Confirm);
    }

    fn send(&mut self, job: Job) {
        let Some(guard) = &self.guard else {
            return;
        };
        let nets = job.nets();
        match guard.send(job) {
            Ok(id) => {
                self.last_sent = id;
                self.in_flight.insert(id, nets);
            }
            Err(e) => self.message = Some((true, e.to_string())),
        }
    }

    /// Validates and adds an entry (or changes an existing one: a typed reason replaces its reason, a typed
    /// expiry extends it, or with `force` shortens it); the kernel work follows on the guard. A network
    /// broader than /16 (IPv4) or /48 (IPv6) is rolled back after 30 s unless confirmed.
    ///
    /// # Errors
    /// A readable sentence: bad address, or a protected address without `force`.
    pub fn add(
        &mut self,
        addr: &str,
        reason: &str,
        duration: Option<Duration>,
        force: bool,
    ) -> Result<IpNet, String> {
        let net = parse_net(addr).map_err(|e| escape(&e.to_string()).into_owned())?;
        if !force && let Some(why) = self.protected.refusal(&net) {
            return Err(format!(
                "refusing to block {net}: it covers the {why} (tick \"force\" if you really mean it)"
            ));
        }
        let update = Update {
            reason: !reason.trim().is_empty(),
            expiry: duration.is_some(),
        };
        let reason = match reason.trim() {
            "" => "blocked from the app".to_owned(),
            text => text.to_owned(),
        };
        self.send(Job::Block(vec![BlockRequest {
            net,
            reason,
            duration,
            force,
            update,
        }]));
        Ok(net)
    }

    /// Removes an entry from the list and the kernel.
    pub fn unblock(&mut self, net: IpNet) {
        self.send(Job::Unblock(vec![net]));
    }

    /// Stops the guard, removing our chains and sets from the kernel first when "remove on exit" is on,
    /// and waits for it at most `timeout` (a command that hangs is killed by its own timeout later).
    pub fn shutdown(&mut self, timeout: Duration) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        guard.send(Job::RemoveOnExit(self.remove_on_exit)).ok();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let stopper = std::thread::Builder::new()
            .name("guard-stop".into())
            .spawn(move || {
                guard.stop();
                done_tx.send(()).ok();
            });
        if stopper.is_ok() {
            done_rx.recv_timeout(timeout).ok();
        }
    }

    /// Takes the guard's latest snapshot and messages; call once per frame (cheap: an `Arc` load).
    pub fn poll(&mut self) {
        let Some(guard) = &self.guard else {
            return;
        };
        self.snapshot = guard.snapshot();
        if let Some(last) = guard.messages().last() {
            self.message = Some((last.error, last.text));
        }
        let done = self.snapshot.jobs_done;
        self.in_flight.retain(|id, _| *id > done);
        if !guard.is_running() {
            self.message = Some((true, "kernel enforcement stopped".into()));
            self.guard = None;
        }
    }

    fn working_on(&self, net: &IpNet) -> bool {
        self.in_flight.values().any(|nets| nets.contains(net))
    }

    /// Shows the panel.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.set_context(ui.ctx());
        self.poll();
        if let Some(why) = self.unavailable() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Kernel enforcement unavailable: {}. The list is kept but nothing is blocked.",
                    escape(why)
                ),
            );
        }
        for problem in &self.snapshot.problems {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Kernel: {} (repairing)", escape(problem)),
            );
        }
        self.confirm_ui(ui);
        self.add_row_ui(ui);
        super::widgets::status_message_ui(ui, self.message.as_ref());
        self.tools_ui(ui);
        self.table_ui(ui);
    }

    /// The "Keep this change" banner while a risky change waits for confirmation (nothing otherwise). The
    /// app shows it on every tab: a rules.ron edit can start the countdown while the user is elsewhere.
    pub fn confirm_ui(&mut self, ui: &mut egui::Ui) {
        let Some(pending) = self.snapshot.pending.clone() else {
            return;
        };
        // The countdown is a clock: once a second is enough.
        ui.ctx().request_repaint_after(Duration::from_secs(1));
        let left = (pending.deadline - Utc::now()).num_seconds().max(0);
        ui.horizontal(|ui| {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "This change could cut you off ({}): it is undone in {left} s unless you keep it.",
                    escape(&pending.what)
                ),
            );
            if ui.button("Keep this change").clicked() {
                self.confirm();
            }
        });
    }

    fn add_row_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            for (label, value, width) in [
                ("Address or CIDR:", &mut self.addr, 180.0),
                ("Reason:", &mut self.reason, 200.0),
                ("Expires after:", &mut self.duration, 60.0),
            ] {
                let l = ui.label(label);
                ui.add(egui::TextEdit::singleline(value).desired_width(width))
                    .labelled_by(l.id);
            }
            ui.checkbox(&mut self.force, "force")
                .on_hover_text("Block even this host, the gateway or your SSH peer; shorten an existing ban");
            if ui.button("Add to block list").clicked() {
                let duration = match self.duration.trim() {
                    "" => Ok(None),
                    text => parse_duration(text).map(Some).map_err(|e| e.to_string()),
                };
                let (addr, reason, force) = (self.addr.clone(), self.reason.clone(), self.force);
                self.message = Some(match duration.and_then(|d| self.add(&addr, &reason, d, force)) {
                    Ok(net) => (false, format!("blocking {net}")),
                    Err(e) => (true, e),
                });
            }
        });
        ui.label(
            RichText::new(
                "Expiry: 30s, 10m, 2h, 1d or empty for permanent. The kernel lifts timed bans itself, even \
                 when netwarden is not running. Adding an address that is already blocked changes only the \
                 reason or expiry you type (a ban is never shortened without \"force\").",
            )
            .small(),
        );
    }

    fn tools_ui(&mut self, ui: &mut egui::Ui) {
        let kernel = self.unavailable().is_none() && self.guard.is_some();
        ui.horizontal_wrapped(|ui| {
            let mut auto = self.snapshot.auto_block;
            let response = ui
                .add_enabled(
                    kernel,
                    egui::Checkbox::new(&mut auto, "Auto-block detected attackers"),
                )
                .on_hover_text(
                    "Port scans, floods and repeated denied packets ban their source (doubling for repeat \
                     offenders, up to 7 days). Never loopback, this host, the gateway, your SSH peer or the \
                     allow list.",
                );
            let l = ui.label("first ban:");
            ui.add(egui::TextEdit::singleline(&mut self.auto_base).desired_width(40.0))
                .labelled_by(l.id);
            let l = ui.label("never auto-block:");
            ui.add(
                egui::TextEdit::singleline(&mut self.auto_allow)
                    .hint_text("10.0.0.0/8, 2001:db8::/32")
                    .desired_width(200.0),
            )
            .labelled_by(l.id);
            if response.changed() {
                if auto {
                    match auto_config(&self.auto_base, &self.auto_allow) {
                        Ok(config) => self.set_auto_block(Some(config)),
                        Err(e) => self.message = Some((true, e)),
                    }
                } else {
                    self.set_auto_block(None);
                    self.auto_wanted = false;
                }
            }
            let mut remove = self.remove_on_exit;
            if ui.checkbox(&mut remove, "Remove kernel rules on exit").changed() {
                self.set_remove_on_exit(remove);
            }
        });
        egui::Grid::new("blocklist-files").num_columns(2).show(ui, |ui| {
            self.import
                .ui(ui, "Import list:", DialogKind::Open, ("Lists", &["txt", "csv"]));
            if ui
                .button("Import")
                .on_hover_text("One address or CIDR per line (# comments), or a CSV export. All or nothing.")
                .clicked()
                && let Some(path) = self.import.path()
            {
                self.send(Job::Import {
                    path,
                    reason: "imported".into(),
                });
            }
            ui.end_row();
            self.export
                .ui(ui, "Export list:", DialogKind::Save, ("Lists", &["csv", "txt"]));
            if ui
                .button("Export")
                .on_hover_text("CSV for a .csv name, else plain text (one address per line)")
                .clicked()
                && let Some(path) = self.export.path()
            {
                self.send(Job::Export { path, history: false });
            }
            ui.end_row();
            self.history_export
                .ui(ui, "Ban history:", DialogKind::Save, ("CSV", &["csv"]));
            if ui.button("Export history").clicked()
                && let Some(path) = self.history_export.path()
            {
                self.send(Job::Export { path, history: true });
            }
            ui.end_row();
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.snapshot.list.is_empty(), egui::Button::new("Unblock all"))
                .clicked()
            {
                self.send(Job::UnblockAll);
            }
            let enforced = self
                .snapshot
                .list
                .iter()
                .filter(|e| e.state == EntryState::Enforced)
                .count();
            ui.label(format!(
                "{} entries, {enforced} enforced in the kernel",
                self.snapshot.list.len()
            ));
            if self.busy() {
                ui.spinner();
            }
        });
    }

    /// The kernel column: what the kernel holds, in words and colour.
    fn state_text(&self, ui: &egui::Ui, entry: &BlockEntry) -> (String, egui::Color32) {
        let pending = self.snapshot.pending.as_ref().is_some_and(
            |p| matches!(&p.change, crate::enforce::RiskyChange::Block(r) if r.net == entry.net),
        );
        match &entry.state {
            _ if self.working_on(&entry.net) => ("working…".to_owned(), ui.visuals().warn_fg_color),
            EntryState::Enforced if pending => ("enforced until kept".to_owned(), ui.visuals().warn_fg_color),
            EntryState::Enforced => ("enforced".to_owned(), egui::Color32::from_rgb(110, 200, 120)),
            EntryState::Failed(_) | EntryState::Drifted(_) => (
                escape(&entry.state.label()).into_owned(),
                ui.visuals().error_fg_color,
            ),
            other => (other.label(), ui.visuals().warn_fg_color),
        }
    }

    fn table_ui(&mut self, ui: &mut egui::Ui) {
        let now = Utc::now();
        let mut unblock: Option<IpNet> = None;
        egui::ScrollArea::vertical()
            .auto_shrink([false; 2])
            .show(ui, |ui| {
                egui::Grid::new("blocklist")
                    .striped(true)
                    .num_columns(6)
                    .show(ui, |ui| {
                        for title in ["Address", "Kernel", "Reason", "Added", "Expires", ""] {
                            ui.strong(title);
                        }
                        ui.end_row();
                        for entry in self.snapshot.list.iter() {
                            ui.label(entry.net.to_string());
                            let (text, color) = self.state_text(ui, entry);
                            ui.colored_label(color, text);
                            ui.label(escape(&entry.reason));
                            ui.label(entry.added.format("%Y-%m-%d %H:%M:%S").to_string());
                            ui.label(
                                entry
                                    .remaining_secs(now)
                                    .map_or_else(|| "never".to_owned(), human_secs),
                            );
                            // Each button is named for what it unblocks (screen readers, tests); it shows
                            // "Unblock" in its row.
                            let name = format!("Unblock {}", entry.net);
                            let button = ui.small_button("Unblock").on_hover_text(&name);
                            button.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
                            if button.clicked() {
                                unblock = Some(entry.net);
                            }
                            ui.end_row();
                        }
                    });
                self.history_ui(ui);
            });
        if let Some(net) = unblock {
            self.unblock(net);
        }
    }

    fn history_ui(&self, ui: &mut egui::Ui) {
        let history = &self.snapshot.history;
        if history.is_empty() {
            return;
        }
        ui.add_space(8.0);
        egui::CollapsingHeader::new(format!("Ban history ({} records)", history.len()))
            .id_salt("ban-history")
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("ban-history-grid").striped(true).show(ui, |ui| {
                    for title in ["Address", "Reason", "Banned", "For", "Ended"] {
                        ui.strong(title);
                    }
                    ui.end_row();
                    for record in history.iter().rev().take(200) {
                        ui.label(record.net.to_string());
                        ui.label(escape(&record.reason));
                        ui.label(record.banned_at.format("%Y-%m-%d %H:%M:%S").to_string());
                        ui.label(record.ban_secs.map_or_else(
                            || "until removed".to_owned(),
                            |s| human_secs(s).trim_start_matches("in ").to_owned(),
                        ));
                        ui.label(match (record.lifted_at, &record.lifted_by) {
                            (Some(at), Some(by)) => {
                                format!("{} ({by:?})", at.format("%Y-%m-%d %H:%M:%S"))
                            }
                            (Some(at), None) => at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            _ => "active".to_owned(),
                        });
                        ui.end_row();
                    }
                });
            });
    }
}

impl Drop for BlocklistPanel {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(10));
    }
}

/// Builds the auto-block settings from the panel's fields.
fn auto_config(base: &str, allow: &str) -> Result<AutoBlockConfig, String> {
    let base_ban = parse_duration(base.trim()).map_err(|e| e.to_string())?;
    let allow = allow
        .split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_net(s.trim()).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AutoBlockConfig {
        base_ban,
        allow,
        ..AutoBlockConfig::default()
    })
}

/// `in 45 s`, `in 12 min`, `in 5 h`, `in 3 d`.
fn human_secs(secs: u64) -> String {
    match secs {
        0..120 => format!("in {secs} s"),
        120..7_200 => format!("in {} min", secs / 60),
        7_200..172_800 => format!("in {} h", secs / 3_600),
        _ => format!("in {} d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_in_sensible_units() {
        assert_eq!(human_secs(45), "in 45 s");
        assert_eq!(human_secs(720), "in 12 min");
        assert_eq!(human_secs(18_000), "in 5 h");
        assert_eq!(human_secs(283_993_289), "in 3286 d");
    }

    #[test]
    fn auto_block_settings_are_validated() {
        let config = auto_config("1h", "10.0.0.0/8, 2001:db8::/32").unwrap();
        assert_eq!(config.base_ban, Duration::from_secs(3_600));
        assert_eq!(config.allow.len(), 2);
        assert!(auto_config("soon", "").unwrap_err().contains("soon"));
        assert!(auto_config("10m", "10.0.0.0/8; rm").is_err());
    }
}
