//! Kernel enforcement of the block list and of `enforce: true` rules, with iptables/ip6tables and ipset.
//!
//! Everything of ours lives in our own chains (`NETWARDEN`, `NETWARDEN-IN`, `NETWARDEN-OUT` in `filter`)
//! and two ipset sets (`netwarden4`, `netwarden6`); rules of other tools are never touched. Changes are
//! batches: `iptables-restore --noflush -w N` (one transaction) and `ipset restore -exist`. Scripts are
//! built by pure functions (`iptables`, `ipset`, `reconcile`); a `CommandRunner` executes them. The
//! `Enforcer` ties the block list, its persistence and the runner together and is safe to share between
//! threads.
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
pub mod ipset;
pub mod iptables;
pub mod protect;
pub mod reconcile;
pub mod runner;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::blocklist::{
    BLOCKLIST_FILE, BanHistory, BlockEntry, BlockList, BlocklistError, EntryState, HISTORY_FILE, LiftReason,
};
pub use iptables::{Backend, KernelRule, RuleDirection};
pub use protect::Protected;
use runner::{Cmd, CommandRunner};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRequest {
    /// What to block.
    pub net: IpNet,
    /// Why (shown in the list and the history).
    pub reason: String,
    /// How long; `None` = until removed.
    pub duration: Option<Duration>,
    /// Block even a protected address (loopback, own, gateway, SSH peer).
    pub force: bool,
}

impl BlockRequest {
    /// Parses `addr` (IP or CIDR) into a request.
    ///
    /// # Errors
    /// `BadAddress` when `addr` is not an address or network.
    pub fn parse(addr: &str, reason: &str, duration: Option<Duration>, force: bool) -> Result<Self> {
        Ok(Self {
            net: parse_addr(addr)?,
            reason: reason.to_owned(),
            duration,
            force,
        })
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
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            lock_wait_secs: 5,
            history_capacity: BanHistory::DEFAULT_CAPACITY,
            ssh_connection: std::env::var("SSH_CONNECTION").ok(),
        }
    }
}

/// What a reconcile or drift check found (and repaired, when it returned `Ok`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftReport {
    /// One line per difference, e.g. `entry 10.0.0.2/32 missing from netwarden4`; empty = no drift.
    pub problems: Vec<String>,
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
             sudo, or grant it once with `sudo setcap cap_net_raw,cap_net_admin+eip {binary}`; `--dry-run` \
             shows the commands without running them"
        ),
    })
}

/// Ties the block list, its files and the kernel together. All methods take `&self` and serialise on an
/// internal mutex, so many threads may block addresses at once and each address still gets exactly one
/// kernel entry.
pub struct Enforcer {
    inner: Mutex<Inner>,
}

struct Inner {
    runner: Arc<dyn CommandRunner>,
    config: EnforceConfig,
    backend: Backend,
    list: BlockList,
    history: BanHistory,
    rules: Vec<KernelRule>,
    protected: Protected,
}

