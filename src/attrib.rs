//! Attribution: which program and user a flow belongs to.
//!
//! On the first packet of a new flow the capture thread hands the flow to the "attrib" thread
//! ([`Attributor`]) and goes on; nothing else of attribution runs per packet. That thread:
//! 1. finds the owning socket by the flow's exact 5-tuple through netlink `sock_diag` (`INET_DIAG`, TCP and
//!    UDP, IPv4 and IPv6), falling back to `/proc/net/{tcp,udp,tcp6,udp6}` when netlink is not available:
//!    the socket's uid and inode ([`socket`]);
//! 2. maps the inode to a process through a cached index of `/proc/*/fd`, refreshed incrementally on a miss
//!    (recent owners, new processes and the socket's uid first; never a full rescan per packet) ([`fdindex`]);
//! 3. pins that process (an open `/proc/PID` directory, so a reused PID cannot answer), checks it holds the
//!    socket, reads its executable, command line, start time and `/proc/PID/cgroup` (systemd unit, Flatpak
//!    or Snap app), and checks again that it still holds the socket ([`procfs_source`]);
//! 4. fills in [`crate::flows::Flow::attribution`] once.
//!
//! Wrong is worse than unknown: a flow whose socket or process is gone is retried briefly and then says
//! `unknown (exited)`; one whose process cannot be read says `unknown (no permission)` (its user is still
//! known from the socket); traffic of no address of this host (another network namespace) says so; a UDP
//! socket found only by its local port (unconnected) is not trusted when its process started after the
//! packet. A replayed file says `(offline)`.
//!
//! The OS sits behind two traits ([`socket::SocketLookup`], [`fdindex::ProcessSource`]) so
//! [`resolve::Resolver`] is unit-tested without it.

pub mod cgroup;
pub mod fdindex;
pub mod procfs_source;
pub mod resolve;
pub mod socket;
pub mod users;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use crate::flows::Flow;
use crate::rules::Owner;
use resolve::{Query, Resolver, Step};

/// A sandboxed desktop app the process runs in, from its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum App {
    /// A Flatpak app id (`org.mozilla.firefox`).
    Flatpak(String),
    /// A Snap name (`firefox`).
    Snap(String),
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flatpak(id) => write!(f, "flatpak:{id}"),
            Self::Snap(name) => write!(f, "snap:{name}"),
        }
    }
}

/// The process behind a flow, as read from `/proc/PID` while it held the flow's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The executable's path (`/proc/PID/exe`; ends in ` (deleted)` when the file was replaced).
    pub exe: String,
    /// The command line, one entry per argument.
    pub cmdline: Vec<String>,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// The systemd unit (`sshd.service`, `session-2.scope`), from `/proc/PID/cgroup`.
    pub unit: Option<String>,
    /// The Flatpak or Snap app, from the cgroup.
    pub app: Option<App>,
}

impl ProcessInfo {
    /// The executable's file name (`curl`).
    #[must_use]
    pub fn name(&self) -> &str {
        let path = self.exe.strip_suffix(" (deleted)").unwrap_or(&self.exe);
        path.rsplit('/').next().unwrap_or(path)
    }

    /// The command line as one string, arguments separated by spaces.
    #[must_use]
    pub fn command_line(&self) -> String {
        self.cmdline.join(" ")
    }
}

/// A user: the uid, and the name when the system knows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    pub uid: u32,
    pub name: Option<Arc<str>>,
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.uid),
        }
    }
}

/// Why a flow has no program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnknownReason {
    /// The socket or the process was gone before the lookup (retried briefly first).
    Exited,
    /// The socket's process could not be read (another user's process without `CAP_SYS_PTRACE`).
    NoPermission,
    /// Neither address is this host's: the socket lives in another network namespace or host.
    OtherNamespace,
    /// Inbound traffic no socket takes (a closed port: the kernel answers it).
    NoSocket,
    /// Not TCP or UDP: there is no socket to look up.
    NotTcpUdp,
    /// The attribution thread's queue was full.
    Busy,
}

impl UnknownReason {
    /// The words in parentheses after `unknown`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::NoPermission => "no permission",
            Self::OtherNamespace => "other namespace",
            Self::NoSocket => "no socket",
            Self::NotTcpUdp => "not tcp/udp",
            Self::Busy => "busy",
        }
    }
}

/// The program and user behind a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// Found and verified: the process held the flow's socket when it was read.
    Process {
        process: Arc<ProcessInfo>,
        /// The socket's owner (what iptables' `--uid-owner` matches too).
        user: UserId,
    },
    /// No program; the user when the socket was found.
    Unknown {
        reason: UnknownReason,
        user: Option<UserId>,
    },
    /// Replayed from a file: the sockets are long gone.
    Offline,
}

