//! The block list panel: add an address or network with a reason and optional expiry, unblock one entry or
//! all, import and export the list, export the ban history, turn on auto-block, and see what the kernel
//! really does (enforced, pending, failed with the error). All kernel work runs on a worker thread that owns
//! the `Enforcer`, so the window never waits for iptables; it checks for drift every few seconds. A change
//! that could cut the user off (a broad CIDR, a kernel rule dropping all traffic or SSH for everyone) is
//! rolled back unless confirmed.
//! Without privileges or iptables the list is still kept and the panel says why nothing is enforced.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::RichText;
use ipnet::IpNet;

use super::dialog::{DialogKind, PathField};
use crate::blocklist::{
    BLOCKLIST_FILE, BanHistory, BlockEntry, BlockList, EntryState, HISTORY_FILE, parse_duration, parse_net,
};
use crate::detect::Alert;
use crate::enforce::autoblock::{AutoBlockConfig, AutoBlocker};
use crate::enforce::confirm::{ConfirmState, PendingConfirm, RiskyChange};
use crate::enforce::runner::CommandRunner;
use crate::enforce::{BlockRequest, EnforceConfig, Enforcer, KernelRule, Protected};
use crate::engine::KernelBlocked;

/// How often the kernel is compared with the list (the issue asks for drift found within 10 s).
const DRIFT_CHECK: Duration = Duration::from_secs(5);
/// How long a risky change waits for confirmation before it is rolled back.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Work for the enforcement thread.
enum Job {
    Block(Vec<BlockRequest>),
    Unblock(Vec<IpNet>),
    /// Everything; the networks are those the list showed (marked "working…" meanwhile).
    UnblockAll(Vec<IpNet>),
    Rules(Vec<KernelRule>),
    Confirm,
    Check,
    /// Remove every trace from the kernel (remove-on-exit); the list is kept.
    FlushKernel,
    /// How long risky changes wait for confirmation.
    ConfirmTimeout(Duration),
}

impl Job {
    /// The networks the job is about: shown as "working…" until the worker answers for them.
    fn nets(&self) -> Vec<IpNet> {
        match self {
            Self::Block(requests) => requests.iter().map(|r| r.net).collect(),
            Self::Unblock(nets) | Self::UnblockAll(nets) => nets.clone(),
            _ => Vec::new(),
        }
    }
}

/// A risky change waiting for the user, as shown in the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingView {
    /// What was applied.
    pub what: String,
    /// When it is rolled back.
    pub deadline: DateTime<Utc>,
}

/// What the enforcement thread reports back after each job: a fresh snapshot plus the outcome.
struct Done {
    /// Names of the `enforce: true` rules that are in the kernel.
    rules_enforced: Vec<String>,
    entries: BlockList,
    history: BanHistory,
    pending: Option<PendingView>,
    /// `(is_error, text)` to show, if the job has something to say.
    message: Option<(bool, String)>,
    /// Networks the job was about (to clear "working…").
    nets: Vec<IpNet>,
    /// The enforcer could not be opened: monitor-only from now on, with why.
    unavailable: Option<String>,
}

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