impl Enforcer {
    /// Detects iptables, loads the saved list and history, drops expired entries and reconciles the
    /// kernel with the list (missing entries added, strays of ours removed, chains and jumps restored).
    ///
    /// # Errors
    /// `MonitorOnly` when iptables is not installed; `State` when a saved file is broken; command errors
    /// when the kernel cannot be reconciled.
    pub fn open(runner: Arc<dyn CommandRunner>, config: EnforceConfig) -> Result<Self> {
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
        let (list, history) = match &config.state_dir {
            Some(dir) => (
                BlockList::load(&dir.join(BLOCKLIST_FILE))?,
                BanHistory::load(&dir.join(HISTORY_FILE), config.history_capacity)?,
            ),
            None => (
                BlockList::new(),
                BanHistory::with_capacity(config.history_capacity),
            ),
        };
        let protected = Protected::detect(runner.as_ref(), config.ssh_connection.as_deref());
        let mut inner = Inner {
            runner,
            config,
            backend,
            list,
            history,
            rules: Vec::new(),
            protected,
        };
        inner.expire(Utc::now())?;
        inner.reconcile()?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves data that is still consistent enough to read; the next
        // drift check repairs the kernel side.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The iptables backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.lock().backend
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

    /// A snapshot of the entries, sorted by network, each with its enforcement state.
    #[must_use]
    pub fn entries(&self) -> Vec<BlockEntry> {
        self.lock().list.iter().cloned().collect()
    }

    /// A snapshot of the list (for export with `crate::blocklist::io`).
    #[must_use]
    pub fn list(&self) -> BlockList {
        self.lock().list.clone()
    }

    /// A snapshot of the ban history.
    #[must_use]
    pub fn history(&self) -> BanHistory {
        self.lock().history.clone()
    }

    /// The kernel rules currently applied.
    #[must_use]
    pub fn kernel_rules(&self) -> Vec<KernelRule> {
        self.lock().rules.clone()
    }

    /// Blocks one address or network (re-blocking updates reason and expiry, never duplicates).
    ///
    /// # Errors
    /// `Refused` for protected addresses without `force`; command errors (the entry then stays in the list
    /// with state `Failed` and the kernel is left as it was).
    pub fn block(&self, request: BlockRequest) -> Result<BlockEntry> {
        self.lock()
            .block_many(std::slice::from_ref(&request), Utc::now())
            .and_then(|mut v| {
                v.pop().ok_or_else(|| EnforceError::BadAddress {
                    input: request.net.to_string(),
                    reason: "not added".to_owned(),
                })
            })
    }

    /// Blocks many entries as one batch: all are checked first, then one `ipset restore`. If any entry is
    /// refused or the kernel rejects one, nothing is applied and the error names the entry.
    ///
    /// # Errors
    /// `Refused` or `BatchEntry`.
    pub fn block_many(&self, requests: &[BlockRequest]) -> Result<Vec<BlockEntry>> {
        self.lock().block_many(requests, Utc::now())
    }

    /// Unblocks one network; `Ok(false)` when it was not in the list (any kernel entry is removed anyway).
    ///
    /// # Errors
    /// Command errors; the entry then stays in the list.
    pub fn unblock(&self, net: IpNet) -> Result<bool> {
        self.lock()
            .unblock(&[net], LiftReason::Manual, Utc::now())
            .map(|n| n == 1)
    }

    /// Unblocks everything (the history records `why`); returns how many entries were removed.
    ///
    /// # Errors
    /// Command errors; the list then stays as it was.
    pub fn unblock_all(&self, why: LiftReason) -> Result<usize> {
        self.lock().unblock_all(why, Utc::now())
    }

    /// Removes entries whose expiry is at or before `now` (the engine or UI calls this every second or so;
    /// the kernel lifts timed bans itself too). Returns the removed networks.
    ///
    /// # Errors
    /// Command errors.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<Vec<IpNet>> {
        self.lock().expire(now)
    }

    /// Compares the kernel with the list and our rules (chains flushed, jumps deleted, sets or entries
    /// missing, strays added) and repairs it. Run every few seconds. Returns what was wrong.
    ///
    /// # Errors
    /// Command errors when the repair failed; entry states then say what is really enforced.
    pub fn check_drift(&self) -> Result<DriftReport> {
        let mut inner = self.lock();
        inner.expire(Utc::now())?;
        inner.reconcile()
    }

    /// Replaces the kernel rules (Block rules with `enforce: true`) in one transaction per family; on
    /// failure the previous rules stay in force.
    ///
    /// # Errors
    /// `BadRule` for a rule that cannot be expressed; command errors.
    pub fn set_kernel_rules(&self, rules: &[KernelRule]) -> Result<()> {
        self.lock().set_kernel_rules(rules)
    }

    /// Removes every trace of netwarden from the kernel (jumps, chains, sets; IPv4 and IPv6). The list is
    /// kept, its entries become `NotEnforced` (use `unblock_all` first to forget them too).
    ///
    /// # Errors
    /// Command errors.
    pub fn flush_kernel(&self) -> Result<()> {
        self.lock().flush_kernel()
    }
}

impl Inner {
    fn dry_run(&self) -> bool {
        self.runner.is_dry_run()
    }

