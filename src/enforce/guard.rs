//! The guard: the one owner of the kernel inside a long-running netwarden process (the desktop app,
//! `netwarden run --enforce`, the service). One named thread ("guard") owns the `Enforcer`, the
//! `AutoBlocker`, the change waiting for confirmation, drift repair, expiry and the published
//! `KernelBlocked` set. It waits on a bounded job channel, the engine's alerts and a 1 s clock, and follows
//! rule changes (the `enforce: true` rules of the shared rule set). Front ends are thin clients: they send
//! `Job`s and show the latest `GuardSnapshot` and the `GuardMessage`s, so the app and the CLI follow the same
//! safety rules, and the timers (roll-back after 30 s, expiry, drift repair every 5 s) fire on the guard's
//! clock whether or not a window is drawn.
//!
//! Changes made by other processes (a `netwarden block` from a script) are picked up on the next tick:
//! the enforcer re-reads the state directory when it changed, and the guard publishes a new snapshot.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, tick};
use ipnet::IpNet;

use super::autoblock::{AutoBlockConfig, AutoBlocker};
use super::runner::CommandRunner;
use super::{
    BlockChange, BlockRequest, EnforceConfig, EnforceError, Enforcer, KernelRule, PendingChange, RulesChange,
};
use crate::blocklist::{BanHistory, BlockList, EntryState, LiftReason};
use crate::detect::Alert;
use crate::engine::KernelBlocked;
use crate::rules::{RuleSet, SharedRules};
use crate::text::escape;

/// Jobs waiting at most; a full queue is reported to the sender, never blocks it.
const JOB_QUEUE: usize = 64;
/// Messages kept for a front end that does not read them (the oldest are dropped).
const MESSAGE_QUEUE: usize = 256;
/// Alerts waiting for auto-block at most (the engine drops alerts beyond, never blocking capture).
const ALERT_QUEUE: usize = 1_024;

/// Called after the guard published something new (e.g. a GUI's `request_repaint`).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// Settings of the guard. Plain data: the CLI and the app fill it from their own options.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The enforcer's settings (state directory, timeouts, protected addresses).
    pub enforce: EnforceConfig,
    /// Keep the list but never touch the kernel, and why (no privilege, `--no-enforce`, demo mode).
    pub list_only: Option<String>,
    /// Auto-block settings (`None`: off).
    pub auto_block: Option<AutoBlockConfig>,
    /// How often the kernel is compared with the list and repaired.
    pub drift_every: Duration,
    /// The clock of expiry, roll-back and picking up other processes' changes.
    pub tick_every: Duration,
    /// Remove our chains and sets from the kernel when the guard stops (the list is kept).
    pub remove_on_exit: bool,
    /// Where bans, unbans and active bans are counted for `--metrics` (`None`: nowhere).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enforce: EnforceConfig::default(),
            list_only: None,
            auto_block: None,
            drift_every: Duration::from_secs(5),
            tick_every: Duration::from_secs(1),
            remove_on_exit: false,
            metrics: None,
        }
    }
}

/// Work for the guard.
#[derive(Debug, Clone)]
pub enum Job {
    /// Block these (one batch; a single risky block waits for confirmation).
    Block(Vec<BlockRequest>),
    /// Unblock these.
    Unblock(Vec<IpNet>),
    /// Unblock everything.
    UnblockAll,
    /// Put exactly these kernel rules in force (instead of following the shared rule set).
    KernelRules(Vec<KernelRule>),
    /// Keep the change waiting for confirmation.
    Confirm,
    /// Compare the kernel with the list now (and repair).
    CheckNow,
    /// Turn auto-block on with these settings, or off.
    AutoBlock(Option<AutoBlockConfig>),
    /// How long risky changes wait for confirmation from now on.
    ConfirmTimeout(Duration),
    /// Remove our kernel rules when the guard stops.
    RemoveOnExit(bool),
    /// Block every address of a file (text: one per line; `.csv`: an export), all or nothing.
    Import {
        /// The file.
        path: PathBuf,
        /// Reason for entries without one.
        reason: String,
    },
    /// Write the list (`.csv`: CSV, else text) or the ban history (CSV) to a file.
    Export {
        /// The file.
        path: PathBuf,
        /// The ban history instead of the list.
        history: bool,
    },
    /// Remove every trace of netwarden from the kernel now (the list is kept).
    FlushKernel,
}

