//! `netwarden gui`: the desktop app's command-line options.

use std::path::PathBuf;

use anyhow::anyhow;
use netwarden::ui::{GuiError, GuiOptions};

use super::{CliError, CliResult};

/// `netwarden gui` options.
#[derive(Debug, Clone, clap::Args)]
pub struct GuiArgs {
    /// Rules file (default: ./rules.ron, else $XDG_CONFIG_HOME/netwarden/rules.ron, else
    /// /etc/netwarden/rules.ron; rules from /etc are saved to a copy under $XDG_CONFIG_HOME/netwarden/
    /// unless running as root).
    #[arg(long, short)]
    pub rules: Option<PathBuf>,
    /// Interface to capture on (default: the last one used, else `any`).
    #[arg(long, short)]
    pub iface: Option<String>,
    /// Replay the bundled demo capture instead of capturing live.
    #[arg(long)]
    pub demo: bool,
    /// The capture demo mode replays (default: assets/demo.pcap in this directory or next to the binary,
    /// else the installed /usr/share/netwarden/demo.pcap).
    #[arg(long, value_name = "FILE")]
    pub demo_file: Option<PathBuf>,
    /// Open on this tab: traffic, connections, rules, blocklist, log, stats or threats.
    #[arg(long)]
    pub tab: Option<String>,
    /// Monitor only: never change the kernel firewall, even with privileges.
    #[arg(long)]
    pub no_enforce: bool,
    /// Directory of the block list and ban history (default: as `netwarden block`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Remove netwarden's chains and sets from the kernel when the window closes (the list is kept and
    /// enforced again at the next start).
    #[arg(long)]
    pub remove_on_exit: bool,
}

impl GuiArgs {
    fn options(&self, privilege_hint: Option<String>) -> GuiOptions {
        GuiOptions {
            rules: self.rules.clone(),
            iface: self.iface.clone(),
            demo: self.demo,
            demo_file: self.demo_file.clone(),
            tab: self.tab.clone(),
            no_enforce: self.no_enforce,
            state_dir: self.state_dir.clone(),
            remove_on_exit: self.remove_on_exit,
            privilege_hint,
        }
    }
}

/// Opens the window and runs until it is closed. `privilege_hint` says how this user gets the capabilities
/// (the package's group), when the privileged copy refused them.
///
/// # Errors
/// An unknown `--tab` (exit 2), or no window could be created (exit 1).
pub fn gui(args: &GuiArgs, privilege_hint: Option<String>) -> CliResult {
    run(&args.options(privilege_hint))
}

/// `netwarden` without a subcommand: the app with the defaults of `netwarden gui`.
///
/// # Errors
/// As `gui`.
pub fn gui_default(privilege_hint: Option<String>) -> CliResult {
    run(&GuiOptions {
        privilege_hint,
        ..GuiOptions::default()
    })
}

fn run(options: &GuiOptions) -> CliResult {
    netwarden::ui::run(options).map_err(|e| match e {
        GuiError::BadInput(_) => CliError::BadInput(anyhow!(e)),
        GuiError::Window(_) => CliError::Runtime(anyhow!(e)),
    })
}
