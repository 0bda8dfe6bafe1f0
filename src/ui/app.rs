//! The eframe app: owns the engine and the panels, routes engine batches to them each frame, and applies
//! what the panels ask for. The toolbar and status bar live here too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::blocklist::BlocklistPanel;
use super::log::LogPanel;
use super::model::{Model, UiAction};
use super::rules::RulesPanel;
use super::stats::StatsPanel;
use super::traffic::TrafficPanel;
use crate::capture::{CaptureError, LiveOptions, SourceSpec, list_interfaces};
use crate::cli::capture::describe_notice;
use crate::engine::{Engine, EngineConfig, EngineMessage, RawStore, StatsSnapshot};
use crate::packet::LocalAddrs;
use crate::rules::{RuleSet, RuleWatcher, SharedRules, shared};

/// The tabs of the main window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    #[default]
    Traffic,
    Rules,
    Log,
    Stats,
    Threats,
    Blocklist,
}

impl Tab {
    /// Every tab, in the order the tab bar shows them.
    pub const ALL: [Self; 6] = [
        Self::Traffic,
        Self::Rules,
        Self::Log,
        Self::Stats,
        Self::Threats,
        Self::Blocklist,
    ];

    /// The tab's label (also the test API: keep stable).
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Traffic => "Traffic",
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
        let wanted: String = name.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        Self::ALL.into_iter().find(|t| {
            let title: String = t.title().chars().filter(|c| !c.is_whitespace()).collect();
            title.eq_ignore_ascii_case(&wanted)
        })
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
}

impl Default for State {
    fn default() -> Self {
        Self {
            iface: "any".into(),
            bpf: String::new(),
            row_cap: 1_000_000,
            tab: Tab::Traffic,
        }
    }
}

/// Where packets come from right now, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    Live(String),
    Demo { why: String },
    Stopped,
}

/// Frame budget for draining engine batches, so a flood never stalls the UI.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);
/// Recent packets offered to the rule editor's what-if preview.
const PREVIEW_PACKETS: usize = 100_000;

/// The whole app.
pub struct App {
    pub(super) state: State,
    pub(super) rules: SharedRules,
    pub(super) rules_path: PathBuf,
    pub(super) demo_file: PathBuf,
    pub(super) engine: Option<Engine>,
    pub(super) mode: Mode,
    pub(super) raw: Arc<RawStore>,
    pub(super) traffic: TrafficPanel,
    pub(super) rules_panel: RulesPanel,
    pub(super) log: LogPanel,
    pub(super) stats: StatsPanel,
    pub(super) blocklist: BlocklistPanel,
    pub(super) model: Model,
    pub(super) notice: Option<String>,
    pub(super) interfaces: Vec<String>,
    pub(super) last_stats: StatsSnapshot,
    /// Select the first denied row once one arrives (`--tab details`).
    pub(super) select_denied_pending: bool,
}

impl App {
    /// Builds the app: loads the rules (a broken file starts with an empty rule set and says why) and starts
    /// capture on the remembered interface, or the demo when live capture is impossible or `demo` is set.
    #[must_use]
    pub fn new(
        state: State,
        rules_path: PathBuf,
        demo_file: PathBuf,
        iface: Option<String>,
        demo: bool,
    ) -> Self {
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
        let log_path = set.log().path.clone();
        let mut state = state;
        if let Some(iface) = iface {
            state.iface = iface;
        }
        let mut app = Self {
            traffic: TrafficPanel::new(state.row_cap),
            state,
            rules: shared(set),
            rules_path,
            demo_file,
            engine: None,
            mode: Mode::Stopped,
            raw: Arc::new(RawStore::new(64 << 20)),
            rules_panel,
            log: LogPanel::new(log_path),
            stats: StatsPanel::default(),
            blocklist: BlocklistPanel::default(),
            model: Model::default(),
            notice,
            interfaces: Vec::new(),
            last_stats: StatsSnapshot::default(),
            select_denied_pending: false,
        };
        app.refresh_interfaces();
        if demo {
            app.start_demo("demo mode requested".into(), watcher);
        } else {
            app.start_live(watcher);
        }
        app
    }

    pub(super) fn refresh_interfaces(&mut self) {
        let mut names = vec!["any".to_owned()];
        if let Ok(list) = list_interfaces() {
            names.extend(list.into_iter().map(|i| i.name).filter(|n| n != "any"));
        }
        self.interfaces = names;
    }

    fn base_config(&self, source: SourceSpec, watcher: Option<RuleWatcher>) -> EngineConfig {
        let mut config = EngineConfig::new(source, Arc::clone(&self.rules));
        config.rules_watcher = watcher;
        config.raw_store = Some(Arc::clone(&self.raw));
        config.audit = Some(self.rules.load().log().clone());
        config
    }

    pub(super) fn watcher(&self) -> Option<RuleWatcher> {
        RuleWatcher::open(&self.rules_path).ok().map(|(w, _)| w)
    }

