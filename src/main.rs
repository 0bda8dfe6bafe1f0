//! The `netwarden` binary: parses the command line and hands over to the library's front ends.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
mod cli;

use cli::CliError;

/// Personal firewall monitor: live traffic, ordered rules, audit log and kernel enforcement.
#[derive(Debug, Parser)]
#[command(name = "netwarden", version, about, propagate_version = true, after_long_help = FILES_HELP)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The end of `netwarden --help` and the man page: where netwarden finds its files, and who may do what.
const FILES_HELP: &str = "\
Rules: --rules FILE, else ./rules.ron, else $XDG_CONFIG_HOME/netwarden/rules.ron (~/.config/netwarden/rules.ron), \
else /etc/netwarden/rules.ron. Block list and ban history: /var/lib/netwarden as root, else \
~/.local/state/netwarden (--state-dir). The service (netwarden.service) reads /etc/default/netwarden.

Capturing needs CAP_NET_RAW, changing the firewall CAP_NET_ADMIN. Installed from the Debian package, netwarden \
runs /usr/lib/netwarden/netwarden-priv, which has both, for members of the group netwarden \
(sudo usermod -aG netwarden $USER); everyone else gets the unprivileged monitor, replay and demo.

Exit status: 0 ok, 2 bad input (a file, address, interface or flag), 1 runtime failure.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the desktop app (the default without a subcommand).
    #[cfg(feature = "gui")]
    Gui(cli::gui::GuiArgs),
    /// Capture live and print denied and suspicious packets (every packet with --all).
    Run(cli::capture::RunArgs),
    /// Replay a pcap/pcapng file through the rules; --summary for totals, --compare for a what-if.
    Replay(cli::capture::ReplayArgs),
    /// Validate and lint a rules file.
    Check(cli::check::CheckArgs),
    /// Capture live for a while, then print every connection with its program and user.
    Connections(cli::connections::ConnectionsArgs),
    /// List the interfaces you can capture on.
    Interfaces,
    /// Block an address or network in the kernel (ipset + our own iptables chains).
    Block(cli::enforce::BlockArgs),
    /// Remove an address or network from the block list and the kernel.
    Unblock(cli::enforce::UnblockArgs),
    /// Show the block list next to what the kernel really holds (--csv / --text to export it).
    List(cli::enforce::ListArgs),
    /// Block every address of a text (one per line) or CSV file, all or nothing.
    Import(cli::enforce::ImportArgs),
    /// Show the ban history (--csv to export it).
    History(cli::enforce::HistoryArgs),
    /// Unblock everything and remove every netwarden chain, jump and set from the kernel.
    Flush(cli::enforce::FlushArgs),
    /// Keep a change that could cut you off (broad or forced block, risky kernel rule) before it is undone.
    Confirm(cli::enforce::ConfirmArgs),
    /// Write the man pages or shell completions (for packaging).
    #[command(subcommand, hide = true)]
    Generate(cli::generate::GenerateArgs),
}

impl Command {
    /// Commands that capture or change the firewall, so fail without the capabilities.
    fn needs_privileges(&self) -> bool {
        matches!(
            self,
            Self::Run(_)
                | Self::Block(_)
                | Self::Unblock(_)
                | Self::List(_)
                | Self::Import(_)
                | Self::Flush(_)
                | Self::Confirm(_)
        )
    }
}

fn main() -> ExitCode {
    // Without the capabilities, hand over to the privileged copy when the user may run it (Debian package:
    // members of the group `netwarden`); otherwise go on unprivileged.
    let handover = cli::privileged::hand_over();
    // Before any thread starts: iptables and ipset, run as child processes, get the capabilities that
    // `setcap` gave this binary. Failing only means they need root, which their own errors then say.
    if let Err(e) = netwarden::enforce::pass_capabilities_to_commands() {
        eprintln!("netwarden: warning: cannot pass CAP_NET_ADMIN on to iptables/ipset: {e}");
    }
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr; usage errors are bad input.
            e.print().ok();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let needs_privileges = args.command.as_ref().is_some_and(Command::needs_privileges);
    let result: Result<(), CliError> = match args.command {
        #[cfg(feature = "gui")]
        Some(Command::Gui(gui)) => cli::gui::gui(&gui, handover.hint()),
        #[cfg(feature = "gui")]
        None => cli::gui::gui_default(handover.hint()),
        #[cfg(not(feature = "gui"))]
        None => Err(CliError::BadInput(anyhow::anyhow!(
            "this build has no desktop app (built without the `gui` feature); see `netwarden --help`"
        ))),
        Some(Command::Run(run)) => cli::capture::run(&run),
        Some(Command::Replay(replay)) => cli::capture::replay(&replay),
        Some(Command::Check(check)) => cli::check::check(&check),
        Some(Command::Connections(args)) => cli::connections::connections(&args),
        Some(Command::Interfaces) => cli::capture::interfaces(),
        Some(Command::Block(args)) => cli::enforce::run_block(&args, &mut std::io::stdout()),
        Some(Command::Unblock(args)) => cli::enforce::run_unblock(&args, &mut std::io::stdout()),
        Some(Command::List(args)) => cli::enforce::run_list(&args, &mut std::io::stdout()),
        Some(Command::Import(args)) => cli::enforce::run_import(&args, &mut std::io::stdout()),
        Some(Command::History(args)) => cli::enforce::run_history(&args, &mut std::io::stdout()),
        Some(Command::Flush(args)) => cli::enforce::run_flush(&args, &mut std::io::stdout()),
        Some(Command::Confirm(args)) => cli::enforce::run_confirm(&args, &mut std::io::stdout()),
        Some(Command::Generate(what)) => cli::generate::generate(&what, &Args::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwarden: error: {e}");
            if let Some(hint) = handover.hint().filter(|_| needs_privileges) {
                eprintln!("netwarden: {hint}");
            }
            e.exit_code()
        }
    }
}
