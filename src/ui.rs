//! The desktop app (eframe/egui): panels over the engine.

pub mod dialog;
pub mod rules;

use crate::cli::CliResult;

/// `netwarden gui` options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuiArgs {
    /// Rules file.
    #[arg(long, short, default_value = "rules.ron")]
    pub rules: std::path::PathBuf,
    /// Interface to capture on (default: the last one used, else `any`).
    #[arg(long, short)]
    pub iface: Option<String>,
    /// Replay the bundled demo capture instead of capturing live.
    #[arg(long)]
    pub demo: bool,
}

/// Opens the window.
///
/// # Errors
/// The window could not be created.
pub fn run(args: &GuiArgs) -> CliResult {
    let _ = args;
    Ok(())
}
