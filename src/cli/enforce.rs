//! CLI subcommands over the enforcer: `block`, `unblock`, `list`, `import`, `history`, `flush`, `confirm`,
//! and the guard of `run --enforce`. Each changing command checks privileges before changing anything and
//! holds the state directory's lock for its whole read-change-save sequence (so scripts may run many at
//! once); `--dry-run` prints the exact commands instead of running them. Everything a user or the network
//! supplied (reasons, error text from commands) is printed escaped.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use chrono::{DateTime, SecondsFormat, Utc};
use netwarden::blocklist::{BlockList, EntryState, parse_duration};
use netwarden::enforce::guard::{Guard, GuardConfig};
use netwarden::enforce::runner::{Cmd, RecordingRunner, SystemRunner};
use netwarden::enforce::{
    self, BlockChange, BlockOutcome, BlockRequest, EnforceConfig, EnforceError, Enforcer, Protected, Update,
};
use netwarden::text::escape;

use super::{CliError, CliResult};

/// Options shared by the enforcement subcommands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EnforceOpts {
    /// Print the exact commands instead of running them (no root needed, nothing saved).
    #[arg(long)]
    pub dry_run: bool,
    /// Where the block list is kept (default: /var/lib/netwarden as root, else
    /// $XDG_STATE_HOME/netwarden or ~/.local/state/netwarden).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `netwarden block ADDR [--reason R] [--for DURATION] [--force]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BlockArgs {
    /// IP address or CIDR network (IPv4 or IPv6; `::ffff:a.b.c.d` is the IPv4 address).
    pub addr: String,
    /// Why it is blocked (default for a new entry: "blocked by user"). On an entry that is already
    /// blocked, replaces its reason.
    #[arg(long)]
    pub reason: Option<String>,
    /// Ban length: 30s, 10m, 2h, 1d, or `never` (until unblocked, the default for a new entry). On an entry
    /// that is already blocked, extends the ban; shortening it needs --force.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Block even loopback, own addresses, the default gateway or the SSH peer; shorten an existing ban.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden unblock ADDR`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnblockArgs {
    /// IP address or CIDR network, as it was blocked.
    pub addr: String,
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Print CSV (address,reason,added,expires) instead of a table; the kernel is not checked.
    #[arg(long, conflicts_with_all = ["text", "repair"])]
    pub csv: bool,
    /// Print plain text (one address per line, reason as a comment), ready for `netwarden import`; the
    /// kernel is not checked.
    #[arg(long, conflicts_with = "repair")]
    pub text: bool,
    /// Repair what is wrong in the kernel (missing chains, jumps, sets or entries; strays; rules added by
    /// hand to netwarden's chains) and say what was repaired. Needs root or CAP_NET_ADMIN.
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden import FILE`: blocks every address of a plain text list (one per line, `#` comments) or a
/// CSV export (`address,reason,added,expires`), as one all-or-nothing batch.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The file; `.csv` files are read as CSV, anything else as plain text.
    pub file: PathBuf,
    /// Reason for entries that have none in the file.
    #[arg(long, default_value = "imported")]
    pub reason: String,
    /// Ban length for entries without an expiry in the file (30s, 10m, 2h, 1d); default: until unblocked.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Block even loopback, own addresses, the default gateway or the SSH peer.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden history`: every ban (who, when, why, how long, lifted when and how).
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden flush`: unblock everything and remove every trace of netwarden from the kernel.
#[derive(Debug, Clone, clap::Args)]
pub struct FlushArgs {
    #[command(flatten)]
    pub opts: EnforceOpts,
}

/// `netwarden confirm`: keep the change that could cut you off (a broad or forced block, a risky
/// `enforce: true` rule) before it is undone.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub opts: EnforceOpts,
}

fn state_dir(opts: &EnforceOpts) -> PathBuf {
    opts.state_dir
        .clone()
        .unwrap_or_else(netwarden::blocklist::default_user_state_dir)
}

/// Maps an enforcement error to an exit code: bad input (2) or runtime (1).
#[must_use]
pub fn cli_error(err: EnforceError) -> CliError {
    match err {
        EnforceError::BadAddress { .. } | EnforceError::Refused { .. } | EnforceError::BadRule { .. } => {
            CliError::BadInput(anyhow!(escape(&err.to_string()).into_owned()))
        }
        other => CliError::Runtime(anyhow!(escape(&other.to_string()).into_owned())),
    }
}

fn io_error(err: std::io::Error) -> CliError {
    CliError::Runtime(anyhow!("writing output: {err}"))
}

fn bad_duration(err: netwarden::blocklist::BlocklistError) -> CliError {
    CliError::BadInput(anyhow!(escape(&err.to_string()).into_owned()))
}

/// Opens the enforcer for a subcommand: a recording runner for `--dry-run`, else checks privileges first
/// (nothing is changed without them) and uses the real runner. `protected` are facts already read.
fn open(
    opts: &EnforceOpts,
    protected: Option<Protected>,
) -> Result<(Enforcer, Option<Arc<RecordingRunner>>), CliError> {
    let config = EnforceConfig {
        state_dir: Some(state_dir(opts)),
        protected,
        ..EnforceConfig::default()
    };
    if opts.dry_run {
        let recorder = Arc::new(RecordingRunner::dry_run());
        let enforcer = Enforcer::open(recorder.clone(), config).map_err(cli_error)?;
        return Ok((enforcer, Some(recorder)));
    }
    enforce::check_privileges().map_err(cli_error)?;
    let enforcer = Enforcer::open(Arc::new(SystemRunner::new()), config).map_err(cli_error)?;
    Ok((enforcer, None))
}

/// Reads the protected addresses (loopback, own, gateway, SSH peer) and refuses a request that would
/// block one, before anything is opened or changed; the facts are read from this host even for
/// `--dry-run`, and handed on so they are read once.
fn refuse_protected(requests: &[BlockRequest]) -> Result<Protected, CliError> {
    let ssh = std::env::var("SSH_CONNECTION").ok();
    let protected = Protected::detect(&SystemRunner::new(), ssh.as_deref());
    protected.check(requests).map_err(cli_error)?;
    Ok(protected)
}

/// Prints recorded commands, a restore script as a here-document.
fn print_commands(commands: &[Cmd], out: &mut dyn Write) -> std::io::Result<()> {
    for cmd in commands {
        match &cmd.stdin {
            Some(script) => {
                writeln!(out, "{} <<'EOF'", cmd.display())?;
                write!(out, "{script}")?;
                writeln!(out, "EOF")?;
            }
            None => writeln!(out, "{}", cmd.display())?,
        }
    }
    Ok(())
}

fn finish_dry_run(recorder: Option<&Arc<RecordingRunner>>, out: &mut dyn Write) -> CliResult {
    if let Some(recorder) = recorder {
        writeln!(out, "# dry run: these commands would run").map_err(io_error)?;
        print_commands(&recorder.commands(), out).map_err(io_error)?;
    }
    Ok(())
}

/// `2026-12-05T10:00:00Z (3600 s left)` or `never`.
fn expiry_text(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    expires.map_or_else(
        || "never".to_owned(),
        |at| {
            format!(
                "{} ({} s left)",
                at.to_rfc3339_opts(SecondsFormat::Secs, true),
                (at - now).num_seconds().max(0)
            )
        },
    )
}

/// Parses `--for`: a duration, or `never` for "until unblocked" (`Some(None)`).
fn parse_for(text: &str) -> Result<Option<Duration>, CliError> {
    match text.trim() {
        "never" | "permanent" | "forever" => Ok(None),
        other => parse_duration(other).map(Some).map_err(bad_duration),
    }
}

/// One line for the outcome of `block`.
fn describe_outcome(outcome: &BlockOutcome, how_long: &str) -> String {
    let entry = &outcome.entry;
    let net = entry.net;
    let reason = escape(&entry.reason);
    let state = escape(&entry.state.label()).into_owned();
    let expires = expiry_text(entry.expires, Utc::now());
    match &outcome.change {
        BlockChange::Added => format!("blocked {net} {how_long} ({reason}): {state}"),
        BlockChange::AddedPending { deadline, what } => format!(
            "blocked {net} {how_long} ({reason}): {state}, but {} could cut you off: it is undone at {} \
             unless you run `netwarden confirm`",
            escape(what),
            deadline.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        BlockChange::Already => {
            format!("already blocked {net} ({reason}, expires {expires}): {state}")
        }
        BlockChange::Updated(what) => format!(
            "updated {net}: {} ({reason}, expires {expires}): {state}",
            what.join(", ")
        ),
        BlockChange::Kept(why) => format!("already blocked {net}: {}: {state}", escape(why)),
    }
}

/// Runs `netwarden block`.
///
/// # Errors
/// `BadInput` for a bad address, duration or a refused protected address; `Runtime` when the kernel
/// command failed or the entry is on the list but not enforced.
pub fn run_block(args: &BlockArgs, out: &mut dyn Write) -> CliResult {
    // Validate all input before touching anything.
    let duration = match &args.duration {
        Some(text) => parse_for(text)?,
        None => None,
    };
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| "blocked by user".to_owned());
    let request = BlockRequest::parse(&args.addr, &reason, duration, args.force)
        .map_err(cli_error)?
        .with_update(Update {
            reason: args.reason.is_some(),
            expiry: args.duration.is_some(),
        });
    let protected = refuse_protected(std::slice::from_ref(&request))?;
    let (enforcer, recorder) = open(&args.opts, Some(protected))?;
    let outcome = enforcer.block(request).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    let how_long = match (&args.duration, duration) {
        (Some(text), Some(_)) => format!("for {}", text.trim()),
        _ => "until unblocked".to_owned(),
    };
    writeln!(out, "{}", describe_outcome(&outcome, &how_long)).map_err(io_error)?;
    if recorder.is_none() && outcome.entry.state != EntryState::Enforced {
        return Err(CliError::Runtime(anyhow!(
            "{} is on the block list but the kernel does not drop it: {}",
            outcome.entry.net,
            escape(&outcome.entry.state.label())
        )));
    }
    Ok(())
}

/// Runs `netwarden unblock`.
///
/// # Errors
/// `BadInput` for a bad address; `Runtime` when it was not blocked or a command failed.
pub fn run_unblock(args: &UnblockArgs, out: &mut dyn Write) -> CliResult {
    let net = enforce::parse_addr(&args.addr).map_err(cli_error)?;
    let (enforcer, recorder) = open(&args.opts, None)?;
    let removed = enforcer.unblock(net).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    if removed {
        writeln!(out, "unblocked {net}").map_err(io_error)
    } else {
        Err(CliError::Runtime(anyhow!("{net} was not in the block list")))
    }
}

/// Writes the list as a table: address, kernel state, expiry, reason (escaped).
fn print_table(list: &BlockList, checked: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let now = Utc::now();
    for entry in list.iter() {
        let state = if checked {
            escape(&entry.state.label()).into_owned()
        } else {
            "unchecked".to_owned()
        };
        writeln!(
            out,
            "{}\t{state}\texpires {}\t{}",
            entry.net,
            expiry_text(entry.expires, now),
            escape(&entry.reason)
        )?;
    }
    Ok(())
}

/// Runs `netwarden list`: the saved list next to what the kernel really holds (chains, jumps from
/// INPUT/OUTPUT/FORWARD and set membership, IPv4 and IPv6). An entry reads `enforced` only when the kernel
/// drops it. Problems are printed as warnings and make the exit status 1; `--repair` repairs them first.
/// Without privileges the kernel cannot be read: states read `unchecked`.
///
/// # Errors
/// `BadInput` when the saved list is broken; `Runtime` when the kernel does not match the list (after
/// printing it), or cannot be read.
pub fn run_list(args: &ListArgs, out: &mut dyn Write) -> CliResult {
    let dir = state_dir(&args.opts);
    if args.csv || args.text {
        let list = BlockList::load(&dir.join(netwarden::blocklist::BLOCKLIST_FILE))
            .map_err(|e| CliError::BadInput(anyhow!(e)))?;
        return if args.csv {
            netwarden::blocklist::io::export_csv(&list, out).map_err(|e| CliError::Runtime(anyhow!(e)))
        } else {
            netwarden::blocklist::io::export_text(&list, out).map_err(io_error)
        };
    }
    let privileged = enforce::check_privileges().is_ok();
    if args.repair && !privileged {
        return Err(cli_error(enforce::check_privileges().err().unwrap_or(
            EnforceError::NotPermitted {
                missing: "root or CAP_NET_ADMIN".into(),
            },
        )));
    }
    if !privileged || args.opts.dry_run {
        let list = BlockList::load(&dir.join(netwarden::blocklist::BLOCKLIST_FILE))
            .map_err(|e| CliError::BadInput(anyhow!(e)))?;
        print_table(&list, false, out).map_err(io_error)?;
        writeln!(
            out,
            "# kernel state not checked (needs root or CAP_NET_ADMIN): nothing above is known to be enforced"
        )
        .map_err(io_error)?;
        return writeln!(out, "{} entries", list.len()).map_err(io_error);
    }
    let config = EnforceConfig {
        state_dir: Some(dir),
        ..EnforceConfig::default()
    };
    let runner = Arc::new(SystemRunner::new());
    let enforcer = Enforcer::reader(runner, config).map_err(cli_error)?;
    if args.repair {
        let report = enforcer.check_drift().map_err(cli_error)?;
        for problem in &report.problems {
            writeln!(out, "# repaired: {}", escape(problem)).map_err(io_error)?;
        }
    }
    let view = enforcer.inspect().map_err(cli_error)?;
    print_table(&view.list, true, out).map_err(io_error)?;
    for net in &view.strays {
        writeln!(
            out,
            "{net}\tin the kernel, not on the list (stray: removed by `netwarden list --repair` or the next change)"
        )
        .map_err(io_error)?;
    }
    if let Some(pending) = &view.pending {
        writeln!(
            out,
            "# waiting for confirmation: {}; undone at {} unless you run `netwarden confirm`",
            escape(&pending.what),
            pending.deadline.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
        .map_err(io_error)?;
    }
    writeln!(out, "{} entries", view.list.len()).map_err(io_error)?;
    if view.problems.is_empty() {
        return Ok(());
    }
    for problem in &view.problems {
        eprintln!("netwarden: warning: {}", escape(problem));
    }
    Err(CliError::Runtime(anyhow!(
        "the kernel does not enforce the list as saved ({} problems above); `netwarden list --repair` \
         repairs them",
        view.problems.len()
    )))
}

/// Runs `netwarden import`: parses the whole file first (a bad line names its number and nothing is
/// blocked), then blocks every entry as one batch.
///
/// # Errors
/// `BadInput` for an unreadable file, a bad line, a bad duration or a refused address; `Runtime` when the
/// kernel rejected the batch (nothing applied then).
pub fn run_import(args: &ImportArgs, out: &mut dyn Write) -> CliResult {
    let shown = escape(&args.file.display().to_string()).into_owned();
    let bad = |e: &dyn std::fmt::Display| CliError::BadInput(anyhow!("{shown}: {}", escape(&e.to_string())));
    let duration = match &args.duration {
        Some(text) => parse_for(text)?,
        None => None,
    };
    let text = std::fs::read_to_string(&args.file).map_err(|e| bad(&e))?;
    let is_csv = args
        .file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    let imported = if is_csv {
        netwarden::blocklist::io::import_csv(text.as_bytes())
    } else {
        netwarden::blocklist::io::import_text(&text)
    }
    .map_err(|e| bad(&e))?;
    let now = Utc::now();
    let requests: Vec<BlockRequest> = imported
        .into_iter()
        .filter(|e| e.expires.is_none_or(|at| at > now))
        .map(|e| BlockRequest {
            net: e.net,
            reason: e.reason.unwrap_or_else(|| args.reason.clone()),
            duration: e.expires.and_then(|at| (at - now).to_std().ok()).or(duration),
            force: args.force,
            update: Update::default(),
        })
        .collect();
    let protected = if requests.iter().all(|r| r.force) {
        None
    } else {
        Some(refuse_protected(&requests)?)
    };
    let (enforcer, recorder) = open(&args.opts, protected)?;
    let outcomes = enforcer.block_many(&requests).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    let added = outcomes.iter().filter(|o| o.change == BlockChange::Added).count();
    writeln!(
        out,
        "imported {} entries from {shown} ({added} new, {} already blocked)",
        outcomes.len(),
        outcomes.len() - added
    )
    .map_err(io_error)?;
    let unenforced = outcomes
        .iter()
        .filter(|o| o.entry.state != EntryState::Enforced)
        .count();
    if recorder.is_none() && unenforced > 0 {
        return Err(CliError::Runtime(anyhow!(
            "{unenforced} of them are on the list but not enforced; `netwarden list` shows why"
        )));
    }
    Ok(())
}

/// Runs `netwarden history`: the ban history from the state directory (read-only).
///
/// # Errors
/// `BadInput` when the saved history is broken.
pub fn run_history(args: &HistoryArgs, out: &mut dyn Write) -> CliResult {
    let path = state_dir(&args.opts).join(netwarden::blocklist::HISTORY_FILE);
    let history =
        netwarden::blocklist::BanHistory::load(&path, netwarden::blocklist::BanHistory::DEFAULT_CAPACITY)
            .map_err(|e| CliError::BadInput(anyhow!(e)))?;
    if args.csv {
        return history.export_csv(out).map_err(|e| CliError::Runtime(anyhow!(e)));
    }
    for record in history.iter() {
        let length = record
            .ban_secs
            .map_or_else(|| "until removed".to_owned(), |s| format!("{s} s"));
        let lifted = match (record.lifted_at, &record.lifted_by) {
            (Some(at), Some(by)) => format!("lifted {} ({by:?})", at.to_rfc3339()),
            (Some(at), None) => format!("lifted {}", at.to_rfc3339()),
            _ => "active".to_owned(),
        };
        writeln!(
            out,
            "{}\t{}\tbanned {}\t{length}\t{lifted}",
            record.net,
            escape(&record.reason),
            record.banned_at.to_rfc3339()
        )
        .map_err(io_error)?;
    }
    writeln!(out, "{} records", history.len()).map_err(io_error)
}

/// Runs `netwarden flush`: unblocks everything and removes our chains, jumps and sets (IPv4 and IPv6).
///
/// # Errors
/// `Runtime` when a command failed.
pub fn run_flush(args: &FlushArgs, out: &mut dyn Write) -> CliResult {
    let (enforcer, recorder) = open(&args.opts, None)?;
    let removed = enforcer
        .unblock_all(netwarden::blocklist::LiftReason::Flush)
        .map_err(cli_error)?;
    enforcer.flush_kernel().map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    writeln!(
        out,
        "flushed: {removed} entries removed, netwarden chains and sets deleted"
    )
    .map_err(io_error)
}

/// Runs `netwarden confirm`: keeps the change waiting for confirmation.
///
/// # Errors
/// `Runtime` when nothing waits, or the kernel command failed.
pub fn run_confirm(args: &ConfirmArgs, out: &mut dyn Write) -> CliResult {
    let (enforcer, recorder) = open(&args.opts, None)?;
    let kept = enforcer.confirm().map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    match kept {
        Some(what) => writeln!(out, "kept: {}", escape(&what)).map_err(io_error),
        None => Err(CliError::Runtime(anyhow!(
            "no change is waiting for confirmation (it may have been undone already: see `netwarden history`)"
        ))),
    }
}

/// Kernel enforcement while `netwarden run` captures: the block list reconciled at start, `enforce: true`
/// rules in the kernel, expired bans lifted, drift repaired, and (opt-in) auto-block.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuardArgs {
    /// Enforce while capturing: reconcile the kernel with the block list at start, put the Block rules
    /// marked `enforce: true` into the kernel (a rule that could cut you off is undone after 30 s unless you
    /// run `netwarden confirm`), lift expired bans and repair drift every 5 s.
    #[arg(long)]
    pub enforce: bool,
    /// Ban the sources of detection alerts (port scan, flood, repeated denies), fail2ban style: the first
    /// ban lasts FIRST_BAN (default 10m) and each repeat doubles it, up to 7 days. Implies --enforce.
    #[arg(long, value_name = "FIRST_BAN", num_args = 0..=1, default_missing_value = "10m")]
    pub auto_block: Option<String>,
    /// Never auto-block this address or network (repeatable). Loopback, this host, the default gateway
    /// and the SSH peer are never auto-blocked anyway.
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Remove netwarden's chains and sets from the kernel when the command stops (the list is kept).
    #[arg(long)]
    pub remove_on_exit: bool,
    /// Where the block list is kept (default as for `netwarden block`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl GuardArgs {
    /// True when any enforcement was asked for.
    #[must_use]
    pub fn wanted(&self) -> bool {
        self.enforce || self.auto_block.is_some()
    }

    /// The guard's settings, every option checked.
    ///
    /// # Errors
    /// `BadInput` for a bad duration or allow entry.
    fn config(&self) -> Result<GuardConfig, CliError> {
        let bad = |e: &dyn std::fmt::Display| CliError::BadInput(anyhow!("{}", escape(&e.to_string())));
        let auto_block = match &self.auto_block {
            Some(first) => {
                let base_ban = parse_duration(first).map_err(|e| bad(&e))?;
                let allow = self
                    .allow
                    .iter()
                    .map(|a| netwarden::blocklist::parse_net(a).map_err(|e| bad(&e)))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(enforce::autoblock::AutoBlockConfig {
                    base_ban,
                    allow,
                    ..enforce::autoblock::AutoBlockConfig::default()
                })
            }
            None => None,
        };
        Ok(GuardConfig {
            enforce: EnforceConfig {
                state_dir: Some(state_dir(&EnforceOpts {
                    dry_run: false,
                    state_dir: self.state_dir.clone(),
                })),
                ..EnforceConfig::default()
            },
            auto_block,
            remove_on_exit: self.remove_on_exit,
            ..GuardConfig::default()
        })
    }
}

/// The guard of `netwarden run --enforce` with a thread printing its messages on stderr.
pub struct RunGuard {
    guard: Guard,
    printer: Option<std::thread::JoinHandle<()>>,
}

impl RunGuard {
    /// Checks the options, the rules and privileges, starts the guard and waits until it has reconciled
    /// the kernel (so capture starts enforced). Nothing is changed on a bad input.
    ///
    /// # Errors
    /// `BadInput` for a bad option or a rule that cannot be enforced; `Runtime` without privileges or when
    /// the kernel cannot be used.
    pub fn start(
        args: &GuardArgs,
        rules: &netwarden::rules::SharedRules,
        metrics: Option<Arc<netwarden::metrics::Metrics>>,
    ) -> Result<Self, CliError> {
        let mut config = args.config()?;
        config.metrics = metrics;
        let (kernel_rules, errors) = enforce::iptables::kernel_rules_of(&rules.load());
        if let Some(first) = errors.into_iter().next() {
            return Err(cli_error(first));
        }
        enforce::check_privileges().map_err(cli_error)?;
        let auto = config.auto_block.is_some();
        let guard = Guard::spawn(
            config,
            Arc::new(SystemRunner::new()),
            Some(Arc::clone(rules)),
            None,
        )
        .map_err(|e| CliError::Runtime(anyhow!("cannot start the enforcement thread: {e}")))?;
        let messages = guard.message_receiver();
        let printer = std::thread::Builder::new()
            .name("guard-log".into())
            .spawn(move || {
                for message in messages {
                    eprintln!("netwarden: {}", message.text);
                }
            })
            .ok();
        let ready = wait_ready(&guard);
        let snapshot = guard.snapshot();
        if let Some(why) = snapshot.unavailable.clone().filter(|_| ready) {
            guard.stop();
            return Err(CliError::Runtime(anyhow!("cannot enforce: {}", escape(&why))));
        }
        if !ready {
            guard.stop();
            return Err(CliError::Runtime(anyhow!(
                "the kernel could not be reconciled within 5 minutes"
            )));
        }
        eprintln!(
            "netwarden: enforcing {} block list entries and {} kernel rules ({}){}",
            snapshot.list.len(),
            kernel_rules.len(),
            snapshot.backend.as_deref().unwrap_or("iptables"),
            if auto { ", auto-block on" } else { "" }
        );
        Ok(Self { guard, printer })
    }

    /// What the kernel drops right now, for `EngineConfig::kernel_blocked`.
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<arc_swap::ArcSwap<netwarden::engine::KernelBlocked>> {
        self.guard.kernel_blocked()
    }

    /// Where the engine offers alerts, when auto-block is on.
    #[must_use]
    pub fn alert_sender(&self) -> Option<crossbeam_channel::Sender<netwarden::detect::Alert>> {
        self.guard
            .snapshot()
            .auto_block
            .then(|| self.guard.alert_sender())
    }

    /// Stops the guard (removing our rules when asked) and waits until its last message is printed.
    pub fn stop(self) {
        let Self { guard, printer } = self;
        guard.stop();
        if let Some(printer) = printer {
            printer.join().ok();
        }
    }
}

/// Waits until the guard has opened the enforcer (or failed to).
fn wait_ready(guard: &Guard) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        let snapshot = guard.snapshot();
        if snapshot.ready || snapshot.unavailable.is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn opts(dir: &Path) -> EnforceOpts {
        EnforceOpts {
            dry_run: true,
            state_dir: Some(dir.to_owned()),
        }
    }

    #[test]
    fn block_dry_run_prints_commands_and_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let args = BlockArgs {
            addr: "192.0.2.7".to_owned(),
            reason: Some("x".to_owned()),
            duration: Some("10m".to_owned()),
            force: false,
            opts: opts(dir.path()),
        };
        let mut out = Vec::new();
        run_block(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("ipset restore -exist <<'EOF'\nadd netwarden4 192.0.2.7/32 timeout 600\nEOF\n"),
            "{text}"
        );
        assert!(
            text.contains("iptables-restore --noflush -w 5 <<'EOF'\n*filter\n"),
            "{text}"
        );
        assert!(
            text.ends_with("blocked 192.0.2.7/32 for 10m (x): not enforced\n"),
            "{text}"
        );
        assert!(!dir.path().join(netwarden::blocklist::BLOCKLIST_FILE).exists());
    }

    #[test]
    fn bad_input_exit_code_2() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = BlockArgs {
            addr: "1.2.3.4;reboot".to_owned(),
            reason: None,
            duration: None,
            force: false,
            opts: opts(dir.path()),
        };
        let err = run_block(&args, &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), std::process::ExitCode::from(2));
        args.addr = "192.0.2.1".to_owned();
        args.duration = Some("10 minutes".to_owned());
        let err = run_block(&args, &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), std::process::ExitCode::from(2));
    }
}
