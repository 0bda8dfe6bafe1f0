//! `netwarden block`, `unblock`, `list` and `flush`: the block list and its kernel enforcement from the
//! command line. Every change is checked (address parsed, protected addresses refused, privileges present)
//! before anything is touched; `--dry-run` prints the exact commands instead.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use chrono::Utc;
use ipnet::IpNet;

use super::{CliError, CliResult};
use crate::blocklist::{
    BLOCKLIST_FILE, BanHistory, BlockEntry, BlockList, EntryState, HISTORY_FILE, LiftReason, parse_duration,
    parse_net,
};
use crate::enforce::{EnforceError, Enforcer, Protected, SystemRunner, has_net_admin};

/// Ban history records kept.
const HISTORY_CAPACITY: usize = 10_000;

/// Where the block list lives.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// State directory holding blocklist.ron and history.ron (default: /var/lib/netwarden as root, else
    /// $XDG_STATE_HOME/netwarden or ~/.local/state/netwarden).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The state directory, created if missing.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn dir(&self) -> Result<PathBuf, CliError> {
        let dir = self.state_dir.clone().unwrap_or_else(default_state_dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::Runtime(anyhow!("cannot create state directory {}: {e}", dir.display()))
        })?;
        Ok(dir)
    }
}

/// The default state directory for this user.
#[must_use]
pub fn default_state_dir() -> PathBuf {
    if has_root() {
        return PathBuf::from("/var/lib/netwarden");
    }
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(state).join("netwarden");
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".netwarden"),
        |h| PathBuf::from(h).join(".local/state/netwarden"),
    )
}

fn has_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// `netwarden block`.
#[derive(Debug, Clone, clap::Args)]
pub struct BlockArgs {
    /// IP address or CIDR network (v4 or v6).
    pub addr: String,
    /// Why (shown in the list and the history).
    #[arg(long, default_value = "blocked from the command line")]
    pub reason: String,
    /// Ban length (30s, 10m, 2h, 1d); the kernel lifts it by itself. Default: until unblocked.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Block even loopback, this host's addresses, the default gateway or your SSH peer.
    #[arg(long)]
    pub force: bool,
    /// Print the exact commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `netwarden unblock`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnblockArgs {
    /// IP address or CIDR network, as it was blocked.
    pub addr: String,
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `netwarden list` and `netwarden flush`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

/// `netwarden flush`.
#[derive(Debug, Clone, clap::Args)]
pub struct FlushArgs {
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

fn bad(e: impl std::fmt::Display) -> CliError {
    CliError::BadInput(anyhow!("{e}"))
}

fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(anyhow!("{e}"))
}

fn require_privilege() -> Result<(), CliError> {
    if has_net_admin() {
        return Ok(());
    }
    let binary = std::env::current_exe().map_or_else(|_| "netwarden".to_owned(), |p| p.display().to_string());
    Err(runtime(EnforceError::NotPermitted { binary }))
}

fn enforcer() -> Enforcer {
    Enforcer::new(Box::new(SystemRunner::default()))
}

struct State {
    dir: PathBuf,
    list: BlockList,
    history: BanHistory,
}

impl State {
    fn load(args: &StateArgs) -> Result<Self, CliError> {
        let dir = args.dir()?;
        let list = BlockList::load(&dir.join(BLOCKLIST_FILE)).map_err(bad)?;
        let history = BanHistory::load(&dir.join(HISTORY_FILE), HISTORY_CAPACITY).map_err(bad)?;
        Ok(Self { dir, list, history })
    }

    fn save(&self) -> Result<(), CliError> {
        self.list.save(&self.dir.join(BLOCKLIST_FILE)).map_err(runtime)?;
        self.history.save(&self.dir.join(HISTORY_FILE)).map_err(runtime)
    }
}

fn print(lines: &[String]) -> CliResult {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in lines {
        writeln!(out, "{line}").map_err(runtime)?;
    }
    Ok(())
}

/// Blocks an address or network in the kernel and records it.
///
/// # Errors
/// Bad address or duration, a protected address (exit 2); no privilege or a failed command (exit 1).
pub fn block(args: &BlockArgs) -> CliResult {
    let net: IpNet = parse_net(&args.addr).map_err(bad)?;
    let duration = args
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(bad)?;
    if !args.force
        && let Some(why) = Protected::from_system().refusal(&net)
    {
        return Err(bad(EnforceError::Refused { net, why }));
    }
    let timeout = duration.map(|d| d.as_secs());
    let e = enforcer();
    if args.dry_run {
        return print(&e.describe_block(&[(net, timeout)]));
    }
    require_privilege()?;
    let mut state = State::load(&args.state)?;
    let now = Utc::now();
    let expires = duration
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now + d);
    let mut entry = BlockEntry::new(net, &args.reason, now, expires);
    let result = e.block(&[(net, timeout)]);
    entry.state = match &result {
        Ok(()) => EntryState::Enforced,
        Err(err) => EntryState::Failed(err.to_string()),
    };
    state.list.insert(entry);
    if result.is_ok() {
        state.history.record_ban(net, &args.reason, now, timeout);
    }
    state.save()?;
    result.map_err(runtime)?;
    let how_long = args
        .duration
        .as_deref()
        .map_or_else(|| "until unblocked".to_owned(), |d| format!("for {d}"));
    print(&[format!("blocked {net} {how_long} ({})", args.reason)])
}