    fn save(&self) -> Result<()> {
        if self.dry_run() {
            return Ok(());
        }
        if let Some(dir) = &self.config.state_dir {
            self.list.save(&dir.join(BLOCKLIST_FILE))?;
            self.history.save(&dir.join(HISTORY_FILE))?;
        }
        Ok(())
    }

    fn iptables_restore(&self, family: Family, script: String) -> Result<()> {
        let wait = self.config.lock_wait_secs.to_string();
        let cmd = Cmd::new(family.restore(), &["--noflush", "-w", &wait]).with_stdin(script);
        self.runner.run(&cmd).map(drop)
    }

    fn ipset_restore(&self, script: String) -> Result<()> {
        if script.is_empty() {
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
        self.list
            .iter()
            .filter(|e| !e.is_expired(now))
            .map(|e| (e.net, e.remaining_secs(now)))
            .collect()
    }

    /// Sets every entry's state from what the kernel really holds (after a failure, or a dry run).
    fn refresh_states(&mut self, failure: Option<&EnforceError>) {
        if self.dry_run() {
            self.list
                .iter_mut()
                .for_each(|e| e.state = EntryState::NotEnforced);
            return;
        }
        let members = self.read_sets().map(|s| s.members());
        for entry in self.list.iter_mut() {
            entry.state = match (&members, failure) {
                (Ok(members), _) if members.contains(&entry.net) => EntryState::Enforced,
                (_, Some(err)) => EntryState::Failed(err.to_string()),
                (Err(err), None) => EntryState::Failed(err.to_string()),
                (Ok(_), None) => EntryState::Pending,
            };
        }
    }

    fn reconcile(&mut self) -> Result<DriftReport> {
        let result = self.reconcile_kernel();
        match &result {
            Ok(_) if self.dry_run() => self.refresh_states(None),
            Ok(_) => self.list.iter_mut().for_each(|e| e.state = EntryState::Enforced),
            Err(err) => self.refresh_states(Some(err)),
        }
        self.save()?;
        result
    }

    fn reconcile_kernel(&mut self) -> Result<DriftReport> {
        let mut problems = Vec::new();
        let sets = self.read_sets()?;
        let missing_sets: Vec<Family> = Family::ALL.into_iter().filter(|f| !sets.has_set(*f)).collect();
        for family in &missing_sets {
            problems.push(format!("set {} is missing", family.set_name()));
        }
        if !missing_sets.is_empty() {
            self.ipset_restore(ipset::ipset_script(&[], &[], true))?;
        }
        for family in Family::ALL {
            let lines = Self::rule_lines(&self.rules, family)?;
            let state = self.read_chains(family)?;
            let mut expected = BTreeMap::from([
                (iptables::CHAIN, 2),
                (iptables::CHAIN_IN, 0),
                (iptables::CHAIN_OUT, 0),
            ]);
            for line in &lines {
                for chain in iptables::CHAINS {
                    if line.starts_with(&format!("-A {chain} ")) {
                        *expected.entry(chain).or_default() += 1;
                    }
                }
            }
            let chain_problems = iptables::chain_drift(family, &state, &expected);
            if !chain_problems.is_empty() {
                problems.extend(chain_problems);
                self.iptables_restore(family, iptables::restore_script(family, &state, &lines))?;
            }
        }
        let plan = reconcile::plan_sets(&self.desired(Utc::now()), &sets.members());
        for (net, _) in &plan.add {
            problems.push(format!("entry {net} missing from {}", Family::of(net).set_name()));
        }
        for net in &plan.remove {
            problems.push(format!("stray entry {net} in {}", Family::of(net).set_name()));
        }
        self.ipset_restore(ipset::ipset_script(&plan.add, &plan.remove, false))?;
        Ok(DriftReport { problems })
    }

    fn block_many(&mut self, requests: &[BlockRequest], now: DateTime<Utc>) -> Result<Vec<BlockEntry>> {
        self.protected.check(requests)?;
        let entries: Vec<BlockEntry> = requests
            .iter()
            .map(|r| {
                let expires = r
                    .duration
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| now + d);
                BlockEntry::new(r.net, &r.reason, now, expires)
            })
            .collect();
        let adds: Vec<ipset::SetAdd> = entries.iter().map(|e| (e.net, e.remaining_secs(now))).collect();
        if let Err(err) = self.ipset_restore(ipset::ipset_script(&adds, &[], false)) {
            return Err(self.roll_back_batch(&entries, err));
        }
        let mut added = Vec::with_capacity(entries.len());
        for mut entry in entries {
            entry.state = if self.dry_run() {
                EntryState::NotEnforced
            } else {
                EntryState::Enforced
            };
            let previous = self.list.insert(entry.clone());
            // Re-blocking with the same reason and expiry is not a new ban.
            let same = previous.is_some_and(|p| p.reason == entry.reason && p.expires == entry.expires);
            if !same {
                let secs = entry.remaining_secs(now);
                self.history.record_ban(entry.net, &entry.reason, now, secs);
            }
            added.push(entry);
        }
        self.save()?;
        Ok(added)
    }