/// The panel's state.
pub struct BlocklistPanel {
    dir: PathBuf,
    /// The last snapshot of the list (from the worker, or kept here in monitor-only mode).
    list: BlockList,
    history: BanHistory,
    jobs: Option<Sender<Job>>,
    done: Option<Receiver<Done>>,
    /// Why enforcement is unavailable (no privilege, tools missing); `None` when it works.
    unavailable: Option<String>,
    /// Jobs sent and not answered yet.
    outstanding: usize,
    /// Block requests sent and not answered yet: kept on the list if the worker gives up.
    unanswered: Vec<BlockRequest>,
    in_flight: BTreeSet<IpNet>,
    kernel_blocked: Arc<ArcSwap<KernelBlocked>>,
    /// Names of the `enforce: true` rules in the kernel (their packets are marked dropped too).
    rules_enforced: Vec<String>,
    protected: Protected,
    pending: Option<PendingView>,
    last_check: Instant,
    alerts: Option<Receiver<Alert>>,
    auto: Option<AutoBlocker>,
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
    /// A panel over the block list in `dir`. `runner` runs the kernel commands; `Err` says why enforcement
    /// is impossible (the list is then kept but not enforced). `protected` are the addresses refused
    /// without "force" (loopback always is).
    #[must_use]
    pub fn new(dir: PathBuf, runner: Result<Arc<dyn CommandRunner>, String>, protected: Protected) -> Self {
        let (list, history, message) = match (
            BlockList::load(&dir.join(BLOCKLIST_FILE)),
            BanHistory::load(&dir.join(HISTORY_FILE), BanHistory::DEFAULT_CAPACITY),
        ) {
            (Ok(list), Ok(history)) => (list, history, None),
            (list, history) => (
                list.unwrap_or_default(),
                history.unwrap_or_else(|_| BanHistory::with_capacity(BanHistory::DEFAULT_CAPACITY)),
                Some((
                    true,
                    format!(
                        "the saved block list in {} could not be read; it is left as it is",
                        dir.display()
                    ),
                )),
            ),
        };
        let mut panel = Self {
            list,
            history,
            jobs: None,
            done: None,
            unavailable: None,
            outstanding: 0,
            unanswered: Vec::new(),
            in_flight: BTreeSet::new(),
            kernel_blocked: Arc::new(ArcSwap::from_pointee(KernelBlocked::default())),
            rules_enforced: Vec::new(),
            protected,
            pending: None,
            last_check: Instant::now(),
            alerts: None,
            auto: None,
            auto_wanted: false,
            auto_base: BlocklistPrefs::default().first_ban,
            auto_allow: String::new(),
            remove_on_exit: false,
            addr: String::new(),
            reason: String::new(),
            duration: String::new(),
            force: false,
            import: PathField::new(dir.join("blocklist.txt").display().to_string()),
            export: PathField::new(dir.join("blocklist-export.csv").display().to_string()),
            history_export: PathField::new(dir.join("ban-history.csv").display().to_string()),
            message,
            dir,
        };
        match runner {
            Ok(runner) if panel.message.is_none() => {
                let config = EnforceConfig {
                    state_dir: Some(panel.dir.clone()),
                    ..EnforceConfig::default()
                };
                match spawn_worker(runner, config) {
                    Ok((jobs, done)) => {
                        panel.jobs = Some(jobs);
                        panel.done = Some(done);
                        // The worker opens the enforcer first (reconciling the kernel with the saved list).
                        panel.outstanding = 1;
                    }
                    Err(e) => panel.unavailable = Some(e),
                }
            }
            // A broken saved list is never overwritten by an enforcer that would start from it.
            Ok(_) => panel.unavailable = Some("the saved block list is unreadable".into()),
            Err(why) => panel.unavailable = Some(why),
        }
        if panel.jobs.is_none() {
            panel.mark_not_enforced();
        }
        panel
    }

    /// The enforced entries, shared with the engine to mark packets the kernel drops.
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<ArcSwap<KernelBlocked>> {
        Arc::clone(&self.kernel_blocked)
    }

    /// The entries as last reported (tests, exports).
    #[must_use]
    pub fn list(&self) -> &BlockList {
        &self.list
    }

    /// The ban history as last reported.
    #[must_use]
    pub fn history(&self) -> &BanHistory {
        &self.history
    }

