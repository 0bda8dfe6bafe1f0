//! The eframe app: owns the engine and the panels, routes engine batches to them each frame, and applies
//! what the panels ask for. The toolbar and status bar live here too.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use egui::RichText;
use serde::{Deserialize, Serialize};

use super::blocklist::{BlocklistPanel, BlocklistPrefs, KernelAccess};
use super::connections::{ConnectionsPanel, DEFAULT_KEEP_CLOSED_SECS};
use super::framelog::FrameLog;
use super::log::LogPanel;
use super::rules::{KernelRulesState, RulesPanel};
use super::stats::StatsPanel;
use super::traffic::{TrafficAction, TrafficPanel};
use crate::capture::{CaptureError, LiveOptions, SourceSpec, list_interfaces};
use crate::engine::{Engine, EngineConfig, EngineMessage, Pace, RawStore, RulesHistory, StatsSnapshot};
use crate::flows::FlowConfig;
use crate::packet::LocalAddrs;
use crate::rules::{RuleSet, RuleWatcher, SharedRules, shared};

/// The tabs of the main window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Traffic,
    Connections,
    Rules,
    Log,
    Stats,
    Threats,
    Blocklist,
}

impl Tab {
    const ALL: [Self; 7] = [
        Self::Traffic,
        Self::Connections,
        Self::Rules,
        Self::Blocklist,
        Self::Log,
        Self::Stats,
        Self::Threats,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::Traffic => "Traffic",
            Self::Connections => "Connections",
            Self::Rules => "Rules",
            Self::Log => "Log",
            Self::Stats => "Stats",
            Self::Threats => "Threats",
            Self::Blocklist => "Block list",
        }
    }

    /// Parses a tab name (`--tab` on the command line, case-insensitive).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        // `details` is the traffic tab; the screenshot script then selects a row.
        if name.eq_ignore_ascii_case("details") {
            return Some(Self::Traffic);
        }
        if name.eq_ignore_ascii_case("blocklist") {
            return Some(Self::Blocklist);
        }
        Self::ALL
            .into_iter()
            .find(|t| t.title().eq_ignore_ascii_case(name))
    }
}

/// Preferences remembered between runs (eframe persistence).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub iface: String,
    pub bpf: String,
    pub row_cap: usize,
    pub tab: Tab,
    /// Auto-block and remove-on-exit settings.
    pub blocklist: BlocklistPrefs,
    /// How long the connections view keeps closed connections (seconds); also the flow table's ageing of
    /// closed flows when capture starts.
    pub keep_closed_secs: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            iface: "any".into(),
            bpf: String::new(),
            row_cap: 1_000_000,
            tab: Tab::Traffic,
            blocklist: BlocklistPrefs::default(),
            keep_closed_secs: DEFAULT_KEEP_CLOSED_SECS,
        }
    }
}

/// Where packets come from right now, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Live(String),
    Demo { why: String },
    Stopped,
}

/// Why the block list does not touch the kernel in demo mode.
const DEMO_NO_KERNEL: &str = "demo mode: the kernel is not touched (capture live to enforce)";

/// Why the block list does not touch the kernel in demo mode: no access at all says why first.
fn demo_reason(access: &KernelAccess) -> String {
    match access {
        Err(why) => why.clone(),
        Ok(_) => DEMO_NO_KERNEL.to_owned(),
    }
}

/// The window's title and accessible name.
pub const WINDOW_TITLE: &str = "netwarden";

/// Frame budget for draining engine batches, so a flood never stalls the UI.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);
/// While many packets arrive the window is redrawn at most this often (about 12 frames a second): new rows
/// show within this delay, and a flood costs 12 frames a second, not one per batch. Input is never delayed:
/// a click or a key is drawn at once.
const TRAFFIC_FRAME_INTERVAL: Duration = Duration::from_millis(80);
/// With a trickle of packets (fewer than `BUSY_EVENTS` in the last frame) new rows wait up to this long:
/// a frame costs about 30 ms of CPU with software rendering, so 4 frames a second keep a quiet link (or the
/// demo's 45 packets/s) light (docs/PERFORMANCE.md, "Desktop app").
const QUIET_FRAME_INTERVAL: Duration = Duration::from_millis(250);
/// Events drained in one frame from which packets count as flowing fast.
const BUSY_EVENTS: usize = 100;
/// A view that shows the time (the stats plots, countdowns, "last minutes") is redrawn this often when
/// nothing else happens.
const CLOCK_INTERVAL: Duration = Duration::from_secs(1);
/// The flow table keeps closed flows at least this long (seconds), whatever the connections view hides, so
/// the per-program totals (counted once a second) see every flow before it leaves.
const MIN_CLOSED_SECS: u32 = 5;
/// Recent packets offered to the rule editor's what-if preview.
const PREVIEW_PACKETS: usize = 100_000;

