//! The state directory shared by every netwarden process of a user (or of the system, as root): the block
//! list, the ban history, the kernel rules in force and a change waiting for confirmation, plus the lock that
//! serialises the processes.
//!
//! Every change to the list or the kernel runs as one sequence under an exclusive `flock` on `DIR/lock`:
//! take the lock, re-read what changed on disk, change the kernel, save, release. So a `netwarden block` from
//! a script, the desktop app and `run --enforce` can work at once and each sees the others' changes. The
//! kernel drops a `flock` when its holder dies, so a killed process never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::confirm::PendingChange;
use super::iptables::KernelRule;
use crate::blocklist::{
    BLOCKLIST_FILE, BanHistory, BlockList, BlocklistError, HISTORY_FILE, parse_ron, read_optional,
    to_ron_text, write_atomic,
};

/// File name of the kernel rules in force (`enforce: true` rules), inside the state directory.
pub const KERNEL_RULES_FILE: &str = "kernel-rules.ron";
/// File name of the change waiting for confirmation, inside the state directory.
pub const PENDING_FILE: &str = "pending.ron";
/// File name of the lock, inside the state directory.
pub const LOCK_FILE: &str = "lock";

/// Errors of the state directory's lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file cannot be created or opened.
    #[error("cannot open the lock {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process held the lock for the whole wait.
    #[error(
        "another netwarden process{holder} has held the state directory lock {} for {waited:?}; try again \
         when it has finished",
        path.display()
    )]
    Busy {
        path: PathBuf,
        waited: Duration,
        /// ` (pid N)` when the holder wrote its pid, else empty.
        holder: String,
    },
}

/// An exclusive or shared hold on the state directory; released on drop (and by the kernel if the
/// process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock of `dir`, waiting at most `wait`. Exclusive for changes, shared for reading. The
    /// directory is created when missing. A shared lock on a directory this user cannot write (a normal
    /// user reading root's list) is skipped: `Ok(None)`.
    ///
    /// # Errors
    /// `Open` when the lock file cannot be opened; `Busy` after `wait` without getting it.
    pub fn acquire(dir: &Path, exclusive: bool, wait: Duration) -> Result<Option<Self>, LockError> {
        let path = dir.join(LOCK_FILE);
        let open = || {
            std::fs::create_dir_all(dir)?;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        let mut file = match open() {
            Ok(file) => {
                if crate::blocklist::is_group_shared(dir) {
                    // Every member of the group must be able to take it; only the owner can set this.
                    use std::os::unix::fs::PermissionsExt as _;
                    file.set_permissions(std::fs::Permissions::from_mode(0o660)).ok();
                }
                file
            }
            Err(err) if !exclusive && err.kind() == std::io::ErrorKind::PermissionDenied => {
                match File::open(&path) {
                    Ok(file) => file,
                    Err(_) => return Ok(None),
                }
            }
            Err(source) => return Err(LockError::Open { path, source }),
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let attempt = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match attempt {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<u32>().ok())
                        .map_or_else(String::new, |pid| format!(" (pid {pid})"));
                    return Err(LockError::Busy {
                        path,
                        waited: start.elapsed(),
                        holder,
                    });
                }
                Err(TryLockError::Error(source)) => return Err(LockError::Open { path, source }),
            }
        }
        if exclusive {
            // Who holds it, for the message of a process that waits too long. Only informative.
            file.set_len(0).ok();
            write!(file, "{}", std::process::id()).ok();
        }
        Ok(Some(Self { _file: file }))
    }
}

/// Identity of a file version: a save is a rename of a new file, so inode, size and time change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_nanos: i128,
}

impl Stamp {
    /// `None` when the file does not exist (or cannot be read: loading it reports why).
    fn of(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self {
            ino: m.ino(),
            len: m.len(),
            mtime_nanos: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// The kernel rules in force, as saved (`kernel-rules.ron`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RulesFile {
    rules: Vec<KernelRule>,
}

/// Everything the state directory holds, as last read or written by this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The block list.
    pub list: BlockList,
    /// The ban history.
    pub history: BanHistory,
    /// The `enforce: true` rules in the kernel.
    pub rules: Vec<KernelRule>,
    /// A change waiting for confirmation.
    pub pending: Option<PendingChange>,
}

/// Reads and writes `Stored` in a state directory, re-reading only the files another process changed.
#[derive(Debug, Clone)]
pub struct StateFiles {
    dir: PathBuf,
    history_capacity: usize,
    stamps: [Option<Stamp>; 4],
    /// What the files hold, as this process last read or wrote them: a save serialises and writes only
    /// the parts that differ (serialising a 10,000-entry list and history is most of a command's time,
    /// and a write is a temp file, an fsync and a rename).
    on_disk: Stored,
}

impl StateFiles {
    /// The files of `dir` (nothing is read yet).
    #[must_use]
    pub fn new(dir: PathBuf, history_capacity: usize) -> Self {
        Self {
            dir,
            history_capacity,
            stamps: [None; 4],
            on_disk: Stored::default(),
        }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self) -> [PathBuf; 4] {
        [
            self.dir.join(BLOCKLIST_FILE),
            self.dir.join(HISTORY_FILE),
            self.dir.join(KERNEL_RULES_FILE),
            self.dir.join(PENDING_FILE),
        ]
    }

    /// True when a file changed on disk since this process last read or wrote it.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.paths()
            .iter()
            .zip(&self.stamps)
            .any(|(path, stamp)| Stamp::of(path) != *stamp)
    }