    /// The last status line.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(_, m)| m.as_str())
    }

    /// Why nothing is enforced, if so.
    #[must_use]
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// Names of the `enforce: true` rules the kernel holds now.
    #[must_use]
    pub fn rules_in_kernel(&self) -> &[String] {
        &self.rules_enforced
    }

    /// The risky change waiting for confirmation, if any.
    #[must_use]
    pub fn pending(&self) -> Option<&PendingView> {
        self.pending.as_ref()
    }

    /// True while kernel commands are running.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.outstanding > 0
    }

    /// Feeds detection alerts to auto-block (the engine's `alert_sink`); only live capture should be wired.
    pub fn set_alerts(&mut self, alerts: Option<Receiver<Alert>>) {
        self.alerts = alerts;
    }

    /// Turns auto-block on with `config` (or off with `None`).
    pub fn set_auto_block(&mut self, config: Option<AutoBlockConfig>) {
        self.auto = config.map(|c| AutoBlocker::new(c, self.protected.clone()));
    }

    /// True when auto-block is on.
    #[must_use]
    pub fn auto_block(&self) -> bool {
        self.auto.is_some()
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

    /// Restores remembered settings: auto-block comes back on when enforcement works and the saved
    /// settings are still valid; otherwise the panel says why it stays off.
    pub fn apply_prefs(&mut self, prefs: &BlocklistPrefs) {
        self.auto_base.clone_from(&prefs.first_ban);
        self.auto_allow.clone_from(&prefs.allow);
        self.remove_on_exit |= prefs.remove_on_exit;
        if !prefs.auto_block {
            return;
        }
        if self.jobs.is_none() {
            self.auto_wanted = true;
            return;
        }
        match auto_config(&self.auto_base, &self.auto_allow) {
            Ok(config) => self.set_auto_block(Some(config)),
            Err(e) => {
                self.message = Some((true, format!("auto-block stays off: saved settings: {e}")));
            }
        }
    }

    /// Puts the Block rules marked `enforce: true` into the kernel (replacing the previous ones). A new rule
    /// that could cut the user off (all traffic or SSH for everyone, broad networks, a protected address) is
    /// rolled back unless confirmed.
    pub fn set_kernel_rules(&mut self, rules: Vec<KernelRule>) {
        if self.jobs.is_some() {
            self.send(Job::Rules(rules));
        }
    }

    /// Sets how long a risky change waits for "Keep this change" before it is rolled back (default 30 s).
    pub fn set_confirm_timeout(&mut self, timeout: Duration) {
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
        let Some(jobs) = &self.jobs else {
            return;
        };
        if let Job::Block(requests) = &job {
            self.unanswered.extend(requests.iter().cloned());
        }
        let nets = job.nets();
        if jobs.send(job).is_err() {
            self.unavailable = Some("the enforcement thread stopped".into());
            self.jobs = None;
            return;
        }
        self.outstanding += 1;
        self.in_flight.extend(nets);
    }

    fn mark_not_enforced(&mut self) {
        self.list
            .iter_mut()
            .for_each(|e| e.state = EntryState::NotEnforced);
    }

    /// Saves the list in monitor-only mode (the worker's enforcer saves it otherwise).
    fn save_local(&mut self) {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            self.message = Some((true, format!("cannot create {}: {e}", self.dir.display())));
            return;
        }
        let saved = self
            .list
            .save(&self.dir.join(BLOCKLIST_FILE))
            .and_then(|()| self.history.save(&self.dir.join(HISTORY_FILE)));
        if let Err(e) = saved {
            self.message = Some((true, format!("cannot save the block list: {e}")));
        }
    }

    /// Validates and adds (or replaces) an entry; the kernel work follows on the worker. A network broader
    /// than /16 (IPv4) or /48 (IPv6) is rolled back after 30 s unless confirmed.
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
        let net = parse_net(addr).map_err(|e| e.to_string())?;
        if !force && let Some(why) = self.protected.refusal(&net) {
            return Err(format!(
                "refusing to block {net}: it covers the {why} (tick \"force\" if you really mean it)"
            ));
        }
        let reason = match reason.trim() {
            "" => "blocked from the app".to_owned(),
            text => text.to_owned(),
        };
        let request = BlockRequest {
            net,
            reason,
            duration,
            force,
        };
        if self.jobs.is_some() {
            self.send(Job::Block(vec![request]));
        } else {
            self.keep_unenforced(vec![request]);
        }
        Ok(net)
    }

    /// Puts requests on the list without enforcing them (monitor-only mode) and saves it.
    fn keep_unenforced(&mut self, requests: Vec<BlockRequest>) {
        let now = Utc::now();
        for r in requests {
            let expires = r
                .duration
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| now + d);
            let mut entry = BlockEntry::new(r.net, &r.reason, now, expires);
            entry.state = EntryState::NotEnforced;
            self.list.insert(entry);
            self.history
                .record_ban(r.net, &r.reason, now, r.duration.map(|d| d.as_secs()));
        }
        self.save_local();
    }

    /// Removes an entry from the list and the kernel.
    pub fn unblock(&mut self, net: IpNet) {
        if self.jobs.is_some() {
            self.send(Job::Unblock(vec![net]));
        } else {
            self.list.remove(&net);
            self.history
                .record_lift(net, Utc::now(), crate::blocklist::LiftReason::Manual);
            self.save_local();
        }
    }

    /// Removes our chains and sets from the kernel and waits (at most `timeout`) for it: the app calls this
    /// on exit when "remove on exit" is on. The list is kept and re-enforced at the next start.
    pub fn remove_from_kernel(&mut self, timeout: Duration) {
        self.send(Job::FlushKernel);
        let start = Instant::now();
        while self.busy() && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(20));
            self.receive();
        }
    }

    fn publish_kernel_state(&self) {
        let nets = self
            .list
            .iter()
            .filter(|e| e.state == EntryState::Enforced)
            .map(|e| e.net)
            .collect();
        self.kernel_blocked.store(Arc::new(
            KernelBlocked::new(nets).with_rules(&self.rules_enforced),
        ));
    }

    fn receive(&mut self) -> bool {
        let mut changed = false;
        while let Some(done) = self.done.as_ref().and_then(|rx| rx.try_recv().ok()) {
            changed = true;
            self.outstanding = self.outstanding.saturating_sub(1);
            for net in &done.nets {
                self.in_flight.remove(net);
            }
            self.unanswered.retain(|r| !done.nets.contains(&r.net));
            if let Some(why) = done.unavailable {
                self.unavailable = Some(why);
                self.jobs = None;
                self.done = None;
                self.outstanding = 0;
                self.in_flight.clear();
                self.mark_not_enforced();
                // What the user asked for while the enforcer was starting is kept, not lost.
                let unanswered = std::mem::take(&mut self.unanswered);
                self.keep_unenforced(unanswered);
                break;
            }
            self.list = done.entries;
            self.rules_enforced = done.rules_enforced;
            self.history = done.history;
            self.pending = done.pending;
            if done.message.is_some() {
                self.message = done.message;
            }
        }
        changed
    }

    fn import_file(&mut self) {
        let Some(path) = self.import.path() else {
            return;
        };
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                let csv = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv"));
                if csv {
                    crate::blocklist::io::import_csv(text.as_bytes())
                } else {
                    crate::blocklist::io::import_text(&text)
                }
                .map_err(|e| e.to_string())
            });
        let imported = match parsed {
            Ok(imported) => imported,
            Err(e) => {
                self.message = Some((true, format!("{}: {e}; nothing imported", path.display())));
                return;
            }
        };
        let now = Utc::now();
        let requests: Vec<BlockRequest> = imported
            .into_iter()
            .filter(|e| e.expires.is_none_or(|at| at > now))
            .map(|e| BlockRequest {
                net: e.net,
                reason: e.reason.unwrap_or_else(|| "imported".into()),
                duration: e.expires.and_then(|at| (at - now).to_std().ok()),
                force: false,
            })
            .collect();
        if let Some(refused) = requests
            .iter()
            .find_map(|r| self.protected.refusal(&r.net).map(|why| (r.net, why)))
        {
            self.message = Some((
                true,
                format!(
                    "{}: refusing {} (it covers the {}); nothing imported",
                    path.display(),
                    refused.0,
                    refused.1
                ),
            ));
            return;
        }
        let count = requests.len();
        if self.jobs.is_some() {
            self.send(Job::Block(requests));
        } else {
            self.keep_unenforced(requests);
        }
        self.message = Some((
            false,
            format!("importing {count} entries from {}", path.display()),
        ));
    }

    fn export_file(&mut self, history: bool) {
        let field = if history {
            &self.history_export
        } else {
            &self.export
        };
        let Some(path) = field.path() else {
            return;
        };
        let result = std::fs::File::create(&path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                let file = std::io::BufWriter::new(file);
                let csv = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv"));
                match (history, csv) {
                    (true, _) => self.history.export_csv(file).map_err(|e| e.to_string()),
                    (false, true) => {
                        crate::blocklist::io::export_csv(&self.list, file).map_err(|e| e.to_string())
                    }
                    (false, false) => {
                        crate::blocklist::io::export_text(&self.list, file).map_err(|e| e.to_string())
                    }
                }
            });
        self.message = Some(match result {
            Ok(()) => (false, format!("exported to {}", path.display())),
            Err(e) => (true, format!("export to {} failed: {e}", path.display())),
        });
    }

    /// Applies finished kernel work, feeds alerts to auto-block, expires entries (monitor-only) and
    /// schedules drift checks. Call once per frame.
    pub fn poll(&mut self) {
        let mut changed = self.receive();
        let alerts: Vec<Alert> = self
            .alerts
            .as_ref()
            .map(|rx| rx.try_iter().take(256).collect())
            .unwrap_or_default();
        if let Some(auto) = &mut self.auto {
            let requests: Vec<BlockRequest> = alerts
                .iter()
                .filter_map(|a| auto.observe(a))
                // An entry already banned for longer is not shortened by a repeat alert.
                .filter(|r| self.list.get(&r.net).is_none_or(|e| e.expires.is_some()))
                .collect();
            if !requests.is_empty() && self.jobs.is_some() {
                self.send(Job::Block(requests));
            }
        }
        if self.jobs.is_none() {
            let now = Utc::now();
            for net in self.list.expired(now) {
                self.list.remove(&net);
                self.history
                    .record_lift(net, now, crate::blocklist::LiftReason::Expired);
                changed = true;
            }
            if changed {
                self.save_local();
            }
        } else if self.last_check.elapsed()
            >= if self.pending.is_some() {
                Duration::from_secs(1)
            } else {
                DRIFT_CHECK
            }
        {
            // Drift checks also expire entries and, while a change waits for confirmation, roll it back.
            self.last_check = Instant::now();
            if !self.busy() {
                self.send(Job::Check);
            }
        }
        if changed {
            self.publish_kernel_state();
        }
    }

    /// Shows the panel.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if self.busy() || self.pending.is_some() {
            ui.ctx().request_repaint_after(Duration::from_millis(200));
        } else if self.jobs.is_some() {
            ui.ctx().request_repaint_after(DRIFT_CHECK);
        }
        if let Some(why) = &self.unavailable {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("Kernel enforcement unavailable: {why}. The list is kept but nothing is blocked."),
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
        let Some(pending) = self.pending.clone() else {
            return;
        };
        ui.ctx().request_repaint_after(Duration::from_millis(200));
        let left = (pending.deadline - Utc::now()).num_seconds().max(0);
        ui.horizontal(|ui| {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "This change could cut you off ({}): it is undone in {left} s unless you keep it.",
                    pending.what
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
            ui.checkbox(&mut self.force, "force");
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
                 when netwarden is not running.",
            )
            .small(),
        );
    }

    fn tools_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let mut auto = self.auto.is_some();
            let can = self.jobs.is_some();
            let response = ui
                .add_enabled(
                    can,
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
                self.message = if auto {
                    match auto_config(&self.auto_base, &self.auto_allow) {
                        Ok(config) => {
                            self.set_auto_block(Some(config));
                            Some((false, "auto-block on".into()))
                        }
                        Err(e) => Some((true, e)),
                    }
                } else {
                    self.set_auto_block(None);
                    self.auto_wanted = false;
                    Some((false, "auto-block off".into()))
                };
            }
            ui.checkbox(&mut self.remove_on_exit, "Remove kernel rules on exit");
        });
        egui::Grid::new("blocklist-files").num_columns(2).show(ui, |ui| {
            self.import
                .ui(ui, "Import list:", DialogKind::Open, ("Lists", &["txt", "csv"]));
            if ui
                .button("Import")
                .on_hover_text("One address or CIDR per line (# comments), or a CSV export. All or nothing.")
                .clicked()
            {
                self.import_file();
            }
            ui.end_row();
            self.export
                .ui(ui, "Export list:", DialogKind::Save, ("Lists", &["csv", "txt"]));
            if ui
                .button("Export")
                .on_hover_text("CSV for a .csv name, else plain text (one address per line)")
                .clicked()
            {
                self.export_file(false);
            }
            ui.end_row();
            self.history_export
                .ui(ui, "Ban history:", DialogKind::Save, ("CSV", &["csv"]));
            if ui.button("Export history").clicked() {
                self.export_file(true);
            }
            ui.end_row();
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.list.is_empty(), egui::Button::new("Unblock all"))
                .clicked()
            {
                if self.jobs.is_some() {
                    let nets = self.list.iter().map(|e| e.net).collect();
                    self.send(Job::UnblockAll(nets));
                } else {
                    let nets: Vec<IpNet> = self.list.iter().map(|e| e.net).collect();
                    nets.into_iter().for_each(|n| self.unblock(n));
                }
            }
            let enforced = self
                .list
                .iter()
                .filter(|e| e.state == EntryState::Enforced)
                .count();
            ui.label(format!(
                "{} entries, {enforced} enforced in the kernel",
                self.list.len()
            ));
            if self.busy() {
                ui.spinner();
            }
        });
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
                        for entry in self.list.iter() {
                            ui.label(entry.net.to_string());
                            let (text, color) = match &entry.state {
                                _ if self.in_flight.contains(&entry.net) => {
                                    ("working…".to_owned(), ui.visuals().warn_fg_color)
                                }
                                EntryState::Enforced => {
                                    ("enforced".to_owned(), egui::Color32::from_rgb(110, 200, 120))
                                }
                                EntryState::Failed(e) => {
                                    (format!("failed: {e}"), ui.visuals().error_fg_color)
                                }
                                other => (other.label(), ui.visuals().warn_fg_color),
                            };
                            ui.colored_label(color, text);
                            ui.label(&entry.reason);
                            ui.label(entry.added.format("%Y-%m-%d %H:%M:%S").to_string());
                            ui.label(
                                entry
                                    .remaining_secs(now)
                                    .map_or_else(|| "never".to_owned(), human_secs),
                            );
                            if ui.small_button("Unblock").clicked() {
                                unblock = Some(entry.net);
                            }
                            ui.end_row();
                        }
                    });
                if !self.history.is_empty() {
                    ui.add_space(8.0);
                    egui::CollapsingHeader::new(format!("Ban history ({} records)", self.history.len()))
                        .id_salt("ban-history")
                        .default_open(true)
                        .show(ui, |ui| {
                            egui::Grid::new("ban-history-grid").striped(true).show(ui, |ui| {
                                for title in ["Address", "Reason", "Banned", "For", "Ended"] {
                                    ui.strong(title);
                                }
                                ui.end_row();
                                for record in self.history.iter().rev().take(200) {
                                    ui.label(record.net.to_string());
                                    ui.label(&record.reason);
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
            });
        if let Some(net) = unblock {
            self.unblock(net);
        }
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

/// The worker's side: the enforcer and the change waiting for confirmation.
struct Worker {
    enforcer: Enforcer,
    pending: Option<(PendingConfirm, String)>,
    confirm_timeout: Duration,
}

impl Worker {
    fn pending_view(&self) -> Option<PendingView> {
        self.pending.as_ref().and_then(|(p, what)| match p.state() {
            ConfirmState::Waiting { deadline } => Some(PendingView {
                what: what.clone(),
                deadline: *deadline,
            }),
            _ => None,
        })
    }

    /// Applies `change`, whose `risks` are not empty, through `PendingConfirm`.
    fn risky(&mut self, change: RiskyChange, risks: &[String]) -> Result<String, String> {
        let what = risks.join("; ");
        PendingConfirm::apply(&self.enforcer, change, self.confirm_timeout, Utc::now())
            .map(|p| {
                self.pending = Some((p, what.clone()));
                format!(
                    "{what}: applied, keep it within {} s",
                    self.confirm_timeout.as_secs()
                )
            })
            .map_err(|e| e.to_string())
    }

    fn run(&mut self, job: Job) -> Option<Result<String, String>> {
        let e = &self.enforcer;
        match job {
            Job::Block(requests) => {
                if let [one] = requests.as_slice() {
                    let change = RiskyChange::Block(one.clone());
                    let risks = change.risks(&[], &e.protected());
                    if !risks.is_empty() {
                        return Some(self.risky(change, &risks));
                    }
                }
                Some(
                    e.block_many(&requests)
                        .map(|added| match added.as_slice() {
                            [one] => format!("blocked {} ({})", one.net, one.state.label()),
                            many => format!("blocked {} entries", many.len()),
                        })
                        .map_err(|err| err.to_string()),
                )
            }
            Job::Unblock(nets) => Some(
                nets.iter()
                    .try_for_each(|n| e.unblock(*n).map(drop))
                    .map(|()| format!("unblocked {}", list_nets(&nets)))
                    .map_err(|err| err.to_string()),
            ),
            Job::UnblockAll(_) => Some(
                e.unblock_all(crate::blocklist::LiftReason::Manual)
                    .map(|n| format!("unblocked all {n} entries"))
                    .map_err(|err| err.to_string()),
            ),
            Job::Rules(rules) => {
                let change = RiskyChange::Rules(rules.clone());
                let risks = change.risks(&e.kernel_rules(), &e.protected());
                if !risks.is_empty() {
                    return Some(self.risky(change, &risks));
                }
                let count = rules.len();
                Some(
                    e.set_kernel_rules(&rules)
                        .map(|()| format!("{count} enforced rules in the kernel"))
                        .map_err(|err| format!("rules not put into the kernel: {err}")),
                )
            }
            Job::Confirm => {
                if let Some((p, what)) = &mut self.pending {
                    p.confirm();
                    let text = format!("{what}: kept");
                    self.pending = None;
                    return Some(Ok(text));
                }
                None
            }
            Job::Check => {
                let mut messages = Vec::new();
                if let Some((p, what)) = &mut self.pending {
                    match p.tick(e, Utc::now()) {
                        Ok(ConfirmState::RolledBack) => {
                            messages.push(Err(format!("{what}: not confirmed, rolled back")));
                            self.pending = None;
                        }
                        Ok(_) => {}
                        Err(err) => messages.push(Err(format!("rolling back failed (retrying): {err}"))),
                    }
                }
                match e.check_drift() {
                    Ok(report) if report.problems.is_empty() => {}
                    Ok(report) => {
                        messages.push(Err(format!("drift repaired: {}", report.problems.join("; "))))
                    }
                    Err(err) => messages.push(Err(format!("drift check failed: {err}"))),
                }
                messages.into_iter().next()
            }
            Job::ConfirmTimeout(timeout) => {
                self.confirm_timeout = timeout;
                None
            }
            Job::FlushKernel => Some(
                e.flush_kernel()
                    .map(|()| "netwarden's rules removed from the kernel".to_owned())
                    .map_err(|err| err.to_string()),
            ),
        }
    }
}

fn list_nets(nets: &[IpNet]) -> String {
    match nets {
        [one] => one.to_string(),
        many => format!("{} entries", many.len()),
    }
}

/// Starts the thread that opens the enforcer (reconciling the kernel) and then runs jobs one at a time.
fn spawn_worker(
    runner: Arc<dyn CommandRunner>,
    config: EnforceConfig,
) -> Result<(Sender<Job>, Receiver<Done>), String> {
    let (job_tx, job_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<Done>();
    std::thread::Builder::new()
        .name("enforce".into())
        .spawn(move || {
            let enforcer = match Enforcer::open(runner, config) {
                Ok(enforcer) => enforcer,
                Err(err) => {
                    done_tx
                        .send(Done {
                            rules_enforced: Vec::new(),
                            entries: BlockList::new(),
                            history: BanHistory::default(),
                            pending: None,
                            message: None,
                            nets: Vec::new(),
                            unavailable: Some(err.to_string()),
                        })
                        .ok();
                    return;
                }
            };
            let mut worker = Worker {
                enforcer,
                pending: None,
                confirm_timeout: CONFIRM_TIMEOUT,
            };
            let snapshot = |w: &Worker, message, nets| Done {
                rules_enforced: w.enforcer.kernel_rules().into_iter().map(|r| r.name).collect(),
                entries: w.enforcer.list(),
                history: w.enforcer.history(),
                pending: w.pending_view(),
                message,
                nets,
                unavailable: None,
            };
            let opened = format!(
                "kernel reconciled with the saved list ({})",
                worker.enforcer.backend()
            );
            if done_tx
                .send(snapshot(&worker, Some((false, opened)), Vec::new()))
                .is_err()
            {
                return;
            }
            for job in job_rx {
                let nets = job.nets();
                let message = worker.run(job).map(|r| match r {
                    Ok(text) => (false, text),
                    Err(text) => (true, text),
                });
                if done_tx.send(snapshot(&worker, message, nets)).is_err() {
                    break;
                }
            }
        })
        .map(|_| (job_tx, done_rx))
        .map_err(|e| e.to_string())
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
