//! `netwarden connections`: capture live for a while (or until Ctrl-C), then print the flow table, one
//! connection per line with its program, user, counters and verdicts (text, or JSON lines with `--json`).
//!
//! A snapshot rather than a stream: the table is printed once capture has stopped and every pending
//! lookup has finished, so each line says what netwarden finally knew of it.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::capture::capture_error;
use super::{CliError, CliResult, load_rules};
use netwarden::capture::{LiveOptions, SourceSpec};
use netwarden::engine::{Deliver, Engine, EngineConfig};
use netwarden::export::{FlowRow, export_flows_jsonl};
use netwarden::flows::{Flow, FlowConfig};
use netwarden::packet::LocalAddrs;
use netwarden::rules::{RuleSet, shared};
use netwarden::text::escape;

/// `netwarden connections`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionsArgs {
    /// Interface to capture on, or `any`.
    #[arg(long, short)]
    pub iface: String,
    /// Seconds to capture before printing (Ctrl-C prints earlier).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Rules file, for the verdicts and rule of each connection (default: no rules, everything allowed).
    #[arg(long, short)]
    pub rules: Option<PathBuf>,
    /// BPF capture filter (tcpdump syntax).
    #[arg(long)]
    pub filter: Option<String>,
    /// One JSON object per connection instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Captures, then prints the connections seen.
///
/// # Errors
/// Bad rules, interface, filter or duration (exit 2); no privilege or a failed capture (exit 1).
pub fn connections(args: &ConnectionsArgs) -> CliResult {
    if !(args.seconds.is_finite() && args.seconds >= 0.0 && args.seconds <= 86_400.0) {
        return Err(CliError::BadInput(anyhow!(
            "--seconds {} is not a duration between 0 and 86400",
            args.seconds
        )));
    }
    let rules = match &args.rules {
        Some(path) => load_rules(path)?,
        None => RuleSet::from_ron("(default_policy: Allow, rules: [])")
            .map_err(|e| CliError::Runtime(anyhow!(e)))?,
    };
    let mut live = LiveOptions::new(&args.iface);
    live.filter.clone_from(&args.filter);
    let mut config = EngineConfig::new(SourceSpec::Live(live), shared(rules));
    config.local_addrs = LocalAddrs::from_system();
    config.deliver = Deliver::Nothing;
    config.flows = Some(FlowConfig::default());
    config.attribute = true;
    let engine = Engine::spawn(config).map_err(capture_error)?;
    let Some(flows) = engine.flows.clone() else {
        return Err(CliError::Runtime(anyhow!("the engine kept no flow table")));
    };
    let stopper = engine.stopper();
    ctrlc::set_handler(move || stopper.stop()).ok();
    eprintln!(
        "netwarden: capturing on {} for {} s (Ctrl-C to stop early)",
        args.iface, args.seconds
    );
    if !netwarden::attrib::can_read_other_users_processes() {
        eprintln!("netwarden: note: {}", netwarden::attrib::NO_PTRACE_NOTICE);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    while Instant::now() < deadline && !engine.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Stopping publishes the final table after every pending lookup has finished.
    engine.shutdown().map_err(capture_error)?;
    let snapshot = flows.snapshot();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = if args.json {
        export_flows_jsonl(snapshot.flows.iter().map(|f| &**f), &mut out)
            .map(|_| ())
            .map_err(|e| io::Error::other(e.to_string()))
    } else {
        write_text(&snapshot.flows, &mut out)
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Runtime(anyhow!("writing output: {e}")))?;
    let stats = snapshot.stats;
    eprintln!(
        "netwarden: {} connections ({} untracked packets of new flows, a full table; {} not looked up, a busy lookup queue)",
        stats.active, stats.untracked, stats.attribution_dropped
    );
    Ok(())
}

/// One line per flow:
/// `PROTO DIR LOCAL -> REMOTE program="P" pid=N user="U" tx=PKTS/BYTES rx=PKTS/BYTES state=S
/// verdicts=V rule="R" first=T last=T`; text fields are quoted and escaped.
fn write_text(flows: &[std::sync::Arc<Flow>], out: &mut impl Write) -> io::Result<()> {
    for flow in flows {
        let row = FlowRow::from_flow(flow);
        write!(
            out,
            "{:<6} {:<5} {} -> {} program=\"{}\"",
            row.protocol,
            row.direction,
            flow.local,
            flow.remote,
            escape(&row.program)
        )?;
        if let Some(pid) = row.pid {
            write!(out, " pid={pid}")?;
        }
        if let Some(user) = &row.user {
            write!(out, " user=\"{}\"", escape(user))?;
        }
        if let Some(unit) = row.unit {
            write!(out, " unit=\"{}\"", escape(unit))?;
        }
        if let Some(app) = &row.app {
            write!(out, " app=\"{}\"", escape(app))?;
        }
        if let Some(name) = row.remote_name {
            write!(out, " remote_name=\"{}\"", escape(name))?;
        }
        write!(
            out,
            " tx={}/{} rx={}/{}",
            row.tx_packets, row.tx_bytes, row.rx_packets, row.rx_bytes
        )?;
        if !row.tcp_state.is_empty() {
            write!(out, " state={}", row.tcp_state)?;
        }
        writeln!(
            out,
            " verdicts={} rule=\"{}\" iface=\"{}\" first={} last={}",
            row.verdicts,
            escape(&row.rule),
            escape(row.iface),
            row.first_seen,
            row.last_seen
        )?;
    }
    Ok(())
}