/// How the app is started.
pub struct AppOptions {
    pub rules_path: PathBuf,
    /// The capture demo mode replays.
    pub demo_file: PathBuf,
    /// Interface to capture on (default: the remembered one).
    pub iface: Option<String>,
    /// Start in demo mode.
    pub demo: bool,
    /// Where the block list and ban history live.
    pub state_dir: PathBuf,
    /// Runs the kernel commands, or why there is no enforcement (no privilege, tools missing).
    pub enforcer: Result<Arc<dyn crate::enforce::runner::CommandRunner>, String>,
    /// Addresses never blocked without "force" (this host, gateways, SSH peer; loopback always).
    pub protected: crate::enforce::Protected,
    /// Remove our kernel rules when the app exits.
    pub remove_on_exit: bool,
}

/// The whole app.
pub struct App {
    state: State,
    rules: SharedRules,
    rules_path: PathBuf,
    demo_file: PathBuf,
    engine: Option<Engine>,
    mode: Mode,
    raw: Arc<RawStore>,
    traffic: TrafficPanel,
    connections: ConnectionsPanel,
    rules_panel: RulesPanel,
    log: LogPanel,
    stats: StatsPanel,
    blocklist: BlocklistPanel,
    /// Remove-on-exit comes from the command line only (not saved).
    remove_on_exit_flag: bool,
    notice: Option<String>,
    /// Said in the status bar while capturing live without `CAP_SYS_PTRACE` (`attrib::NO_PTRACE_NOTICE`).
    attribution_notice: Option<&'static str>,
    /// Network interfaces (`any` first), then libpcap's other capture sources (D-Bus, Bluetooth, USB,
    /// nfqueue..), listed apart.
    interfaces: (Vec<String>, Vec<String>),
    last_stats: StatsSnapshot,
    /// How the block list reaches the kernel while capturing live (demo mode never touches it).
    kernel_access: KernelAccess,
    /// The window's context, known from the first frame: the engine asks it for a repaint when a batch
    /// arrives (`EngineConfig::notify`), so an idle window draws nothing.
    repaint: Arc<OnceLock<egui::Context>>,
    /// The bench's per-frame log (`NETWARDEN_FRAME_LOG`), off by default.
    frame_log: FrameLog,
    /// Every engine run numbers its rule sets here (one record across runs).
    rules_history: Arc<RulesHistory>,
    /// The last frame drained `BUSY_EVENTS` or more: the engine's wake-ups ask for the short interval.
    busy: Arc<std::sync::atomic::AtomicBool>,
}

