//! Hot reload by polling: [`RuleWatcher::poll`] is called from any loop (the engine's command loop, a UI
//! timer); it has no thread of its own. It looks at the file's modification time and length, reads and
//! hashes the content only when those changed (or when the file was modified in the last two seconds,
//! where a second write could hide behind the same timestamp), and compiles only content it has not seen.
//!
//! A broken file is reported once per distinct content (not on every poll); the caller keeps the rule
//! set in force until a later change compiles.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{RuleError, RuleSet};

/// What the file looked like last time we checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Where a watched file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nothing read yet: the next poll loads the file.
    Nothing,
    /// Content with this hash was read (and compiled, or reported as broken).
    Content(u64),
    /// The file could not be read (reported once).
    Unreadable,
}

/// Watches one rule file for changes. See the module docs.
#[derive(Debug)]
pub struct RuleWatcher {
    path: PathBuf,
    stamp: Option<Stamp>,
    seen: Seen,
}

/// Modifications newer than this are re-hashed even when time and length look unchanged.
const RACY_WINDOW: Duration = Duration::from_secs(2);

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl RuleWatcher {
    /// Watches `path`; the first [`poll`](Self::poll) loads it.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            stamp: None,
            seen: Seen::Nothing,
        }
    }

    /// Loads `path` now and watches it from that content on: later polls report only changes after it.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, RuleSet), RuleError> {
        let mut w = Self::new(path);
        match w.poll() {
            Some(Ok(set)) => Ok((w, set)),
            Some(Err(e)) => Err(e),
            // Unreachable: the first poll always reports; kept total without panicking.
            None => RuleSet::load(&w.path).map(|s| (w, s)),
        }
    }

    /// The watched file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the file. `None`: nothing new. `Some(Ok(set))`: the file changed and compiled, publish it.
    /// `Some(Err(e))`: the file changed (or became unreadable) and is broken; keep the old set. Each
    /// distinct broken state is reported once.
    pub fn poll(&mut self) -> Option<Result<RuleSet, RuleError>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(source) => return self.unreadable(source),
        };
        let stamp = Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        };
        let racy = stamp.modified.is_none_or(|m| {
            SystemTime::now()
                .duration_since(m)
                .map_or(true, |age| age < RACY_WINDOW)
        });
        if self.seen != Seen::Nothing && self.stamp == Some(stamp) && !racy {
            return None;
        }
        self.stamp = Some(stamp);
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(source) => return self.unreadable(source),
        };
        let hash = content_hash(&bytes);
        if self.seen == Seen::Content(hash) {
            return None;
        }
        self.seen = Seen::Content(hash);
        let result = match String::from_utf8(bytes) {
            Ok(text) => RuleSet::from_ron(&text).map_err(|e| e.with_path(&self.path)),
            Err(_) => Err(RuleError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "file is not valid UTF-8"),
            }),
        };
        Some(result)
    }

    fn unreadable(&mut self, source: std::io::Error) -> Option<Result<RuleSet, RuleError>> {
        self.stamp = None;
        if self.seen == Seen::Unreadable {
            return None;
        }
        self.seen = Seen::Unreadable;
        Some(Err(RuleError::Io {
            path: self.path.clone(),
            source,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "(default_policy: Allow, rules: [(name: \"a\", action: Block)])";

    #[test]
    fn reports_changes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.ron");
        std::fs::write(&path, GOOD).unwrap();
        let (mut w, set) = RuleWatcher::open(&path).unwrap();
        assert_eq!(set.rules().len(), 1);
        // Unchanged content (even if re-hashed because it is recent): nothing.
        assert!(w.poll().is_none());
        std::fs::write(
            &path,
            "(default_policy: Allow, rules: [(name: \"a\", action: Nope)])",
        )
        .unwrap();
        let e = w.poll().unwrap().unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}:1:", path.display())),
            "{e}"
        );
        assert!(w.poll().is_none(), "the same broken content is reported once");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(w.poll(), Some(Err(RuleError::Io { .. }))));
        assert!(w.poll().is_none());
        std::fs::write(&path, GOOD.replace("Block", "Log")).unwrap();
        let set = w.poll().unwrap().unwrap();
        assert_eq!(set.rules()[0].action, crate::rules::Action::Log);
        assert!(w.poll().is_none());
    }

    #[test]
    fn new_loads_on_first_poll_and_open_fails_on_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.ron");
        assert!(matches!(RuleWatcher::open(&path), Err(RuleError::Io { .. })));
        std::fs::write(&path, GOOD).unwrap();
        let mut w = RuleWatcher::new(&path);
        assert!(w.poll().unwrap().is_ok());
        assert!(w.poll().is_none());
    }
}