    /// Undoes the part of a failed add batch that reached the kernel, and names the failing entry.
    fn roll_back_batch(&mut self, entries: &[BlockEntry], err: EnforceError) -> EnforceError {
        let new: Vec<IpNet> = entries
            .iter()
            .map(|e| e.net)
            .filter(|n| self.list.get(n).is_none())
            .collect();
        if let Ok(sets) = self.read_sets() {
            let members = sets.members();
            let applied: Vec<IpNet> = new.into_iter().filter(|n| members.contains(n)).collect();
            // Best effort: the next drift check removes anything this could not.
            self.ipset_restore(ipset::ipset_script(&[], &applied, false)).ok();
        }
        let failing = match &err {
            EnforceError::Command { stderr, .. } => {
                ipset::error_line(stderr).and_then(|line| entries.get(line.wrapping_sub(1)))
            }
            _ => None,
        };
        match failing {
            Some(entry) => EnforceError::BatchEntry {
                entry: entry.net.to_string(),
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
        self.ipset_restore(ipset::ipset_script(&[], nets, false))?;
        let mut removed = 0;
        for net in nets {
            if self.list.remove(net).is_some() {
                self.history.record_lift(*net, now, why);
                removed += 1;
            }
        }
        self.save()?;
        Ok(removed)
    }

    fn unblock_all(&mut self, why: LiftReason, now: DateTime<Utc>) -> Result<usize> {
        let mut script = ipset::ipset_script(&[], &[], true);
        script.push_str(&ipset::flush_sets_script());
        self.ipset_restore(script)?;
        let removed = self.list.clear();
        for entry in &removed {
            self.history.record_lift(entry.net, now, why);
        }
        self.save()?;
        Ok(removed.len())
    }

    fn expire(&mut self, now: DateTime<Utc>) -> Result<Vec<IpNet>> {
        let expired = self.list.expired(now);
        self.unblock(&expired, LiftReason::Expired, now)?;
        Ok(expired)
    }

    fn set_kernel_rules(&mut self, rules: &[KernelRule]) -> Result<()> {
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
                    if let (Ok(old), Ok(state)) =
                        (Self::rule_lines(&self.rules, family), self.read_chains(family))
                    {
                        self.iptables_restore(family, iptables::restore_script(family, &state, &old))
                            .ok();
                    }
                }
                return Err(err);
            }
            done.push(family);
        }
        self.rules = rules.to_vec();
        Ok(())
    }

    fn flush_kernel(&mut self) -> Result<()> {
        for family in Family::ALL {
            let state = self.read_chains(family)?;
            if let Some(script) = iptables::flush_script(&state) {
                self.iptables_restore(family, script)?;
            }
        }
        let sets = self.read_sets()?;
        for family in Family::ALL {
            if sets.has_set(family) || self.dry_run() {
                self.runner
                    .run(&Cmd::new("ipset", &["destroy", family.set_name()]))?;
            }
        }
        self.rules.clear();
        self.list
            .iter_mut()
            .for_each(|e| e.state = EntryState::NotEnforced);
        self.save()
    }
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
        assert_eq!(entry.state, EntryState::NotEnforced);
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
}