impl Job {
    /// The networks the job is about (a front end shows them as "working…" until the job is done).
    #[must_use]
    pub fn nets(&self) -> Vec<IpNet> {
        match self {
            Self::Block(requests) => requests.iter().map(|r| r.net).collect(),
            Self::Unblock(nets) => nets.clone(),
            _ => Vec::new(),
        }
    }
}

/// Everything a front end shows, as of the guard's last change. Cheap to read: an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct GuardSnapshot {
    /// The enforcer is open (before that the list below is empty).
    pub ready: bool,
    /// The list, each entry's state as the kernel was last seen to hold it.
    pub list: BlockList,
    /// The ban history.
    pub history: BanHistory,
    /// A change waiting for confirmation.
    pub pending: Option<PendingChange>,
    /// Names of the `enforce: true` rules the kernel holds and reaches.
    pub rules_in_kernel: Vec<String>,
    /// `enforce: true` rules the kernel cannot take: name and why.
    pub refused_rules: BTreeMap<String, String>,
    /// What is wrong with the kernel now (after the last repair); empty when all is in force.
    pub problems: Vec<String>,
    /// Why nothing is enforced (list-only mode, or the enforcer could not open), if so.
    pub unavailable: Option<String>,
    /// The iptables backend, once open.
    pub backend: Option<String>,
    /// Auto-block is on.
    pub auto_block: bool,
    /// Remove-on-exit is on.
    pub remove_on_exit: bool,
    /// The highest job id finished (jobs finish in order).
    pub jobs_done: u64,
}

/// Something the guard did or could not do, for a status line or stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardMessage {
    /// True for a failure or a warning the user must see.
    pub error: bool,
    /// One readable sentence (user- and network-supplied parts escaped).
    pub text: String,
}

/// Why a job could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The queue is full (the kernel is slow); nothing was queued.
    #[error("the kernel enforcement queue is full; try again in a moment")]
    Busy,
    /// The guard thread has stopped.
    #[error("kernel enforcement has stopped")]
    Stopped,
}

/// A running guard: send jobs, read snapshots and messages. Dropping it stops the thread (and removes our
/// kernel rules when remove-on-exit is on).
pub struct Guard {
    jobs: Sender<(u64, Job)>,
    next_job: AtomicU64,
    stop: Sender<()>,
    snapshot: Arc<ArcSwap<GuardSnapshot>>,
    messages: Receiver<GuardMessage>,
    kernel_blocked: Arc<ArcSwap<KernelBlocked>>,
    alerts: Sender<Alert>,
    thread: Option<JoinHandle<()>>,
}

