//! The headless face: subcommands that print text or JSON lines over the engine.

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

pub mod enforce;
