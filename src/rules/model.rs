//! The rule model as written in `rules.ron` (the raw, unvalidated form) and the small value types shared
//! by the matcher, the audit log and the UI.
//!
//! A raw `RuleFile` is turned into a validated `RuleSet` by `rules::compile`; the engine accepts only the
//! validated form.

use serde::{Deserialize, Serialize};

/// What a matching rule decides. A verdict is the monitor's judgement: libpcap sees packets, it cannot stop
/// them. `Block` means denied (logged, counted, shown red, fed to detection); the kernel drops traffic only
/// for block-list entries and rules marked `enforce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Block,
    /// Allowed, but recorded in the audit log as suspicious. Terminal like the others: first match wins.
    Log,
}

impl Action {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
            Self::Log => "log",
        }
    }
}

/// Index of a rule in its `RuleSet` (0-based, in file order). Stable until the rules are reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId(pub u32);

impl RuleId {
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The outcome of evaluating one packet: the action and the rule that decided it (`None` = default policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    pub action: Action,
    pub rule: Option<RuleId>,
}
