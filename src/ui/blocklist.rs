//! The block list panel: add an address or network with a reason and optional expiry, enforce or unenforce
//! each entry (or all) in the kernel with one click, and see the real state (enforced, pending, failed with
//! the error). Kernel commands run on a worker thread, so the window never waits for iptables. Without
//! privileges the buttons say why and show the commands that would run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::RichText;
use ipnet::IpNet;

use crate::blocklist::{
    BLOCKLIST_FILE, BanHistory, BlockEntry, BlockList, EntryState, HISTORY_FILE, LiftReason, parse_duration,
    parse_net,
};
use crate::enforce::{Enforcer, Protected};
use crate::engine::KernelBlocked;

/// How often the kernel is compared with the list (drift: someone flushed our chain or deleted a jump).
const DRIFT_CHECK: Duration = Duration::from_secs(5);

/// Work for the enforcement thread.
enum Job {
    Enforce(Vec<(IpNet, Option<u64>)>),
    Remove(Vec<IpNet>),
    Check,
}

/// What the enforcement thread reports back.
enum Done {
    Enforced(Vec<IpNet>, Result<(), String>),
    Removed(Vec<IpNet>, Result<(), String>),
    /// Kernel entries now, and whether the drift check had to repair the chains.
    Checked(Result<(Vec<IpNet>, bool), String>),
}

/// The panel's state.
pub struct BlocklistPanel {
    dir: PathBuf,
    list: BlockList,
    history: BanHistory,
    jobs: Option<Sender<Job>>,
    done: Option<Receiver<Done>>,
    /// Why enforcement is unavailable (no privilege, tools missing); `None` when it works.
    unavailable: Option<String>,
    commands_preview: Vec<String>,
    in_flight: BTreeSet<IpNet>,
    kernel_blocked: Arc<ArcSwap<KernelBlocked>>,
    protected: Protected,
    last_check: Instant,
    addr: String,
    reason: String,
    duration: String,
    force: bool,
    message: Option<(bool, String)>,
}

impl BlocklistPanel {
    /// A panel over the block list in `dir`. `enforcer` is `None` when enforcement is impossible, with
    /// `unavailable` saying why.
    #[must_use]
    pub fn new(dir: PathBuf, enforcer: Result<Enforcer, String>, protected: Protected) -> Self {
        let (list, history, message) = match (
            BlockList::load(&dir.join(BLOCKLIST_FILE)),
            BanHistory::load(&dir.join(HISTORY_FILE), 10_000),
        ) {
            (Ok(list), Ok(history)) => (list, history, None),
            (list, history) => (
                list.unwrap_or_default(),
                history.unwrap_or_else(|_| BanHistory::with_capacity(10_000)),
                Some((
                    true,
                    format!("the saved block list in {} could not be read", dir.display()),
                )),
            ),
        };
        let preview = Enforcer::new(Box::new(crate::enforce::SystemRunner::default())).describe_block(&[(
            "203.0.113.7/32".parse().unwrap_or_else(|_| IpNet::default()),
            Some(600),
        )]);
        let (jobs, done, unavailable) = match enforcer {
            Ok(enforcer) => match spawn_worker(enforcer) {
                Ok((jobs, done)) => (Some(jobs), Some(done), None),
                Err(e) => (None, None, Some(e)),
            },
            Err(why) => (None, None, Some(why)),
        };
        let mut panel = Self {
            dir,
            list,
            history,
            jobs,
            done,
            unavailable,
            commands_preview: preview,
            in_flight: BTreeSet::new(),
            kernel_blocked: Arc::new(ArcSwap::from_pointee(KernelBlocked::default())),
            protected,
            last_check: Instant::now(),
            addr: String::new(),
            reason: String::new(),
            duration: String::new(),
            force: false,
            message,
        };
        // Reconcile at start: what the list says is enforced goes (back) into the kernel.
        let wanted: Vec<(IpNet, Option<u64>)> = panel
            .list
            .iter()
            .filter(|e| e.state == EntryState::Enforced || e.state == EntryState::Pending)
            .map(|e| (e.net, e.remaining_secs(Utc::now())))
            .collect();
        if panel.jobs.is_some() && !wanted.is_empty() {
            panel.send(Job::Enforce(wanted));
        }
        panel
    }

    /// The enforced entries, shared with the engine to mark packets the kernel drops.
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<ArcSwap<KernelBlocked>> {
        Arc::clone(&self.kernel_blocked)
    }

