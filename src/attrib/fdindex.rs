//! The socket-inode-to-process index: which processes hold which sockets, from `/proc/*/fd`, kept between
//! lookups and refreshed incrementally.
//!
//! A lookup first asks the index. On a miss it refreshes in stages and stops as soon as the socket turns
//! up: the processes that owned the last flows (a browser opening its next connection); young processes
//! (listed in the last [`YOUNG`], a short-lived client) of the socket's uid; the other processes of that
//! uid; the other young ones; then, on a lookup's last try only and at most every
//! [`FULL_PASS_MIN_INTERVAL`], every process. An
//! index entry is only a hint: the caller verifies it on the pinned process before believing it.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::ProcessInfo;

/// Why a process could not be read as the holder of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderError {
    /// The process is gone.
    Gone,
    /// The process no longer holds the socket at that descriptor.
    NotHolding,
    /// Not allowed to read the process (another user's, without `CAP_SYS_PTRACE`).
    NoPermission,
}

/// The processes of the system (the OS seam of the index; `ProcFs` reads `/proc`).
pub trait ProcessSource {
    /// Every process id now, in no particular order.
    ///
    /// # Errors
    /// The process list cannot be read.
    fn pids(&mut self) -> io::Result<Vec<u32>>;

    /// The sockets `pid` holds, as (descriptor, socket inode).
    ///
    /// # Errors
    /// `PermissionDenied` when its descriptors may not be read; `NotFound` when it is gone.
    fn sockets(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>>;

    /// The uid that owns `pid` (for the scan order only).
    fn uid(&mut self, pid: u32) -> Option<u32>;

    /// Reads the process that holds socket `inode` at descriptor `fd`: pinned to one process instance (a
    /// reused pid cannot answer), checked to hold the socket before and after its details are read.
    ///
    /// # Errors
    /// It is gone, no longer holds the socket, or may not be read.
    fn read_holder(&mut self, pid: u32, fd: u32, inode: u64) -> Result<ProcessInfo, HolderError>;

    /// Clock ticks since boot now and ticks per second (`None` when unknown).
    fn now_ticks(&mut self) -> Option<(u64, u64)>;
}

/// The full pass over every process runs at most this often; a lookup that would need it sooner is
/// retried later instead.
pub const FULL_PASS_MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Recent owners rescanned first on a miss.
const RECENT_OWNERS: usize = 8;

/// A process first listed less than this long ago is "young": rescanned with the new ones on a miss, with
/// its uid read again, because a process that just started (often still in `setpriv`, `sudo` or a shell's
/// `exec` when first listed) is the likeliest to open a socket next, and may have changed its uid since.
pub const YOUNG: Duration = Duration::from_secs(2);

/// What the index knows of one process.
#[derive(Debug)]
struct PidEntry {
    uid: Option<u32>,
    inodes: Vec<u64>,
    first_listed: Instant,
}

impl Default for PidEntry {
    fn default() -> Self {
        Self {
            uid: None,
            inodes: Vec::new(),
            first_listed: Instant::now(),
        }
    }
}

/// The result of [`FdIndex::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    /// These (pid, descriptor) held the socket when last scanned.
    Found(Vec<(u32, u32)>),
    /// Not found; `denied` when some process could not be read, so it may be theirs.
    NotFound { denied: bool },
}

/// Work counters, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Processes whose descriptors were read.
    pub process_scans: u64,
    /// Listings of every process id.
    pub listings: u64,
    /// Full passes over every process.
    pub full_passes: u64,
}

/// The socket index (see the module docs).
#[derive(Debug, Default)]
pub struct FdIndex {
    holders: FxHashMap<u64, Vec<(u32, u32)>>,
    pids: FxHashMap<u32, PidEntry>,
    recent: VecDeque<u32>,
    last_full_pass: Option<Instant>,
    /// Work done so far.
    pub stats: IndexStats,
}

