//! The engine: one named capture thread that takes packets from an `Input`, parses, evaluates rules, runs
//! detection, learns names from DNS answers, hands notable packets to the audit thread, and sends batches of
//! `Event`s to a front end over a bounded channel. Front ends talk back through `Command`s.
//!
//! Live capture and files replayed as fast as possible are read on a thread of their own (`live`,
//! `readahead`), so reading overlaps with judging and the audit log's writing on another core: a live
//! capture is then three threads joined by bounded channels (reader, capture, audit), plus the front end.
//! `Worker::process` is the one call per packet, whatever the input.
//!
//! The capture thread never waits on a live front end: when the channel is full the batch is counted as
//! dropped for display (statistics and the audit log still saw every packet). For offline files the CLI may
//! ask for back-pressure instead, so no event is lost.

mod ifnames;
mod kernel;
mod live;
mod raw;
mod readahead;
#[cfg(test)]
mod script;
mod stats;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use ifnames::IfNames;
pub use kernel::KernelBlocked;
pub use raw::{RawPacketRecord, RawStore};
use readahead::{Input, Next, ReadAhead};
use stats::LocalCounts;
pub use stats::{
    ACTIONS, ALERT_KINDS, AlertCounts, DIRECTIONS, EngineStats, RunSummary, StatsSnapshot, VerdictDirection,
    rule_hits,
};

use crate::attrib::{AttribStats, Attributor};
use crate::audit::{AuditConfig, AuditEntry, AuditLog};
use crate::capture::{
    Backoff, CaptureError, PacketSource, PcapSource, SourceSpec, interface_exists, interface_is_up,
};
use crate::detect::Detector;
use crate::event::{Event, Origin};
use crate::flows::{FlowConfig, FlowTable, Observed, SharedFlows};
use crate::names::NameCache;
use crate::packet::LocalAddrs;
use crate::rules::{RuleSet, RuleWatcher, SharedRules};

/// Which events the engine sends to its front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deliver {
    /// Every packet (GUI, `--all`).
    All,
    /// Denied, `Log`-matched and alerting packets only (the CLI default).
    Notable,
    /// None: statistics only (`replay --summary`).
    Nothing,
}

/// How an offline file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As fast as possible (replay, benchmarks, tests).
    AsFast,
    /// At the capture's own timing, starting over at the end (demo mode).
    RealtimeLoop,
}

/// Everything an engine run needs.
pub struct EngineConfig {
    pub source: SourceSpec,
    /// Rules in force; swapped by the rule editor or the file watcher without stopping capture.
    pub rules: SharedRules,
    /// Watches the rules file for hand edits while running (`None`: no watching). Create it with
    /// `RuleWatcher::open`, which also loads the rules, so the first poll reports only later changes.
    pub rules_watcher: Option<RuleWatcher>,
    /// Audit log settings (`None`: no audit log).
    pub audit: Option<AuditConfig>,
    pub local_addrs: LocalAddrs,
    pub deliver: Deliver,
    /// Block instead of dropping batches when the front end is slow (offline files in the CLI).
    pub backpressure: bool,
    pub pace: Pace,
    /// Events per batch at most.
    pub batch_max: usize,
    /// A partial batch is sent after this long.
    pub batch_interval: Duration,
    /// Batches the channel holds before the engine drops (or waits, with back-pressure).
    pub channel_batches: usize,
    /// Keeps raw bytes of recent packets for the details pane and pcap export.
    pub raw_store: Option<Arc<RawStore>>,
    /// Enforced kernel blocks, to mark `kernel_dropped` events.
    pub kernel_blocked: Option<Arc<ArcSwap<KernelBlocked>>>,
    /// Host names kept from DNS answers at most.
    pub name_capacity: usize,
    /// Detection alerts are also offered here (`try_send`, never blocking), for auto-block.
    pub alert_sink: Option<Sender<crate::detect::Alert>>,
    /// Keeps a flow table (`Engine::flows`) with these settings (`None`: no flow table; events of a file
    /// then say `(offline)`, live ones carry no program).
    pub flows: Option<FlowConfig>,
    /// Looks up the program and user of each new live flow on the "attrib" thread (needs `flows`; files
    /// are always `(offline)`).
    pub attribute: bool,
    /// Called after each message sent to the front end (a batch, a notice, the stop), so a window can
    /// repaint when there is news instead of polling on a timer. Must be cheap and never block.
    pub notify: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Numbers the rule sets packets are judged with (`Event::rules_version`), so a front end can explain
    /// a packet with the rules that judged it after they changed.
    pub rules_history: Option<Arc<RulesHistory>>,
}

/// The rule sets an engine judged packets with, numbered from 1 (`Event::rules_version`; 0 = not
/// recorded). A front end keeps one across engine runs; the newest `RULES_HISTORY_LEN` sets are kept, so
/// an old enough version is answered with `None`. Recorded only when the rules change, never per packet.
#[derive(Debug, Default)]
pub struct RulesHistory {
    sets: std::sync::Mutex<std::collections::VecDeque<(u32, Arc<RuleSet>)>>,
}

/// Rule sets a `RulesHistory` keeps.
pub const RULES_HISTORY_LEN: usize = 64;

impl RulesHistory {
    /// The version of `set`: the newest one if it is the same set, else a new number.
    pub fn record(&self, set: &Arc<RuleSet>) -> u32 {
        let Ok(mut sets) = self.sets.lock() else {
            return 0;
        };
        match sets.back() {
            Some((version, last)) if Arc::ptr_eq(last, set) => *version,
            last => {
                let version = last.map_or(1, |(v, _)| v.wrapping_add(1).max(1));
                sets.push_back((version, Arc::clone(set)));
                while sets.len() > RULES_HISTORY_LEN {
                    sets.pop_front();
                }
                version
            }
        }
    }

    /// The rule set of `version`, if still kept.
    #[must_use]
    pub fn get(&self, version: u32) -> Option<Arc<RuleSet>> {
        let sets = self.sets.lock().ok()?;
        sets.iter()
            .find(|(v, _)| *v == version)
            .map(|(_, set)| Arc::clone(set))
    }
}