impl App {
    /// Builds the app: loads the rules (a broken file starts with an empty rule set and says why) and starts
    /// capture on the remembered interface, or the demo when live capture is impossible or `demo` is set.
    #[must_use]
    pub fn new(state: State, options: AppOptions) -> Self {
        let AppOptions {
            rules_path,
            demo_file,
            iface,
            demo,
            state_dir,
            enforcer,
            protected,
            remove_on_exit,
        } = options;
        let mut notice = None;
        let (watcher, set) = match RuleWatcher::open(&rules_path) {
            Ok((watcher, set)) => (Some(watcher), set),
            Err(e) => {
                notice = Some(format!("rules not loaded, using an empty rule set: {e}"));
                (
                    None,
                    RuleSet::compile(crate::rules::RuleFile::default(), None)
                        .unwrap_or_else(|_| unreachable!("the empty rule file is valid")),
                )
            }
        };
        let rules_panel = RulesPanel::new(rules_path.clone(), &set);
        let rules = shared(set);
        let log_path = rules.load().log().path.clone();
        let mut state = state;
        if let Some(iface) = iface {
            state.iface = iface;
        }
        let mut app = Self {
            traffic: TrafficPanel::new(state.row_cap),
            connections: ConnectionsPanel::new(state.keep_closed_secs),
            state,
            rules: Arc::clone(&rules),
            rules_path,
            demo_file,
            engine: None,
            mode: Mode::Stopped,
            raw: Arc::new(RawStore::new(64 << 20)),
            rules_panel,
            log: LogPanel::new(log_path),
            stats: StatsPanel::default(),
            // The demo touches no kernel: the guard starts list-only, and takes the kernel when live
            // capture starts.
            blocklist: BlocklistPanel::with_rules(
                state_dir,
                if demo {
                    Err(DEMO_NO_KERNEL.to_owned())
                } else {
                    enforcer.clone()
                },
                protected,
                Some(Arc::clone(&rules)),
            ),
            kernel_access: enforcer,
            remove_on_exit_flag: false,
            notice,
            attribution_notice: None,
            interfaces: (Vec::new(), Vec::new()),
            last_stats: StatsSnapshot::default(),
            repaint: Arc::new(OnceLock::new()),
            frame_log: FrameLog::from_env(),
            rules_history: Arc::new(RulesHistory::default()),
            busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        app.traffic.set_rules_history(Arc::clone(&app.rules_history));
        app.blocklist.apply_prefs(&app.state.blocklist);
        // `--remove-on-exit` is for this run: it is saved only if the user had ticked the box before.
        app.remove_on_exit_flag = remove_on_exit && !app.blocklist.remove_on_exit;
        if remove_on_exit {
            app.blocklist.set_remove_on_exit(true);
        }
        app.refresh_interfaces();
        if demo {
            app.start_demo("demo mode requested".into(), watcher);
        } else {
            app.start_live(watcher);
        }
        app
    }

    fn refresh_interfaces(&mut self) {
        let names = list_interfaces()
            .map(|list| list.into_iter().map(|i| i.name).collect())
            .unwrap_or_default();
        // A network interface is a kernel network device; libpcap also lists capture sources that are not.
        self.interfaces = group_interfaces(names, |name| {
            std::path::Path::new("/sys/class/net").join(name).exists()
        });
    }

    fn base_config(&self, source: SourceSpec, watcher: Option<RuleWatcher>) -> EngineConfig {
        let mut config = EngineConfig::new(source, Arc::clone(&self.rules));
        config.rules_watcher = watcher;
        config.raw_store = Some(Arc::clone(&self.raw));
        config.audit = Some(self.rules.load().log().clone());
        config.kernel_blocked = Some(self.blocklist.kernel_blocked());
        config.rules_history = Some(Arc::clone(&self.rules_history));
        // The flow table behind the connections view and the Program/User columns; its closed flows age
        // out as the view is set (at least a few seconds, so per-program totals see every flow).
        config.flows = Some(FlowConfig {
            closed_secs: self.closed_secs(),
            ..FlowConfig::default()
        });
        // Live flows are looked up on the "attrib" thread; a replayed file says (offline).
        config.attribute = true;
        let (repaint, busy) = (Arc::clone(&self.repaint), Arc::clone(&self.busy));
        config.notify = Some(Arc::new(move || {
            if let Some(ctx) = repaint.get() {
                ctx.request_repaint_after(if busy.load(std::sync::atomic::Ordering::Relaxed) {
                    TRAFFIC_FRAME_INTERVAL
                } else {
                    QUIET_FRAME_INTERVAL
                });
            }
        }));
        config
    }

    /// The flow table's ageing of closed flows for the next capture.
    fn closed_secs(&self) -> u32 {
        self.connections.keep_closed_secs().max(MIN_CLOSED_SECS)
    }

    fn watcher(&self) -> Option<RuleWatcher> {
        RuleWatcher::open(&self.rules_path).ok().map(|(w, _)| w)
    }

    /// Starts live capture on the chosen interface; falls back to the demo when that is impossible.
    fn start_live(&mut self, watcher: Option<RuleWatcher>) {
        self.stop();
        let mut live = LiveOptions::new(&self.state.iface);
        let bpf = self.state.bpf.trim();
        live.filter = (!bpf.is_empty()).then(|| bpf.to_owned());
        let mut config = self.base_config(SourceSpec::Live(live), watcher);
        config.local_addrs = LocalAddrs::from_system();
        // Only real traffic may feed auto-block (never the demo capture), and only live capture touches the
        // kernel.
        self.blocklist.set_kernel_access(self.kernel_access.clone());
        config.kernel_blocked = Some(self.blocklist.kernel_blocked());
        config.alert_sink = self.blocklist.alert_sender();
        match Engine::spawn(config) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.mode = Mode::Live(self.state.iface.clone());
                // This session's denied packets go to the audit log the viewer reads.
                self.log.set_session_logged(true);
                self.connections.set_engine_closed_secs(Some(self.closed_secs()));
                self.attribution_notice = attribution_notice(crate::attrib::can_read_other_users_processes());
            }
            Err(e @ (CaptureError::NotPermitted { .. } | CaptureError::NoSuchInterface { .. })) => {
                self.start_demo(e.to_string(), self.watcher());
            }
            Err(e) => {
                self.notice = Some(e.to_string());
                self.mode = Mode::Stopped;
            }
        }
    }

    /// Replays the bundled capture in real time, looping.
    fn start_demo(&mut self, why: String, watcher: Option<RuleWatcher>) {
        self.stop();
        let source = SourceSpec::File {
            path: self.demo_file.clone(),
            filter: None,
        };
        let mut config = self.base_config(source, watcher);
        config.pace = Pace::RealtimeLoop;
        // The demo capture is seen from 192.168.1.50 / fd00::50 (see scripts/make_demo_pcap.py).
        config.local_addrs = LocalAddrs::new(
            ["192.168.1.50".parse().ok(), "fd00::50".parse().ok()]
                .into_iter()
                .flatten(),
        );
        // The demo must not fill the user's real audit log with made-up traffic, nor ban its addresses.
        config.audit = None;
        self.blocklist
            .set_kernel_access(Err(demo_reason(&self.kernel_access)));
        config.kernel_blocked = Some(self.blocklist.kernel_blocked());
        match Engine::spawn(config) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.mode = Mode::Demo { why };
                self.log.set_session_logged(false);
                self.connections.set_engine_closed_secs(Some(self.closed_secs()));
            }
            Err(e) => {
                self.notice = Some(format!("{why}; the demo capture could not start either: {e}"));
                self.mode = Mode::Stopped;
            }
        }
    }

    fn stop(&mut self) {
        if let Some(engine) = self.engine.take() {
            // The stop reason of a capture the user ended is not news.
            engine.shutdown().ok();
        }
        // The next engine counts from zero.
        self.stats.new_run();
        self.mode = Mode::Stopped;
        self.attribution_notice = None;
        self.connections.set_engine_closed_secs(None);
    }

    /// Moves engine batches into the panels, within a time budget. Returns true when batches are left for
    /// the next frame.
    fn drain(&mut self) -> bool {
        let Some(engine) = &self.engine else {
            return false;
        };
        let start = Instant::now();
        let mut stopped = None;
        let mut left = false;
        let mut drained = 0;
        loop {
            if start.elapsed() >= DRAIN_BUDGET {
                left = !engine.events.is_empty();
                break;
            }
            match engine.events.try_recv() {
                Ok(EngineMessage::Events(batch)) => {
                    drained += batch.len();
                    self.stats.push(&batch);
                    self.log.push(&batch);
                    self.traffic.push(batch);
                }
                Ok(EngineMessage::Notice(notice)) => self.notice = Some(notice.describe()),
                Ok(EngineMessage::Stopped(result)) => {
                    stopped = Some(result);
                    break;
                }
                Err(_) => break,
            }
        }
        self.busy.store(
            drained >= BUSY_EVENTS || left,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.last_stats = engine.stats.snapshot();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.stats.sample(&self.last_stats, now);
        if let Some(flows) = &engine.flows {
            self.stats.sample_flows(&flows.snapshot(), Instant::now());
        }
        if let Some(result) = stopped {
            if let Err(e) = result {
                self.notice = Some(format!("capture stopped: {e}"));
            }
            self.engine = None;
            self.mode = Mode::Stopped;
        }
        left
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F)) {
            if self.state.tab == Tab::Connections {
                self.connections.focus_filter();
            } else {
                self.state.tab = Tab::Traffic;
                self.traffic.focus_filter();
            }
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("netwarden");
            ui.separator();
            let label = ui.label("Interface:");
            let mut iface = self.state.iface.clone();
            egui::ComboBox::from_id_salt("iface")
                .selected_text(iface.clone())
                .show_ui(ui, |ui| {
                    let (network, other) = &self.interfaces;
                    for name in network {
                        ui.selectable_value(&mut iface, name.clone(), name);
                    }
                    if !other.is_empty() {
                        ui.separator();
                        ui.weak("Other capture sources (not network interfaces):");
                        for name in other {
                            ui.selectable_value(&mut iface, name.clone(), name);
                        }
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
            let stop = ui.add_enabled(running, egui::Button::new("Stop capture"));
            self.frame_log
                .rect("Stop capture", stop.rect, ui.ctx().pixels_per_point());
            if stop.clicked() {
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
                let response = ui.selectable_value(&mut self.state.tab, tab, tab.title());
                self.frame_log
                    .rect(tab.title(), response.rect, ui.ctx().pixels_per_point());
            }
        });
    }

    fn status_ui(&self, ui: &mut egui::Ui) {
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
                 not shown (too many to draw) {}",
                s.packets, s.blocked, s.alerts, s.display_dropped
            ));
            // Packets libpcap lost because its buffer was full: lost to capture, not dropped by a firewall.
            let lost = s.kernel_dropped + s.kernel_if_dropped;
            let text = format!(
                "capture dropped {} (+{} by the interface)",
                s.kernel_dropped, s.kernel_if_dropped
            );
            if lost > 0 {
                ui.label(RichText::new(text).color(ui.visuals().warn_fg_color))
            } else {
                ui.label(text)
            }
            .on_hover_text(
                "Packets the capture buffer had no room for: netwarden never saw them. \
                 Firewall drops are the \"denied\" count and the kernel-dropped rows.",
            );
        });
        if let Some(notice) = &self.notice {
            ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
        }
        if let (Some(notice), Mode::Live(_)) = (self.attribution_notice, &self.mode) {
            ui.label(RichText::new(notice).color(ui.visuals().warn_fg_color));
        }
    }

    /// One frame of the whole window (also driven headless by tests and the frame bench).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        if self.repaint.get().is_none() {
            // Only the first frame sets it; a second `set` cannot happen.
            self.repaint.set(ui.ctx().clone()).ok();
        }
        let batches_left = self.drain();
        // The window's accessible name (the root node has none of its own).
        ui.ctx()
            .accesskit_node_builder(egui::accesskit_root_id(), |node| node.set_label(WINDOW_TITLE));
        self.keyboard(ui.ctx());
        egui::Panel::top("toolbar").show(ui, |ui| {
            self.toolbar_ui(ui);
            if self.state.tab != Tab::Blocklist {
                self.blocklist.confirm_ui(ui);
            }
        });
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        let central = egui::CentralPanel::default().show(ui, |ui| match self.state.tab {
            Tab::Traffic => {
                let rules = self.rules.load_full();
                self.traffic.ui(ui, &rules, &self.raw);
            }
            Tab::Connections => {
                let flows = self.engine.as_ref().and_then(|e| e.flows.as_deref());
                self.connections.ui(ui, flows);
                self.state.keep_closed_secs = self.connections.keep_closed_secs();
            }
            Tab::Rules => {
                self.rules_panel.set_kernel_state(self.kernel_rules_state());
                // The recent packets are copied only when the editor computes a preview, not per frame.
                let traffic = &self.traffic;
                self.rules_panel
                    .ui(ui, &self.rules, &|| traffic.recent_packets(PREVIEW_PACKETS));
            }
            Tab::Log => self.log.ui(ui, &self.raw),
            Tab::Stats => self.stats.stats_ui(ui),
            Tab::Threats => self.stats.threats_ui(ui),
            Tab::Blocklist => self.blocklist.ui(ui),
        });
        if self.state.tab != Tab::Blocklist {
            // The guard's news (kernel state, messages) shows on whichever tab is open.
            self.blocklist.poll();
        }
        let actions = std::mem::take(&mut self.traffic.actions)
            .into_iter()
            .chain(std::mem::take(&mut self.connections.actions));
        for action in actions {
            match action {
                TrafficAction::EditNewRule(spec) => {
                    self.rules_panel.start_new_rule(spec);
                    self.state.tab = Tab::Rules;
                }
                TrafficAction::Block { addr, secs, reason } => {
                    self.block(addr, secs, &reason);
                }
            }
        }
        for (addr, secs, reason) in std::mem::take(&mut self.stats.blocks) {
            self.block(addr, Some(secs), &reason);
        }
        for spec in self.stats.actions.drain(..) {
            self.rules_panel.start_new_rule(spec);
            self.state.tab = Tab::Rules;
        }
        self.frame_log
            .rect("central", central.response.rect, ui.ctx().pixels_per_point());
        self.schedule_repaint(ui.ctx(), batches_left);
        self.frame_log.frame(self.state.tab.title());
    }

    /// Asks for the next frame only when something will have changed: batches left undrained (soon), or a
    /// view that shows the time (once a second). New batches ask for themselves (`EngineConfig::notify`), and
    /// input always repaints, so an idle window draws nothing.
    fn schedule_repaint(&self, ctx: &egui::Context, batches_left: bool) {
        if batches_left {
            ctx.request_repaint_after(TRAFFIC_FRAME_INTERVAL);
        }
        let clock = match self.state.tab {
            // Counters and "last seen" of connections move between engine batches.
            Tab::Stats | Tab::Connections => self.engine.is_some(),
            Tab::Log => self.log.shows_time_window(),
            _ => false,
        };
        // The kernel guard wakes the window itself when it has news (a job done, drift repaired, another
        // process's change); only the confirmation countdown is a clock.
        if clock || self.blocklist.pending().is_some() {
            ctx.request_repaint_after(CLOCK_INTERVAL);
        }
    }

    /// Where the `enforce: true` rules stand in the kernel, for the rule editor.
    fn kernel_rules_state(&self) -> KernelRulesState {
        match self.blocklist.unavailable() {
            Some(why) => KernelRulesState::Unavailable(why.to_owned()),
            None => KernelRulesState::Known {
                in_kernel: self.blocklist.rules_in_kernel().iter().cloned().collect(),
                refused: self.blocklist.snapshot().refused_rules.clone(),
                awaiting_confirmation: self
                    .blocklist
                    .pending()
                    .is_some_and(|p| matches!(p.change, crate::enforce::RiskyChange::Rules(_))),
            },
        }
    }

    fn block(&mut self, addr: std::net::IpAddr, secs: Option<u64>, reason: &str) {
        let duration = secs.map(Duration::from_secs);
        self.notice = Some(
            match self.blocklist.add(&addr.to_string(), reason, duration, false) {
                Ok(net) => format!("{net} added to the block list"),
                Err(e) => e,
            },
        );
    }

    /// The block list panel (tests).
    #[must_use]
    pub fn blocklist(&self) -> &BlocklistPanel {
        &self.blocklist
    }

    /// The traffic panel (tests).
    #[must_use]
    pub fn traffic(&self) -> &TrafficPanel {
        &self.traffic
    }

    /// The traffic panel, to select a row (tests, the screenshot script).
    pub fn traffic_mut(&mut self) -> &mut TrafficPanel {
        &mut self.traffic
    }

    /// The connections panel (tests).
    #[must_use]
    pub fn connections(&self) -> &ConnectionsPanel {
        &self.connections
    }

    /// The connections panel, to filter or select (tests, the screenshot script).
    pub fn connections_mut(&mut self) -> &mut ConnectionsPanel {
        &mut self.connections
    }

    /// The rule editor (tests).
    #[must_use]
    pub fn rules_panel(&self) -> &RulesPanel {
        &self.rules_panel
    }

    /// The statistics panel (tests).
    #[must_use]
    pub fn stats(&self) -> &StatsPanel {
        &self.stats
    }

    /// The running engine's flow table, if any (tests).
    #[must_use]
    pub fn flows(&self) -> Option<&Arc<crate::flows::SharedFlows>> {
        self.engine.as_ref().and_then(|e| e.flows.as_ref())
    }

    /// The current tab.
    #[must_use]
    pub fn tab(&self) -> Tab {
        self.state.tab
    }

    /// Saves rule edits to `path` instead of the file the rules came from (rules from `/etc` edited by a
    /// user who is not root go to a per-user copy).
    pub fn set_rules_save_path(&mut self, path: PathBuf) {
        self.rules_panel.set_save_path(path);
    }

    /// Switches tab (`--tab`, tests).
    pub fn set_tab(&mut self, tab: Tab) {
        self.state.tab = tab;
    }

    /// The preferences to save, as they are now.
    #[must_use]
    pub fn state(&self) -> State {
        let mut blocklist = self.blocklist.prefs();
        blocklist.remove_on_exit &= !self.remove_on_exit_flag;
        State {
            blocklist,
            ..self.state.clone()
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
        // The guard removes our kernel rules first when "remove on exit" is on.
        self.blocklist.shutdown(Duration::from_secs(10));
    }
}