impl FdIndex {
    /// Who holds socket `inode` (owned by `uid`): from the index, else after refreshing it in stages. The
    /// full pass over every process (the last stage) runs only when `full_pass` allows it: callers allow it
    /// on their last try, so the common misses of one lookup cost the cheap stages only.
    pub fn find<P: ProcessSource>(
        &mut self,
        source: &mut P,
        inode: u64,
        uid: u32,
        full_pass: bool,
    ) -> Holders {
        if let Some(found) = self.holders.get(&inode).filter(|h| !h.is_empty()) {
            return Holders::Found(found.clone());
        }
        let mut scanned = FxHashSet::default();
        let mut denied = false;
        // 1. Recent owners.
        let recent: Vec<u32> = self.recent.iter().copied().collect();
        if self.scan_until(source, &recent, inode, &mut scanned, &mut denied) {
            return self.found(inode);
        }
        // 2. New and young processes, newest (highest pid) first.
        let Ok(mut now) = source.pids() else {
            return Holders::NotFound { denied };
        };
        self.stats.listings += 1;
        now.sort_unstable_by(|a, b| b.cmp(a));
        let alive: FxHashSet<u32> = now.iter().copied().collect();
        let gone: Vec<u32> = self.pids.keys().filter(|p| !alive.contains(p)).copied().collect();
        for pid in gone {
            self.remove_pid(pid);
        }
        let listed = Instant::now();
        let mut young = Vec::new();
        for &pid in &now {
            match self.pids.get_mut(&pid) {
                None => {
                    let uid = source.uid(pid);
                    self.pids.insert(
                        pid,
                        PidEntry {
                            uid,
                            inodes: Vec::new(),
                            first_listed: listed,
                        },
                    );
                    young.push(pid);
                }
                Some(entry) if listed.duration_since(entry.first_listed) < YOUNG => {
                    entry.uid = source.uid(pid);
                    young.push(pid);
                }
                Some(_) => {}
            }
        }
        // Young processes of the socket's user first: on a busy machine most young processes are someone
        // else's (compilers, shells), and each scan costs a readlink per descriptor.
        let of_user =
            |pids: &FxHashMap<u32, PidEntry>, pid: &u32| pids.get(pid).is_some_and(|e| e.uid == Some(uid));
        let (young_of_user, young_others): (Vec<u32>, Vec<u32>) =
            young.iter().partition(|pid| of_user(&self.pids, pid));
        if self.scan_until(source, &young_of_user, inode, &mut scanned, &mut denied) {
            return self.found(inode);
        }
        // 3. The other processes of the socket's user, then the other young ones.
        let same_user: Vec<u32> = now.iter().copied().filter(|p| of_user(&self.pids, p)).collect();
        if self.scan_until(source, &same_user, inode, &mut scanned, &mut denied)
            || self.scan_until(source, &young_others, inode, &mut scanned, &mut denied)
        {
            return self.found(inode);
        }
        // 4. Everyone else, rate-limited.
        if !full_pass
            || self
                .last_full_pass
                .is_some_and(|at| at.elapsed() < FULL_PASS_MIN_INTERVAL)
        {
            return Holders::NotFound { denied };
        }
        self.last_full_pass = Some(Instant::now());
        self.stats.full_passes += 1;
        if self.scan_until(source, &now, inode, &mut scanned, &mut denied) {
            return self.found(inode);
        }
        Holders::NotFound { denied }
    }

    /// Forgets that `pid` holds `inode` (its verification failed).
    pub fn forget(&mut self, pid: u32, inode: u64) {
        if let Some(list) = self.holders.get_mut(&inode) {
            list.retain(|(p, _)| *p != pid);
            if list.is_empty() {
                self.holders.remove(&inode);
            }
        }
    }

    /// Remembers `pid` as a recent owner, so the next miss looks there first.
    pub fn note_owner(&mut self, pid: u32) {
        if self.recent.front() == Some(&pid) {
            return;
        }
        self.recent.retain(|p| *p != pid);
        self.recent.push_front(pid);
        self.recent.truncate(RECENT_OWNERS);
    }