impl Guard {
    /// Starts the guard thread. It opens the enforcer there (reconciling the kernel, which may take a
    /// moment) and publishes a snapshot when done; `runner` runs the kernel commands. With `rules`, the
    /// `enforce: true` rules of the shared rule set are put into the kernel and followed when the set is
    /// swapped (editor, file watcher). `wake` is called after each publication.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        config: GuardConfig,
        runner: Arc<dyn CommandRunner>,
        rules: Option<SharedRules>,
        wake: Option<Wake>,
    ) -> std::io::Result<Self> {
        let (job_tx, job_rx) = bounded(JOB_QUEUE);
        let (stop_tx, stop_rx) = bounded(1);
        let (message_tx, message_rx) = bounded(MESSAGE_QUEUE);
        let (alert_tx, alert_rx) = bounded(ALERT_QUEUE);
        let snapshot = Arc::new(ArcSwap::from_pointee(GuardSnapshot {
            auto_block: config.auto_block.is_some(),
            remove_on_exit: config.remove_on_exit,
            ..GuardSnapshot::default()
        }));
        let kernel_blocked = Arc::new(ArcSwap::from_pointee(KernelBlocked::default()));
        let worker = Worker {
            blocker: None,
            auto_config: config.auto_block.clone(),
            config,
            runner,
            rules,
            last_rules: None,
            explicit_rules: false,
            enforcer: None,
            unavailable: None,
            refused: BTreeMap::new(),
            jobs_done: 0,
            snapshot: Arc::clone(&snapshot),
            kernel_blocked: Arc::clone(&kernel_blocked),
            messages: (message_tx, message_rx.clone()),
            wake,
        };
        let thread = std::thread::Builder::new()
            .name("guard".into())
            .spawn(move || worker.run(&job_rx, &alert_rx, &stop_rx))?;
        Ok(Self {
            jobs: job_tx,
            next_job: AtomicU64::new(1),
            stop: stop_tx,
            snapshot,
            messages: message_rx,
            kernel_blocked,
            alerts: alert_tx,
            thread: Some(thread),
        })
    }

    /// Queues a job; returns its id (`GuardSnapshot::jobs_done` reaches it when it is done). Never blocks.
    ///
    /// # Errors
    /// `Busy` when the queue is full, `Stopped` when the thread has ended.
    pub fn send(&self, job: Job) -> Result<u64, GuardError> {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send((id, job)) {
            Ok(()) => Ok(id),
            Err(TrySendError::Full(_)) => Err(GuardError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(GuardError::Stopped),
        }
    }

    /// The latest snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<GuardSnapshot> {
        self.snapshot.load_full()
    }

    /// Messages not read yet (oldest first).
    pub fn messages(&self) -> impl Iterator<Item = GuardMessage> + '_ {
        self.messages.try_iter()
    }

    /// A receiver of the messages, for a thread that prints them (the CLI).
    #[must_use]
    pub fn message_receiver(&self) -> Receiver<GuardMessage> {
        self.messages.clone()
    }

    /// What the kernel drops right now, for `EngineConfig::kernel_blocked` (marks rows "kernel drop").
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<ArcSwap<KernelBlocked>> {
        Arc::clone(&self.kernel_blocked)
    }

    /// Where the engine offers detection alerts (`EngineConfig::alert_sink`), for auto-block. Only live
    /// capture should be wired to it.
    #[must_use]
    pub fn alert_sender(&self) -> Sender<Alert> {
        self.alerts.clone()
    }

    /// True while the thread runs.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread and waits for it (and for the removal of our rules, when asked).
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.try_send(()).ok();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The guard thread's state.
struct Worker {
    config: GuardConfig,
    runner: Arc<dyn CommandRunner>,
    rules: Option<SharedRules>,
    /// The rule set whose `enforce: true` rules were last applied.
    last_rules: Option<Arc<RuleSet>>,
    /// A `Job::KernelRules` set the rules: the shared rule set is not followed any more.
    explicit_rules: bool,
    enforcer: Option<Enforcer>,
    /// Why there is no kernel enforcement (list-only, or no enforcer at all).
    unavailable: Option<String>,
    refused: BTreeMap<String, String>,
    auto_config: Option<AutoBlockConfig>,
    blocker: Option<AutoBlocker>,
    jobs_done: u64,
    snapshot: Arc<ArcSwap<GuardSnapshot>>,
    kernel_blocked: Arc<ArcSwap<KernelBlocked>>,
    /// Sender, and a receiver used only to drop the oldest message when nobody reads.
    messages: (Sender<GuardMessage>, Receiver<GuardMessage>),
    wake: Option<Wake>,
}

impl Worker {
    fn run(mut self, jobs: &Receiver<(u64, Job)>, alerts: &Receiver<Alert>, stop: &Receiver<()>) {
        self.open();
        let ticker = tick(self.config.tick_every);
        let mut last_drift = Instant::now();
        loop {
            select! {
                recv(stop) -> _ => break,
                recv(jobs) -> job => {
                    let Ok((id, job)) = job else { break };
                    self.job(job);
                    self.jobs_done = id;
                    self.publish();
                }
                recv(alerts) -> alert => {
                    let Ok(first) = alert else { continue };
                    let batch: Vec<Alert> =
                        std::iter::once(first).chain(alerts.try_iter().take(255)).collect();
                    if self.auto_block(&batch) {
                        self.publish();
                    }
                }
                recv(ticker) -> _ => {
                    let drift_due = last_drift.elapsed() >= self.config.drift_every;
                    if drift_due {
                        last_drift = Instant::now();
                    }
                    if self.tick(drift_due) {
                        self.publish();
                    }
                }
            }
        }
        if self.config.remove_on_exit
            && self.unavailable.is_none()
            && let Some(enforcer) = &self.enforcer
        {
            match enforcer.flush_kernel() {
                Ok(()) => self.say(false, "removed netwarden's rules from the kernel".into()),
                Err(err) => self.say(true, format!("removing our rules from the kernel failed: {err}")),
            }
        }
    }