impl EngineConfig {
    /// A configuration with the usual defaults: live-friendly batching, every event delivered, no audit log.
    #[must_use]
    pub fn new(source: SourceSpec, rules: SharedRules) -> Self {
        Self {
            source,
            rules,
            rules_watcher: None,
            audit: None,
            local_addrs: LocalAddrs::default(),
            deliver: Deliver::All,
            backpressure: false,
            pace: Pace::AsFast,
            batch_max: 4096,
            batch_interval: Duration::from_millis(10),
            channel_batches: 256,
            raw_store: None,
            kernel_blocked: None,
            name_capacity: 16_384,
            alert_sink: None,
            flows: None,
            attribute: false,
            notify: None,
            rules_history: None,
        }
    }
}

/// Messages from the engine to its front end.
#[derive(Debug)]
pub enum EngineMessage {
    Events(Vec<Event>),
    Notice(Notice),
    /// The capture thread ended; `Err` carries the reason it could not go on.
    Stopped(Result<(), String>),
}

/// Something the user should know while capture goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The interface is down or failed; reopening with back-off. Sent once per outage.
    WaitingForInterface {
        iface: String,
        detail: String,
    },
    InterfaceBack {
        iface: String,
    },
    /// The rules file changed on disk and the new rules are in force.
    RulesReloaded {
        rules: usize,
    },
    /// The rules file changed on disk but does not compile; the old rules stay in force.
    RulesRejected(String),
    /// The audit log could not be written (once per distinct error).
    AuditFailed(String),
    /// Demo mode started the bundled capture again.
    ReplayRestarted,
    /// The capture's link type (a libpcap `LINKTYPE_*` number) is one netwarden cannot parse: its packets
    /// are counted (`StatsSnapshot::unparsed`) but have no addresses for the rules. Sent once per capture.
    LinkTypeUnsupported(i32),
}

impl Notice {
    /// One sentence for a status bar or stderr.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Notice::WaitingForInterface { iface, detail } => {
                format!("{iface} is down or failed ({detail}); waiting for it to come back")
            }
            Notice::InterfaceBack { iface } => format!("{iface} is back; capturing again"),
            Notice::RulesReloaded { rules } => format!("rules file changed: {rules} rules now in force"),
            Notice::RulesRejected(e) => {
                format!("rules file changed but is invalid, old rules stay in force: {e}")
            }
            Notice::AuditFailed(e) => format!("cannot write the audit log: {e}"),
            Notice::ReplayRestarted => "demo capture restarted from the beginning".to_owned(),
            Notice::LinkTypeUnsupported(link) => {
                format!("link type {link} not supported: packets counted, not parsed")
            }
        }
    }
}

/// Requests from a front end to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Stop,
}

/// A running engine: receive events from `events`, send `Command`s, read live counters from `stats`.
pub struct Engine {
    pub events: Receiver<EngineMessage>,
    commands: Sender<Command>,
    pub stats: Arc<EngineStats>,
    /// The flow table's latest snapshot (when `EngineConfig::flows` is set): read it every frame, it is one
    /// atomic load; the flows' counters and attribution inside are live.
    pub flows: Option<Arc<SharedFlows>>,
    /// Counters of the attribution thread (when it runs).
    pub attribution: Option<Arc<AttribStats>>,
    thread: Option<JoinHandle<Result<(), CaptureError>>>,
}

impl Engine {
    /// Opens the source (so errors such as a missing file, unknown interface or missing privilege come back
    /// at once) and starts the capture thread.
    ///
    /// # Errors
    /// The source cannot be opened, or the thread cannot be started.
    pub fn spawn(config: EngineConfig) -> Result<Self, CaptureError> {
        let source = Box::new(PcapSource::open(&config.source)?);
        // A file replayed as fast as possible is read on a thread of its own, overlapping with the engine;
        // so is a live device (`Input::for_source`).
        let input = if matches!(config.source, SourceSpec::File { .. }) && config.pace == Pace::AsFast {
            let keep_data = config.raw_store.is_some();
            Input::Ahead(ReadAhead::start(source, keep_data)?)
        } else {
            Input::for_source(source, config.source.iface_name())?
        };
        Self::spawn_input(config, input)
    }

    /// Starts the capture thread over an already opened source (tests and demo mode use this). A live
    /// source gets its reader thread, as in `spawn`.
    ///
    /// # Errors
    /// The audit log cannot be opened, or a thread cannot be started.
    pub fn spawn_with_source(
        config: EngineConfig,
        source: Box<dyn PacketSource>,
    ) -> Result<Self, CaptureError> {
        let input = Input::for_source(source, config.source.iface_name())?;
        Self::spawn_input(config, input)
    }

