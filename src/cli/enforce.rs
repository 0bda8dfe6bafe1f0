//! CLI subcommands over the enforcer: `block`, `unblock`, `list`, `flush`. Each checks privileges before
//! changing anything, and `--dry-run` prints the exact commands instead of running them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;

use super::{CliError, CliResult};
use netwarden::blocklist::{BLOCKLIST_FILE, BlockList, EntryState, parse_duration};
use netwarden::enforce::runner::{Cmd, CommandRunner, RecordingRunner, SystemRunner};
use netwarden::enforce::{self, BlockRequest, EnforceConfig, EnforceError, Enforcer};
use netwarden::metrics::Metrics;

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
    /// IP address or CIDR network (IPv4 or IPv6).
    pub addr: String,
    /// Why it is blocked.
    #[arg(long, default_value = "blocked by user")]
    pub reason: String,
    /// Ban length: 30s, 10m, 2h, 1d (default: until unblocked).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Block even loopback, own addresses, the default gateway or the SSH peer.
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
    /// Print CSV (address,reason,added,expires) instead of a table.
    #[arg(long, conflicts_with = "text")]
    pub csv: bool,
    /// Print plain text (one address per line, reason as a comment), ready for `netwarden import`.
    #[arg(long)]
    pub text: bool,
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
            CliError::BadInput(anyhow!(err))
        }
        other => CliError::Runtime(anyhow!(other)),
    }
}

fn io_error(err: std::io::Error) -> CliError {
    CliError::Runtime(anyhow!("writing output: {err}"))
}

