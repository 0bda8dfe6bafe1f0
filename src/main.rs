//! The `netwarden` binary: parses the command line and hands over to the library's front ends.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
mod cli;

use cli::CliError;

/// Personal firewall monitor: live traffic, ordered rules, audit log and kernel enforcement.
#[derive(Debug, Parser)]
#[command(name = "netwarden", version, about, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

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
}

fn main() -> ExitCode {
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
    let result: Result<(), CliError> = match args.command {
        #[cfg(feature = "gui")]
        Some(Command::Gui(gui)) => cli::gui::gui(&gui),
        #[cfg(feature = "gui")]
        None => cli::gui::gui_default(),
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwarden: error: {e}");
            e.exit_code()
        }
    }
}
