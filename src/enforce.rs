//! Kernel enforcement of the block list and of `enforce: true` rules, with iptables/ip6tables and ipset.
//!
//! Everything of ours lives in our own chains (`NETWARDEN`, `NETWARDEN-IN`, `NETWARDEN-OUT` in `filter`)
//! and two ipset sets (`netwarden4`, `netwarden6`); rules of other tools are never touched. Changes are
//! batches: `iptables-restore --noflush -w N` (one transaction) and `ipset restore -exist`. Scripts are
//! built by pure functions (`iptables`, `ipset`, `reconcile`); a `CommandRunner` executes them. The
//! `Enforcer` ties the block list, its persistence in the state directory (`state`) and the runner together;
//! it is safe to share between threads and between processes (every change holds the state directory's
//! lock). The `guard` is the one owner of the kernel inside a long-running process (the app,
//! `run --enforce`): its thread runs the jobs, the timers, auto-block and drift repair.
//!
//! ```no_run
//! use std::sync::Arc;
//! use netwarden::enforce::{BlockRequest, EnforceConfig, Enforcer, runner::SystemRunner};
//! let enforcer = Enforcer::open(Arc::new(SystemRunner::new()), EnforceConfig::default())?;
//! enforcer.block(BlockRequest::parse("192.0.2.7", "port scan", None, false)?)?;
//! # Ok::<(), netwarden::enforce::EnforceError>(())
//! ```

pub mod autoblock;
pub mod confirm;
pub mod guard;
pub mod ipset;
pub mod iptables;
pub mod protect;
pub mod reconcile;
pub mod runner;
pub mod state;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use serde::{Deserialize, Serialize};

use crate::blocklist::{BanHistory, BlockEntry, BlockList, BlocklistError, EntryState, LiftReason};
pub use confirm::{PendingChange, RiskyChange};
pub use iptables::{Backend, KernelRule, RuleDirection};
pub use protect::Protected;
use runner::{Cmd, CommandRunner};
use state::{StateFiles, StateLock, Stored};

/// Errors of enforcement. Command failures keep the command line and its stderr.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// A command exited non-zero.
    #[error("`{command}` failed (exit {}): {stderr}", status.map_or_else(|| "signal".to_owned(), |s| s.to_string()))]
    Command {
        command: String,
        status: Option<i32>,
        stderr: String,
    },
    /// A command ran past its timeout and was killed.
    #[error("`{command}` timed out after {after:?} and was killed")]
    Timeout { command: String, after: Duration },
    /// The program is not installed (or not in `PATH`).
    #[error("`{program}` is not installed or not in PATH")]
    Missing { program: String },
    /// Starting or waiting for a command failed.
    #[error("`{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// No root / `CAP_NET_ADMIN`; `missing` says what and how to get it.
    #[error("not permitted: {missing}")]
    NotPermitted { missing: String },
    /// The input is not an address or network we accept.
    #[error("bad address `{input}`: {reason}")]
    BadAddress { input: String, reason: String },
    /// Blocking this would cut the user off; needs `force`.
    #[error("refusing to block {addr}: it covers the {why} (use --force to block anyway)")]
    Refused { addr: IpNet, why: String },
    /// A kernel rule cannot be expressed.
    #[error("rule `{name}`: {reason}")]
    BadRule { name: String, reason: String },
    /// iptables is missing: the app runs in monitor-only mode.
    #[error("monitor-only mode: {reason}")]
    MonitorOnly { reason: String },
    /// One entry of a batch failed; nothing of the batch was applied.
    #[error("batch entry {entry} failed, nothing applied: {source}")]
    BatchEntry {
        entry: String,
        #[source]
        source: Box<EnforceError>,
    },
    /// Loading or saving the block list or history failed.
    #[error(transparent)]
    State(#[from] BlocklistError),
    /// The state directory's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] state::LockError),
    /// Another change that could cut the user off waits for confirmation; one at a time.
    #[error(
        "another change waits for confirmation ({what}); keep it (`netwarden confirm`, or \"Keep this \
         change\" in the app) or let it be undone first"
    )]
    PendingExists { what: String },
}

/// Result alias of this module.
pub type Result<T, E = EnforceError> = std::result::Result<T, E>;

/// IPv4 or IPv6: picks the tool (`iptables`/`ip6tables`) and the set (`netwarden4`/`netwarden6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families.
    pub const ALL: [Self; 2] = [Self::V4, Self::V6];

    /// The family of a network.
    #[must_use]
    pub fn of(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => Self::V4,
            IpNet::V6(_) => Self::V6,
        }
    }

    /// `iptables` or `ip6tables`.
    #[must_use]
    pub fn iptables(self) -> &'static str {
        match self {
            Self::V4 => "iptables",
            Self::V6 => "ip6tables",
        }
    }

    /// `iptables-restore` or `ip6tables-restore`.
    #[must_use]
    pub fn restore(self) -> &'static str {
        match self {
            Self::V4 => "iptables-restore",
            Self::V6 => "ip6tables-restore",
        }
    }

    /// `iptables-save` or `ip6tables-save`.
    #[must_use]
    pub fn save(self) -> &'static str {
        match self {
            Self::V4 => "iptables-save",
            Self::V6 => "ip6tables-save",
        }
    }

    /// Our ipset set for this family.
    #[must_use]
    pub fn set_name(self) -> &'static str {
        match self {
            Self::V4 => "netwarden4",
            Self::V6 => "netwarden6",
        }
    }

    /// The ipset `family` keyword.
    #[must_use]
    pub fn ipset_family(self) -> &'static str {
        match self {
            Self::V4 => "inet",
            Self::V6 => "inet6",
        }
    }
}

/// A validated request to block one address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRequest {
    /// What to block (normalised: `blocklist::normalize_net`).
    pub net: IpNet,
    /// Why (shown in the list and the history).
    pub reason: String,
    /// How long; `None` = until removed.
    pub duration: Option<Duration>,
    /// Block even a protected address (loopback, own, gateway, SSH peer), and shorten an existing ban.
    pub force: bool,
    /// What to change when the network is already blocked (nothing by default).
    #[serde(default)]
    pub update: Update,
}

/// What a block request may change on an entry that is already on the list. By default nothing: blocking
/// again says "already blocked". A ban is never shortened without `force`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Replace the reason.
    pub reason: bool,
    /// Set the expiry from the request's duration (a longer ban, or with `force` a shorter one).
    pub expiry: bool,
}

impl BlockRequest {
    /// Parses `addr` (IP or CIDR) into a request that changes nothing on an existing entry.
    ///
    /// # Errors
    /// `BadAddress` when `addr` is not an address or network.
    pub fn parse(addr: &str, reason: &str, duration: Option<Duration>, force: bool) -> Result<Self> {
        Ok(Self {
            net: parse_addr(addr)?,
            reason: reason.to_owned(),
            duration,
            force,
            update: Update::default(),
        })
    }

    /// The same request, changing what `update` names on an existing entry.
    #[must_use]
    pub fn with_update(mut self, update: Update) -> Self {
        self.update = update;
        self
    }
}

/// Parses an IP or CIDR typed by a user, as `EnforceError::BadAddress` on failure.
///
/// # Errors
/// `BadAddress` with the input and the reason.
pub fn parse_addr(addr: &str) -> Result<IpNet> {
    crate::blocklist::parse_net(addr).map_err(|err| match err {
        BlocklistError::BadAddress { input, reason } => EnforceError::BadAddress { input, reason },
        other => EnforceError::BadAddress {
            input: addr.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Whether blocking `net` could cut the user off (broader than /16 for IPv4 or /48 for IPv6) and so should
/// go through `confirm::PendingConfirm`.
#[must_use]
pub fn is_broad(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.prefix_len() < 16,
        IpNet::V6(n) => n.prefix_len() < 48,
    }
}

/// Settings of the `Enforcer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforceConfig {
    /// Where `blocklist.ron` and `history.ron` live; `None` = nothing is persisted.
    pub state_dir: Option<PathBuf>,
    /// Seconds to wait for the xtables lock (`-w`).
    pub lock_wait_secs: u32,
    /// Records kept in the ban history.
    pub history_capacity: usize,
    /// Value of `SSH_CONNECTION` (its client is protected); defaults to the environment.
    pub ssh_connection: Option<String>,
    /// The protected addresses, when already detected (`None`: detected through the runner at open).
    pub protected: Option<Protected>,
    /// How long to wait for the state directory's lock while another process changes the list.
    pub state_lock_wait: Duration,
    /// How long a change that could cut the user off waits for confirmation before it is undone.
    pub confirm_timeout: Duration,
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            lock_wait_secs: 5,
            history_capacity: BanHistory::DEFAULT_CAPACITY,
            ssh_connection: std::env::var("SSH_CONNECTION").ok(),
            protected: None,
            state_lock_wait: Duration::from_secs(120),
            confirm_timeout: Duration::from_secs(30),
        }
    }
}