/// The attribution of every event of a replayed file.
pub static OFFLINE: Attribution = Attribution::Offline;

impl Attribution {
    /// The process, when known.
    #[must_use]
    pub fn process(&self) -> Option<&ProcessInfo> {
        match self {
            Self::Process { process, .. } => Some(process),
            _ => None,
        }
    }

    /// The user, when known.
    #[must_use]
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::Process { user, .. } => Some(user),
            Self::Unknown { user, .. } => user.as_ref(),
            Self::Offline => None,
        }
    }

    /// What the rule matcher sees.
    #[must_use]
    pub fn owner(&self) -> Owner<'_> {
        Owner {
            program: self.process().map(|p| p.exe.as_str()),
            uid: self.user().map(|u| u.uid),
            unit: self.process().and_then(|p| p.unit.as_deref()),
        }
    }

    /// The program column: the executable's path, `unknown (REASON)` or `(offline)`.
    #[must_use]
    pub fn program_label(&self) -> Cow<'_, str> {
        match self {
            Self::Process { process, .. } => Cow::Borrowed(&process.exe),
            Self::Unknown { reason, .. } => Cow::Owned(format!("unknown ({})", reason.name())),
            Self::Offline => Cow::Borrowed("(offline)"),
        }
    }
}

/// True when this process may read other users' `/proc/PID/fd` and `/proc/PID/exe` (root, or
/// `CAP_SYS_PTRACE` in its effective set: the kernel checks those links with a ptrace read-access check,
/// which `CAP_DAC_READ_SEARCH` does not pass). Without it only this user's programs are named; the others
/// say `unknown (no permission)`, with their user still known from the socket.
#[must_use]
pub fn can_read_other_users_processes() -> bool {
    caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_PTRACE).unwrap_or(false)
}

/// The sentence a front end shows when [`can_read_other_users_processes`] is false.
pub const NO_PTRACE_NOTICE: &str = "without CAP_SYS_PTRACE, other users' programs show as \
     `unknown (no permission)` (their user is still shown); see README: Privileges";

/// The program column of a flow whose lookup has not finished.
pub const PENDING_LABEL: &str = "unknown (pending)";

/// Counters of the attribution thread, readable while it runs.
#[derive(Debug, Default)]
pub struct AttribStats {
    /// Flows that got a program.
    pub known: AtomicU64,
    /// Flows that ended unknown.
    pub unknown: AtomicU64,
    /// Lookups tried again because the socket or process was not found yet.
    pub retries: AtomicU64,
}

/// How the attribution thread retries a flow whose socket or process it did not find: after each delay in
/// turn, then gives up (`unknown (exited)`).
pub const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_millis(5),
    Duration::from_millis(15),
    Duration::from_millis(40),
    Duration::from_millis(100),
];

/// New flows the attribution thread queues at most; past that a flow says `unknown (busy)`.
pub const QUEUE_FLOWS: usize = 8_192;

/// The attribution thread ("attrib"): takes new flows from the capture thread, fills in their attribution.
/// Dropping it (or [`Attributor::finish`]) closes the queue and joins the thread.
pub struct Attributor {
    tx: Option<Sender<Arc<Flow>>>,
    thread: Option<JoinHandle<()>>,
    /// Counters, for statistics and tests.
    pub stats: Arc<AttribStats>,
}