/// Removes an address or network from the kernel and the list.
///
/// # Errors
/// Bad address (exit 2); no privilege or a failed command (exit 1).
pub fn unblock(args: &UnblockArgs) -> CliResult {
    let net = parse_net(&args.addr).map_err(bad)?;
    if args.dry_run {
        return print(&[format!(
            "ipset restore -exist <<< \"del {} {net}\"",
            crate::enforce::script::set_for(&net)
        )]);
    }
    require_privilege()?;
    let mut state = State::load(&args.state)?;
    enforcer().unblock(&[net]).map_err(runtime)?;
    let known = state.list.remove(&net).is_some();
    state.history.record_lift(net, Utc::now(), LiftReason::Manual);
    state.save()?;
    print(&[if known {
        format!("unblocked {net}")
    } else {
        format!("{net} was not on the block list; removed from the kernel if it was there")
    }])
}

/// Shows the list next to what the kernel really holds.
///
/// # Errors
/// The state files are broken (exit 2).
pub fn list(args: &ListArgs) -> CliResult {
    let mut state = State::load(&args.state)?;
    let kernel = if has_net_admin() {
        enforcer().kernel_entries().ok()
    } else {
        None
    };
    let now = Utc::now();
    let mut lines = Vec::new();
    for net in state.list.expired(now) {
        state.list.remove(&net);
        state.history.record_lift(net, now, LiftReason::Expired);
    }
    for entry in state.list.iter() {
        let real = match &kernel {
            Some(k) => match k.iter().find(|(n, _)| *n == entry.net) {
                Some((_, Some(left))) => format!("enforced, {left} s left"),
                Some((_, None)) => "enforced".to_owned(),
                None => "NOT in the kernel".to_owned(),
            },
            None => format!(
                "{} (kernel not checked: needs root or CAP_NET_ADMIN)",
                entry.state.label()
            ),
        };
        lines.push(format!(
            "{:<40} {:<45} {}",
            entry.net.to_string(),
            real,
            entry.reason
        ));
    }
    if let Some(k) = &kernel {
        for (net, _) in k.iter().filter(|(n, _)| state.list.get(n).is_none()) {
            lines.push(format!(
                "{:<40} {:<45} {}",
                net.to_string(),
                "in the kernel, not on the list (stray)",
                ""
            ));
        }
    }
    lines.push(format!("{} entries", state.list.len()));
    if has_net_admin() {
        state.save()?;
    }
    print(&lines)
}

/// Removes every netwarden chain, jump and set from the kernel; the list is kept, marked not enforced.
///
/// # Errors
/// No privilege or a failed command (exit 1).
pub fn flush(args: &FlushArgs) -> CliResult {
    if args.dry_run {
        return print(&[
            "for t in iptables ip6tables: $t -w 5 -D {INPUT,OUTPUT,FORWARD} -j NETWARDEN; $t -w 5 -F NETWARDEN; $t -w 5 -X NETWARDEN".into(),
            "ipset destroy netwarden4; ipset destroy netwarden6".into(),
        ]);
    }
    require_privilege()?;
    enforcer().flush().map_err(runtime)?;
    let path_note = |dir: &Path| dir.join(BLOCKLIST_FILE).display().to_string();
    let mut state = State::load(&args.state)?;
    let now = Utc::now();
    let nets: Vec<IpNet> = state.list.iter().map(|e| e.net).collect();
    for net in nets {
        if let Some(entry) = state.list.get_mut(&net) {
            entry.state = EntryState::NotEnforced;
        }
        state.history.record_lift(net, now, LiftReason::Flush);
    }
    state.save()?;
    print(&[format!(
        "removed every netwarden rule and set from the kernel; the list in {} is kept (not enforced)",
        path_note(&state.dir)
    )])
}