/// What a reconcile or drift check found (and repaired, when it returned `Ok`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftReport {
    /// One line per difference, e.g. `entry 10.0.0.2/32 missing from netwarden4`; empty = no drift.
    pub problems: Vec<String>,
    /// Rules found inside our chains that netwarden did not write; the repair removed them.
    pub foreign: Vec<String>,
}

/// Privileges relevant to enforcement, read from `/proc/self/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id.
    pub euid: Option<u32>,
    /// `CAP_NET_ADMIN` (bit 12) in the effective capability set.
    pub cap_net_admin: bool,
}

/// Parses the `Uid:` and `CapEff:` lines of `/proc/self/status`.
#[must_use]
pub fn parse_privileges(status: &str) -> Privileges {
    let mut privileges = Privileges {
        euid: None,
        cap_net_admin: false,
    };
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Uid:") {
            privileges.euid = rest.split_whitespace().nth(1).and_then(|v| v.parse().ok());
        } else if let Some(rest) = line.strip_prefix("CapEff:") {
            let caps = u64::from_str_radix(rest.trim(), 16).unwrap_or(0);
            privileges.cap_net_admin = caps & (1 << 12) != 0;
        }
    }
    privileges
}

/// Lets the commands this process runs (iptables, ipset) use the capabilities the binary was granted with
/// `setcap`: file capabilities are not inherited across `exec`, so they are raised into the inheritable
/// and ambient sets. Call at the very start of `main`, before any thread exists (capabilities are per
/// thread and new threads copy them). Root needs nothing; a capability not held is skipped.
///
/// # Errors
/// The kernel refused to raise one (the first refusal is returned; the rest are still tried).
pub fn pass_capabilities_to_commands() -> std::result::Result<(), caps::errors::CapsError> {
    use caps::{CapSet, Capability};
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if parse_privileges(&status).euid == Some(0) {
        return Ok(());
    }
    let mut first_error = None;
    for cap in [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW] {
        if !caps::has_cap(None, CapSet::Permitted, cap).unwrap_or(false) {
            continue;
        }
        let raised = caps::raise(None, CapSet::Inheritable, cap)
            .and_then(|()| caps::raise(None, CapSet::Ambient, cap));
        if let Err(e) = raised {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Checks, before anything changes, that this process may change the firewall (root or `CAP_NET_ADMIN`).
///
/// # Errors
/// `NotPermitted` naming what is missing and how to get it.
pub fn check_privileges() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let privileges = parse_privileges(&status);
    if privileges.euid == Some(0) || privileges.cap_net_admin {
        return Ok(());
    }
    let binary = std::env::current_exe().map_or_else(|_| "netwarden".to_owned(), |p| p.display().to_string());
    Err(EnforceError::NotPermitted {
        missing: format!(
            "changing the firewall needs root or the CAP_NET_ADMIN capability; nothing was changed. Run with \
             sudo; with the Debian package, join the group netwarden (`sudo usermod -aG netwarden $USER`); \
             from a source checkout, `make run` grants them to a binary only you may run (`chmod 0750 \
             {binary}`, then `sudo setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip {binary}`). \
             `--dry-run` shows the commands without running them"
        ),
    })
}

/// How an entry fared in `Enforcer::block_many`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockChange {
    /// Newly blocked.
    Added,
    /// Newly blocked, and waiting for confirmation until `deadline` (a change that could cut the user off).
    AddedPending {
        /// When it is undone unless confirmed.
        deadline: DateTime<Utc>,
        /// Why it could cut the user off.
        what: String,
    },
    /// Already blocked; nothing asked to change.
    Already,
    /// Already blocked; what was changed (`reason`, `expiry extended`, ...).
    Updated(Vec<String>),
    /// Already blocked; a requested change was not made, and why (a shorter ban without `force`).
    Kept(String),
}

/// One entry after `Enforcer::block_many`: its state as the kernel holds it, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The entry as it is now.
    pub entry: BlockEntry,
    /// What happened.
    pub change: BlockChange,
}

/// What `Enforcer::set_kernel_rules` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesChange {
    /// The rules were already in force.
    Unchanged,
    /// In force.
    Applied,
    /// In force, and undone at `deadline` unless confirmed (a rule that could cut the user off).
    Pending {
        /// When it is undone unless confirmed.
        deadline: DateTime<Utc>,
        /// Why it could cut the user off.
        what: String,
    },
}

/// What `Enforcer::tick` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Entries lifted because their expiry passed.
    pub expired: Vec<IpNet>,
    /// A change that was not confirmed in time and was undone: what it was.
    pub rolled_back: Option<String>,
}

/// What the kernel really holds next to the list, read without changing anything (`netwarden list`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelView {
    /// The list, each entry's state taken from the kernel.
    pub list: BlockList,
    /// Names of the `enforce: true` rules the kernel holds and reaches.
    pub rules_in_force: Vec<String>,
    /// What is wrong (a chain, jump, set or entry missing, a rule added by hand); empty = all enforced.
    pub problems: Vec<String>,
    /// Networks in our kernel sets that are not on the list.
    pub strays: Vec<IpNet>,
    /// A change waiting for confirmation.
    pub pending: Option<PendingChange>,
}

/// How the enforcer reaches the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    /// Runs the commands.
    Kernel,
    /// Records the commands (`--dry-run`); saves nothing.
    DryRun,
    /// Keeps and saves the list without touching the kernel (no privilege, `--no-enforce`, demo); why.
    ListOnly(String),
}

/// Ties the block list, its files and the kernel together. All methods take `&self`; threads of one process
/// serialise on a mutex and processes on the state directory's lock (`state::StateLock`), and every change
/// re-reads what other processes saved before it acts, so many `netwarden block` processes, the app and
/// `run --enforce` can change the list at once and each address still gets exactly one kernel entry.
pub struct Enforcer {
    inner: Mutex<Inner>,
}

struct Inner {
    runner: Arc<dyn CommandRunner>,
    reach: Reach,
    config: EnforceConfig,
    backend: Backend,
    files: Option<StateFiles>,
    stored: Stored,
    protected: Protected,
    /// What the kernel was last seen to hold: the rules in force and the problems (`settle_states`).
    seen_rules: Vec<String>,
    seen_problems: Vec<String>,
}

impl Enforcer {
    /// Detects iptables, takes the state directory's lock, loads the saved list, lifts expired bans, undoes
    /// an unconfirmed change whose deadline passed, and reconciles the kernel with the list (missing entries
    /// added, strays of ours removed, chains and jumps restored, rules added by hand to our chains removed).
    /// With a dry-run runner nothing runs and nothing is saved.
    ///
    /// # Errors
    /// `MonitorOnly` when iptables is not installed; `Lock` when another process holds the state for too
    /// long; `State` when a saved file is broken; command errors when the kernel cannot be reconciled.
    pub fn open(runner: Arc<dyn CommandRunner>, config: EnforceConfig) -> Result<Self> {
        let reach = if runner.is_dry_run() {
            Reach::DryRun
        } else {
            Reach::Kernel
        };
        let backend = match runner.run(&Cmd::new("iptables", &["--version"])) {
            Ok(out) => iptables::parse_backend(&out.stdout),
            Err(EnforceError::Missing { program }) => {
                return Err(EnforceError::MonitorOnly {
                    reason: format!(
                        "`{program}` is not installed; install iptables (and ipset) to enforce blocks"
                    ),
                });
            }
            Err(other) => return Err(other),
        };
        let protected = match &config.protected {
            Some(protected) => protected.clone(),
            None => Protected::detect(runner.as_ref(), config.ssh_connection.as_deref()),
        };
        let enforcer = Self::with_inner(runner, reach, config, backend, protected);
        enforcer.locked(true, |inner| {
            let now = Utc::now();
            inner.expire(now)?;
            inner.roll_back_if_due(now)?;
            inner.reconcile().map(drop)
        })?;
        Ok(enforcer)
    }

