//! The command-line face of the binary: subcommands that print text or JSON lines over the engine, and the
//! options of the desktop app. It lives with the binary; the library knows nothing of it.

use std::process::ExitCode;

/// A CLI failure, split by exit code: 2 for bad input (a file, address or flag the user gave), 1 for a
/// runtime failure (capture broke, a command failed).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0:#}")]
    BadInput(anyhow::Error),
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl CliError {
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::BadInput(_) => ExitCode::from(2),
            Self::Runtime(_) => ExitCode::from(1),
        }
    }
}

/// Result of a CLI subcommand.
pub type CliResult = Result<(), CliError>;

pub mod capture;
pub mod check;
pub mod connections;
pub mod enforce;
#[cfg(feature = "gui")]
pub mod gui;

use anyhow::anyhow;
use netwarden::rules::RuleSet;
use std::path::Path;

/// Loads and validates a rules file for a subcommand; a broken file is bad input (exit 2).
///
/// # Errors
/// The file is missing, unreadable or invalid; the message names it, with line and column.
pub fn load_rules(path: &Path) -> Result<RuleSet, CliError> {
    RuleSet::load(path).map_err(|e| CliError::BadInput(anyhow!(e)))
}
