//! `netwarden generate man|completions DIR` (hidden): the man pages and shell completions the Debian
//! package ships, written from the clap definitions so they never drift from `--help`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap_complete::Shell;

use super::{CliError, CliResult};

/// What to generate.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GenerateArgs {
    /// Man pages: netwarden.1 and one netwarden-SUBCOMMAND.1 per subcommand.
    Man {
        /// Directory to write them to (created if missing).
        dir: PathBuf,
    },
    /// Completions for bash (netwarden.bash), zsh (_netwarden) and fish (netwarden.fish).
    Completions {
        /// Directory to write them to (created if missing).
        dir: PathBuf,
    },
}

/// Writes the files `args` asks for, for the command line `command`.
///
/// # Errors
/// The directory or a file cannot be written (exit 1).
pub fn generate(args: &GenerateArgs, command: &clap::Command) -> CliResult {
    match args {
        GenerateArgs::Man { dir } => man(command, dir),
        GenerateArgs::Completions { dir } => completions(command, dir),
    }
    .map_err(CliError::Runtime)
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn man(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    create(dir)?;
    // Hidden subcommands (this one) get no page; `generate_to` writes one page per visible subcommand.
    clap_mangen::generate_to(command.clone(), dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))
}

fn completions(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    create(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = command.clone();
        let name = command.get_name().to_owned();
        clap_complete::generate_to(shell, &mut command, name, dir)
            .map_err(|e| anyhow!("writing {shell} completions to {}: {e}", dir.display()))?;
    }
    Ok(())
}