    /// An enforcer that opens without changing anything (no reconcile, nothing saved), to read what the
    /// kernel holds (`inspect`) or to repair it on request (`check_drift`).
    ///
    /// # Errors
    /// `MonitorOnly` when iptables is not installed; command errors.
    pub fn reader(runner: Arc<dyn CommandRunner>, config: EnforceConfig) -> Result<Self> {
        let backend = match runner.run(&Cmd::new("iptables", &["--version"])) {
            Ok(out) => iptables::parse_backend(&out.stdout),
            Err(EnforceError::Missing { program }) => {
                return Err(EnforceError::MonitorOnly {
                    reason: format!("`{program}` is not installed"),
                });
            }
            Err(other) => return Err(other),
        };
        let protected = config.protected.clone().unwrap_or_default();
        Ok(Self::with_inner(
            runner,
            Reach::Kernel,
            config,
            backend,
            protected,
        ))
    }

    /// An enforcer that keeps and saves the list but never touches the kernel: entries read "not
    /// enforced", `why` says why (no privilege, iptables missing, `--no-enforce`, demo mode).
    ///
    /// # Errors
    /// `Lock` or `State` when the saved list cannot be read.
    pub fn list_only(config: EnforceConfig, why: &str) -> Result<Self> {
        let protected = config.protected.clone().unwrap_or_default();
        let enforcer = Self::with_inner(
            Arc::new(runner::RecordingRunner::dry_run()),
            Reach::ListOnly(why.to_owned()),
            config,
            Backend::Unknown,
            protected,
        );
        enforcer.locked(true, |inner| {
            inner.expire(Utc::now())?;
            inner.settle_states();
            inner.save()
        })?;
        Ok(enforcer)
    }