    /// Socket inodes indexed (for memory figures).
    #[must_use]
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// True when nothing is indexed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    fn found(&self, inode: u64) -> Holders {
        match self.holders.get(&inode) {
            Some(h) if !h.is_empty() => Holders::Found(h.clone()),
            _ => Holders::NotFound { denied: false },
        }
    }

    /// Scans each pid not scanned yet in this lookup; true as soon as `inode` is indexed.
    fn scan_until<P: ProcessSource>(
        &mut self,
        source: &mut P,
        pids: &[u32],
        inode: u64,
        scanned: &mut FxHashSet<u32>,
        denied: &mut bool,
    ) -> bool {
        for &pid in pids {
            if !scanned.insert(pid) {
                continue;
            }
            match self.scan(source, pid) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => *denied = true,
                Err(_) => self.remove_pid(pid),
            }
            if self.holders.get(&inode).is_some_and(|h| !h.is_empty()) {
                return true;
            }
        }
        false
    }

    /// Re-reads one process's sockets into the index.
    fn scan<P: ProcessSource>(&mut self, source: &mut P, pid: u32) -> io::Result<()> {
        self.stats.process_scans += 1;
        let sockets = source.sockets(pid)?;
        let entry = self.pids.entry(pid).or_default();
        let old = std::mem::take(&mut entry.inodes);
        entry.inodes = sockets.iter().map(|(_, inode)| *inode).collect();
        for inode in old {
            self.forget(pid, inode);
        }
        for (fd, inode) in sockets {
            let list = self.holders.entry(inode).or_default();
            if !list.iter().any(|(p, _)| *p == pid) {
                list.push((pid, fd));
            }
        }
        Ok(())
    }

    fn remove_pid(&mut self, pid: u32) {
        if let Some(entry) = self.pids.remove(&pid) {
            for inode in entry.inodes {
                self.forget(pid, inode);
            }
        }
        self.recent.retain(|p| *p != pid);
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A scripted process table for unit tests (the real `/proc` cannot be scripted).

    use super::*;

    /// One fake process.
    #[derive(Debug, Clone)]
    pub struct FakeProcess {
        pub uid: u32,
        pub exe: String,
        pub sockets: Vec<(u32, u64)>,
        pub start_ticks: u64,
        pub readable: bool,
    }

    /// A process table whose reads are counted.
    #[derive(Debug, Default)]
    pub struct FakeProcs {
        pub procs: std::collections::BTreeMap<u32, FakeProcess>,
        pub socket_reads: Vec<u32>,
        pub now_ticks: u64,
        /// Runs before `read_holder` answers (a process exits or passes its socket on meanwhile).
        pub before_read: Option<fn(&mut std::collections::BTreeMap<u32, FakeProcess>)>,
    }

    impl FakeProcs {
        pub fn add(&mut self, pid: u32, uid: u32, exe: &str, sockets: &[(u32, u64)]) {
            self.procs.insert(
                pid,
                FakeProcess {
                    uid,
                    exe: exe.into(),
                    sockets: sockets.to_vec(),
                    start_ticks: 100,
                    readable: true,
                },
            );
        }
    }

    impl ProcessSource for FakeProcs {
        fn pids(&mut self) -> io::Result<Vec<u32>> {
            Ok(self.procs.keys().copied().collect())
        }

        fn sockets(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>> {
            self.socket_reads.push(pid);
            match self.procs.get(&pid) {
                Some(p) if p.readable => Ok(p.sockets.clone()),
                Some(_) => Err(io::ErrorKind::PermissionDenied.into()),
                None => Err(io::ErrorKind::NotFound.into()),
            }
        }

        fn uid(&mut self, pid: u32) -> Option<u32> {
            self.procs.get(&pid).map(|p| p.uid)
        }

        fn read_holder(&mut self, pid: u32, fd: u32, inode: u64) -> Result<ProcessInfo, HolderError> {
            if let Some(hook) = self.before_read {
                hook(&mut self.procs);
            }
            let p = self.procs.get(&pid).ok_or(HolderError::Gone)?;
            if !p.readable {
                return Err(HolderError::NoPermission);
            }
            if !p.sockets.contains(&(fd, inode)) {
                return Err(HolderError::NotHolding);
            }
            Ok(ProcessInfo {
                pid,
                exe: p.exe.clone(),
                cmdline: vec![p.exe.clone()],
                start_ticks: p.start_ticks,
                unit: None,
                app: None,
            })
        }

        fn now_ticks(&mut self) -> Option<(u64, u64)> {
            Some((self.now_ticks, 100))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeProcs;
    use super::*;

    /// Makes every indexed process older than `YOUNG`.
    fn age(index: &mut FdIndex) {
        for entry in index.pids.values_mut() {
            entry.first_listed = Instant::now().checked_sub(YOUNG * 2).unwrap();
        }
    }

    #[test]
    fn young_processes_are_rescanned_with_their_uid_read_again() {
        let mut procs = FakeProcs::default();
        // Listed while still running as root (in `setpriv`), before it dropped to uid 65534 and opened
        // its socket.
        procs.add(30, 0, "/usr/bin/setpriv", &[]);
        let mut index = FdIndex::default();
        assert_eq!(
            index.find(&mut procs, 5, 0, true),
            Holders::NotFound { denied: false }
        );
        let p = procs.procs.get_mut(&30).unwrap();
        p.uid = 65_534;
        p.sockets.push((3, 77));
        procs.socket_reads.clear();
        assert_eq!(
            index.find(&mut procs, 77, 65_534, true),
            Holders::Found(vec![(30, 3)])
        );
        assert_eq!(procs.socket_reads, vec![30]);
        assert_eq!(index.pids.get(&30).and_then(|e| e.uid), Some(65_534));
    }

    #[test]
    fn a_miss_scans_new_processes_first_and_a_hit_scans_nothing() {
        let mut procs = FakeProcs::default();
        for pid in 1..=50 {
            procs.add(pid, 0, "/usr/sbin/daemon", &[(3, 1000 + u64::from(pid))]);
        }
        let mut index = FdIndex::default();
        // The first lookup indexes everything it scans.
        assert_eq!(
            index.find(&mut procs, 1007, 0, true),
            Holders::Found(vec![(7, 3)])
        );
        age(&mut index);
        procs.socket_reads.clear();
        // A new short-lived client: found among the new processes, without rescanning the 50 others.
        procs.add(900, 1000, "/tmp/client", &[(5, 77)]);
        assert_eq!(
            index.find(&mut procs, 77, 1000, true),
            Holders::Found(vec![(900, 5)])
        );
        assert_eq!(procs.socket_reads, vec![900]);
        procs.socket_reads.clear();
        assert_eq!(
            index.find(&mut procs, 77, 1000, true),
            Holders::Found(vec![(900, 5)])
        );
        assert!(procs.socket_reads.is_empty(), "a hit reads nothing");
    }

    #[test]
    fn a_known_process_opening_a_new_socket_is_found_through_recent_owners_or_its_uid() {
        let mut procs = FakeProcs::default();
        for pid in 1..=30 {
            procs.add(pid, 0, "/usr/sbin/daemon", &[(3, 1000 + u64::from(pid))]);
        }
        procs.add(40, 1000, "/usr/bin/browser", &[(10, 1)]);
        let mut index = FdIndex::default();
        assert!(matches!(index.find(&mut procs, 1, 1000, true), Holders::Found(_)));
        age(&mut index);
        index.note_owner(40);
        procs.procs.get_mut(&40).unwrap().sockets.push((11, 2));
        procs.socket_reads.clear();
        assert_eq!(
            index.find(&mut procs, 2, 1000, true),
            Holders::Found(vec![(40, 11)])
        );
        assert_eq!(procs.socket_reads, vec![40], "the recent owner is asked first");
        // Without the hint, the uid narrows the rescan to the one process of that user.
        let mut index = FdIndex::default();
        index.find(&mut procs, 1, 1000, true);
        age(&mut index);
        procs.procs.get_mut(&40).unwrap().sockets.push((12, 3));
        procs.socket_reads.clear();
        assert_eq!(
            index.find(&mut procs, 3, 1000, true),
            Holders::Found(vec![(40, 12)])
        );
        assert_eq!(procs.socket_reads, vec![40]);
    }

    #[test]
    fn unreadable_processes_are_reported_and_full_passes_are_rate_limited() {
        let mut procs = FakeProcs::default();
        procs.add(5, 1001, "/usr/bin/other", &[(3, 9)]);
        procs.procs.get_mut(&5).unwrap().readable = false;
        let mut index = FdIndex::default();
        assert_eq!(
            index.find(&mut procs, 9, 1001, true),
            Holders::NotFound { denied: true }
        );
        assert_eq!(index.stats.full_passes, 1);
        age(&mut index);
        // A socket nobody holds: no second full pass right away.
        assert_eq!(
            index.find(&mut procs, 404, 0, true),
            Holders::NotFound { denied: false }
        );
        assert_eq!(index.stats.full_passes, 1);
        index.find(&mut procs, 405, 0, true);
        assert_eq!(index.stats.full_passes, 1);
    }

    #[test]
    fn exited_processes_leave_the_index() {
        let mut procs = FakeProcs::default();
        procs.add(5, 0, "/bin/a", &[(3, 9)]);
        let mut index = FdIndex::default();
        assert!(matches!(index.find(&mut procs, 9, 0, true), Holders::Found(_)));
        procs.procs.remove(&5);
        procs.add(6, 0, "/bin/b", &[(3, 10)]);
        assert!(matches!(index.find(&mut procs, 10, 0, true), Holders::Found(_)));
        assert!(!index.holders.contains_key(&9), "pid 5 left with its socket");
    }
}