/// What the status bar says about attribution while capturing live: without `CAP_SYS_PTRACE` other
/// users' programs cannot be named, once said.
#[must_use]
pub fn attribution_notice(can_read_other_users: bool) -> Option<&'static str> {
    (!can_read_other_users).then_some(crate::attrib::NO_PTRACE_NOTICE)
}

/// Splits libpcap's device list: `any` and the network interfaces (sorted), then the other capture sources
/// (sorted), each name once.
#[must_use]
pub fn group_interfaces(names: Vec<String>, is_network: impl Fn(&str) -> bool) -> (Vec<String>, Vec<String>) {
    let (mut network, mut other): (Vec<String>, Vec<String>) = names
        .into_iter()
        .filter(|n| n != "any")
        .partition(|n| is_network(n));
    for list in [&mut network, &mut other] {
        list.sort();
        list.dedup();
    }
    network.insert(0, "any".to_owned());
    (network, other)
}

/// The eframe wrapper: persistence, the frame callback, and closing on SIGINT/SIGTERM/SIGHUP (so the app
/// shuts down like a closed window: capture stopped, preferences saved, kernel rules removed when asked).
pub struct EframeApp(pub App, pub Arc<std::sync::atomic::AtomicBool>);

impl EframeApp {
    /// Wraps `app` and makes the termination signals close the window (repainting `ctx` to notice).
    #[must_use]
    pub fn new(app: App, ctx: &egui::Context) -> Self {
        let quit = Arc::new(std::sync::atomic::AtomicBool::new(false));
        app.blocklist.set_context(ctx);
        let (flag, ctx) = (Arc::clone(&quit), ctx.clone());
        // Without a handler the signals end the process the default way; nothing else depends on it.
        ctrlc::set_handler(move || {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            ctx.request_repaint();
        })
        .ok();
        Self(app, quit)
    }
}

/// Key of the saved preferences.
pub const STATE_KEY: &str = "netwarden-state";

impl eframe::App for EframeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if self.1.load(std::sync::atomic::Ordering::Relaxed) {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.0.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STATE_KEY, &self.0.state());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_ptrace_capability_is_said_once_in_the_status_bar() {
        assert_eq!(attribution_notice(false), Some(crate::attrib::NO_PTRACE_NOTICE));
        assert_eq!(attribution_notice(true), None);
        assert_eq!(Tab::from_name("connections"), Some(Tab::Connections));
    }

    #[test]
    fn network_interfaces_come_first_and_other_sources_apart() {
        let names = [
            "dbus-system",
            "eth0",
            "any",
            "lo",
            "bluetooth-monitor",
            "nfqueue",
            "eth0",
        ]
        .map(str::to_owned)
        .to_vec();
        let (network, other) = group_interfaces(names, |n| ["eth0", "lo"].contains(&n));
        assert_eq!(network, ["any", "eth0", "lo"]);
        assert_eq!(other, ["bluetooth-monitor", "dbus-system", "nfqueue"]);
    }
}