    fn spawn_input(config: EngineConfig, input: Input) -> Result<Self, CaptureError> {
        let (event_tx, event_rx) = bounded(config.channel_batches.max(1));
        let (command_tx, command_rx) = bounded(64);
        let stats = Arc::new(EngineStats::default());
        let audit = match &config.audit {
            Some(audit_config) => {
                let log = AuditLog::open(audit_config).map_err(|e| CaptureError::Read {
                    source_name: audit_config.path.display().to_string(),
                    detail: e.to_string(),
                })?;
                Some(AuditWriter::start(log, event_tx.clone(), Arc::clone(&stats))?)
            }
            None => None,
        };
        let iface = config.source.iface_name();
        let thread_name: String = format!("capture-{iface}").chars().take(15).collect();
        let attributor = if config.attribute && config.flows.is_some() && input.is_live() {
            Some(Attributor::system().map_err(|e| CaptureError::Read {
                source_name: "attribution thread".into(),
                detail: e.to_string(),
            })?)
        } else {
            None
        };
        let attribution = attributor.as_ref().map(|a| Arc::clone(&a.stats));
        let mut worker = Worker::new(config, input, audit, event_tx, command_rx, Arc::clone(&stats));
        let flows = worker.flows.as_mut().map(|tracker| {
            tracker.attributor = attributor;
            Arc::clone(&tracker.shared)
        });
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || worker.run())
            .map_err(|e| CaptureError::Read {
                source_name: "capture thread".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            events: event_rx,
            commands: command_tx,
            stats,
            flows,
            attribution,
            thread: Some(thread),
        })
    }

    /// Asks the capture thread to stop (it notices within ~100 ms).
    pub fn request_stop(&self) {
        // A full or closed command channel means the thread is busy stopping or gone already.
        self.commands.try_send(Command::Stop).ok();
    }

    /// A handle that can stop the engine from another thread (a Ctrl-C handler).
    #[must_use]
    pub fn stopper(&self) -> Stopper {
        Stopper {
            commands: self.commands.clone(),
        }
    }

    /// Stops the thread and waits for it.
    ///
    /// # Errors
    /// The reason capture ended, if it failed.
    pub fn shutdown(mut self) -> Result<(), CaptureError> {
        self.request_stop();
        self.join_inner()
    }

    /// Waits for the thread to end by itself (end of file), without asking it to stop.
    ///
    /// # Errors
    /// The reason capture ended, if it failed.
    pub fn join(mut self) -> Result<(), CaptureError> {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<(), CaptureError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // While joining, keep draining so a back-pressured thread can finish.
        while !thread.is_finished() {
            // Events still queued are discarded here: callers that want them read `events` until `Stopped`.
            self.events.recv_timeout(Duration::from_millis(20)).ok();
        }
        thread.join().unwrap_or_else(|_| {
            Err(CaptureError::Read {
                source_name: "capture thread".into(),
                detail: "the capture thread panicked".into(),
            })
        })
    }

    /// True once the capture thread has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.request_stop();
        // The receiver goes first: a worker blocked in a back-pressured `send` (a front end that stopped
        // reading, e.g. after a write error on stdout) then gets an error and ends, so the join cannot hang.
        drop(std::mem::replace(&mut self.events, crossbeam_channel::never()));
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// Clonable stop request, usable from a signal handler thread.
#[derive(Clone)]
pub struct Stopper {
    commands: Sender<Command>,
}

impl Stopper {
    pub fn stop(&self) {
        self.commands.try_send(Command::Stop).ok();
    }
}

/// The capture thread's state.
struct Worker {
    config: EngineConfig,
    input: Input,
    /// The audit writer thread, fed batches of notable events (`None`: no audit log).
    audit: Option<AuditWriter>,
    audit_batch: Vec<AuditEntry>,
    events: Sender<EngineMessage>,
    commands: Receiver<Command>,
    stats: Arc<EngineStats>,
    /// Per-packet counters, published to `stats` on every tick.
    counts: LocalCounts,
    /// The rules in force, re-checked per packet through a one-load cache of the shared `ArcSwap`.
    rules_cache: arc_swap::Cache<SharedRules, Arc<RuleSet>>,
    /// The set the detector's thresholds were last taken from.
    rules: Arc<RuleSet>,
    watcher: Option<RuleWatcher>,
    detector: Detector,
    names: NameCache,
    /// The interface the current packet crossed: the capture device, or on `any` the one its SLL2 header
    /// names (rules, events and audit lines use it).
    iface: Arc<str>,
    /// Names for SLL2 interface indexes; only for live `any` captures (a file's indexes are another host's).
    if_names: Option<IfNames>,
    batch: Vec<Event>,
    raw_batch: Vec<RawPacketRecord>,
    last_flush: Instant,
    last_slow_tick: Instant,
    seq: u64,
    pace_origin: Option<(i64, Instant)>,
    /// The live interface is known to be down (a notice was sent; the next one says it is back).
    iface_down: bool,
    /// Stop was asked for: a live reader has stopped reading and what it read is being judged to the end.
    draining: bool,
    /// `Notice::LinkTypeUnsupported` was sent (once per capture).
    told_unsupported_link: bool,
    /// The flow table and the attribution thread (when `EngineConfig::flows` is set).
    flows: Option<FlowTracker>,
    /// Events of this run without a flow table: `Offline` for files, else `Untracked`.
    untracked_origin: Origin,
    /// `EngineConfig::rules_history`'s number for `rules` (0 without a history).
    rules_version: u32,
    stop: bool,
}

/// The capture thread's part of attribution: the flow table, and the queue to the "attrib" thread.
///
/// This is the one hook attribution has on the capture path: [`FlowTracker::origin`] per packet (one
/// flow-table lookup; a new flow is queued for lookup with `try_send`, never waited for) and
/// [`FlowTracker::tick`] on the capture thread's ticks. Whoever restructures the capture loop keeps these
/// two calls; everything else runs on the attribution thread.
struct FlowTracker {
    table: FlowTable,
    shared: Arc<SharedFlows>,
    /// `None` for files and the demo: their flows are `(offline)`.
    attributor: Option<Attributor>,
    last_publish: Instant,
}

impl FlowTracker {
    fn new(config: FlowConfig) -> Self {
        let shared = Arc::new(SharedFlows::default());
        Self {
            table: FlowTable::new(config, Arc::clone(&shared)),
            shared,
            attributor: None,
            last_publish: Instant::now(),
        }
    }

    /// The packet's flow (created on its first packet and handed to attribution).
    #[inline]
    fn origin(&mut self, meta: &crate::packet::PacketMeta, iface: &Arc<str>) -> Origin {
        let flow = match self.table.observe(meta, iface) {
            Observed::Known(flow) => return Origin::Flow(Arc::clone(flow)),
            Observed::New(flow) => Arc::clone(flow),
            Observed::None => return Origin::Untracked,
        };
        match &self.attributor {
            Some(attributor) => {
                if !attributor.submit(Arc::clone(&flow)) {
                    self.table.count_attribution_dropped();
                }
            }
            None => {
                flow.set_attribution(crate::attrib::Attribution::Offline);
            }
        }
        Origin::Flow(flow)
    }