    /// Starts live capture on the chosen interface; falls back to the demo when that is impossible.
    pub(super) fn start_live(&mut self, watcher: Option<RuleWatcher>) {
        self.stop();
        let mut live = LiveOptions::new(&self.state.iface);
        let bpf = self.state.bpf.trim();
        live.filter = (!bpf.is_empty()).then(|| bpf.to_owned());
        let mut config = self.base_config(SourceSpec::Live(live), watcher);
        config.local_addrs = LocalAddrs::from_system();
        match Engine::spawn(config) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.mode = Mode::Live(self.state.iface.clone());
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
    pub(super) fn start_demo(&mut self, why: String, watcher: Option<RuleWatcher>) {
        self.stop();
        let source = SourceSpec::File {
            path: self.demo_file.clone(),
            filter: None,
        };
        let config = super::demo::demo_config(self.base_config(source, watcher));
        match Engine::spawn(config) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.mode = Mode::Demo { why };
            }
            Err(e) => {
                self.notice = Some(format!("{why}; the demo capture could not start either: {e}"));
                self.mode = Mode::Stopped;
            }
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(engine) = self.engine.take() {
            // The stop reason of a capture the user ended is not news.
            engine.shutdown().ok();
        }
        self.mode = Mode::Stopped;
    }

    /// Moves engine batches into the panels, within a time budget.
    fn drain(&mut self) {
        let Some(engine) = &self.engine else { return };
        let start = Instant::now();
        let mut stopped = None;
        while start.elapsed() < DRAIN_BUDGET {
            match engine.events.try_recv() {
                Ok(EngineMessage::Events(batch)) => {
                    self.stats.push(&batch);
                    self.log.push(&batch);
                    self.traffic.push(batch);
                }
                Ok(EngineMessage::Notice(notice)) => self.notice = Some(describe_notice(&notice)),
                Ok(EngineMessage::Stopped(result)) => {
                    stopped = Some(result);
                    break;
                }
                Err(_) => break,
            }
        }
        self.last_stats = engine.stats.snapshot();
        if let Some(result) = stopped {
            if let Err(e) = result {
                self.notice = Some(format!("capture stopped: {e}"));
            }
            self.engine = None;
            self.mode = Mode::Stopped;
        }
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F)) {
            self.state.tab = Tab::Traffic;
            self.traffic.focus_filter();
        }
        if !ctx.egui_wants_keyboard_input()
            && self.state.tab == Tab::Traffic
            && ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Space))
        {
            self.traffic.toggle_pause();
        }
    }

    /// One frame of the whole window (also driven headless by tests and the frame bench).
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        self.drain();
        if self.select_denied_pending
            && self
                .traffic
                .select_first_where(|row| row.action == crate::rules::Action::Block)
        {
            self.select_denied_pending = false;
        }
        self.keyboard(ui.ctx());
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| match self.state.tab {
            Tab::Traffic => {
                let rules = self.rules.load_full();
                self.traffic.ui(ui, &rules, &self.raw);
            }
            Tab::Rules => {
                let traffic = &self.traffic;
                self.rules_panel
                    .ui(ui, &self.rules, &|| traffic.recent_packets(PREVIEW_PACKETS));
            }
            Tab::Log => self.log.ui(ui, &self.raw),
            Tab::Stats => self.stats.stats_ui(ui),
            Tab::Threats => super::threats::threats_ui(ui, &self.stats, &mut self.model.actions),
            Tab::Blocklist => self.blocklist.ui(ui, &mut self.model),
        });
        self.model.actions.append(&mut self.traffic.actions);
        self.apply_actions();
        if self.engine.is_some() {
            ui.ctx().request_repaint_after(Duration::from_millis(33));
        }
    }

    /// Carries out the queued actions it can: new rules open in the rule editor. Block requests stay queued
    /// until a block list is available (the status bar says so).
    fn apply_actions(&mut self) {
        let mut kept = Vec::new();
        for action in std::mem::take(&mut self.model.actions) {
            match action {
                UiAction::EditNewRule(spec) => {
                    self.rules_panel.start_new_rule(spec);
                    self.state.tab = Tab::Rules;
                }
                block @ UiAction::Block { .. } => kept.push(block),
            }
        }
        self.model.actions = kept;
    }

    /// The shared model: queued actions (tests, the block-list panel).
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The traffic panel (tests).
    #[must_use]
    pub fn traffic(&self) -> &TrafficPanel {
        &self.traffic
    }

    /// The current tab.
    #[must_use]
    pub fn tab(&self) -> Tab {
        self.state.tab
    }

    /// Opens the details pane on the first denied row as soon as one arrives (`--tab details`).
    pub fn select_first_denied(&mut self) {
        self.select_denied_pending = true;
    }

    /// Switches tab (`--tab`, tests).
    pub fn set_tab(&mut self, tab: Tab) {
        self.state.tab = tab;
    }

    /// Saved preferences.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The eframe wrapper: persistence and the frame callback.
pub struct EframeApp(pub App);

/// Key of the saved preferences.
pub const STATE_KEY: &str = "netwarden-state";

impl eframe::App for EframeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.0.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STATE_KEY, self.0.state());
    }
}