    /// Opens the enforcer (kernel, or list-only); without one the list is still kept if it can be.
    fn open(&mut self) {
        let opened = match &self.config.list_only {
            Some(why) => {
                Enforcer::list_only(self.config.enforce.clone(), why).map(|e| (e, Some(why.clone())))
            }
            None => match Enforcer::open(Arc::clone(&self.runner), self.config.enforce.clone()) {
                Ok(enforcer) => Ok((enforcer, None)),
                Err(err @ (EnforceError::State(_) | EnforceError::Lock(_))) => Err(err),
                Err(err) => {
                    // The kernel cannot be used; the list is still kept and saved.
                    let why = err.to_string();
                    Enforcer::list_only(self.config.enforce.clone(), &why).map(|e| (e, Some(why)))
                }
            },
        };
        match opened {
            Ok((enforcer, why)) => {
                if why.is_none() {
                    self.say(
                        false,
                        format!("kernel reconciled with the saved list ({})", enforcer.backend()),
                    );
                }
                self.unavailable = why;
                self.enforcer = Some(enforcer);
                self.set_auto_block(self.auto_config.clone());
                self.follow_rules(true);
            }
            Err(err) => {
                let why = format!("the block list cannot be used: {err}");
                self.say(true, why.clone());
                self.unavailable = Some(why);
            }
        }
        self.publish();
    }

    fn kernel_ok(&self) -> bool {
        self.enforcer.is_some() && self.unavailable.is_none()
    }

    fn say(&self, error: bool, text: String) {
        let message = GuardMessage { error, text };
        if let Err(TrySendError::Full(message)) = self.messages.0.try_send(message) {
            // Nobody reads: the oldest message makes room, the newest is what matters.
            self.messages.1.try_recv().ok();
            self.messages.0.try_send(message).ok();
        }
    }

    fn set_auto_block(&mut self, config: Option<AutoBlockConfig>) {
        self.auto_config = config;
        self.blocker = match (&self.auto_config, &self.enforcer) {
            (Some(config), Some(enforcer)) if self.unavailable.is_none() => {
                Some(AutoBlocker::new(config.clone(), enforcer.protected()))
            }
            _ => None,
        };
    }

