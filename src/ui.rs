//! The desktop app (eframe/egui): one file per panel over the engine. `app` owns the engine and routes its
//! batches; `traffic`, `connections`, `rules`, `blocklist`, `log` and `stats` are the panels; `dialog` is the
//! file-picker field.

pub mod app;
pub mod blocklist;
pub mod connections;
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
#[derive(Debug, Clone, Default)]
pub struct GuiOptions {
    /// Rules file given on the command line; `None` looks it up (`rules::paths`).
    pub rules: Option<PathBuf>,
    /// Interface to capture on (default: the last one used, else `any`).
    pub iface: Option<String>,
    /// Replay the bundled demo capture instead of capturing live.
    pub demo: bool,
    /// The capture demo mode replays (default: assets/demo.pcap next to the binary or in this directory).
    pub demo_file: Option<PathBuf>,
    /// Open on this tab: traffic, connections, rules, blocklist, log, stats or threats.
    pub tab: Option<String>,
    /// Monitor only: never change the kernel firewall, even with privileges.
    pub no_enforce: bool,
    /// Directory of the block list and ban history (default: `blocklist::default_user_state_dir`).
    pub state_dir: Option<PathBuf>,
    /// Remove netwarden's chains and sets from the kernel when the window closes.
    pub remove_on_exit: bool,
    /// How this user could get the capabilities (join the package's group), shown when they are missing.
    pub privilege_hint: Option<String>,
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

/// Finds `assets/demo.pcap`: in the current directory, up to three levels above the executable (a source
/// checkout), or where the package installs it (`../share/netwarden/demo.pcap` from `/usr/bin`).
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
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            let installed = prefix.join("share/netwarden/demo.pcap");
            if installed.exists() {
                return installed;
            }
        }
    }
    relative
}

/// The rules file the app loads and the file its editor saves to. Without any rules file the app starts
/// with an empty rule set (and says why), and the first save creates the per-user file.
fn rules_paths(given: Option<&Path>) -> (PathBuf, PathBuf) {
    let env = crate::rules::paths::LookupEnv::from_process();
    let (load, save) = match env.find(given, Path::exists) {
        Ok(location) => {
            let save = env.save_target(&location);
            (location.path, save)
        }
        Err(_) => {
            let user = env
                .user_rules()
                .unwrap_or_else(|| PathBuf::from(crate::rules::paths::FILE_NAME));
            (user.clone(), user)
        }
    };
    // The per-user directory may not exist yet; the editor's first save writes into it. A failure here
    // shows when saving, as an error naming the directory.
    if given.is_none()
        && let Some(dir) = save.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).ok();
    }
    (load, save)
}

/// Opens the window and runs until it is closed.
///
/// # Errors
/// An unknown `--tab`, or the window could not be created (no display).
pub fn run(args: &GuiOptions) -> Result<(), GuiError> {
    let tab = match &args.tab {
        Some(name) => Some(app::Tab::from_name(name).ok_or_else(|| {
            GuiError::BadInput(format!(
                "unknown tab {name:?}: traffic, connections, rules, blocklist, log, stats or threats"
            ))
        })?),
        None => None,
    };
    let demo_file = args.demo_file.clone().unwrap_or_else(find_demo_file);
    let (rules_path, rules_save_path) = rules_paths(args.rules.as_deref());
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
                Err(args.privilege_hint.clone().unwrap_or_else(|| {
                    "netwarden has no CAP_NET_ADMIN (run `make run`, or start it with sudo -E)".to_owned()
                }))
            } else {
                Ok(runner)
            };
            let options = app::AppOptions {
                rules_path: rules_path.clone(),
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
            if rules_save_path != rules_path {
                app.set_rules_save_path(rules_save_path.clone());
            }
            if let Some(tab) = tab {
                app.set_tab(tab);
            }
            Ok(Box::new(app::EframeApp::new(app, &cc.egui_ctx)))
        }),
    )
    .map_err(|e| GuiError::Window(e.to_string()))
}
