//! The desktop app (eframe/egui): one file per panel over the engine. `app` owns the engine and routes its
//! batches; `traffic` (+ `details`), `rules`, `log`, `stats`, `threats` and `blocklist` are the panels;
//! `model` holds the compact row store and the `UiAction` queue panels push into; `widgets` has shared
//! cell helpers; `dialog` is the file-picker field.

pub mod app;
pub mod blocklist;
pub mod demo;
pub mod details;
pub mod dialog;
pub mod log;
pub mod model;
pub mod rules;
pub mod stats;
pub mod status_bar;
pub mod threats;
pub mod traffic;
pub mod widgets;

use std::path::PathBuf;

use anyhow::anyhow;

use crate::cli::{CliError, CliResult};

/// `netwarden gui` options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuiArgs {
    /// Rules file.
    #[arg(long, short, default_value = "rules.ron")]
    pub rules: PathBuf,
    /// Interface to capture on (default: the last one used, else `any`).
    #[arg(long, short)]
    pub iface: Option<String>,
    /// Replay the bundled demo capture instead of capturing live.
    #[arg(long)]
    pub demo: bool,
    /// The capture demo mode replays (default: assets/demo.pcap next to the binary or in this directory).
    #[arg(long, value_name = "FILE")]
    pub demo_file: Option<PathBuf>,
    /// Open on this tab: traffic, details, rules, log, stats, threats or blocklist.
    #[arg(long)]
    pub tab: Option<String>,
}

/// The window icon, rendered from `assets/netwarden.svg` to `assets/netwarden.png` (256x256).
fn window_icon() -> egui::IconData {
    // A broken icon is not worth failing over: fall back to the default.
    eframe::icon_data::from_png_bytes(include_bytes!("../assets/netwarden.png")).unwrap_or_default()
}

/// Opens the window and runs until it is closed.
///
/// # Errors
/// An unknown `--tab`, or the window could not be created (no display).
pub fn run(args: &GuiArgs) -> CliResult {
    let tab = match &args.tab {
        Some(name) => Some(app::Tab::from_name(name).ok_or_else(|| {
            CliError::BadInput(anyhow!(
                "unknown tab {name:?}: traffic, details, rules, log, stats, threats or blocklist"
            ))
        })?),
        None => None,
    };
    let details = args
        .tab
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("details"));
    let demo_file = args.demo_file.clone().unwrap_or_else(demo::find_demo_file);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("netwarden")
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([800.0, 500.0])
            .with_app_id("netwarden")
            .with_icon(window_icon()),
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
            let mut app = app::App::new(
                state,
                args.rules.clone(),
                demo_file,
                args.iface.clone(),
                args.demo,
            );
            if let Some(tab) = tab {
                app.set_tab(tab);
            }
            if details {
                app.select_first_denied();
            }
            Ok(Box::new(app::EframeApp(app)))
        }),
    )
    .map_err(|e| {
        CliError::Runtime(anyhow!(
            "cannot open the window: {e}. Without a display use the headless commands (`netwarden --help`)"
        ))
    })
}