    /// The entries (tests, exports).
    #[must_use]
    pub fn list(&self) -> &BlockList {
        &self.list
    }

    /// The last status line.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(_, m)| m.as_str())
    }

    /// True while kernel commands are running.
    #[must_use]
    pub fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    fn send(&mut self, job: Job) {
        match &job {
            Job::Enforce(adds) => self.in_flight.extend(adds.iter().map(|(n, _)| *n)),
            Job::Remove(nets) => self.in_flight.extend(nets.iter().copied()),
            Job::Check => {}
        }
        if let Some(jobs) = &self.jobs
            && jobs.send(job).is_err()
        {
            self.unavailable = Some("the enforcement thread stopped".into());
        }
    }

    fn save(&mut self) {
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

    /// Adds (or replaces) an entry and enforces it when possible. Returns a refusal or parse error.
    ///
    /// # Errors
    /// A readable sentence: bad address, bad duration, or a protected address without `force`.
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
                "refusing to block {net}: {why} (tick \"force\" if you really mean it)"
            ));
        }
        let now = Utc::now();
        let expires = duration
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| now + d);
        let reason = if reason.trim().is_empty() {
            "blocked from the app"
        } else {
            reason.trim()
        };
        let mut entry = BlockEntry::new(net, reason, now, expires);
        entry.state = if self.jobs.is_some() {
            EntryState::Pending
        } else {
            EntryState::NotEnforced
        };
        self.list.insert(entry);
        self.history
            .record_ban(net, reason, now, duration.map(|d| d.as_secs()));
        self.save();
        if self.jobs.is_some() {
            self.send(Job::Enforce(vec![(net, duration.map(|d| d.as_secs()))]));
        }
        Ok(net)
    }

    fn remove(&mut self, net: IpNet, why: LiftReason) {
        self.list.remove(&net);
        self.history.record_lift(net, Utc::now(), why);
        self.save();
        if self.jobs.is_some() {
            self.send(Job::Remove(vec![net]));
        }
    }

    fn publish_kernel_state(&self) {
        let nets = self
            .list
            .iter()
            .filter(|e| e.state == EntryState::Enforced)
            .map(|e| e.net)
            .collect();
        self.kernel_blocked.store(Arc::new(KernelBlocked::new(nets)));
    }

    /// Applies finished kernel work, expires entries and schedules drift checks. Call once per frame.
    pub fn poll(&mut self) {
        let mut changed = false;
        while let Some(done) = self.done.as_ref().and_then(|rx| rx.try_recv().ok()) {
            changed = true;
            match done {
                Done::Enforced(nets, result) => {
                    for net in &nets {
                        self.in_flight.remove(net);
                        if let Some(entry) = self.list.get_mut(net) {
                            entry.state = match &result {
                                Ok(()) => EntryState::Enforced,
                                Err(e) => EntryState::Failed(e.clone()),
                            };
                        }
                    }
                    if let Err(e) = result {
                        self.message = Some((true, e));
                    }
                }
                Done::Removed(nets, result) => {
                    for net in &nets {
                        self.in_flight.remove(net);
                        if let Some(entry) = self.list.get_mut(net) {
                            entry.state = EntryState::NotEnforced;
                        }
                    }
                    if let Err(e) = result {
                        self.message = Some((true, e));
                    }
                }
                Done::Checked(Ok((kernel, repaired))) => {
                    // The state never says "enforced" when the kernel has no such entry.
                    let mut missing = Vec::new();
                    for entry in self.list.iter_mut() {
                        if entry.state == EntryState::Enforced && !kernel.contains(&entry.net) {
                            entry.state = EntryState::Pending;
                            missing.push((entry.net, entry.remaining_secs(Utc::now())));
                        }
                    }
                    if repaired || !missing.is_empty() {
                        self.message = Some((
                            true,
                            format!(
                                "drift: the kernel lost {} entries or our chain; repaired",
                                missing.len()
                            ),
                        ));
                    }
                    if !missing.is_empty() {
                        self.send(Job::Enforce(missing));
                    }
                }
                Done::Checked(Err(e)) => self.message = Some((true, e)),
            }
        }
        let now = Utc::now();
        for net in self.list.expired(now) {
            self.remove(net, LiftReason::Expired);
            changed = true;
        }
        // Drift is checked only while something is enforced, so an idle app never touches the kernel.
        let anything_enforced = self.list.iter().any(|e| e.state == EntryState::Enforced);
        if self.jobs.is_some() && anything_enforced && self.last_check.elapsed() >= DRIFT_CHECK {
            self.last_check = Instant::now();
            self.send(Job::Check);
        }
        if changed {
            self.save();
            self.publish_kernel_state();
        }
    }

    /// Shows the panel.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if self.busy() {
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
        if let Some(why) = &self.unavailable {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("Kernel enforcement unavailable: {why}"),
            );
            ui.collapsing("Commands that would run (for 203.0.113.7, 10 minutes)", |ui| {
                for line in &self.commands_preview {
                    ui.label(RichText::new(line).monospace());
                }
            });
        }
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
                    Ok(net) => (false, format!("added {net}")),
                    Err(e) => (true, e),
                });
            }
        });
        ui.label(
            RichText::new(
                "Expiry: 30s, 10m, 2h, 1d or empty for permanent. The kernel lifts timed bans itself.",
            )
            .small(),
        );
        super::widgets::status_message_ui(ui, self.message.as_ref());
        let can = self.jobs.is_some();
        let hover = self.unavailable.clone().unwrap_or_default();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(can, egui::Button::new("Enforce all"))
                .on_disabled_hover_text(&hover)
                .clicked()
            {
                let all = self
                    .list
                    .iter()
                    .map(|e| (e.net, e.remaining_secs(Utc::now())))
                    .collect();
                self.send(Job::Enforce(all));
            }
            if ui
                .add_enabled(can, egui::Button::new("Unenforce all"))
                .on_disabled_hover_text(&hover)
                .clicked()
            {
                let all = self.list.iter().map(|e| e.net).collect();
                self.send(Job::Remove(all));
            }
            ui.label(format!("{} entries", self.list.len()));
        });
        let now = Utc::now();
        let mut action: Option<(IpNet, u8)> = None;
        egui::ScrollArea::vertical()
            .auto_shrink([false; 2])
            .show(ui, |ui| {
                egui::Grid::new("blocklist")
                    .striped(true)
                    .num_columns(6)
                    .show(ui, |ui| {
                        for title in ["Address", "State", "Reason", "Added", "Expires", ""] {
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
                            ui.horizontal(|ui| {
                                let enforced = entry.state == EntryState::Enforced;
                                let label = if enforced { "Unenforce" } else { "Enforce" };
                                if ui
                                    .add_enabled(can, egui::Button::new(label).small())
                                    .on_disabled_hover_text(&hover)
                                    .clicked()
                                {
                                    action = Some((entry.net, if enforced { 1 } else { 0 }));
                                }
                                if ui.small_button("Remove").clicked() {
                                    action = Some((entry.net, 2));
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
        match action {
            Some((net, 0)) => {
                let remaining = self.list.get(&net).and_then(|e| e.remaining_secs(Utc::now()));
                self.send(Job::Enforce(vec![(net, remaining)]));
            }
            Some((net, 1)) => self.send(Job::Remove(vec![net])),
            Some((net, _)) => self.remove(net, LiftReason::Manual),
            None => {}
        }
    }
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

/// Starts the thread that runs kernel commands one job at a time.
fn spawn_worker(enforcer: Enforcer) -> Result<(Sender<Job>, Receiver<Done>), String> {
    let (job_tx, job_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<Done>();
    std::thread::Builder::new()
        .name("enforce".into())
        .spawn(move || {
            for job in job_rx {
                let done = match job {
                    Job::Enforce(adds) => {
                        let nets = adds.iter().map(|(n, _)| *n).collect();
                        Done::Enforced(nets, enforcer.block(&adds).map_err(|e| e.to_string()))
                    }
                    Job::Remove(nets) => {
                        let result = enforcer.unblock(&nets).map_err(|e| e.to_string());
                        Done::Removed(nets, result)
                    }
                    Job::Check => {
                        let repaired = if enforcer.chains_intact() {
                            Ok(false)
                        } else {
                            enforcer.ensure_setup().map(|()| true).map_err(|e| e.to_string())
                        };
                        Done::Checked(repaired.and_then(|repaired| {
                            enforcer
                                .kernel_entries()
                                .map(|k| (k.into_iter().map(|(n, _)| n).collect(), repaired))
                                .map_err(|e| e.to_string())
                        }))
                    }
                };
                if done_tx.send(done).is_err() {
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
}