    /// Ages flows out (slow ticks) and publishes a snapshot when flows came or went (at most every
    /// `FLOW_PUBLISH`).
    fn tick(&mut self, slow: bool) {
        if slow {
            self.table.expire();
        }
        if self.last_publish.elapsed() >= FLOW_PUBLISH {
            self.last_publish = Instant::now();
            self.table.publish();
        }
    }
}

/// How often the flow snapshot is published at most.
const FLOW_PUBLISH: Duration = Duration::from_millis(200);

/// How often the thread polls the rules file, kernel counters and commands when busy.
const SLOW_TICK: Duration = Duration::from_millis(500);

impl Worker {
    fn new(
        config: EngineConfig,
        input: Input,
        audit: Option<AuditWriter>,
        events: Sender<EngineMessage>,
        commands: Receiver<Command>,
        stats: Arc<EngineStats>,
    ) -> Self {
        let rules = config.rules.load_full();
        let rules_version = config.rules_history.as_ref().map_or(0, |h| h.record(&rules));
        let rules_cache = arc_swap::Cache::new(Arc::clone(&config.rules));
        let mut config = config;
        let watcher = config.rules_watcher.take();
        let detector = Detector::new(rules.detection().clone());
        let names = NameCache::new(config.name_capacity);
        let iface: Arc<str> = Arc::from(config.source.iface_name());
        let if_names = matches!(&config.source, SourceSpec::Live(o) if o.iface == "any")
            .then(|| IfNames::new(Arc::clone(&iface)));
        let batch_max = config.batch_max.max(1);
        let flows = config.flows.clone().map(FlowTracker::new);
        let untracked_origin = if matches!(config.source, SourceSpec::File { .. }) {
            Origin::Offline
        } else {
            Origin::Untracked
        };
        let audit_batch = if audit.is_some() {
            Vec::with_capacity(AUDIT_BATCH)
        } else {
            Vec::new()
        };
        Self {
            config,
            input,
            audit,
            audit_batch,
            events,
            commands,
            stats,
            counts: LocalCounts::default(),
            rules_cache,
            rules,
            watcher,
            detector,
            names,
            iface,
            if_names,
            batch: Vec::with_capacity(batch_max),
            raw_batch: Vec::new(),
            last_flush: Instant::now(),
            last_slow_tick: Instant::now(),
            seq: 0,
            pace_origin: None,
            iface_down: false,
            draining: false,
            told_unsupported_link: false,
            flows,
            untracked_origin,
            rules_version,
            stop: false,
        }
    }

    fn run(mut self) -> Result<(), CaptureError> {
        self.stats.mark_started();
        let result = self.read_loop();
        self.flush_batch();
        self.stats.publish(&mut self.counts);
        // The reader's last counters, read as it stopped: the stop summary's kernel drops are final.
        self.input.finish();
        if let Some(k) = self.input.kernel_stats() {
            self.stats.set_kernel(k);
        }
        if let Some(flows) = &mut self.flows {
            flows.table.publish();
            // Lookups still queued or waiting for a retry finish first (a fraction of a second at most).
            if let Some(attributor) = flows.attributor.take() {
                attributor.finish();
            }
        }
        if let Some(audit) = self.audit.take() {
            // Every notable packet is on disk before `Stopped` is sent.
            audit.finish();
        }
        self.stats.mark_finished();
        let message = EngineMessage::Stopped(result.as_ref().copied().map_err(ToString::to_string));
        // The front end may be gone already; nothing left to tell then.
        self.events.send_timeout(message, Duration::from_millis(200)).ok();
        self.notify();
        result
    }

    fn read_loop(&mut self) -> Result<(), CaptureError> {
        let mut backoff = Backoff::default();
        let mut counter: u32 = 0;
        // Files and busy live captures tick every 256 packets (speed); a live capture also ticks, flushing,
        // whenever it has judged all its reader handed over, so a lone packet and the counters show at once.
        // Paced demos tick every packet.
        let tick_mask: u32 = if self.config.pace == Pace::RealtimeLoop {
            0
        } else {
            255
        };
        let keep_raw = self.config.raw_store.is_some();
        loop {
            if self.stop && !self.draining {
                // A live reader stops reading; the packets it already took from the kernel are judged
                // (and logged) before the end.
                if !self.input.stop_reading() {
                    return Ok(());
                }
                self.draining = true;
            }
            match self.input.next() {
                Ok(Next::Packet { meta, data }) => {
                    backoff.reset();
                    let ts = meta.ts_micros;
                    // Copy out of the source's buffer only what later stages need.
                    let data_copy: Option<Box<[u8]>> = data.filter(|_| keep_raw).map(Into::into);
                    if is_dns_answer(&meta)
                        && let Some(data) = data
                    {
                        self.names.observe(&meta, data);
                    }
                    self.pace(ts);
                    self.process(meta, data_copy);
                    counter = counter.wrapping_add(1);
                    if counter & tick_mask == 0 {
                        self.tick(false);
                    } else if self.input.caught_up() {
                        self.tick(true);
                    }
                }
                Ok(Next::Idle) => self.tick(true),
                Ok(Next::End) => {
                    if self.config.pace == Pace::RealtimeLoop && !self.draining {
                        self.restart_file()?;
                        continue;
                    }
                    return Ok(());
                }
                // Stopping anyway: what the reader read before it failed was judged.
                Err(_) if self.draining => return Ok(()),
                Err(e) => self.recover(e, &mut backoff)?,
            }
        }
    }