impl Attributor {
    /// Starts the thread over the real system: netlink `sock_diag` (or `/proc/net`) and `/proc`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn system() -> std::io::Result<Self> {
        let sockets = socket::SystemSockets::open();
        let processes = procfs_source::ProcFs::new();
        Self::start(Resolver::new(sockets, processes))
    }

    /// Starts the thread over any socket and process source (tests use fakes).
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start<S, P>(resolver: Resolver<S, P>) -> std::io::Result<Self>
    where
        S: socket::SocketLookup + Send + 'static,
        P: fdindex::ProcessSource + Send + 'static,
    {
        let (tx, rx) = bounded::<Arc<Flow>>(QUEUE_FLOWS);
        let stats = Arc::new(AttribStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("attrib".into())
            .spawn(move || run(resolver, &rx, &thread_stats))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// Queues a new flow without waiting. A full queue marks the flow `unknown (busy)` and returns false.
    pub fn submit(&self, flow: Arc<Flow>) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(flow) {
            Ok(()) => true,
            Err(TrySendError::Full(flow) | TrySendError::Disconnected(flow)) => {
                flow.set_attribution(Attribution::Unknown {
                    reason: UnknownReason::Busy,
                    user: None,
                });
                false
            }
        }
    }

    /// Closes the queue and waits for the thread (flows still queued are finished first).
    pub fn finish(mut self) {
        self.close();
    }

    fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

impl Drop for Attributor {
    fn drop(&mut self) {
        self.close();
    }
}

/// A flow waiting for its next try.
struct Waiting {
    flow: Arc<Flow>,
    query: Query,
    /// The socket, once found (a retry then only looks for its process).
    socket: Option<socket::SocketMatch>,
    attempt: usize,
    due: Instant,
}

/// New flows taken from the queue at once: their sockets are looked up first, all of them, before any
/// process is, because a socket vanishes when its short-lived process exits while the slower process
/// lookups of the batch share one index refresh.
const BATCH_FLOWS: usize = 256;

/// The thread's loop: new flows first (their process may be about to exit), then retries that are due.
fn run<S: socket::SocketLookup, P: fdindex::ProcessSource>(
    mut resolver: Resolver<S, P>,
    rx: &Receiver<Arc<Flow>>,
    stats: &AttribStats,
) {
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut open = true;
    let mut batch: Vec<Arc<Flow>> = Vec::with_capacity(BATCH_FLOWS);
    while open || !waiting.is_empty() {
        let timeout = waiting.front().map_or(Duration::from_millis(200), |w| {
            w.due.saturating_duration_since(Instant::now())
        });
        match rx.recv_timeout(timeout) {
            Ok(flow) => {
                batch.push(flow);
                batch.extend(rx.try_iter().take(BATCH_FLOWS - 1));
                let mut found = Vec::with_capacity(batch.len());
                for flow in batch.drain(..) {
                    let query = Query::of(&flow);
                    match resolver.socket_of(&query, false) {
                        Ok(socket) => found.push((flow, query, socket)),
                        Err(step) => settle(step, flow, query, None, 0, &mut waiting, stats),
                    }
                }
                for (flow, query, socket) in found {
                    let step = resolver.owner_of(&query, socket, false);
                    settle(step, flow, query, Some(socket), 0, &mut waiting, stats);
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                open = false;
                if let Some(w) = waiting.front() {
                    std::thread::sleep(w.due.saturating_duration_since(Instant::now()));
                }
            }
        }
        let now = Instant::now();
        while waiting.front().is_some_and(|w| w.due <= now) {
            let Some(w) = waiting.pop_front() else { break };
            let last = w.attempt >= RETRY_DELAYS.len();
            let (step, socket) = match w.socket {
                Some(socket) => (resolver.owner_of(&w.query, socket, last), Some(socket)),
                None => match resolver.socket_of(&w.query, last) {
                    Ok(socket) => (resolver.owner_of(&w.query, socket, last), Some(socket)),
                    Err(step) => (step, None),
                },
            };
            settle(step, w.flow, w.query, socket, w.attempt, &mut waiting, stats);
        }
    }
}

/// Sets a final answer on the flow, or queues its next try.
fn settle(
    step: Step,
    flow: Arc<Flow>,
    query: Query,
    socket: Option<socket::SocketMatch>,
    attempt: usize,
    waiting: &mut VecDeque<Waiting>,
    stats: &AttribStats,
) {
    match step {
        Step::Done(attribution) => {
            let counter = if attribution.process().is_some() {
                &stats.known
            } else {
                &stats.unknown
            };
            counter.fetch_add(1, Ordering::Relaxed);
            flow.set_attribution(attribution);
        }
        Step::Retry => {
            stats.retries.fetch_add(1, Ordering::Relaxed);
            let delay = RETRY_DELAYS.get(attempt).copied().unwrap_or_default();
            let due = Instant::now() + delay;
            // Keep the queue ordered by due time.
            let at = waiting.partition_point(|w| w.due <= due);
            waiting.insert(
                at,
                Waiting {
                    flow,
                    query,
                    socket,
                    attempt: attempt + 1,
                    due,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let process = Arc::new(ProcessInfo {
            pid: 7,
            exe: "/usr/bin/curl (deleted)".into(),
            cmdline: vec!["curl".into(), "-s".into()],
            start_ticks: 1,
            unit: None,
            app: None,
        });
        assert_eq!(process.name(), "curl");
        assert_eq!(process.command_line(), "curl -s");
        let known = Attribution::Process {
            process,
            user: UserId {
                uid: 1000,
                name: Some(Arc::from("alice")),
            },
        };
        assert_eq!(known.program_label(), "/usr/bin/curl (deleted)");
        assert_eq!(known.owner().uid, Some(1000));
        let gone = Attribution::Unknown {
            reason: UnknownReason::Exited,
            user: Some(UserId { uid: 5, name: None }),
        };
        assert_eq!(gone.program_label(), "unknown (exited)");
        assert_eq!(gone.owner().program, None);
        assert_eq!(gone.user().map(ToString::to_string).as_deref(), Some("5"));
        assert_eq!(OFFLINE.program_label(), "(offline)");
        assert_eq!(App::Flatpak("org.x.Y".into()).to_string(), "flatpak:org.x.Y");
    }
}
