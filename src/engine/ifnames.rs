//! Interface names by kernel index, for frames captured on `any`: their SLL2 header names the interface
//! by index only. Read from `/sys/class/net` (the capturing namespace's view), again when an unknown
//! index shows up but at most once a second, so a flood from a new interface costs no file reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an unknown index may trigger a re-read of `/sys/class/net`.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Index-to-name table with a fallback name for indexes it cannot resolve.
#[derive(Debug)]
pub struct IfNames {
    /// (index, name); a few entries, so a linear scan beats hashing.
    names: Vec<(u32, Arc<str>)>,
    /// What a frame with an unknown index is attributed to (the capture device, `any`).
    fallback: Arc<str>,
    last_refresh: Option<Instant>,
}

impl IfNames {
    /// An empty table; names are read on first use.
    #[must_use]
    pub fn new(fallback: Arc<str>) -> Self {
        Self {
            names: Vec::new(),
            fallback,
            last_refresh: None,
        }
    }

    /// The name of interface `index`, or the fallback when no interface has it (now).
    pub fn name(&mut self, index: u32) -> &Arc<str> {
        if let Some(at) = self.position(index) {
            return &self.names[at].1;
        }
        if self.last_refresh.is_none_or(|t| t.elapsed() >= REFRESH_EVERY) {
            self.refresh();
            if let Some(at) = self.position(index) {
                return &self.names[at].1;
            }
        }
        &self.fallback
    }

    fn position(&self, index: u32) -> Option<usize> {
        self.names.iter().position(|(i, _)| *i == index)
    }

    /// Re-reads every interface; names already known keep their `Arc` (callers compare by pointer).
    fn refresh(&mut self) {
        self.last_refresh = Some(Instant::now());
        let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
            return;
        };
        let mut fresh = Vec::new();
        for entry in dir.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let index = std::fs::read_to_string(entry.path().join("ifindex"))
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok());
            if let Some(index) = index {
                let shared = self
                    .names
                    .iter()
                    .find(|(i, n)| *i == index && **n == *name)
                    .map_or_else(|| Arc::from(name.as_str()), |(_, n)| Arc::clone(n));
                fresh.push((index, shared));
            }
        }
        self.names = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_unknown_indexes_fall_back() {
        let mut names = IfNames::new(Arc::from("any"));
        // Loopback is interface 1 in every network namespace.
        let lo = Arc::clone(names.name(1));
        assert_eq!(&*lo, "lo");
        assert!(Arc::ptr_eq(&lo, names.name(1)), "the same Arc every time");
        assert_eq!(&**names.name(u32::MAX), "any");
        // A second unknown index within the second does not re-read the directory.
        let before = names.last_refresh;
        assert_eq!(&**names.name(u32::MAX - 1), "any");
        assert_eq!(names.last_refresh, before);
    }
}