    /// Live sources: wait for a downed interface with back-off, fail once if it disappeared.
    fn recover(&mut self, error: CaptureError, backoff: &mut Backoff) -> Result<(), CaptureError> {
        let SourceSpec::Live(opts) = &self.config.source else {
            return Err(error);
        };
        let iface = opts.iface.clone();
        // A deleted interface can still be listed for a moment after libpcap reports it gone.
        for _ in 0..5 {
            if !interface_exists(&iface) {
                return Err(CaptureError::InterfaceGone { iface });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.flush_batch();
        self.iface_down = true;
        self.send_notice(Notice::WaitingForInterface {
            iface: iface.clone(),
            detail: error.to_string(),
        });
        let spec = self.config.source.clone();
        loop {
            self.sleep_checking_stop(backoff.next_delay());
            if self.stop {
                return Ok(());
            }
            if !interface_exists(&iface) {
                return Err(CaptureError::InterfaceGone { iface });
            }
            match PcapSource::open(&spec) {
                Ok(source) => {
                    self.input = Input::for_source(Box::new(source), &iface)?;
                    self.iface_down = false;
                    self.send_notice(Notice::InterfaceBack { iface });
                    backoff.reset();
                    return Ok(());
                }
                Err(e @ (CaptureError::NotPermitted { .. } | CaptureError::Filter { .. })) => return Err(e),
                Err(_) => {}
            }
        }
    }

    fn restart_file(&mut self) -> Result<(), CaptureError> {
        let source = PcapSource::open(&self.config.source)?;
        self.input = Input::Direct(Box::new(source));
        self.pace_origin = None;
        self.send_notice(Notice::ReplayRestarted);
        Ok(())
    }

    fn sleep_checking_stop(&mut self, total: Duration) {
        let deadline = Instant::now() + total;
        while Instant::now() < deadline {
            if let Ok(Command::Stop) = self.commands.recv_timeout(Duration::from_millis(50)) {
                self.stop = true;
                return;
            }
        }
    }

    /// On Linux a downed interface gives libpcap no error, only silence: report it from the link state,
    /// once per outage (`/sys/class/net/IFACE/operstate`, read every 500 ms).
    fn watch_link_state(&mut self) {
        let SourceSpec::Live(opts) = &self.config.source else {
            return;
        };
        if opts.iface == "any" || !interface_exists(&opts.iface) {
            return;
        }
        let up = interface_is_up(&opts.iface);
        if up == self.iface_down {
            self.iface_down = !up;
            let iface = opts.iface.clone();
            self.send_notice(if up {
                Notice::InterfaceBack { iface }
            } else {
                Notice::WaitingForInterface {
                    iface,
                    detail: "link is down".into(),
                }
            });
        }
    }

    /// Demo mode: sleep so packets come out at their captured rate.
    fn pace(&mut self, ts_micros: i64) {
        if self.config.pace != Pace::RealtimeLoop {
            return;
        }
        let (origin_ts, origin_at) = *self.pace_origin.get_or_insert((ts_micros, Instant::now()));
        let offset = u64::try_from(ts_micros.saturating_sub(origin_ts)).unwrap_or(0);
        let due = origin_at + Duration::from_micros(offset);
        let now = Instant::now();
        if due > now {
            self.flush_batch();
            self.sleep_checking_stop((due - now).min(Duration::from_secs(2)));
        }
    }

    /// Judges one parsed packet: direction, interface, rules, detection, counters, the audit entry and the
    /// event for the front end. This is the one per-packet call of the capture thread, for every input
    /// (live reader, file read-ahead, paced demo, test sources), in packet order; per-packet work belongs
    /// here. `data` is the frame when the raw store keeps frames (the GUI), else `None`.
    fn process(&mut self, mut meta: crate::packet::PacketMeta, data: Option<Box<[u8]>>) {
        if let crate::packet::LinkType::Other(link) = meta.link {
            self.unsupported_link(link);
        }
        self.config.local_addrs.classify(&mut meta);
        self.refresh_rules();
        if meta.if_index != 0
            && let Some(names) = &mut self.if_names
        {
            let name = names.name(meta.if_index);
            if !Arc::ptr_eq(name, &self.iface) {
                // An audit batch names one interface: send what was collected under the previous one.
                let name = Arc::clone(name);
                self.flush_audit();
                self.iface = name;
            }
        }
        // The detector's table lookup is started before the rules run, so its cache miss overlaps them.
        let detection = if self.rules.detection().enabled {
            self.detector.prepare(&meta)
        } else {
            None
        };
        // Attribution hook: one flow-table lookup (see `FlowTracker`).
        let origin = match &mut self.flows {
            Some(flows) => flows.origin(&meta, &self.iface),
            None => self.untracked_origin.clone(),
        };
        let verdict = match &origin {
            Origin::Flow(flow) => self.rules.evaluate_with_owner(&meta, &self.iface, flow.owner()),
            Origin::Untracked | Origin::Offline => self.rules.evaluate(&meta, &self.iface),
        };
        if let Origin::Flow(flow) = &origin {
            let rule = verdict
                .rule
                .and_then(|id| self.rules.rule_name(id).map(|name| (id.0, name)));
            flow.record(&meta, verdict.action, rule);
        }
        let alert = detection.and_then(|d| d.observe(&meta, &verdict));
        self.seq += 1;
        if let (Some(sink), Some(alert)) = (&self.config.alert_sink, &alert) {
            // A full sink means auto-block is busy; the alert is still logged and shown.
            sink.try_send(alert.clone()).ok();
        }
        let kernel_dropped = self.config.kernel_blocked.as_ref().is_some_and(|blocked| {
            let blocked = blocked.load();
            meta.src_ip.is_some_and(|src| blocked.contains(src))
                || (verdict.action == crate::rules::Action::Block
                    && verdict
                        .rule
                        .and_then(|id| self.rules.rule(id))
                        .is_some_and(|rule| rule.enforce && blocked.rule_enforced(&rule.name)))
        });
        self.counts
            .count(&meta, verdict.action, alert.as_ref().map(|a| a.kind));
        let deliver = match self.config.deliver {
            Deliver::All => true,
            Deliver::Notable => verdict.action != crate::rules::Action::Allow || alert.is_some(),
            Deliver::Nothing => false,
        };
        let notable = verdict.action != crate::rules::Action::Allow || alert.is_some();
        if !deliver && (!notable || self.audit.is_none()) {
            return;
        }
        let (src_name, dst_name) = if self.names.is_empty() {
            (None, None)
        } else {
            (
                meta.src_ip.and_then(|ip| self.names.get(&ip)),
                meta.dst_ip.and_then(|ip| self.names.get(&ip)),
            )
        };
        if let Origin::Flow(flow) = &origin
            && flow.remote_name().is_none()
        {
            let remote_name = if meta.src_ip == Some(flow.remote.ip) {
                &src_name
            } else {
                &dst_name
            };
            if let Some(name) = remote_name {
                flow.set_remote_name(name);
            }
        }
        if notable && self.audit.is_some() {
            if !deliver {
                self.audit_batch.push(AuditEntry {
                    meta,
                    verdict,
                    alert: alert.map(Box::new),
                    src_name,
                    dst_name,
                });
                if self.audit_batch.len() >= AUDIT_BATCH {
                    self.flush_audit();
                }
                return;
            }
            self.audit_batch.push(AuditEntry {
                meta: meta.clone(),
                verdict,
                alert: alert.clone().map(Box::new),
                src_name: src_name.clone(),
                dst_name: dst_name.clone(),
            });
            if self.audit_batch.len() >= AUDIT_BATCH {
                self.flush_audit();
            }
        }
        let rule_name = verdict.rule.and_then(|id| self.rules.rule_name(id).cloned());
        let event = Event {
            seq: self.seq,
            meta,
            verdict,
            rule_name,
            iface: Arc::clone(&self.iface),
            alert,
            src_name,
            dst_name,
            kernel_dropped,
            origin,
            rules_version: self.rules_version,
        };
        if deliver {
            if let Some(data) = data {
                self.raw_batch.push(RawPacketRecord {
                    seq: self.seq,
                    ts_micros: event.meta.ts_micros,
                    wire_len: event.meta.wire_len,
                    link: event.meta.link,
                    data,
                });
            }
            self.batch.push(event);
            if self.batch.len() >= self.config.batch_max {
                self.flush_batch();
            }
        }
    }

    /// A packet of a link type the parser does not know: counted, and said once per capture.
    #[cold]
    fn unsupported_link(&mut self, link: i32) {
        self.counts.count_unparsed();
        if !self.told_unsupported_link {
            self.told_unsupported_link = true;
            self.send_notice(Notice::LinkTypeUnsupported(link));
        }
    }

    /// Periodic work: flush a partial batch, read commands, poll the rules file and kernel counters.
    fn tick(&mut self, idle: bool) {
        self.stats.publish(&mut self.counts);
        let now = Instant::now();
        if idle || now.duration_since(self.last_flush) >= self.config.batch_interval {
            self.flush_batch();
        }
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Stop => self.stop = true,
            }
        }
        let slow = now.duration_since(self.last_slow_tick) >= SLOW_TICK;
        if let Some(flows) = &mut self.flows {
            flows.tick(slow);
        }
        if slow {
            self.last_slow_tick = now;
            self.poll_rules_file();
            if let Some(k) = self.input.kernel_stats() {
                self.stats.set_kernel(k);
            }
            self.watch_link_state();
        }
    }

