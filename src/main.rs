//! The `netwarden` binary: parses the command line and hands over to the library's front ends.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netwarden::cli::{self, CliError};

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
    Gui(netwarden::ui::GuiArgs),
    /// Capture live and print denied and suspicious packets (every packet with --all).
    Run(cli::capture::RunArgs),
    /// Replay a pcap/pcapng file through the rules; --summary for totals, --compare for a what-if.
    Replay(cli::capture::ReplayArgs),
    /// Validate and lint a rules file.
    Check(cli::check::CheckArgs),
    /// List the interfaces you can capture on.
    Interfaces,
    /// Block an address or network in the kernel (ipset + our own iptables chain).
    Block(cli::block::BlockArgs),
    /// Remove an address or network from the kernel block list.
    Unblock(cli::block::UnblockArgs),
    /// Show the block list next to what the kernel really holds.
    List(cli::block::ListArgs),
    /// Remove every netwarden chain, jump and set from the kernel.
    Flush(cli::block::FlushArgs),
}

fn main() -> ExitCode {
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
        Some(Command::Gui(gui)) => netwarden::ui::run(&gui),
        #[cfg(feature = "gui")]
        None => netwarden::ui::run(&netwarden::ui::GuiArgs::default()),
        #[cfg(not(feature = "gui"))]
        None => Err(CliError::BadInput(anyhow::anyhow!(
            "this build has no desktop app (built without the `gui` feature); see `netwarden --help`"
        ))),
        Some(Command::Run(run)) => cli::capture::run(&run),
        Some(Command::Replay(replay)) => cli::capture::replay(&replay),
        Some(Command::Check(check)) => cli::check::check(&check),
        Some(Command::Interfaces) => cli::capture::interfaces(),
        Some(Command::Block(args)) => cli::block::block(&args),
        Some(Command::Unblock(args)) => cli::block::unblock(&args),
        Some(Command::List(args)) => cli::block::list(&args),
        Some(Command::Flush(args)) => cli::block::flush(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwarden: error: {e}");
            e.exit_code()
        }
    }
}
