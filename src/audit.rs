//! The audit log (`firewall.log`): one escaped line per denied or suspicious packet, size-based rotation and
//! suppression of identical floods.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Audit log settings, the `log` section of `rules.ron` (the CLI's `--log` overrides `path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`firewall.log.1` .. `.N`).
    pub keep_files: u32,
    /// Identical events (same action, rule, source, destination, protocol) within this many seconds are
    /// summarised as one `repeated N times` line.
    pub repeat_window_secs: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("firewall.log"),
            max_bytes: 10 * 1024 * 1024,
            keep_files: 5,
            repeat_window_secs: 5,
        }
    }
}

// STUB(lead): replaced by the audit module at merge.
/// Audit error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuditError(pub String);

/// Audit log.
#[derive(Debug)]
pub struct AuditLog;

impl AuditLog {
    /// # Errors
    /// stub
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let _ = config;
        Ok(Self)
    }
    /// # Errors
    /// stub
    pub fn record(&mut self, event: &crate::event::Event) -> Result<(), AuditError> {
        let _ = event;
        Ok(())
    }
    /// # Errors
    /// stub
    pub fn flush(&mut self) -> Result<(), AuditError> {
        Ok(())
    }
}
