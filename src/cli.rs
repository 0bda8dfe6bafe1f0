//! The command-line face of the binary: subcommands that print text or JSON lines over the engine, and the
//! options of the desktop app. It lives with the binary; the library knows nothing of it.

use std::process::ExitCode;

/// A CLI failure, split by exit code: 2 for bad input (a file, address or flag the user gave), 1 for a
/// runtime failure (capture broke, a command failed).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}", chain_message(.0))]
    BadInput(anyhow::Error),
    #[error("{}", chain_message(.0))]
    Runtime(anyhow::Error),
}

/// The error and its causes as one line, `outer: cause: deeper cause`, naming each cause once.
///
/// Library errors (thiserror) put their source's text in their own message so the app can show one
/// sentence (`rules.ron: No such file or directory (os error 2)`), and also return it from `source()`;
/// anyhow's `{:#}` prints every level of the chain, so the cause came out twice. A level whose text is
/// already in the message is left out; `.context(..)` levels, which do not repeat their cause, still
/// show it.
#[must_use]
pub fn chain_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
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
pub mod generate;
#[cfg(feature = "gui")]
pub mod gui;
pub mod pipeline;
pub mod privileged;

use anyhow::anyhow;
use netwarden::rules::RuleSet;
use netwarden::rules::paths::{RulesLocation, RulesNotFound, RulesOrigin, find_rules};
use std::path::Path;

/// Loads and validates a rules file for a subcommand; a broken file is bad input (exit 2).
///
/// # Errors
/// The file is missing, unreadable or invalid; the message names it, with line and column.
pub fn load_rules(path: &Path) -> Result<RuleSet, CliError> {
    RuleSet::load(path).map_err(|e| CliError::BadInput(anyhow!(e)))
}

/// Finds the rules file for a subcommand (`--rules`, `./rules.ron`, the per-user file, `/etc`; see
/// `netwarden::rules::paths`) and says on stderr which file was taken when it was not given.
///
/// # Errors
/// Nothing given and no rules file anywhere; the error lists where it looked.
pub fn locate_rules(given: Option<&Path>) -> Result<RulesLocation, RulesNotFound> {
    let location = find_rules(given)?;
    if location.origin != RulesOrigin::Given {
        eprintln!("netwarden: rules from {}", location.path.display());
    }
    Ok(location)
}

/// [`locate_rules`] for subcommands that cannot go on without rules: none is bad input (exit 2).
///
/// # Errors
/// Nothing given and no rules file anywhere.
pub fn require_rules(given: Option<&Path>) -> Result<RulesLocation, CliError> {
    locate_rules(given).map_err(|e| CliError::BadInput(anyhow!("{e}: give one with --rules FILE")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithSource {
        path: String,
        source: std::io::Error,
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        )
    }

    #[test]
    fn a_cause_already_in_the_message_is_named_once() {
        let error = anyhow!(WithSource {
            path: "rules.ron".into(),
            source: not_found(),
        });
        assert_eq!(
            CliError::BadInput(error).to_string(),
            "rules.ron: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn context_levels_keep_their_cause_and_repeats_deeper_down_are_dropped() {
        let error = anyhow::Error::new(WithSource {
            path: "rules.ron".into(),
            source: not_found(),
        })
        .context("loading the rules")
        .context("starting replay");
        assert_eq!(
            chain_message(&error),
            "starting replay: loading the rules: rules.ron: No such file or directory (os error 2)"
        );
        let plain = anyhow::Error::new(not_found()).context("reading rules.ron");
        assert_eq!(
            CliError::Runtime(plain).to_string(),
            "reading rules.ron: No such file or directory (os error 2)"
        );
    }
}