    fn job(&mut self, job: Job) {
        let Some(enforcer) = &self.enforcer else {
            let why = self.unavailable.clone().unwrap_or_default();
            self.say(true, format!("nothing done: {why}"));
            return;
        };
        let metrics = self.config.metrics.clone();
        let count = move |bans: usize, unbans: usize| {
            if let Some(metrics) = &metrics {
                metrics.record_bans(bans as u64);
                metrics.record_unbans(unbans as u64);
            }
        };
        let outcome: Result<Option<String>, String> = match job {
            Job::Block(requests) => enforcer
                .block_many(&requests)
                .map(|outcomes| {
                    count(added(&outcomes), 0);
                    Some(describe_blocks(&outcomes))
                })
                .map_err(|e| e.to_string()),
            Job::Unblock(nets) => nets
                .iter()
                .try_fold(0, |removed, net| {
                    enforcer.unblock(*net).map(|was| removed + usize::from(was))
                })
                .map(|removed| {
                    count(0, removed);
                    Some(format!("unblocked {}", list_nets(&nets)))
                })
                .map_err(|e| e.to_string()),
            Job::UnblockAll => enforcer
                .unblock_all(LiftReason::Manual)
                .map(|n| {
                    count(0, n);
                    Some(format!("unblocked all {n} entries"))
                })
                .map_err(|e| e.to_string()),
            Job::KernelRules(rules) => {
                self.explicit_rules = true;
                apply_rules(enforcer, &rules)
            }
            Job::Confirm => enforcer
                .confirm()
                .map(|kept| kept.map(|what| format!("{what}: kept")))
                .map_err(|e| e.to_string()),
            Job::CheckNow => self.check_drift().map(|_| None),
            Job::AutoBlock(config) => {
                let on = config.is_some();
                self.set_auto_block(config);
                Ok(Some(if on && self.blocker.is_none() {
                    "auto-block stays off: kernel enforcement is unavailable".to_owned()
                } else if on {
                    "auto-block on".to_owned()
                } else {
                    "auto-block off".to_owned()
                }))
            }
            Job::ConfirmTimeout(timeout) => {
                enforcer.set_confirm_timeout(timeout);
                Ok(None)
            }
            Job::RemoveOnExit(on) => {
                self.config.remove_on_exit = on;
                Ok(None)
            }
            Job::Import { path, reason } => import(enforcer, &path, &reason),
            Job::Export { path, history } => export(enforcer, &path, history),
            Job::FlushKernel => enforcer
                .flush_kernel()
                .map(|()| Some("netwarden's rules removed from the kernel".to_owned()))
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(Some(text)) => self.say(false, text),
            Ok(None) => {}
            Err(text) => self.say(true, text),
        }
    }

    /// Repairs drift; true when something was wrong (and said).
    fn check_drift(&self) -> Result<bool, String> {
        let Some(enforcer) = &self.enforcer else {
            return Ok(false);
        };
        if !self.kernel_ok() {
            return Ok(false);
        }
        match enforcer.check_drift() {
            Ok(report) => {
                for line in &report.foreign {
                    self.say(
                        true,
                        format!(
                            "removed a rule added by hand to netwarden's chains: {}",
                            escape(line)
                        ),
                    );
                }
                let others: Vec<&String> = report
                    .problems
                    .iter()
                    .filter(|p| !p.starts_with("rule added by hand"))
                    .collect();
                if !others.is_empty() {
                    let joined: Vec<&str> = others.iter().map(|p| p.as_str()).collect();
                    self.say(true, format!("drift repaired: {}", escape(&joined.join("; "))));
                }
                Ok(!report.problems.is_empty() || !report.foreign.is_empty())
            }
            Err(err) => Err(format!("drift check failed: {err}")),
        }
    }

    /// Feeds alerts to auto-block; true when something was blocked.
    fn auto_block(&mut self, alerts: &[Alert]) -> bool {
        let (Some(blocker), Some(enforcer)) = (self.blocker.as_mut(), &self.enforcer) else {
            return false;
        };
        let mut requests: Vec<BlockRequest> = Vec::new();
        for alert in alerts {
            if let Some(request) = blocker.observe(alert) {
                // One request per source in a batch: the last offence counts.
                requests.retain(|r| r.net != request.net);
                requests.push(request);
            }
        }
        if requests.is_empty() {
            return false;
        }
        match enforcer.block_many(&requests) {
            Ok(outcomes) => {
                if let Some(metrics) = &self.config.metrics {
                    metrics.record_bans(added(&outcomes) as u64);
                }
                for outcome in outcomes {
                    let text = match outcome.change {
                        BlockChange::Added | BlockChange::AddedPending { .. } => "auto-blocked",
                        BlockChange::Updated(_) => "auto-block extended",
                        BlockChange::Already | BlockChange::Kept(_) => continue,
                    };
                    self.say(
                        false,
                        format!("{text} {} ({})", outcome.entry.net, escape(&outcome.entry.reason)),
                    );
                }
            }
            Err(err) => self.say(true, format!("auto-block failed: {err}")),
        }
        true
    }

