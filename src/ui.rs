//! The desktop app (eframe/egui): one file per panel over the engine. `app` owns the engine and routes its
//! batches; `traffic`, `rules`, `log` and `stats` are the panels; `dialog` is the file-picker field.

pub mod app;
pub mod blocklist;
pub mod details;
pub mod dialog;
pub mod framelog;
pub mod log;
pub mod model;
pub mod rules;
pub mod stats;
pub mod traffic;
pub mod widgets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the desktop app starts (the binary fills this from `netwarden gui` options).
#[derive(Debug, Clone)]
pub struct GuiOptions {
    /// Rules file.
    pub rules: PathBuf,
    /// Interface to capture on (default: the last one used, else `any`).
    pub iface: Option<String>,
    /// Replay the bundled demo capture instead of capturing live.
    pub demo: bool,
    /// The capture demo mode replays (default: assets/demo.pcap next to the binary or in this directory).
    pub demo_file: Option<PathBuf>,
    /// Open on this tab: traffic, rules, blocklist, log, stats or threats.
    pub tab: Option<String>,
    /// Monitor only: never change the kernel firewall, even with privileges.
    pub no_enforce: bool,
    /// Directory of the block list and ban history (default: `blocklist::default_user_state_dir`).
    pub state_dir: Option<PathBuf>,
    /// Remove netwarden's chains and sets from the kernel when the window closes.
    pub remove_on_exit: bool,
}

impl Default for GuiOptions {
    fn default() -> Self {
        Self {
            rules: PathBuf::from("rules.ron"),
            iface: None,
            demo: false,
            demo_file: None,
            tab: None,
            no_enforce: false,
            state_dir: None,
            remove_on_exit: false,
        }
    }
}

/// Why the desktop app could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// An option was wrong (exit status 2).
    #[error("{0}")]
    BadInput(String),
    /// The window could not be created (no display, no GL).
    #[error("cannot open the window: {0}. Without a display use the headless commands (`netwarden --help`)")]
    Window(String),
}

/// Finds `assets/demo.pcap`: in the current directory, or up to three levels above the executable.
fn find_demo_file() -> PathBuf {
    let relative = Path::new("assets").join("demo.pcap");
    if relative.exists() {
        return relative;
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            let candidate = dir.join(&relative);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    relative
}

/// Opens the window and runs until it is closed.
///
/// # Errors
/// An unknown `--tab`, or the window could not be created (no display).
pub fn run(args: &GuiOptions) -> Result<(), GuiError> {
    let tab = match &args.tab {
        Some(name) => Some(app::Tab::from_name(name).ok_or_else(|| {
            GuiError::BadInput(format!(
                "unknown tab {name:?}: traffic, rules, blocklist, log, stats or threats"
            ))
        })?),
        None => None,
    };
    let demo_file = args.demo_file.clone().unwrap_or_else(find_demo_file);
    let mut viewport = egui::ViewportBuilder::default();
    // The icon is bundled; a decoding failure only costs the window its icon.
    if let Ok(icon) = eframe::icon_data::from_png_bytes(include_bytes!("../assets/netwarden.png")) {
        viewport = viewport.with_icon(icon);
    }
    // glow unless NETWARDEN_RENDERER asks for another one this build has (the `wgpu` feature).
    let renderer = match std::env::var("NETWARDEN_RENDERER") {
        Ok(name) => name.parse::<eframe::Renderer>().map_err(GuiError::BadInput)?,
        Err(_) => eframe::Renderer::Glow,
    };
    let options = eframe::NativeOptions {
        renderer,
        viewport: viewport
            .with_title(app::WINDOW_TITLE)
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([800.0, 500.0]),
        ..Default::default()
    };
    let args = args.clone();
    eframe::run_native(
        "netwarden",
        options,
        Box::new(move |cc| {
            let state: app::State = cc
                .storage
                .and_then(|s| eframe::get_value(s, app::STATE_KEY))
                .unwrap_or_default();
            let runner: Arc<dyn crate::enforce::runner::CommandRunner> =
                Arc::new(crate::enforce::runner::SystemRunner::new());
            let protected = crate::enforce::Protected::detect(
                runner.as_ref(),
                std::env::var("SSH_CONNECTION").ok().as_deref(),
            );
            let enforcer = if args.no_enforce {
                Err("monitor-only mode (--no-enforce)".to_owned())
            } else if crate::enforce::check_privileges().is_err() {
                Err("netwarden has no CAP_NET_ADMIN (run `make run`, or start it with sudo -E)".to_owned())
            } else {
                Ok(runner)
            };
            let options = app::AppOptions {
                rules_path: args.rules.clone(),
                demo_file,
                iface: args.iface.clone(),
                demo: args.demo,
                state_dir: args
                    .state_dir
                    .clone()
                    .unwrap_or_else(crate::blocklist::default_user_state_dir),
                enforcer,
                protected,
                remove_on_exit: args.remove_on_exit,
            };
            let mut app = app::App::new(state, options);
            if let Some(tab) = tab {
                app.set_tab(tab);
            }
            Ok(Box::new(app::EframeApp::new(app, &cc.egui_ctx)))
        }),
    )
    .map_err(|e| GuiError::Window(e.to_string()))
}