    /// Re-reads into `stored` every file that changed since the last read or write (all of them the first
    /// time). Returns whether anything was re-read.
    ///
    /// # Errors
    /// A file cannot be read or is broken (with path, line and column); `stored` keeps what it had.
    pub fn reload(&mut self, stored: &mut Stored) -> Result<bool, BlocklistError> {
        let paths = self.paths();
        let now: Vec<Option<Stamp>> = paths.iter().map(|p| Stamp::of(p)).collect();
        let mut any = false;
        for (index, path) in paths.iter().enumerate() {
            let (Some(current), Some(stamp)) = (now.get(index), self.stamps.get_mut(index)) else {
                continue;
            };
            if *current == *stamp && stamp.is_some() {
                continue;
            }
            match index {
                0 => {
                    stored.list = BlockList::load(path)?;
                    self.on_disk.list = stored.list.clone();
                }
                1 => {
                    stored.history = BanHistory::load(path, self.history_capacity)?;
                    self.on_disk.history = stored.history.clone();
                }
                2 => {
                    stored.rules = match read_optional(path)? {
                        Some(text) => parse_ron::<RulesFile>(path, &text)?.rules,
                        None => Vec::new(),
                    };
                    self.on_disk.rules = stored.rules.clone();
                }
                _ => {
                    stored.pending = match read_optional(path)? {
                        Some(text) => parse_ron::<Option<PendingChange>>(path, &text)?,
                        None => None,
                    };
                    self.on_disk.pending = stored.pending.clone();
                }
            }
            *stamp = *current;
            any = true;
        }
        Ok(any)
    }

    /// Saves every part of `stored` atomically (a temp file renamed over the old one) and remembers the
    /// new versions, so this process does not re-read its own writes.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn save(&mut self, stored: &Stored) -> Result<(), BlocklistError> {
        let [list, history, rules, pending] = self.paths();
        // A part is written when it differs from what this process knows the file holds, or the file is
        // missing or was replaced by another process since.
        let stale = |index: usize, path: &Path, same: bool, stamps: &[Option<Stamp>; 4]| {
            !same
                || stamps.get(index).copied().flatten().is_none()
                || stamps.get(index).copied().flatten() != Stamp::of(path)
        };
        if stale(0, &list, stored.list == self.on_disk.list, &self.stamps) {
            write_atomic(&list, &stored.list.to_ron_text(&list)?)?;
            self.on_disk.list = stored.list.clone();
            self.stamps[0] = Stamp::of(&list);
        }
        if stale(1, &history, stored.history == self.on_disk.history, &self.stamps) {
            write_atomic(&history, &stored.history.to_ron_text(&history)?)?;
            self.on_disk.history = stored.history.clone();
            self.stamps[1] = Stamp::of(&history);
        }
        if stale(2, &rules, stored.rules == self.on_disk.rules, &self.stamps) {
            let file = RulesFile {
                rules: stored.rules.clone(),
            };
            write_atomic(&rules, &to_ron_text(&rules, &file)?)?;
            self.on_disk.rules = stored.rules.clone();
            self.stamps[2] = Stamp::of(&rules);
        }
        if stale(3, &pending, stored.pending == self.on_disk.pending, &self.stamps) {
            write_atomic(&pending, &to_ron_text(&pending, &stored.pending)?)?;
            self.on_disk.pending = stored.pending.clone();
            self.stamps[3] = Stamp::of(&pending);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::blocklist::{BlockEntry, parse_net};

    #[test]
    fn reload_reads_only_what_another_process_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut mine = StateFiles::new(dir.path().to_owned(), 100);
        let mut stored = Stored::default();
        assert!(mine.reload(&mut stored).unwrap(), "first read");
        assert!(!mine.changed());
        stored.list.insert(BlockEntry::new(
            parse_net("192.0.2.1").unwrap(),
            "x",
            Utc::now(),
            None,
        ));
        mine.save(&stored).unwrap();
        assert!(!mine.changed(), "our own write is not news");
        assert!(!mine.reload(&mut stored).unwrap());

        let mut theirs = StateFiles::new(dir.path().to_owned(), 100);
        let mut other = Stored::default();
        theirs.reload(&mut other).unwrap();
        assert_eq!(other.list.len(), 1);
        other.list.insert(BlockEntry::new(
            parse_net("192.0.2.2").unwrap(),
            "y",
            Utc::now(),
            None,
        ));
        theirs.save(&other).unwrap();
        assert!(mine.changed());
        assert!(mine.reload(&mut stored).unwrap());
        assert_eq!(stored.list.len(), 2);
    }

    #[test]
    fn a_broken_file_is_an_error_and_keeps_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = StateFiles::new(dir.path().to_owned(), 100);
        let mut stored = Stored::default();
        stored.list.insert(BlockEntry::new(
            parse_net("192.0.2.1").unwrap(),
            "x",
            Utc::now(),
            None,
        ));
        std::fs::write(dir.path().join(KERNEL_RULES_FILE), "(rules: [oops").unwrap();
        let err = files.reload(&mut stored).unwrap_err();
        assert!(err.to_string().contains(KERNEL_RULES_FILE), "{err}");
    }

    #[test]
    fn exclusive_lock_waits_then_reports_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = StateLock::acquire(dir.path(), true, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let err = StateLock::acquire(dir.path(), true, Duration::from_millis(50)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        assert!(matches!(
            StateLock::acquire(dir.path(), false, Duration::from_millis(20)),
            Err(LockError::Busy { .. })
        ));
        drop(held);
        let shared = StateLock::acquire(dir.path(), false, Duration::from_millis(50)).unwrap();
        assert!(shared.is_some());
        assert!(
            StateLock::acquire(dir.path(), false, Duration::from_millis(50))
                .unwrap()
                .is_some(),
            "readers share"
        );
    }
}