    fn with_inner(
        runner: Arc<dyn CommandRunner>,
        reach: Reach,
        config: EnforceConfig,
        backend: Backend,
        protected: Protected,
    ) -> Self {
        let files = config
            .state_dir
            .clone()
            .map(|dir| StateFiles::new(dir, config.history_capacity));
        let stored = Stored {
            history: BanHistory::with_capacity(config.history_capacity),
            ..Stored::default()
        };
        Self {
            inner: Mutex::new(Inner {
                runner,
                reach,
                config,
                backend,
                files,
                stored,
                protected,
                seen_rules: Vec::new(),
                seen_problems: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves data that is still consistent enough to read; the next
        // drift check repairs the kernel side.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` holding the state directory's lock (exclusive for changes, shared for reading), after
    /// re-reading what another process saved meanwhile.
    fn locked<T>(&self, exclusive: bool, work: impl FnOnce(&mut Inner) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let _held = inner.state_lock(exclusive)?;
        inner.reload()?;
        work(&mut inner)
    }

    /// The iptables backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.lock().backend
    }

    /// Why the kernel is not touched, when the enforcer only keeps the list.
    #[must_use]
    pub fn list_only_reason(&self) -> Option<String> {
        match &self.lock().reach {
            Reach::ListOnly(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// The protected addresses found at start.
    #[must_use]
    pub fn protected(&self) -> Protected {
        self.lock().protected.clone()
    }

    /// Replaces the protected addresses (tests, or after the network changed).
    pub fn set_protected(&self, protected: Protected) {
        self.lock().protected = protected;
    }

    /// Sets how long a change that could cut the user off waits for confirmation.
    pub fn set_confirm_timeout(&self, timeout: Duration) {
        self.lock().config.confirm_timeout = timeout;
    }

    /// A snapshot of the entries, sorted by network, each with its enforcement state.
    #[must_use]
    pub fn entries(&self) -> Vec<BlockEntry> {
        self.lock().stored.list.iter().cloned().collect()
    }

    /// A snapshot of the list (for export with `crate::blocklist::io`).
    #[must_use]
    pub fn list(&self) -> BlockList {
        self.lock().stored.list.clone()
    }

    /// A snapshot of the ban history.
    #[must_use]
    pub fn history(&self) -> BanHistory {
        self.lock().stored.history.clone()
    }

    /// The kernel rules currently applied.
    #[must_use]
    pub fn kernel_rules(&self) -> Vec<KernelRule> {
        self.lock().stored.rules.clone()
    }

    /// What the kernel was last seen to hold (after the last change or drift check): the names of the
    /// `enforce: true` rules in force, and what is wrong (empty when everything is in force).
    #[must_use]
    pub fn health(&self) -> (Vec<String>, Vec<String>) {
        let inner = self.lock();
        (inner.seen_rules.clone(), inner.seen_problems.clone())
    }

    /// The change waiting for confirmation, if any.
    #[must_use]
    pub fn pending(&self) -> Option<PendingChange> {
        self.lock().stored.pending.clone()
    }

    /// Re-reads the state another process saved, when it changed; returns whether it did. Cheap when
    /// nothing changed (file metadata only), so the guard calls it every second.
    ///
    /// # Errors
    /// `Lock` or `State`.
    pub fn refresh(&self) -> Result<bool> {
        let mut inner = self.lock();
        if !inner.files.as_ref().is_some_and(StateFiles::changed) {
            return Ok(false);
        }
        let _held = inner.state_lock(false)?;
        let changed = inner.reload()?;
        if changed && inner.reach != Reach::Kernel {
            inner.settle_states();
        }
        Ok(changed)
    }

    /// Blocks one address or network (see `block_many`).
    ///
    /// # Errors
    /// As `block_many`.
    pub fn block(&self, request: BlockRequest) -> Result<BlockOutcome> {
        self.block_many(std::slice::from_ref(&request))?
            .pop()
            .ok_or_else(|| EnforceError::BadAddress {
                input: request.net.to_string(),
                reason: "not added".to_owned(),
            })
    }

    /// Blocks many entries as one batch: all are checked first, then one `ipset restore`. If any entry is
    /// refused or the kernel rejects one, nothing is applied and the error names the entry. An entry that is
    /// already blocked changes only what the request's `update` names, and a ban is never shortened
    /// without `force`. A single block that could cut the user off (broader than /16 or /48, or a forced
    /// protected address) waits for confirmation: undone at the deadline unless `confirm` is called.
    /// Each entry's state is then read back from the kernel.
    ///
    /// # Errors
    /// `Refused`, `PendingExists`, `BatchEntry` or command errors.
    pub fn block_many(&self, requests: &[BlockRequest]) -> Result<Vec<BlockOutcome>> {
        self.locked(true, |inner| inner.block_many(requests, Utc::now()))
    }

    /// Unblocks one network; `Ok(false)` when it was not in the list (any kernel entry is removed anyway).
    ///
    /// # Errors
    /// Command errors; the entry then stays in the list.
    pub fn unblock(&self, net: IpNet) -> Result<bool> {
        self.locked(true, |inner| {
            inner
                .unblock(&[net], LiftReason::Manual, Utc::now())
                .map(|n| n == 1)
        })
    }

    /// Unblocks everything (the history records `why`); returns how many entries were removed.
    ///
    /// # Errors
    /// Command errors; the list then stays as it was.
    pub fn unblock_all(&self, why: LiftReason) -> Result<usize> {
        self.locked(true, |inner| inner.unblock_all(why, Utc::now()))
    }

    /// The timers: lifts entries whose expiry is at or before `now` (the kernel lifts timed bans itself too)
    /// and undoes a change waiting for confirmation whose deadline passed. Cheap when there is nothing to
    /// do; the guard calls it every second.
    ///
    /// # Errors
    /// Command errors (the next tick retries).
    pub fn tick(&self, now: DateTime<Utc>) -> Result<TickReport> {
        {
            let inner = self.lock();
            let due = inner.stored.pending.as_ref().is_some_and(|p| p.is_due(now));
            if !due && inner.stored.list.expired(now).is_empty() {
                return Ok(TickReport::default());
            }
        }
        self.locked(true, |inner| {
            let expired = inner.expire(now)?;
            let rolled_back = inner.roll_back_if_due(now)?;
            Ok(TickReport { expired, rolled_back })
        })
    }

    /// Keeps the change waiting for confirmation; returns what it was (`None` when nothing waited). A kept
    /// block gets its own kernel timeout back (the confirmation window's timeout is dropped).
    ///
    /// # Errors
    /// Command errors (the change then still waits).
    pub fn confirm(&self) -> Result<Option<String>> {
        self.locked(true, |inner| inner.confirm(Utc::now()))
    }

    /// Compares the kernel with the list and our rules (chains flushed, jumps deleted, sets or entries
    /// missing, strays added, rules added by hand to our chains) and repairs it. Returns what was wrong.
    ///
    /// # Errors
    /// Command errors when the repair failed; entry states then say what is really enforced.
    pub fn check_drift(&self) -> Result<DriftReport> {
        self.locked(true, |inner| {
            let now = Utc::now();
            inner.expire(now)?;
            inner.roll_back_if_due(now)?;
            inner.reconcile()
        })
    }

    /// What the kernel really holds, read without changing anything: each entry's state, the rules in
    /// force and every problem (`netwarden list`).
    ///
    /// # Errors
    /// `State` when the saved list is broken; command errors when the kernel cannot be read.
    pub fn inspect(&self) -> Result<KernelView> {
        self.locked(false, |inner| {
            let view = inner.read_kernel()?;
            let mut list = inner.stored.list.clone();
            view.apply_states(&mut list, &inner.reach);
            Ok(KernelView {
                list,
                rules_in_force: view.rules_in_force(&inner.stored.rules),
                problems: view.problems.clone(),
                strays: view.strays(&inner.stored.list, Utc::now()),
                pending: inner.stored.pending.clone(),
            })
        })
    }

    /// Replaces the kernel rules (Block rules with `enforce: true`) in one transaction per family; on
    /// failure the previous rules stay in force. New rules that could cut the user off (all traffic or SSH
    /// for everyone, broad networks, a protected address) wait for confirmation and are undone at the
    /// deadline unless `confirm` is called.
    ///
    /// # Errors
    /// `BadRule` for a rule that cannot be expressed; `PendingExists`; command errors.
    pub fn set_kernel_rules(&self, rules: &[KernelRule]) -> Result<RulesChange> {
        self.locked(true, |inner| inner.set_kernel_rules_checked(rules, Utc::now()))
    }

    /// Removes every trace of netwarden from the kernel (jumps, chains, sets; IPv4 and IPv6). The list is
    /// kept, its entries become `NotEnforced` (use `unblock_all` first to forget them too).
    ///
    /// # Errors
    /// Command errors.
    pub fn flush_kernel(&self) -> Result<()> {
        self.locked(true, Inner::flush_kernel)
    }
}

/// What `Inner::read_kernel` saw: our sets, our chains per family and what is wrong with them.
struct SeenKernel {
    members: BTreeSet<IpNet>,
    /// Per family (V4, V6): why its block-list entries are not dropped, if they are not.
    family_broken: [Option<String>; 2],
    /// Per family: why its `enforce: true` rules are not all in force, if so.
    rules_broken: [Option<String>; 2],
    /// Per family: the chains as saved (for repair scripts).
    chains: [iptables::ChainState; 2],
    problems: Vec<String>,
    /// Lines found in our chains that netwarden did not write.
    foreign: Vec<String>,
    /// Per family: our chains or jumps differ from what they should be.
    chains_wrong: [bool; 2],
    /// The set plan that would make the kernel match the list.
    plan: reconcile::SetPlan,
    sets_missing: Vec<Family>,
}

fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

impl SeenKernel {
    /// Sets each entry's state from what was seen: `Enforced` only when the entry is in its set and the
    /// chains and jumps that make the set drop traffic are all there.
    fn apply_states(&self, list: &mut BlockList, reach: &Reach) {
        for entry in list.iter_mut() {
            let family = Family::of(&entry.net);
            entry.state = match reach {
                Reach::DryRun | Reach::ListOnly(_) => EntryState::NotEnforced,
                Reach::Kernel if !self.members.contains(&entry.net) => {
                    EntryState::Drifted(format!("missing from the kernel set {}", family.set_name()))
                }
                Reach::Kernel => match self.family_broken.get(family_index(family)).cloned().flatten() {
                    Some(why) => EntryState::Drifted(why),
                    None => EntryState::Enforced,
                },
            };
        }
    }

    /// Names of `rules` the kernel holds and reaches in every family.
    fn rules_in_force(&self, rules: &[KernelRule]) -> Vec<String> {
        if self.rules_broken.iter().any(Option::is_some) {
            return Vec::new();
        }
        let mut names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
        names.dedup();
        names
    }

    fn strays(&self, list: &BlockList, now: DateTime<Utc>) -> Vec<IpNet> {
        self.members
            .iter()
            .filter(|n| list.get(n).is_none_or(|e| e.is_expired(now)))
            .copied()
            .collect()
    }
}

impl Inner {
    fn state_lock(&self, exclusive: bool) -> Result<Option<StateLock>> {
        let Some(files) = &self.files else {
            return Ok(None);
        };
        // A dry run only reads.
        let exclusive = exclusive && self.reach != Reach::DryRun;
        Ok(StateLock::acquire(
            files.dir(),
            exclusive,
            self.config.state_lock_wait,
        )?)
    }

    fn reload(&mut self) -> Result<bool> {
        match &mut self.files {
            Some(files) => Ok(files.reload(&mut self.stored)?),
            None => Ok(false),
        }
    }

    /// False when the enforcer only keeps the list.
    fn kernel(&self) -> bool {
        !matches!(self.reach, Reach::ListOnly(_))
    }

    fn save(&mut self) -> Result<()> {
        if self.reach == Reach::DryRun {
            return Ok(());
        }
        if let Some(files) = &mut self.files {
            files.save(&self.stored)?;
        }
        Ok(())
    }

    fn iptables_restore(&self, family: Family, script: String) -> Result<()> {
        let wait = self.config.lock_wait_secs.to_string();
        let cmd = Cmd::new(family.restore(), &["--noflush", "-w", &wait]).with_stdin(script);
        self.runner.run(&cmd).map(drop)
    }

    fn ipset_restore(&self, script: String) -> Result<()> {
        if script.is_empty() || !self.kernel() {
            return Ok(());
        }
        self.runner
            .run(&Cmd::new("ipset", &["restore", "-exist"]).with_stdin(script))
            .map(drop)
    }

    fn read_chains(&self, family: Family) -> Result<iptables::ChainState> {
        let out = self.runner.run(&Cmd::new(family.save(), &["-t", "filter"]))?;
        Ok(iptables::parse_save(&out.stdout))
    }

    fn read_sets(&self) -> Result<ipset::SetState> {
        let out = self.runner.run(&Cmd::new("ipset", &["save"]))?;
        Ok(ipset::parse_save(&out.stdout))
    }

    fn rule_lines(rules: &[KernelRule], family: Family) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for rule in rules {
            lines.extend(iptables::rule_lines(rule, family)?);
        }
        Ok(lines)
    }

    fn desired(&self, now: DateTime<Utc>) -> Vec<ipset::SetAdd> {
        let pending = self.pending_block();
        self.stored
            .list
            .iter()
            .filter(|e| !e.is_expired(now))
            .map(|e| (e.net, self.kernel_timeout(e, pending.as_ref(), now)))
            .collect()
    }

    /// The network and deadline of a block waiting for confirmation.
    fn pending_block(&self) -> Option<(IpNet, DateTime<Utc>)> {
        self.stored.pending.as_ref().and_then(|p| match &p.change {
            RiskyChange::Block(request) => Some((request.net, p.deadline)),
            RiskyChange::Rules(_) => None,
        })
    }

    /// The kernel timeout of `entry`: its remaining time, cut to the confirmation deadline while it waits
    /// for confirmation (so the kernel undoes it even if no netwarden process runs then).
    fn kernel_timeout(
        &self,
        entry: &BlockEntry,
        pending: Option<&(IpNet, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let own = entry.remaining_secs(now);
        match pending {
            Some((net, deadline)) if *net == entry.net => {
                let millis = (*deadline - now).num_milliseconds().max(1);
                let until_deadline = u64::try_from(millis).unwrap_or(1).div_ceil(1000);
                Some(own.map_or(until_deadline, |own| own.min(until_deadline)))
            }
            _ => own,
        }
    }

    /// Reads our sets and chains (three commands) and judges them against the list and the rules.
    fn read_kernel(&self) -> Result<SeenKernel> {
        let mut seen = SeenKernel {
            members: BTreeSet::new(),
            family_broken: [None, None],
            rules_broken: [None, None],
            chains: [iptables::ChainState::default(), iptables::ChainState::default()],
            problems: Vec::new(),
            foreign: Vec::new(),
            chains_wrong: [false, false],
            plan: reconcile::SetPlan::default(),
            sets_missing: Vec::new(),
        };
        if !self.kernel() {
            return Ok(seen);
        }
        let sets = self.read_sets()?;
        for family in Family::ALL {
            if !sets.has_set(family) {
                seen.sets_missing.push(family);
                let problem = format!("set {} is missing", family.set_name());
                seen.problems.push(problem.clone());
                seen.family_broken[family_index(family)] = Some(problem);
            }
        }
        for family in Family::ALL {
            let index = family_index(family);
            let lines = Self::rule_lines(&self.stored.rules, family)?;
            let state = self.read_chains(family)?;
            let check = iptables::check_chains(family, &state, &lines);
            if let Some(why) = check.set_broken.first() {
                seen.family_broken[index].get_or_insert_with(|| why.clone());
            }
            if let Some(why) = check.rules_broken.first() {
                seen.rules_broken[index] = Some(why.clone());
            }
            seen.chains_wrong[index] = !check.problems.is_empty() || !check.foreign.is_empty();
            seen.problems.extend(check.problems);
            for line in check.foreign {
                seen.problems
                    .push(format!("rule added by hand to netwarden's chains: `{line}`"));
                seen.foreign.push(line);
            }
            if let Some(chains) = seen.chains.get_mut(index) {
                *chains = state;
            }
        }
        let now = Utc::now();
        seen.members = sets.members();
        seen.plan = reconcile::plan_sets(&self.desired(now), &seen.members);
        for (net, _) in &seen.plan.add {
            seen.problems
                .push(format!("entry {net} missing from {}", Family::of(net).set_name()));
        }
        for net in &seen.plan.remove {
            seen.problems
                .push(format!("stray entry {net} in {}", Family::of(net).set_name()));
        }
        Ok(seen)
    }

    /// Sets every entry's state from the kernel (or `NotEnforced` without one). A failure to read the
    /// kernel marks every entry `Failed` with the reason: never `Enforced` on a guess.
    fn settle_states(&mut self) {
        if !self.kernel() || self.reach == Reach::DryRun {
            self.stored
                .list
                .iter_mut()
                .for_each(|e| e.state = EntryState::NotEnforced);
            self.seen_rules.clear();
            self.seen_problems.clear();
            return;
        }
        match self.read_kernel() {
            Ok(seen) => self.apply_seen(seen),
            Err(err) => {
                let why = err.to_string();
                self.stored
                    .list
                    .iter_mut()
                    .for_each(|e| e.state = EntryState::Failed(why.clone()));
                self.seen_rules.clear();
                self.seen_problems = vec![format!("the kernel could not be read: {why}")];
            }
        }
    }

    /// Repairs the kernel so it matches the list and the rules, then reads it back for the states.
    fn reconcile(&mut self) -> Result<DriftReport> {
        if !self.kernel() {
            self.settle_states();
            self.save()?;
            return Ok(DriftReport::default());
        }
        let result = self.repair();
        match result {
            // Nothing was wrong: the states come from what was just read.
            Ok((report, Some(seen))) => {
                self.apply_seen(seen);
                self.save()?;
                Ok(report)
            }
            other => {
                self.settle_states();
                self.save()?;
                other.map(|(report, _)| report)
            }
        }
    }

    /// Sets the states and the health from a fresh read of the kernel.
    fn apply_seen(&mut self, seen: SeenKernel) {
        seen.apply_states(&mut self.stored.list, &self.reach);
        self.seen_rules = seen.rules_in_force(&self.stored.rules);
        self.seen_problems = seen.problems;
    }

    /// Repairs what is wrong; with nothing wrong, also hands back what was read (no need to read again).
    fn repair(&mut self) -> Result<(DriftReport, Option<SeenKernel>)> {
        let seen = self.read_kernel()?;
        if seen.problems.is_empty() && seen.foreign.is_empty() {
            return Ok((DriftReport::default(), Some(seen)));
        }
        if !seen.sets_missing.is_empty() {
            self.ipset_restore(ipset::ipset_script(&[], &[], true))?;
        }
        for family in Family::ALL {
            let index = family_index(family);
            if seen.chains_wrong[index]
                && let Some(state) = seen.chains.get(index)
            {
                let lines = Self::rule_lines(&self.stored.rules, family)?;
                self.iptables_restore(family, iptables::restore_script(family, state, &lines))?;
            }
        }
        self.ipset_restore(ipset::ipset_script(&seen.plan.add, &seen.plan.remove, false))?;
        Ok((
            DriftReport {
                problems: seen.problems,
                foreign: seen.foreign,
            },
            None,
        ))
    }

    fn block_many(&mut self, requests: &[BlockRequest], now: DateTime<Utc>) -> Result<Vec<BlockOutcome>> {
        self.protected.check(requests)?;
        // A single new block that could cut the user off waits for confirmation; a batch (import,
        // auto-block) is an explicit bulk action and goes straight in.
        let risky: Option<(&BlockRequest, Vec<String>)> = match requests {
            [one] if self.kernel() && self.stored.list.get(&one.net).is_none() => {
                let risks = RiskyChange::Block(one.clone()).risks(&[], &self.protected);
                (!risks.is_empty()).then_some((one, risks))
            }
            _ => None,
        };
        if risky.is_some()
            && let Some(pending) = &self.stored.pending
        {
            return Err(EnforceError::PendingExists {
                what: pending.what.clone(),
            });
        }
        let mut list = self.stored.list.clone();
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut adds: Vec<IpNet> = Vec::new();
        for request in requests {
            let expires = request
                .duration
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| now + d);
            let outcome = match list.get(&request.net) {
                None => BlockOutcome {
                    entry: BlockEntry::new(request.net, &request.reason, now, expires),
                    change: BlockChange::Added,
                },
                Some(old) => update_entry(old, request, expires),
            };
            let needs_kernel = match &outcome.change {
                BlockChange::Added | BlockChange::Updated(_) => true,
                // An entry the kernel lost is put back, whatever the request says.
                _ => outcome.entry.state != EntryState::Enforced,
            };
            if needs_kernel && !adds.contains(&request.net) {
                adds.push(request.net);
            }
            list.insert(outcome.entry.clone());
            outcomes.push(outcome);
        }
        let pending = risky.map(|(request, risks)| PendingChange {
            change: RiskyChange::Block(request.clone()),
            added_rules: Vec::new(),
            what: risks.join("; "),
            deadline: now + self.confirm_window(),
        });
        let pending_net = pending.as_ref().and_then(|p| match &p.change {
            RiskyChange::Block(r) => Some((r.net, p.deadline)),
            RiskyChange::Rules(_) => None,
        });
        let script_adds: Vec<ipset::SetAdd> = adds
            .iter()
            .filter_map(|net| list.get(net))
            .map(|e| (e.net, self.kernel_timeout(e, pending_net.as_ref(), now)))
            .collect();
        if let Err(err) = self.ipset_restore(ipset::ipset_script(&script_adds, &[], false)) {
            let err = self.roll_back_batch(&outcomes, err);
            self.settle_states();
            self.save()?;
            return Err(err);
        }
        for outcome in &outcomes {
            let entry = &outcome.entry;
            match &outcome.change {
                BlockChange::Added => {
                    let secs = entry.remaining_secs(now);
                    self.stored
                        .history
                        .record_ban(entry.net, &entry.reason, now, secs);
                }
                BlockChange::Updated(_) => {
                    let secs = entry.remaining_secs(now);
                    self.stored
                        .history
                        .record_change(entry.net, &entry.reason, now, secs);
                }
                _ => {}
            }
        }
        self.stored.list = list;
        if let Some(pending) = pending {
            let deadline = pending.deadline;
            let what = pending.what.clone();
            self.stored.pending = Some(pending);
            if let Some(outcome) = outcomes.first_mut() {
                outcome.change = BlockChange::AddedPending { deadline, what };
            }
        }
        self.settle_states();
        self.save()?;
        for outcome in &mut outcomes {
            if let Some(entry) = self.stored.list.get(&outcome.entry.net) {
                outcome.entry = entry.clone();
            }
        }
        Ok(outcomes)
    }

    /// Undoes the part of a failed add batch that reached the kernel (new entries only), and names the
    /// failing entry.
    fn roll_back_batch(&mut self, outcomes: &[BlockOutcome], err: EnforceError) -> EnforceError {
        let new: Vec<IpNet> = outcomes
            .iter()
            .filter(|o| o.change == BlockChange::Added)
            .map(|o| o.entry.net)
            .collect();
        if let Ok(sets) = self.read_sets() {
            let members = sets.members();
            let applied: Vec<IpNet> = new.into_iter().filter(|n| members.contains(n)).collect();
            // Best effort: the next drift check removes anything this could not.
            self.ipset_restore(ipset::ipset_script(&[], &applied, false)).ok();
        }
        let failing = match &err {
            EnforceError::Command { stderr, .. } => {
                ipset::error_line(stderr).and_then(|line| outcomes.get(line.wrapping_sub(1)))
            }
            _ => None,
        };
        match failing {
            Some(outcome) => EnforceError::BatchEntry {
                entry: outcome.entry.net.to_string(),
                source: Box::new(err),
            },
            None => err,
        }
    }

    fn unblock(&mut self, nets: &[IpNet], why: LiftReason, now: DateTime<Utc>) -> Result<usize> {
        if nets.is_empty() {
            return Ok(0);
        }
        // `del` under `-exist` ignores entries the kernel already dropped (expired timeouts).
        if let Err(err) = self.ipset_restore(ipset::ipset_script(&[], nets, false)) {
            self.settle_states();
            self.save()?;
            return Err(err);
        }
        let mut removed = 0;
        for net in nets {
            if self.stored.list.remove(net).is_some() {
                self.stored.history.record_lift(*net, now, why);
                removed += 1;
            }
            if self.pending_block().is_some_and(|(pending, _)| pending == *net) {
                self.stored.pending = None;
            }
        }
        self.save()?;
        Ok(removed)
    }

    fn unblock_all(&mut self, why: LiftReason, now: DateTime<Utc>) -> Result<usize> {
        let mut script = ipset::ipset_script(&[], &[], true);
        script.push_str(&ipset::flush_sets_script());
        self.ipset_restore(script)?;
        let removed = self.stored.list.clear();
        for entry in &removed {
            self.stored.history.record_lift(entry.net, now, why);
        }
        if self.pending_block().is_some() {
            self.stored.pending = None;
        }
        self.save()?;
        Ok(removed.len())
    }

    fn expire(&mut self, now: DateTime<Utc>) -> Result<Vec<IpNet>> {
        let expired = self.stored.list.expired(now);
        self.unblock(&expired, LiftReason::Expired, now)?;
        Ok(expired)
    }

    /// Undoes the change waiting for confirmation when its deadline passed; returns what it was.
    fn roll_back_if_due(&mut self, now: DateTime<Utc>) -> Result<Option<String>> {
        let Some(pending) = self.stored.pending.clone().filter(|p| p.is_due(now)) else {
            return Ok(None);
        };
        match &pending.change {
            RiskyChange::Block(request) => {
                self.unblock(&[request.net], LiftReason::RolledBack, now)?;
            }
            RiskyChange::Rules(_) => {
                let kept: Vec<KernelRule> = self
                    .stored
                    .rules
                    .iter()
                    .filter(|rule| !pending.added_rules.contains(rule))
                    .cloned()
                    .collect();
                self.apply_kernel_rules(&kept)?;
                self.settle_states();
            }
        }
        self.stored.pending = None;
        self.save()?;
        Ok(Some(pending.what))
    }

    fn confirm(&mut self, now: DateTime<Utc>) -> Result<Option<String>> {
        let Some(pending) = self.stored.pending.clone() else {
            return Ok(None);
        };
        if let RiskyChange::Block(request) = &pending.change
            && let Some(entry) = self.stored.list.get(&request.net)
        {
            // The confirmation window's kernel timeout goes; the entry's own expiry stays.
            let add = (entry.net, entry.remaining_secs(now));
            self.ipset_restore(ipset::ipset_script(&[add], &[], false))?;
        }
        self.stored.pending = None;
        self.settle_states();
        self.save()?;
        Ok(Some(pending.what))
    }

    fn confirm_window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.confirm_timeout)
            .unwrap_or_else(|_| chrono::Duration::seconds(30))
    }

    fn set_kernel_rules_checked(&mut self, rules: &[KernelRule], now: DateTime<Utc>) -> Result<RulesChange> {
        for rule in rules {
            iptables::validate_rule(rule)?;
        }
        if rules == self.stored.rules.as_slice() {
            return Ok(RulesChange::Unchanged);
        }
        let risks = if self.kernel() {
            RiskyChange::Rules(rules.to_vec()).risks(&self.stored.rules, &self.protected)
        } else {
            Vec::new()
        };
        if !risks.is_empty()
            && let Some(pending) = &self.stored.pending
        {
            return Err(EnforceError::PendingExists {
                what: pending.what.clone(),
            });
        }
        let added: Vec<KernelRule> = rules
            .iter()
            .filter(|rule| !self.stored.rules.contains(rule))
            .cloned()
            .collect();
        self.apply_kernel_rules(rules)?;
        let change = if risks.is_empty() {
            RulesChange::Applied
        } else {
            let pending = PendingChange {
                change: RiskyChange::Rules(rules.to_vec()),
                added_rules: added,
                what: risks.join("; "),
                deadline: now + self.confirm_window(),
            };
            let change = RulesChange::Pending {
                deadline: pending.deadline,
                what: pending.what.clone(),
            };
            self.stored.pending = Some(pending);
            change
        };
        self.settle_states();
        self.save()?;
        Ok(change)
    }

    fn apply_kernel_rules(&mut self, rules: &[KernelRule]) -> Result<()> {
        if !self.kernel() {
            self.stored.rules = rules.to_vec();
            return Ok(());
        }
        let mut scripts = Vec::new();
        for family in Family::ALL {
            scripts.push((family, Self::rule_lines(rules, family)?));
        }
        let mut done = Vec::new();
        for (family, lines) in scripts {
            let state = self.read_chains(family)?;
            if let Err(err) = self.iptables_restore(family, iptables::restore_script(family, &state, &lines))
            {
                // Put the families already changed back to the previous rules.
                for family in done {
                    if let (Ok(old), Ok(state)) = (
                        Self::rule_lines(&self.stored.rules, family),
                        self.read_chains(family),
                    ) {
                        self.iptables_restore(family, iptables::restore_script(family, &state, &old))
                            .ok();
                    }
                }
                return Err(err);
            }
            done.push(family);
        }
        self.stored.rules = rules.to_vec();
        Ok(())
    }

    fn flush_kernel(&mut self) -> Result<()> {
        if self.kernel() {
            for family in Family::ALL {
                let state = self.read_chains(family)?;
                if let Some(script) = iptables::flush_script(&state) {
                    self.iptables_restore(family, script)?;
                }
            }
            let sets = self.read_sets()?;
            for family in Family::ALL {
                if sets.has_set(family) || self.reach == Reach::DryRun {
                    self.runner
                        .run(&Cmd::new("ipset", &["destroy", family.set_name()]))?;
                }
            }
        }
        self.stored.rules.clear();
        self.stored.pending = None;
        self.stored
            .list
            .iter_mut()
            .for_each(|e| e.state = EntryState::NotEnforced);
        self.save()
    }
}

/// The outcome of blocking `request` again when `old` is on the list: only what `request.update` names
/// changes, and a ban is never shortened without `force`.
fn update_entry(old: &BlockEntry, request: &BlockRequest, expires: Option<DateTime<Utc>>) -> BlockOutcome {
    let mut entry = old.clone();
    let mut changed = Vec::new();
    let mut kept = None;
    if request.update.reason && request.reason != old.reason {
        entry.reason.clone_from(&request.reason);
        changed.push("reason".to_owned());
    }
    let same_second = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| {
        a.map(|t| t.timestamp()) == b.map(|t| t.timestamp())
    };
    if request.update.expiry && !same_second(expires, old.expires) {
        // Whole seconds: the same ban asked for twice in a row is not "extended" by milliseconds.
        let longer = match (old.expires, expires) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(was), Some(now)) => now.timestamp() > was.timestamp(),
        };
        if longer || request.force {
            entry.expires = expires;
            changed.push(
                match (longer, expires) {
                    (true, None) => "now until unblocked",
                    (true, Some(_)) => "ban extended",
                    (false, _) => "ban shortened",
                }
                .to_owned(),
            );
        } else {
            kept = Some(match old.expires {
                None => "it is blocked until unblocked; not shortened (use --force to shorten)".to_owned(),
                Some(at) => format!(
                    "it is blocked until {}; not shortened (use --force to shorten)",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            });
        }
    }
    let change = match (changed.is_empty(), kept) {
        (false, _) => BlockChange::Updated(changed),
        (true, Some(why)) => BlockChange::Kept(why),
        (true, None) => BlockChange::Already,
    };
    BlockOutcome { entry, change }
}

#[cfg(test)]
mod tests {
    use super::runner::RecordingRunner;
    use super::*;

    #[test]
    fn privileges_from_status() {
        let root = parse_privileges("Name:\tx\nUid:\t1000\t0\t0\t0\nCapEff:\t0000000000000000\n");
        assert_eq!(
            root,
            Privileges {
                euid: Some(0),
                cap_net_admin: false
            }
        );
        let cap = parse_privileges("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000001000\n");
        assert_eq!(
            cap,
            Privileges {
                euid: Some(1000),
                cap_net_admin: true
            }
        );
    }

    #[test]
    fn broad_networks() {
        assert!(is_broad(&parse_addr("10.0.0.0/8").unwrap()));
        assert!(!is_broad(&parse_addr("10.0.0.0/16").unwrap()));
        assert!(is_broad(&parse_addr("2001:db8::/32").unwrap()));
        assert!(!is_broad(&parse_addr("2001:db8::/48").unwrap()));
        assert!(matches!(
            parse_addr("1.2.3.4;reboot"),
            Err(EnforceError::BadAddress { .. })
        ));
    }

    fn dry_enforcer() -> (Arc<RecordingRunner>, Enforcer) {
        let runner = Arc::new(RecordingRunner::dry_run());
        let config = EnforceConfig {
            ssh_connection: None,
            ..EnforceConfig::default()
        };
        let enforcer = Enforcer::open(runner.clone(), config).unwrap();
        (runner, enforcer)
    }

    #[test]
    fn dry_run_builds_the_expected_commands() {
        let (runner, enforcer) = dry_enforcer();
        let setup: Vec<String> = runner.commands().iter().map(Cmd::display).collect();
        assert!(setup.contains(&"ipset restore -exist".to_owned()), "{setup:?}");
        assert!(
            setup.contains(&"iptables-restore --noflush -w 5".to_owned()),
            "{setup:?}"
        );
        assert!(
            setup.contains(&"ip6tables-restore --noflush -w 5".to_owned()),
            "{setup:?}"
        );
        let before = runner.commands().len();
        let entry = enforcer
            .block(BlockRequest::parse("192.0.2.7", "scan", Some(Duration::from_secs(600)), false).unwrap())
            .unwrap();
        assert_eq!(entry.entry.state, EntryState::NotEnforced);
        assert_eq!(entry.change, BlockChange::Added);
        let cmds = runner.commands();
        assert_eq!(cmds.len(), before + 1);
        assert_eq!(
            cmds[before].stdin.as_deref(),
            Some("add netwarden4 192.0.2.7/32 timeout 600\n")
        );
        let refused = enforcer
            .block(BlockRequest::parse("127.0.0.1", "", None, false).unwrap())
            .unwrap_err();
        assert!(matches!(refused, EnforceError::Refused { .. }), "{refused}");
        assert_eq!(enforcer.entries().len(), 1);
        assert!(enforcer.unblock(parse_addr("192.0.2.7").unwrap()).unwrap());
        assert_eq!(
            runner.commands().last().unwrap().stdin.as_deref(),
            Some("del netwarden4 192.0.2.7/32\n")
        );
    }

    #[test]
    fn failed_batch_names_entry_and_keeps_list() {
        let runner = Arc::new(RecordingRunner::default());
        let config = EnforceConfig {
            ssh_connection: None,
            ..EnforceConfig::default()
        };
        let enforcer = Enforcer::open(runner.clone(), config).unwrap();
        runner.answer("ipset restore", Err("ipset v7.17: Error in line 2: Kernel error"));
        let requests = vec![
            BlockRequest::parse("192.0.2.1", "", None, false).unwrap(),
            BlockRequest::parse("192.0.2.2", "", None, false).unwrap(),
        ];
        let err = enforcer.block_many(&requests).unwrap_err();
        assert!(
            matches!(err, EnforceError::BatchEntry { ref entry, .. } if entry == "192.0.2.2/32"),
            "{err}"
        );
        assert!(enforcer.entries().is_empty());
    }

    #[test]
    fn missing_iptables_is_monitor_only() {
        struct NoTools;
        impl CommandRunner for NoTools {
            fn run(&self, cmd: &Cmd) -> Result<runner::CmdOutput> {
                Err(EnforceError::Missing {
                    program: cmd.program.clone(),
                })
            }
        }
        let err = Enforcer::open(Arc::new(NoTools), EnforceConfig::default())
            .err()
            .unwrap();
        assert!(matches!(err, EnforceError::MonitorOnly { .. }), "{err}");
    }

    fn existing(expires: Option<DateTime<Utc>>) -> BlockEntry {
        let mut entry = BlockEntry::new(parse_addr("192.0.2.7").unwrap(), "scan", Utc::now(), expires);
        entry.state = EntryState::Enforced;
        entry
    }

    fn again(duration: Option<u64>, update: Update, force: bool) -> BlockRequest {
        BlockRequest::parse("192.0.2.7", "other", duration.map(Duration::from_secs), force)
            .unwrap()
            .with_update(update)
    }

    #[test]
    fn blocking_again_changes_only_what_was_asked_and_never_shortens() {
        let now = Utc::now();
        let in_10m = Some(now + chrono::Duration::seconds(600));
        let nothing = Update::default();
        let expiry = Update {
            reason: false,
            expiry: true,
        };
        let at = |secs: i64| Some(now + chrono::Duration::seconds(secs));
        // Nothing asked: already blocked, whatever the request carries.
        let out = update_entry(&existing(in_10m), &again(Some(60), nothing, false), at(60));
        assert_eq!(out.change, BlockChange::Already);
        assert_eq!(out.entry.reason, "scan");
        // A new reason when asked.
        let reason = Update {
            reason: true,
            expiry: false,
        };
        let out = update_entry(&existing(in_10m), &again(None, reason, false), None);
        assert_eq!(out.change, BlockChange::Updated(vec!["reason".into()]));
        assert_eq!((out.entry.reason.as_str(), out.entry.expires), ("other", in_10m));
        // Longer: extended. Shorter: kept unless forced. Permanent is the longest.
        let out = update_entry(&existing(in_10m), &again(Some(3_600), expiry, false), at(3_600));
        assert_eq!(out.change, BlockChange::Updated(vec!["ban extended".into()]));
        let out = update_entry(&existing(in_10m), &again(Some(60), expiry, false), at(60));
        assert!(
            matches!(out.change, BlockChange::Kept(ref why) if why.contains("not shortened")),
            "{out:?}"
        );
        assert_eq!(out.entry.expires, in_10m);
        let out = update_entry(&existing(in_10m), &again(Some(60), expiry, true), at(60));
        assert_eq!(out.change, BlockChange::Updated(vec!["ban shortened".into()]));
        let out = update_entry(&existing(None), &again(Some(60), expiry, false), at(60));
        assert!(matches!(out.change, BlockChange::Kept(_)), "{out:?}");
        let out = update_entry(&existing(in_10m), &again(None, expiry, false), None);
        assert_eq!(
            out.change,
            BlockChange::Updated(vec!["now until unblocked".into()])
        );
    }

    #[test]
    fn a_broad_block_waits_for_confirmation_and_is_rolled_back_on_time() {
        let (runner, enforcer) = dry_enforcer();
        enforcer.set_confirm_timeout(Duration::from_secs(30));
        let request =
            BlockRequest::parse("10.0.0.0/8", "wide", Some(Duration::from_secs(3_600)), false).unwrap();
        let outcome = enforcer.block(request.clone()).unwrap();
        let BlockChange::AddedPending { deadline, what } = outcome.change else {
            panic!("{outcome:?}");
        };
        assert!(what.contains("broader than /16"), "{what}");
        // The kernel gets the confirmation window as the entry's timeout, so it undoes the block by itself.
        let script = runner.commands().last().unwrap().stdin.clone().unwrap();
        assert!(
            script == "add netwarden4 10.0.0.0/8 timeout 30\n"
                || script == "add netwarden4 10.0.0.0/8 timeout 31\n",
            "{script}"
        );
        // One risky change at a time.
        let second = BlockRequest::parse("172.16.0.0/12", "", None, false).unwrap();
        assert!(matches!(
            enforcer.block(second),
            Err(EnforceError::PendingExists { .. })
        ));
        assert_eq!(
            enforcer.tick(deadline - chrono::Duration::seconds(1)).unwrap(),
            TickReport::default()
        );
        let report = enforcer.tick(deadline).unwrap();
        assert_eq!(report.rolled_back.as_deref(), Some(what.as_str()));
        assert!(enforcer.entries().is_empty());
        assert!(enforcer.pending().is_none());
        assert_eq!(
            enforcer.history().iter().last().unwrap().lifted_by,
            Some(LiftReason::RolledBack)
        );

        // Confirmed: it stays, with its own timeout back in the kernel.
        let outcome = enforcer.block(request).unwrap();
        assert!(matches!(outcome.change, BlockChange::AddedPending { .. }));
        assert!(enforcer.confirm().unwrap().is_some());
        let script = runner.commands().last().unwrap().stdin.clone().unwrap();
        assert!(
            script.starts_with("add netwarden4 10.0.0.0/8 timeout 3"),
            "{script}"
        );
        assert_eq!(
            enforcer.tick(Utc::now() + chrono::Duration::seconds(60)).unwrap(),
            TickReport::default()
        );
        assert_eq!(enforcer.entries().len(), 1);
        assert!(enforcer.confirm().unwrap().is_none(), "nothing waits any more");
    }

    fn rule(name: &str, port: Option<u16>) -> KernelRule {
        KernelRule {
            name: name.into(),
            direction: RuleDirection::In,
            protocol: Some(6),
            src: vec![],
            dst: vec![],
            dst_ports: port.map(|p| vec![(p, p)]).unwrap_or_default(),
            src_ports: vec![],
            interface: None,
            uid_owner: None,
            cgroup_path: None,
        }
    }

    #[test]
    fn rolling_back_rules_takes_out_only_what_the_change_added() {
        let (_, enforcer) = dry_enforcer();
        let narrow = |name: &str, port: u16| rule(name, Some(port));
        let all = rule("all", None);
        assert_eq!(
            enforcer.set_kernel_rules(&[narrow("a", 23)]).unwrap(),
            RulesChange::Applied
        );
        let change = enforcer
            .set_kernel_rules(&[narrow("a", 23), all.clone()])
            .unwrap();
        let RulesChange::Pending { deadline, .. } = change else {
            panic!("{change:?}");
        };
        // A reload meanwhile edits the harmless rule and keeps the risky one: no new confirmation.
        assert_eq!(
            enforcer
                .set_kernel_rules(&[narrow("b", 25), all.clone()])
                .unwrap(),
            RulesChange::Applied
        );
        let report = enforcer.tick(deadline).unwrap();
        assert!(report.rolled_back.is_some());
        assert_eq!(enforcer.kernel_rules(), vec![narrow("b", 25)]);
        // Kept: stays, and sending it again does not ask again.
        let RulesChange::Pending { .. } = enforcer.set_kernel_rules(std::slice::from_ref(&all)).unwrap()
        else {
            panic!("risky again");
        };
        assert!(enforcer.confirm().unwrap().is_some());
        assert_eq!(
            enforcer.set_kernel_rules(std::slice::from_ref(&all)).unwrap(),
            RulesChange::Unchanged
        );
        assert_eq!(enforcer.kernel_rules(), vec![all]);
    }

    #[test]
    fn list_only_keeps_the_list_and_another_enforcer_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = EnforceConfig {
            state_dir: Some(dir.path().to_owned()),
            ssh_connection: None,
            ..EnforceConfig::default()
        };
        let first = Enforcer::list_only(config.clone(), "no privilege").unwrap();
        let second = Enforcer::list_only(config, "no privilege").unwrap();
        let outcome = first
            .block(BlockRequest::parse("::ffff:192.0.2.2", "mapped", None, false).unwrap())
            .unwrap();
        assert_eq!(outcome.entry.net.to_string(), "192.0.2.2/32");
        assert_eq!(outcome.entry.state, EntryState::NotEnforced);
        assert!(second.entries().is_empty());
        assert!(second.refresh().unwrap(), "the other one's save is news");
        assert_eq!(second.entries().len(), 1);
        assert!(!second.refresh().unwrap());
        assert_eq!(second.list_only_reason().as_deref(), Some("no privilege"));
    }

    #[test]
    fn enforcers_of_many_processes_never_lose_an_entry() {
        // Each thread opens its own enforcer, as separate processes would: they share nothing but the
        // state directory and its lock. Two requests per address, as a fail2ban-style script sends.
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..40)
            .map(|i| {
                let dir = dir.path().to_owned();
                std::thread::Builder::new()
                    .name(format!("proc-{i}"))
                    .spawn(move || {
                        // List-only saves the list as the kernel mode does, without a kernel.
                        let config = EnforceConfig {
                            state_dir: Some(dir.clone()),
                            ssh_connection: None,
                            ..EnforceConfig::default()
                        };
                        let enforcer = Enforcer::list_only(config, "test").unwrap();
                        let addr = format!("192.0.2.{}", i / 2 + 1);
                        enforcer
                            .block(BlockRequest::parse(&addr, "script", None, false).unwrap())
                            .unwrap()
                            .change
                    })
                    .unwrap()
            })
            .collect();
        let changes: Vec<BlockChange> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(changes.iter().filter(|c| **c == BlockChange::Added).count(), 20);
        assert_eq!(changes.iter().filter(|c| **c == BlockChange::Already).count(), 20);
        let saved =
            crate::blocklist::BlockList::load(&dir.path().join(crate::blocklist::BLOCKLIST_FILE)).unwrap();
        assert_eq!(saved.len(), 20);
        let history = BanHistory::load(&dir.path().join(crate::blocklist::HISTORY_FILE), 100).unwrap();
        assert_eq!(history.len(), 20, "one ban record per address");
    }
}
