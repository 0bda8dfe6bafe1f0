//! Rules: the RON model, validation, the compiled matcher, hit counters, lint and explain.
//!
//! The life of a rule file:
//! 1. [`RuleFile::parse`] reads `rules.ron` into the raw model ([`RuleFile`], [`RuleSpec`]): syntax only.
//! 2. [`RuleSet::compile`] validates it into a [`RuleSet`] of [`Rule`]s (parsed networks and port ranges)
//!    and builds the index the matcher uses. Errors carry the file, line and column of the offending value.
//! 3. [`RuleSet::evaluate`] decides one packet: the first enabled matching rule wins, else the default
//!    policy. It counts hits per rule with relaxed atomics, so the UI can read counters while capture runs.
//! 4. [`SharedRules`] holds the set in force behind `arc-swap`; [`swap_rules`] publishes a reloaded set
//!    (keeping hit counters of rules with the same name) without stopping capture. [`RuleWatcher`] notices
//!    file changes; a broken file is reported and the old set stays in force.
//!
//! Around the matcher: [`lint()`] (shadowed, duplicate and broader-than-they-look rules), [`RuleSet::explain`]
//! (why each rule did or did not match one packet), [`save_atomic`] (validated, atomic writes for the
//! editor) and [`paths`] (which rules file the CLI and the app use, and where an edit is saved).
//!
//! Human-readable texts number rules from 1 in file order (`rule 3 "no ssh"`); a [`RuleId`] is the 0-based
//! index.

pub mod compile;
pub mod explain;
pub mod index;
pub mod lint;
mod locate;
pub mod model;
pub mod paths;
pub mod predicate;
pub mod reload;
pub mod save;
pub mod synthetic;

use std::fmt;
use std::path::PathBuf;

pub use compile::{
    PortRange, ProgramMatch, Rule, RuleHits, RuleSet, SharedRules, UserMatch, shared, swap_rules,
};
pub use explain::{ExplainStep, Explanation, StepOutcome};
pub use lint::{LintKind, LintWarning, lint};
pub use model::*;
pub use predicate::Owner;
pub use reload::RuleWatcher;
pub use save::{rewrite_changed, save_atomic, save_edited};
#[doc(hidden)]
pub use synthetic::synthetic_rules;

/// Where in a rule file something is: the file (when known) and a 1-based line and column (when known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file, when the text came from one.
    pub path: Option<PathBuf>,
    /// 1-based line and column (columns count characters), when the position could be found.
    pub line_col: Option<(usize, usize)>,
}

impl Location {
    /// A position without a file.
    #[must_use]
    pub fn at(line: usize, col: usize) -> Self {
        Self {
            path: None,
            line_col: Some((line, col)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line_col) {
            (Some(p), Some((l, c))) => write!(f, "{}:{l}:{c}", p.display()),
            (Some(p), None) => write!(f, "{}", p.display()),
            (None, Some((l, c))) => write!(f, "{l}:{c}"),
            (None, None) => write!(f, "rules"),
        }
    }
}

/// Which rule an error is about: its 0-based index and its name (empty when the name is the problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// 0-based index in file order.
    pub index: usize,
    /// The rule's name as written.
    pub name: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "rule {}", self.index + 1)
        } else {
            write!(f, "rule {:?}", self.name)
        }
    }
}

/// Everything that can go wrong reading, validating or writing a rule file. The old rule set stays in force
/// whenever one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or directory) involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The text is not valid RON for the rule model (syntax, unknown field, wrong type).
    #[error("{location}: {message}")]
    Syntax {
        /// Position reported by the RON parser.
        location: Location,
        /// ron's description of the problem.
        message: String,
    },
    /// The text parsed, but a value is not acceptable (bad address, port range, duplicate name, ..).
    #[error("{location}: {}{message}", rule.as_ref().map(|r| format!("{r}: ")).unwrap_or_default())]
    Invalid {
        /// Position of the offending value (or of its rule when the value could not be located).
        location: Location,
        /// The rule the value belongs to, when it is in a rule.
        rule: Option<RuleRef>,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The rule model could not be written as RON (should not happen for a valid model).
    #[error("cannot write rules as RON: {0}")]
    Serialize(String),
}

impl RuleError {
    /// Attaches the file the text came from, so the message reads `rules.ron:14:23: ..`.
    #[must_use]
    pub fn with_path(mut self, file: impl Into<PathBuf>) -> Self {
        match &mut self {
            Self::Syntax { location, .. } | Self::Invalid { location, .. } => {
                location.path = Some(file.into());
            }
            Self::Io { .. } | Self::Serialize(_) => {}
        }
        self
    }

    /// The 1-based line and column of the problem, when known (for the editor to jump to).
    #[must_use]
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match self {
            Self::Syntax { location, .. } | Self::Invalid { location, .. } => location.line_col,
            Self::Io { .. } | Self::Serialize(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_error_display_names_file_position_and_rule() {
        let e = RuleError::Invalid {
            location: Location::at(14, 23),
            rule: Some(RuleRef {
                index: 2,
                name: "no ssh".into(),
            }),
            message: "invalid port range \"90-80\" (start after end)".into(),
        }
        .with_path("rules.ron");
        assert_eq!(
            e.to_string(),
            "rules.ron:14:23: rule \"no ssh\": invalid port range \"90-80\" (start after end)"
        );
        assert_eq!(e.line_col(), Some((14, 23)));
    }

    #[test]
    fn unnamed_rule_is_numbered_from_one() {
        let e = RuleError::Invalid {
            location: Location::at(3, 5),
            rule: Some(RuleRef {
                index: 0,
                name: String::new(),
            }),
            message: "name is empty".into(),
        };
        assert_eq!(e.to_string(), "3:5: rule 1: name is empty");
    }

    #[test]
    fn location_without_position_shows_path_only() {
        let loc = Location {
            path: Some("a.ron".into()),
            line_col: None,
        };
        assert_eq!(loc.to_string(), "a.ron");
    }
}