    /// The clock: picks up other processes' changes, lifts expired bans, rolls back an unconfirmed change,
    /// follows the rule set and every `drift_every` repairs drift. True when something changed.
    fn tick(&mut self, drift_due: bool) -> bool {
        let Some(enforcer) = &self.enforcer else {
            return false;
        };
        let mut changed = match enforcer.refresh() {
            Ok(changed) => changed,
            Err(err) => {
                self.say(true, format!("reading the block list failed: {err}"));
                false
            }
        };
        match enforcer.tick(Utc::now()) {
            Ok(report) => {
                if let Some(metrics) = &self.config.metrics {
                    metrics.record_unbans(report.expired.len() as u64);
                }
                if let Some(what) = report.rolled_back {
                    self.say(true, format!("{what}: not confirmed in time, rolled back"));
                    changed = true;
                }
                if !report.expired.is_empty() {
                    changed = true;
                }
            }
            Err(err) => self.say(true, format!("expiry or roll-back failed (retrying): {err}")),
        }
        changed |= self.follow_rules(false);
        if drift_due && self.kernel_ok() {
            let before = self.enforcer.as_ref().map(Enforcer::health);
            match self.check_drift() {
                // Publish (and wake the window) only when the kernel's state changed.
                Ok(repaired) => {
                    changed |= repaired || self.enforcer.as_ref().map(Enforcer::health) != before;
                }
                Err(err) => {
                    self.say(true, err);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Applies the `enforce: true` rules of the shared rule set when it was swapped (or `force`).
    fn follow_rules(&mut self, force: bool) -> bool {
        if self.explicit_rules {
            return false;
        }
        let (Some(shared), Some(enforcer)) = (&self.rules, &self.enforcer) else {
            return false;
        };
        let current = shared.load_full();
        if !force
            && self
                .last_rules
                .as_ref()
                .is_some_and(|last| Arc::ptr_eq(last, &current))
        {
            return false;
        }
        self.last_rules = Some(Arc::clone(&current));
        let (rules, errors) = super::iptables::kernel_rules_of(&current);
        self.refused = errors
            .into_iter()
            .filter_map(|err| match err {
                EnforceError::BadRule { name, reason } => Some((name, reason)),
                _ => None,
            })
            .collect();
        for (name, reason) in &self.refused {
            self.say(
                true,
                format!(
                    "rule `{}` cannot be enforced in the kernel: {reason}",
                    escape(name)
                ),
            );
        }
        match apply_rules(enforcer, &rules) {
            // The first time the rules are in force says so at start-up; later ones follow a reload.
            Ok(Some(_)) if !force => self.say(false, format!("{} kernel rules after reload", rules.len())),
            Ok(Some(text)) => self.say(false, text),
            Ok(None) => {}
            Err(text) => self.say(true, text),
        }
        true
    }

    fn publish(&self) {
        let previous = self.snapshot.load();
        let mut snapshot = GuardSnapshot {
            ready: self.enforcer.is_some(),
            refused_rules: self.refused.clone(),
            unavailable: self.unavailable.clone(),
            auto_block: self.blocker.is_some(),
            remove_on_exit: self.config.remove_on_exit,
            jobs_done: self.jobs_done.max(previous.jobs_done),
            ..GuardSnapshot::default()
        };
        if let Some(enforcer) = &self.enforcer {
            let (rules_in_kernel, problems) = enforcer.health();
            snapshot.list = enforcer.list();
            snapshot.history = enforcer.history();
            snapshot.pending = enforcer.pending();
            snapshot.rules_in_kernel = if self.kernel_ok() {
                rules_in_kernel
            } else {
                Vec::new()
            };
            snapshot.problems = problems;
            snapshot.backend = self.kernel_ok().then(|| enforcer.backend().to_string());
        }
        let enforced: Vec<IpNet> = snapshot
            .list
            .iter()
            .filter(|e| e.state == EntryState::Enforced)
            .map(|e| e.net)
            .collect();
        if let Some(metrics) = &self.config.metrics {
            metrics.set_active_bans(enforced.len() as u64);
        }
        self.kernel_blocked.store(Arc::new(
            KernelBlocked::new(enforced).with_rules(&snapshot.rules_in_kernel),
        ));
        self.snapshot.store(Arc::new(snapshot));
        if let Some(wake) = &self.wake {
            wake();
        }
    }
}

/// Puts `rules` into the kernel through the enforcer; the message to show, if any.
fn apply_rules(enforcer: &Enforcer, rules: &[KernelRule]) -> Result<Option<String>, String> {
    match enforcer.set_kernel_rules(rules) {
        Ok(RulesChange::Unchanged) => Ok(None),
        Ok(RulesChange::Applied) => Ok(Some(format!("{} kernel rules in force", rules.len()))),
        Ok(RulesChange::Pending { deadline, what }) => Err(format!(
            "{}: applied; undone at {} unless kept",
            escape(&what),
            deadline.format("%H:%M:%S")
        )),
        Err(err) => Err(format!("rules not put into the kernel: {err}")),
    }
}

/// How many of `outcomes` are new bans.
fn added(outcomes: &[super::BlockOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o.change, BlockChange::Added | BlockChange::AddedPending { .. }))
        .count()
}

/// One sentence for the outcome of a block job.
fn describe_blocks(outcomes: &[super::BlockOutcome]) -> String {
    match outcomes {
        [one] => {
            let net = one.entry.net;
            let state = escape(&one.entry.state.label()).into_owned();
            match &one.change {
                BlockChange::Added => format!("blocked {net} ({state})"),
                BlockChange::AddedPending { what, .. } => {
                    format!("{}: applied, keep it before it is undone", escape(what))
                }
                BlockChange::Already => format!("{net} is already blocked ({state})"),
                BlockChange::Updated(what) => format!("{net}: {} ({state})", what.join(", ")),
                BlockChange::Kept(why) => format!("{net} is already blocked: {}", escape(why)),
            }
        }
        many => {
            let added = many.iter().filter(|o| o.change == BlockChange::Added).count();
            format!(
                "blocked {added} new entries ({} already blocked)",
                many.len() - added
            )
        }
    }
}

fn list_nets(nets: &[IpNet]) -> String {
    match nets {
        [one] => one.to_string(),
        many => format!("{} entries", many.len()),
    }
}

/// Reads and blocks a whole file as one batch (protected addresses refused, nothing applied then).
fn import(enforcer: &Enforcer, path: &std::path::Path, reason: &str) -> Result<Option<String>, String> {
    let shown = escape(&path.display().to_string()).into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}; nothing imported"))?;
    let csv = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv"));
    let imported = if csv {
        crate::blocklist::io::import_csv(text.as_bytes())
    } else {
        crate::blocklist::io::import_text(&text)
    }
    .map_err(|e| format!("{shown}: {e}; nothing imported"))?;
    let now = Utc::now();
    let requests: Vec<BlockRequest> = imported
        .into_iter()
        .filter(|e| e.expires.is_none_or(|at| at > now))
        .map(|e| BlockRequest {
            net: e.net,
            reason: e.reason.unwrap_or_else(|| reason.to_owned()),
            duration: e.expires.and_then(|at| (at - now).to_std().ok()),
            force: false,
            update: super::Update::default(),
        })
        .collect();
    let count = requests.len();
    enforcer
        .block_many(&requests)
        .map(|_| Some(format!("imported {count} entries from {shown}")))
        .map_err(|e| format!("{shown}: {e}; nothing imported"))
}

/// Writes the list or the history to `path`.
fn export(enforcer: &Enforcer, path: &std::path::Path, history: bool) -> Result<Option<String>, String> {
    let shown = escape(&path.display().to_string()).into_owned();
    let file = std::fs::File::create(path).map_err(|e| format!("export to {shown} failed: {e}"))?;
    let mut out = std::io::BufWriter::new(file);
    let csv = path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv"));
    let written = match (history, csv) {
        (true, _) => enforcer.history().export_csv(&mut out).map_err(|e| e.to_string()),
        (false, true) => {
            crate::blocklist::io::export_csv(&enforcer.list(), &mut out).map_err(|e| e.to_string())
        }
        (false, false) => {
            crate::blocklist::io::export_text(&enforcer.list(), &mut out).map_err(|e| e.to_string())
        }
    };
    written
        .and_then(|()| std::io::Write::flush(&mut out).map_err(|e| e.to_string()))
        .map(|()| Some(format!("exported to {shown}")))
        .map_err(|e| format!("export to {shown} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::runner::RecordingRunner;

    fn wait(guard: &Guard, done: impl Fn(&GuardSnapshot) -> bool) -> Arc<GuardSnapshot> {
        let start = Instant::now();
        loop {
            let snapshot = guard.snapshot();
            if done(&snapshot) || start.elapsed() > Duration::from_secs(10) {
                return snapshot;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn list_only(dir: &std::path::Path) -> GuardConfig {
        GuardConfig {
            enforce: EnforceConfig {
                state_dir: Some(dir.to_owned()),
                ssh_connection: None,
                ..EnforceConfig::default()
            },
            list_only: Some("test: no kernel".into()),
            tick_every: Duration::from_millis(100),
            ..GuardConfig::default()
        }
    }

    #[test]
    fn jobs_run_in_order_and_other_processes_changes_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let woken = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&woken);
        let wake: Wake = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let guard = Guard::spawn(
            list_only(dir.path()),
            Arc::new(RecordingRunner::dry_run()),
            None,
            Some(wake),
        )
        .unwrap();
        let request = BlockRequest::parse("192.0.2.1", "first", None, false).unwrap();
        guard.send(Job::Block(vec![request])).unwrap();
        let id = guard
            .send(Job::Unblock(vec!["192.0.2.9/32".parse().unwrap()]))
            .unwrap();
        let snapshot = wait(&guard, |s| s.jobs_done >= id);
        assert_eq!(snapshot.jobs_done, id);
        assert_eq!(snapshot.list.len(), 1);
        assert_eq!(snapshot.unavailable.as_deref(), Some("test: no kernel"));
        assert!(woken.load(Ordering::Relaxed) > 0, "the front end was woken");
        let texts: Vec<String> = guard.messages().map(|m| m.text).collect();
        assert!(
            texts.iter().any(|t| t.starts_with("blocked 192.0.2.1/32")),
            "{texts:?}"
        );

        // Another process blocks through its own enforcer: the guard shows it on its next tick.
        let other = Enforcer::list_only(list_only(dir.path()).enforce, "other").unwrap();
        other
            .block(BlockRequest::parse("198.51.100.7", "script", None, false).unwrap())
            .unwrap();
        let snapshot = wait(&guard, |s| s.list.len() == 2);
        assert_eq!(snapshot.list.len(), 2);
        guard.stop();
    }

    #[test]
    fn expiry_runs_on_the_guards_clock() {
        let dir = tempfile::tempdir().unwrap();
        let guard = Guard::spawn(
            list_only(dir.path()),
            Arc::new(RecordingRunner::dry_run()),
            None,
            None,
        )
        .unwrap();
        let request = BlockRequest::parse("192.0.2.1", "short", Some(Duration::from_secs(1)), false).unwrap();
        let id = guard.send(Job::Block(vec![request])).unwrap();
        assert_eq!(wait(&guard, |s| s.jobs_done >= id).list.len(), 1);
        // Nobody polls or draws: the guard's tick lifts the ban.
        let snapshot = wait(&guard, |s| s.list.is_empty());
        assert!(snapshot.list.is_empty());
        assert_eq!(
            snapshot.history.iter().last().and_then(|r| r.lifted_by),
            Some(LiftReason::Expired)
        );
    }

    #[test]
    fn a_full_queue_is_reported_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        // Another process holds the state directory: the guard waits for it before any job.
        let held = super::super::state::StateLock::acquire(dir.path(), true, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let guard = Guard::spawn(
            list_only(dir.path()),
            Arc::new(RecordingRunner::dry_run()),
            None,
            None,
        )
        .unwrap();
        let results: Vec<Result<u64, GuardError>> =
            (0..=JOB_QUEUE).map(|_| guard.send(Job::CheckNow)).collect();
        assert!(results[..JOB_QUEUE].iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results[JOB_QUEUE], Err(GuardError::Busy));
        drop(held);
        let last = results[JOB_QUEUE - 1].unwrap();
        assert_eq!(
            wait(&guard, |s| s.jobs_done >= last).jobs_done,
            last,
            "queued jobs still run"
        );
    }
}