    /// Picks up rules stored by the editor or the watcher before the next packet (one atomic load).
    fn refresh_rules(&mut self) {
        let current = self.rules_cache.load();
        if !Arc::ptr_eq(current, &self.rules) {
            let current = Arc::clone(current);
            // Queued audit entries name their rules from the set they were evaluated with.
            self.flush_audit();
            self.rules = current;
            if let Some(history) = &self.config.rules_history {
                self.rules_version = history.record(&self.rules);
            }
            self.detector.set_config(self.rules.detection().clone());
        }
    }

    fn poll_rules_file(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        match watcher.poll() {
            None => {}
            Some(Ok(new_rules)) => {
                let count = new_rules.rules().len();
                crate::rules::swap_rules(&self.config.rules, new_rules);
                self.refresh_rules();
                self.send_notice(Notice::RulesReloaded { rules: count });
            }
            Some(Err(e)) => self.send_notice(Notice::RulesRejected(e.to_string())),
        }
    }

    fn flush_audit(&mut self) {
        if let Some(audit) = &self.audit
            && !self.audit_batch.is_empty()
        {
            let entries = std::mem::replace(&mut self.audit_batch, audit.recycled());
            audit.send(AuditBatch {
                rules: Arc::clone(&self.rules),
                iface: Arc::clone(&self.iface),
                entries,
            });
        }
    }

    fn flush_batch(&mut self) {
        self.last_flush = Instant::now();
        self.flush_audit();
        if let Some(store) = &self.config.raw_store
            && !self.raw_batch.is_empty()
        {
            store.push_batch(std::mem::take(&mut self.raw_batch));
        }
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.config.batch_max.max(1)));
        let len = batch.len() as u64;
        if self.config.backpressure {
            if self.events.send(EngineMessage::Events(batch)).is_err() {
                self.stop = true;
            } else {
                self.notify();
            }
            return;
        }
        match self.events.try_send(EngineMessage::Events(batch)) {
            Ok(()) => self.notify(),
            Err(TrySendError::Full(_)) => self.stats.add_display_dropped(len),
            Err(TrySendError::Disconnected(_)) => self.stop = true,
        }
    }

    fn send_notice(&mut self, notice: Notice) {
        if self.events.try_send(EngineMessage::Notice(notice)).is_err() {
            self.stats.add_display_dropped(0);
        } else {
            self.notify();
        }
    }

    /// Tells the front end a message is waiting (`EngineConfig::notify`).
    fn notify(&self) {
        if let Some(notify) = &self.config.notify {
            notify();
        }
    }
}

/// Notable events per batch handed to the audit thread.
const AUDIT_BATCH: usize = 1024;

/// Batches the audit channel holds before the capture thread waits for the audit thread.
const AUDIT_CHANNEL_BATCHES: usize = 64;