/// Opens the enforcer for a subcommand: a recording runner for `--dry-run`, else checks privileges first
/// (nothing is changed without them) and uses the real runner.
fn open(opts: &EnforceOpts) -> Result<(Enforcer, Option<Arc<RecordingRunner>>), CliError> {
    let config = EnforceConfig {
        state_dir: Some(state_dir(opts)),
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

/// Refuses protected addresses (loopback, own, gateway, SSH peer) before anything is opened or changed;
/// the facts are read from this host even for `--dry-run`.
fn refuse_protected(requests: &[BlockRequest]) -> CliResult {
    if requests.iter().all(|r| r.force) {
        return Ok(());
    }
    let ssh = std::env::var("SSH_CONNECTION").ok();
    enforce::Protected::detect(&SystemRunner::new(), ssh.as_deref())
        .check(requests)
        .map_err(cli_error)
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

/// Runs `netwarden block`.
///
/// # Errors
/// `BadInput` for a bad address, duration or a refused protected address; `Runtime` otherwise.
pub fn run_block(args: &BlockArgs, out: &mut dyn Write) -> CliResult {
    // Validate all input before touching anything.
    let duration = match &args.duration {
        Some(text) => Some(parse_duration(text).map_err(|e| CliError::BadInput(anyhow!(e)))?),
        None => None,
    };
    let request = BlockRequest::parse(&args.addr, &args.reason, duration, args.force).map_err(cli_error)?;
    refuse_protected(std::slice::from_ref(&request))?;
    let (enforcer, recorder) = open(&args.opts)?;
    let entry = enforcer.block(request).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    let how_long = args
        .duration
        .as_deref()
        .map_or_else(|| "until unblocked".to_owned(), |d| format!("for {d}"));
    writeln!(
        out,
        "blocked {} {how_long} ({}): {}",
        entry.net,
        entry.reason,
        entry.state.label()
    )
    .map_err(io_error)
}

/// Runs `netwarden unblock`.
///
/// # Errors
/// `BadInput` for a bad address; `Runtime` when it was not blocked or a command failed.
pub fn run_unblock(args: &UnblockArgs, out: &mut dyn Write) -> CliResult {
    let net = enforce::parse_addr(&args.addr).map_err(cli_error)?;
    let (enforcer, recorder) = open(&args.opts)?;
    let removed = enforcer.unblock(net).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    if removed {
        writeln!(out, "unblocked {net}").map_err(io_error)
    } else {
        Err(CliError::Runtime(anyhow!("{net} was not in the block list")))
    }
}

/// Runs `netwarden list`: the saved list; with privileges, each entry's state is checked against the
/// kernel sets (read-only).
///
/// # Errors
/// `Runtime` when the saved list cannot be read.
pub fn run_list(args: &ListArgs, out: &mut dyn Write) -> CliResult {
    let path = state_dir(&args.opts).join(BLOCKLIST_FILE);
    let mut list = BlockList::load(&path).map_err(|e| CliError::BadInput(anyhow!(e)))?;
    let mut strays = Vec::new();
    let checked = !args.opts.dry_run && enforce::check_privileges().is_ok();
    if checked {
        let members = SystemRunner::new()
            .run(&Cmd::new("ipset", &["save"]))
            .map(|o| enforce::ipset::parse_save(&o.stdout).members());
        for entry in list.iter_mut() {
            entry.state = match &members {
                Ok(members) if members.contains(&entry.net) => EntryState::Enforced,
                Ok(_) => EntryState::NotEnforced,
                Err(err) => EntryState::Failed(err.to_string()),
            };
        }
        if let Ok(members) = &members {
            strays = members
                .iter()
                .filter(|n| list.get(n).is_none())
                .copied()
                .collect();
        }
    }
    if args.csv {
        return netwarden::blocklist::io::export_csv(&list, out).map_err(|e| CliError::Runtime(anyhow!(e)));
    }
    if args.text {
        return netwarden::blocklist::io::export_text(&list, out).map_err(io_error);
    }
    for entry in list.iter() {
        let expires = entry.expires.map_or_else(
            || "never".to_owned(),
            |t| {
                format!(
                    "{} ({} s left)",
                    t.to_rfc3339(),
                    (t - chrono::Utc::now()).num_seconds().max(0)
                )
            },
        );
        writeln!(
            out,
            "{}\t{}\texpires {}\t{}",
            entry.net,
            entry.state.label(),
            expires,
            entry.reason
        )
        .map_err(io_error)?;
    }
    for net in &strays {
        writeln!(
            out,
            "{net}\tin the kernel, not on the list (stray: removed at next start or drift check)"
        )
        .map_err(io_error)?;
    }
    if !checked {
        writeln!(
            out,
            "# kernel state not checked (needs root or CAP_NET_ADMIN); states are the last ones saved"
        )
        .map_err(io_error)?;
    }
    writeln!(out, "{} entries", list.len()).map_err(io_error)
}

/// Runs `netwarden import`: parses the whole file first (a bad line names its number and nothing is
/// blocked), then blocks every entry as one batch.
///
/// # Errors
/// `BadInput` for an unreadable file, a bad line, a bad duration or a refused address; `Runtime` when the
/// kernel rejected the batch (nothing applied then).
pub fn run_import(args: &ImportArgs, out: &mut dyn Write) -> CliResult {
    let bad = |e: &dyn std::fmt::Display| CliError::BadInput(anyhow!("{}: {e}", args.file.display()));
    let duration = match &args.duration {
        Some(text) => Some(parse_duration(text).map_err(|e| CliError::BadInput(anyhow!(e)))?),
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
    let now = chrono::Utc::now();
    let requests: Vec<BlockRequest> = imported
        .into_iter()
        .filter(|e| e.expires.is_none_or(|at| at > now))
        .map(|e| BlockRequest {
            net: e.net,
            reason: e.reason.unwrap_or_else(|| args.reason.clone()),
            duration: e.expires.and_then(|at| (at - now).to_std().ok()).or(duration),
            force: args.force,
        })
        .collect();
    refuse_protected(&requests)?;
    let (enforcer, recorder) = open(&args.opts)?;
    let added = enforcer.block_many(&requests).map_err(cli_error)?;
    finish_dry_run(recorder.as_ref(), out)?;
    writeln!(
        out,
        "imported {} entries from {}",
        added.len(),
        args.file.display()
    )
    .map_err(io_error)
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
            record.reason,
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
    let (enforcer, recorder) = open(&args.opts)?;
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

/// Kernel enforcement while `netwarden run` captures: the block list reconciled at start, `enforce: true`
/// rules in the kernel, expired bans lifted, drift repaired, and (opt-in) auto-block.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuardArgs {
    /// Enforce while capturing: reconcile the kernel with the block list at start, put the Block rules
    /// marked `enforce: true` into the kernel, lift expired bans and repair drift every 5 s.
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
}

/// The running enforcement thread of `netwarden run`; `stop` ends it (and removes our rules when asked).
pub struct Guard {
    stop: crossbeam_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    kernel_blocked: Arc<arc_swap::ArcSwap<netwarden::engine::KernelBlocked>>,
}

/// The enforced entries of `enforcer`, for the engine to mark packets the kernel drops (and their count
/// for `--metrics`).
fn publish(
    enforcer: &Enforcer,
    to: &arc_swap::ArcSwap<netwarden::engine::KernelBlocked>,
    metrics: Option<&Metrics>,
) {
    let nets: Vec<_> = enforcer
        .entries()
        .into_iter()
        .filter(|e| e.state == EntryState::Enforced)
        .map(|e| e.net)
        .collect();
    // Metrics hook (issue 13): the guard service that replaces this thread reports the same three numbers.
    if let Some(metrics) = metrics {
        metrics.set_active_bans(nets.len() as u64);
    }
    let rules = enforcer.kernel_rules();
    to.store(Arc::new(
        netwarden::engine::KernelBlocked::new(nets).with_rules(rules.iter().map(|r| &r.name)),
    ));
}

impl Guard {
    /// Checks the options and privileges, opens the enforcer (reconciling the kernel), applies the kernel
    /// rules of `rules` and starts the thread. Alerts sent to the returned sender feed auto-block.
    ///
    /// # Errors
    /// `BadInput` for a bad duration, allow entry or rule that cannot be enforced; `Runtime` without
    /// privileges or when the kernel cannot be reconciled. Nothing is changed on a bad input.
    pub fn start(
        args: &GuardArgs,
        shared: &netwarden::rules::SharedRules,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<(Self, crossbeam_channel::Sender<netwarden::detect::Alert>), CliError> {
        let shared = Arc::clone(shared);
        let mut last_rules = shared.load_full();
        let rules = &*last_rules;
        let bad = |e: &dyn std::fmt::Display| CliError::BadInput(anyhow!("{e}"));
        let auto = match &args.auto_block {
            Some(first) => {
                let base_ban = parse_duration(first).map_err(|e| bad(&e))?;
                let allow = args
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
        let (mut kernel_rules, errors) = enforce::iptables::kernel_rules_of(rules);
        if let Some(first) = errors.into_iter().next() {
            return Err(cli_error(first));
        }
        enforce::check_privileges().map_err(cli_error)?;
        let config = EnforceConfig {
            state_dir: Some(state_dir(&EnforceOpts {
                dry_run: false,
                state_dir: args.state_dir.clone(),
            })),
            ..EnforceConfig::default()
        };
        let enforcer = Enforcer::open(Arc::new(SystemRunner::new()), config).map_err(cli_error)?;
        enforcer.set_kernel_rules(&kernel_rules).map_err(cli_error)?;
        eprintln!(
            "netwarden: enforcing {} block list entries and {} kernel rules ({}){}",
            enforcer.entries().len(),
            kernel_rules.len(),
            enforcer.backend(),
            if auto.is_some() { ", auto-block on" } else { "" }
        );
        let mut blocker =
            auto.map(|config| enforce::autoblock::AutoBlocker::new(config, enforcer.protected()));
        let (alert_tx, alert_rx) = crossbeam_channel::bounded::<netwarden::detect::Alert>(1_024);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let kernel_blocked = Arc::new(arc_swap::ArcSwap::from_pointee(
            netwarden::engine::KernelBlocked::default(),
        ));
        publish(&enforcer, &kernel_blocked, metrics.as_deref());
        let published = Arc::clone(&kernel_blocked);
        let remove_on_exit = args.remove_on_exit;
        let thread = std::thread::Builder::new()
            .name("enforce".into())
            .spawn(move || {
                let tick = crossbeam_channel::tick(std::time::Duration::from_secs(5));
                loop {
                    crossbeam_channel::select! {
                        recv(alert_rx) -> alert => {
                            let (Ok(alert), Some(blocker)) = (alert, blocker.as_mut()) else { continue };
                            let Some(request) = blocker.observe(&alert) else { continue };
                            let net = request.net;
                            // A longer ban already in force is not shortened by a repeat alert.
                            if enforcer.entries().iter().any(|e| e.net == net && e.expires.is_none()) {
                                continue;
                            }
                            match enforcer.block(request) {
                                Ok(entry) => {
                                    if let Some(metrics) = &metrics {
                                        metrics.record_bans(1);
                                    }
                                    eprintln!("netwarden: auto-blocked {} ({})", entry.net, entry.reason);
                                }
                                Err(err) => eprintln!("netwarden: auto-block of {net} failed: {err}"),
                            }
                            publish(&enforcer, &published, metrics.as_deref());
                        }
                        recv(tick) -> _ => {
                            // A reloaded rules file (the engine's watcher swapped it) updates the kernel rules.
                            let current = shared.load_full();
                            if !Arc::ptr_eq(&current, &last_rules) {
                                let (rules, errors) = enforce::iptables::kernel_rules_of(&current);
                                if let Some(err) = errors.first() {
                                    eprintln!("netwarden: rules reloaded, kernel rules kept as they were: {err}");
                                } else if rules != kernel_rules {
                                    match enforcer.set_kernel_rules(&rules) {
                                        Ok(()) => {
                                            eprintln!("netwarden: {} kernel rules after reload", rules.len());
                                            kernel_rules = rules;
                                        }
                                        Err(err) => eprintln!("netwarden: kernel rules not updated: {err}"),
                                    }
                                }
                                last_rules = current;
                            }
                            // Expired bans, lifted here so they can be counted (check_drift lifts them too).
                            if let (Ok(lifted), Some(metrics)) = (enforcer.tick(chrono::Utc::now()), &metrics) {
                                metrics.record_unbans(lifted.len() as u64);
                            }
                            match enforcer.check_drift() {
                                Ok(report) if report.problems.is_empty() => {}
                                Ok(report) => {
                                    eprintln!("netwarden: drift repaired: {}", report.problems.join("; "));
                                }
                                Err(err) => eprintln!("netwarden: drift check failed: {err}"),
                            }
                            publish(&enforcer, &published, metrics.as_deref());
                        }
                        recv(stop_rx) -> _ => break,
                    }
                }
                if remove_on_exit {
                    match enforcer.flush_kernel() {
                        Ok(()) => eprintln!("netwarden: removed netwarden's rules from the kernel"),
                        Err(err) => eprintln!("netwarden: removing our rules failed: {err}"),
                    }
                }
            })
            .map_err(|e| CliError::Runtime(anyhow!("cannot start the enforcement thread: {e}")))?;
        Ok((
            Self {
                stop: stop_tx,
                thread: Some(thread),
                kernel_blocked,
            },
            alert_tx,
        ))
    }

    /// What the kernel drops right now (block-list entries), for `EngineConfig::kernel_blocked`.
    #[must_use]
    pub fn kernel_blocked(&self) -> Arc<arc_swap::ArcSwap<netwarden::engine::KernelBlocked>> {
        Arc::clone(&self.kernel_blocked)
    }

    /// Stops the thread and waits for it (and for the removal of our rules, when asked).
    pub fn stop(mut self) {
        self.stop.send(()).ok();
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
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
            reason: "x".to_owned(),
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
        assert!(!dir.path().join(BLOCKLIST_FILE).exists());
    }

    #[test]
    fn bad_input_exit_code_2() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = BlockArgs {
            addr: "1.2.3.4;reboot".to_owned(),
            reason: String::new(),
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
