//! Rules: the RON model, validation, the compiled matcher, hit counters, lint and explain.

pub mod model;

pub use model::*;

// STUB(lead): replaced by the rules module at merge.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::AuditConfig;
use crate::detect::DetectConfig;
use crate::packet::PacketMeta;

/// Rule error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub enabled: bool,
}

/// Per-rule hits.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleHits {
    pub count: u64,
    pub last_hit_micros: Option<i64>,
}

/// Compiled rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    detection: DetectConfig,
    log: AuditConfig,
}

impl RuleSet {
    /// # Errors
    /// stub
    pub fn load(path: &Path) -> Result<Self, RuleError> {
        let _ = path;
        Ok(Self::default())
    }
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    #[must_use]
    pub fn default_policy(&self) -> Action {
        Action::Allow
    }
    #[must_use]
    pub fn detection(&self) -> &DetectConfig {
        &self.detection
    }
    #[must_use]
    pub fn log(&self) -> &AuditConfig {
        &self.log
    }
    #[must_use]
    pub fn evaluate(&self, meta: &PacketMeta, iface: &str) -> Verdict {
        let _ = (meta, iface);
        Verdict {
            action: Action::Allow,
            rule: None,
        }
    }
    #[must_use]
    pub fn matching_rule(&self, meta: &PacketMeta, iface: &str) -> Option<RuleId> {
        let _ = (meta, iface);
        None
    }
    #[must_use]
    pub fn hits(&self, id: RuleId) -> RuleHits {
        let _ = id;
        RuleHits::default()
    }
    #[must_use]
    pub fn rule_name(&self, id: RuleId) -> Option<Arc<str>> {
        self.rules.get(id.index()).map(|r| Arc::from(r.name.as_str()))
    }
    pub fn inherit_hits(&self, old: &RuleSet) {
        let _ = old;
    }
}

/// Shared rules.
pub type SharedRules = Arc<arc_swap::ArcSwap<RuleSet>>;

/// Lint warning.
#[derive(Debug, Clone)]
pub struct LintWarning {
    pub rule: RuleId,
    pub message: String,
}

/// Lint.
#[must_use]
pub fn lint(rules: &RuleSet) -> Vec<LintWarning> {
    let _ = rules;
    Vec::new()
}

/// Watches the rules file.
#[derive(Debug)]
pub struct RuleWatcher(pub PathBuf);

impl RuleWatcher {
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        Self(path)
    }
    pub fn poll(&mut self) -> Option<Result<RuleSet, RuleError>> {
        None
    }
}

/// Raw rules file (stub).
#[derive(Debug, Default)]
pub struct RuleFile;

impl RuleFile {
    /// # Errors
    /// stub
    pub fn to_ron_string(&self) -> Result<String, RuleError> {
        Ok(String::new())
    }
}

/// Synthetic rules (stub).
#[must_use]
pub fn synthetic_rules(n: usize) -> RuleFile {
    let _ = n;
    RuleFile
}