/// Audit entries with what names them: the rule set they were evaluated with and the interface.
struct AuditBatch {
    rules: Arc<RuleSet>,
    iface: Arc<str>,
    entries: Vec<AuditEntry>,
}

/// The audit log on a thread of its own ("audit"): formatting and writing lines overlaps with capture on a
/// second core. The channel is bounded and the capture side blocks when it is full, so the log still gets
/// every denied and suspicious packet.
struct AuditWriter {
    tx: Option<Sender<AuditBatch>>,
    /// Emptied batch vectors coming back from the audit thread, so batches are not allocated per send.
    spare: Receiver<Vec<AuditEntry>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    fn start(
        mut log: AuditLog,
        notices: Sender<EngineMessage>,
        stats: Arc<EngineStats>,
    ) -> Result<Self, CaptureError> {
        let (tx, rx) = bounded::<AuditBatch>(AUDIT_CHANNEL_BATCHES);
        let (spare_tx, spare) = bounded::<Vec<AuditEntry>>(AUDIT_CHANNEL_BATCHES);
        let thread = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                let mut last_error: Option<String> = None;
                let mut report = |e: crate::audit::AuditError| {
                    // Every failed write is counted (metrics); the notice goes out once per distinct error.
                    stats.add_audit_error();
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        // A full channel only loses the notice; the error is counted either way.
                        notices
                            .try_send(EngineMessage::Notice(Notice::AuditFailed(message.clone())))
                            .ok();
                        last_error = Some(message);
                    }
                };
                let mut idle_since_flush = false;
                loop {
                    match rx.recv_timeout(Duration::from_millis(500)) {
                        Ok(mut batch) => {
                            for entry in &batch.entries {
                                if let Err(e) = log.record_entry(entry, &batch.rules, &batch.iface) {
                                    report(e);
                                }
                            }
                            batch.entries.clear();
                            // A full return channel only costs an allocation on the capture side.
                            spare_tx.try_send(batch.entries).ok();
                            idle_since_flush = false;
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                            // Quiet for a moment: make the file current for readers (`tail -f`, the log viewer).
                            if !idle_since_flush && let Err(e) = log.flush() {
                                report(e);
                            }
                            idle_since_flush = true;
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    }
                }
                if let Err(e) = log.flush() {
                    report(e);
                }
            })
            .map_err(|e| CaptureError::Read {
                source_name: "audit thread".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    /// An empty vector for the next batch: one the audit thread is done with, or a new one.
    fn recycled(&self) -> Vec<AuditEntry> {
        self.spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(AUDIT_BATCH))
    }

    fn send(&self, batch: AuditBatch) {
        if let Some(tx) = &self.tx {
            // The audit thread only ends after the sender is dropped; a failed send means it died.
            tx.send(batch).ok();
        }
    }

    /// Closes the channel and waits until everything is written.
    fn finish(mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// A UDP packet from port 53 or 5353 with a payload: worth decoding for passive names.
fn is_dns_answer(meta: &crate::packet::PacketMeta) -> bool {
    meta.protocol == Some(crate::packet::IpProto::UDP)
        && matches!(meta.src_port, Some(53 | 5353))
        && meta.payload_offset.is_some()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::capture::{KernelStats, RawPacket, Read};
    use crate::packet::LinkType;
    use crate::rules::{Action, RuleFile, RuleSet, shared};

    /// A scripted source: frames, then `Idle` reads (live-like) or `End` (file-like).
    struct FakeSource {
        frames: VecDeque<Vec<u8>>,
        current: Vec<u8>,
        ts: i64,
        live: bool,
        gate: Option<Receiver<()>>,
        /// Frames read so far (shared with the test while the engine owns the source).
        taken: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl FakeSource {
        fn new(count: usize, live: bool) -> Self {
            Self {
                frames: (0..count)
                    .map(|i| vec![u8::try_from(i % 251).unwrap(); 60])
                    .collect(),
                current: Vec::new(),
                ts: 1_700_000_000_000_000,
                live,
                gate: None,
                taken: Arc::default(),
            }
        }
    }

    impl PacketSource for FakeSource {
        fn read(&mut self) -> Result<Read<'_>, CaptureError> {
            if let Some(gate) = &self.gate {
                // Hold each packet until the test releases it.
                if gate.recv_timeout(Duration::from_millis(100)).is_err() {
                    return Ok(Read::Idle);
                }
            }
            match self.frames.pop_front() {
                Some(frame) => {
                    self.current = frame;
                    self.taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.ts += 1_000;
                    Ok(Read::Packet(RawPacket {
                        ts_micros: self.ts,
                        wire_len: 60,
                        data: &self.current,
                    }))
                }
                None if self.live => {
                    std::thread::sleep(Duration::from_millis(5));
                    Ok(Read::Idle)
                }
                None => Ok(Read::End),
            }
        }
        fn link_type(&self) -> LinkType {
            LinkType::Ethernet
        }
        fn kernel_stats(&mut self) -> Option<KernelStats> {
            Some(KernelStats {
                received: 7,
                dropped: 2,
                if_dropped: 1,
            })
        }
        fn is_live(&self) -> bool {
            self.live
        }
    }

    fn rules(policy: &str) -> RuleSet {
        RuleSet::from_ron(&format!("(default_policy: {policy}, rules: [])")).unwrap()
    }

    fn config(policy: &str) -> EngineConfig {
        let spec = SourceSpec::File {
            path: "fake.pcap".into(),
            filter: None,
        };
        EngineConfig::new(spec, shared(rules(policy)))
    }

    fn collect(engine: &Engine) -> (Vec<Event>, Option<Result<(), String>>) {
        let mut events = Vec::new();
        loop {
            match engine.events.recv_timeout(Duration::from_secs(10)) {
                Ok(EngineMessage::Events(batch)) => events.extend(batch),
                Ok(EngineMessage::Notice(_)) => {}
                Ok(EngineMessage::Stopped(r)) => return (events, Some(r)),
                Err(_) => return (events, None),
            }
        }
    }

    #[test]
    fn events_carry_the_version_of_the_rules_that_judged_them() {
        let mut config = config("Block");
        let history = Arc::new(RulesHistory::default());
        config.rules_history = Some(Arc::clone(&history));
        config.notify = Some(Arc::new(|| {}));
        let first = config.rules.load_full();
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(50, false))).unwrap();
        let (events, stopped) = collect(&engine);
        assert_eq!(stopped, Some(Ok(())));
        assert_eq!(events.len(), 50);
        assert!(events.iter().all(|e| e.rules_version == 1));
        assert!(Arc::ptr_eq(&history.get(1).unwrap(), &first));
        // The same set again keeps its number; a new one gets the next; only the newest are kept.
        assert_eq!(history.record(&first), 1);
        let second = Arc::new(rules("Allow"));
        assert_eq!(history.record(&second), 2);
        for _ in 0..RULES_HISTORY_LEN {
            history.record(&Arc::new(rules("Allow")));
        }
        assert!(history.get(1).is_none());
        assert!(history.get(2 + RULES_HISTORY_LEN as u32).is_some());
    }

    #[test]
    fn dropping_an_unread_back_pressured_engine_does_not_hang() {
        let mut config = config("Block");
        config.backpressure = true;
        config.channel_batches = 1;
        config.batch_max = 1;
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(100_000, false))).unwrap();
        // Nobody reads: the worker soon waits in `send` on the full channel.
        std::thread::sleep(Duration::from_millis(200));
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("drop-engine".into())
            .spawn(move || {
                drop(engine);
                done_tx.send(()).ok();
            })
            .unwrap();
        assert!(
            done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
            "Engine::drop hung joining a worker blocked in send"
        );
    }

    #[test]
    fn file_with_backpressure_delivers_every_packet_in_order() {
        let mut config = config("Block");
        config.backpressure = true;
        config.channel_batches = 1;
        config.batch_max = 7;
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(1000, false))).unwrap();
        let (events, stopped) = collect(&engine);
        assert_eq!(stopped, Some(Ok(())));
        assert_eq!(events.len(), 1000);
        assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
        assert!(
            events
                .iter()
                .all(|e| e.verdict.action == Action::Block && e.rule_name.is_none())
        );
        let stats = engine.stats.snapshot();
        assert_eq!(
            (stats.packets, stats.blocked, stats.display_dropped),
            (1000, 1000, 0)
        );
        engine.join().unwrap();
    }

    #[test]
    fn slow_front_end_costs_display_only_and_is_counted() {
        let mut config = config("Allow");
        config.channel_batches = 1;
        config.batch_max = 10;
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(500, false))).unwrap();
        // Read nothing until the thread is done: all but one batch must be dropped, and counted.
        while !engine.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = engine.stats.snapshot();
        assert_eq!(stats.packets, 500);
        let (events, _) = collect(&engine);
        assert_eq!(events.len() as u64 + stats.display_dropped, 500);
        assert!(stats.display_dropped >= 480, "{stats:?}");
    }

    #[test]
    fn deliver_nothing_still_counts_and_notable_filters() {
        let mut config = config("Allow");
        config.deliver = Deliver::Notable;
        config.backpressure = true;
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(50, false))).unwrap();
        let (events, _) = collect(&engine);
        assert!(events.is_empty(), "allowed packets are not notable");
        assert_eq!(engine.stats.snapshot().allowed, 50);
    }

    #[test]
    fn stop_command_ends_a_live_source_and_kernel_counters_are_read() {
        let mut config = config("Allow");
        config.source = SourceSpec::Live(crate::capture::LiveOptions::new("fake0"));
        let engine = Engine::spawn_with_source(config, Box::new(FakeSource::new(3, true))).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let stats = engine.stats.snapshot();
        assert_eq!(
            (
                stats.kernel_received,
                stats.kernel_dropped,
                stats.kernel_if_dropped
            ),
            (7, 2, 1)
        );
        engine.shutdown().unwrap();
    }

    #[test]
    fn stopping_a_live_capture_judges_what_its_reader_already_took() {
        let mut config = config("Allow");
        config.source = SourceSpec::Live(crate::capture::LiveOptions::new("fake0"));
        // A front end that reads nothing holds the capture thread in its first send, so the reader runs
        // ahead by every packet there is.
        config.backpressure = true;
        config.channel_batches = 1;
        config.batch_max = 1;
        let source = FakeSource::new(5000, true);
        let taken = Arc::clone(&source.taken);
        let engine = Engine::spawn_with_source(config, Box::new(source)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while taken.load(std::sync::atomic::Ordering::Relaxed) < 5000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = Arc::clone(&engine.stats);
        assert!(stats.snapshot().packets < 5000);
        engine.shutdown().unwrap();
        assert_eq!(
            stats.snapshot().packets,
            5000,
            "every packet read from the kernel is judged"
        );
    }

    #[test]
    fn swapped_rules_apply_to_the_next_packets_without_restart() {
        let (gate_tx, gate_rx) = bounded(1000);
        let mut source = FakeSource::new(20, true);
        source.gate = Some(gate_rx);
        let mut config = config("Allow");
        config.batch_max = 1;
        let shared_rules = Arc::clone(&config.rules);
        let engine = Engine::spawn_with_source(config, Box::new(source)).unwrap();
        let mut seen = Vec::new();
        for i in 0..20 {
            if i == 10 {
                let file: RuleFile = rules("Block").file().clone();
                shared_rules.store(Arc::new(RuleSet::compile(file, None).unwrap()));
            }
            gate_tx.send(()).unwrap();
            loop {
                if let Ok(EngineMessage::Events(batch)) = engine.events.recv_timeout(Duration::from_secs(5)) {
                    seen.extend(batch.into_iter().map(|e| e.verdict.action));
                    break;
                }
            }
        }
        assert_eq!(&seen[..10], &[Action::Allow; 10]);
        assert_eq!(&seen[10..], &[Action::Block; 10]);
        engine.shutdown().unwrap();
    }
}
