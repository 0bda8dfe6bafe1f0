//! `netwarden run`, `replay` and `interfaces`: live and offline capture printed as text or JSON lines.

use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::pipeline::{PipelineArgs, Pipelines};
use super::{CliError, CliResult, load_rules, locate_rules, require_rules};
use netwarden::capture::{
    CaptureError, LiveOptions, PacketSource, PcapSource, Read, SourceSpec, list_interfaces,
};
use netwarden::engine::{Deliver, Engine, EngineConfig, EngineMessage, RunSummary};
use netwarden::event::Event;
use netwarden::export::ecs::write_ecs_line;
use netwarden::export::{write_json_line, write_text_line};
use netwarden::flows::FlowConfig;
use netwarden::packet::{self, LocalAddrs, PacketMeta};
use netwarden::rules::{RuleWatcher, shared};
use netwarden::text::{escape, iso_time};
use netwarden::whatif;

/// Options shared by `run` and `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Rules file (default: ./rules.ron, else $XDG_CONFIG_HOME/netwarden/rules.ron, else
    /// /etc/netwarden/rules.ron).
    #[arg(long, short)]
    pub rules: Option<PathBuf>,
    /// BPF capture filter (tcpdump syntax), applied by libpcap before netwarden sees packets.
    #[arg(long)]
    pub filter: Option<String>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Field names of the JSON lines: `flat` (netwarden's own) or `ecs` (Elastic Common Schema, nested:
    /// `@timestamp`, `source.ip`, `event.action`, `rule.name`, ..). `ecs` implies --json.
    #[arg(long, value_enum, default_value_t = JsonFormat::Flat)]
    pub format: JsonFormat,
    /// Print every packet, not only denied and suspicious ones.
    #[arg(long)]
    pub all: bool,
    /// Audit log path. `run`: default the rules file's `log.path`, normally ./firewall.log; `replay` writes
    /// an audit log only when this is given.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Do not write the audit log (`run`; `replay` writes none without `--log`).
    #[arg(long)]
    pub no_log: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// The field names of `--json` lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonFormat {
    /// netwarden's flat schema (`src_ip`, `verdict`, ..).
    #[default]
    Flat,
    /// Elastic Common Schema (nested objects).
    Ecs,
}

impl OutputArgs {
    /// The JSON format of printed events, or `None` for text.
    fn json_format(&self) -> Option<JsonFormat> {
        match (self.json, self.format) {
            (_, JsonFormat::Ecs) => Some(JsonFormat::Ecs),
            (true, format) => Some(format),
            (false, JsonFormat::Flat) => None,
        }
    }
}

/// `netwarden run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Interface to capture on, or `any`.
    #[arg(long, short)]
    pub iface: String,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    pub promisc: bool,
    /// Bytes kept per packet (262,144 by default, as tcpdump: a BIG TCP super-packet of this host's own
    /// traffic can be larger than 64 KiB).
    #[arg(long, default_value_t = 262_144)]
    pub snaplen: i32,
    /// Kernel capture buffer (libpcap's ring): bytes, or with a unit `K`, `M` or `G` (KiB, MiB, GiB;
    /// `32M`, `512K`). A larger buffer rides out longer bursts without kernel drops. Default 32M.
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub buffer_size: Option<i32>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub guard: super::enforce::GuardArgs,
}

/// The smallest `--buffer-size`: libpcap rounds smaller rings up to a block anyway.
const MIN_BUFFER_BYTES: u64 = 64 << 10;

/// Parses `--buffer-size`: a number of bytes, or of KiB, MiB or GiB with a `K`, `M` or `G` suffix (`KiB`,
/// `MiB`, `GiB` and `B` spelled out are accepted too), from 64 KiB to just under 2 GiB (libpcap takes an
/// `int`).
fn parse_buffer_size(text: &str) -> Result<i32, String> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("expected a size such as 32M, 512K or 33554432".to_owned());
    }
    // Only digits: parsing fails by overflow alone.
    let count: u64 = digits
        .parse()
        .map_err(|_| "too large: at most 2047M".to_owned())?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => return Err(format!("unknown unit {other:?}: use K, M or G (32M, 512K)")),
    };
    let bytes = count.checked_shl(shift).filter(|b| b >> shift == count);
    match bytes.map(i32::try_from) {
        Some(Ok(bytes)) if u64::try_from(bytes).is_ok_and(|b| b >= MIN_BUFFER_BYTES) => Ok(bytes),
        Some(Ok(_)) => Err("too small: at least 64K".to_owned()),
        _ => Err("too large: at most 2047M".to_owned()),
    }
}

/// `netwarden replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A pcap or pcapng file.
    pub file: PathBuf,
    /// Print only totals at the end (with `--all`, every event too): packets, bytes, per-action counts,
    /// per-rule hits, malformed, alerts, elapsed time and packets/s.
    #[arg(long)]
    pub summary: bool,
    /// What-if: show which flows would change verdict from the rules in OLD to the rules in `--rules`.
    #[arg(long, value_name = "OLD")]
    pub compare: Option<PathBuf>,
    /// Treat these addresses as the capturing host's own, so packets get a direction.
    #[arg(long = "local", value_name = "ADDR")]
    pub local: Vec<IpAddr>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A capture error as a CLI error: the user's mistakes (interface, file, filter) are bad input.
pub fn capture_error(e: CaptureError) -> CliError {
    match e {
        CaptureError::NoSuchInterface { .. } | CaptureError::File { .. } | CaptureError::Filter { .. } => {
            CliError::BadInput(anyhow!(e))
        }
        other => CliError::Runtime(anyhow!(other)),
    }
}

/// Whether an audit log is written when `--log` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogDefault {
    /// The rules file's `log` section (`run`).
    FromRules,
    /// None (`replay`: judging a file must not leave a log of it in the working directory).
    Off,
}

fn audit_config(
    rules: &netwarden::rules::RuleSet,
    args: &OutputArgs,
    default: LogDefault,
) -> Option<netwarden::audit::AuditConfig> {
    if args.no_log || (args.log.is_none() && default == LogDefault::Off) {
        return None;
    }
    let mut config = rules.log().clone();
    if let Some(path) = &args.log {
        config.path.clone_from(path);
    }
    Some(config)
}

/// Runs a live capture until Ctrl-C.
///
/// # Errors
/// Bad rules, unknown interface or filter (exit 2); no privilege or a failed capture (exit 1).
pub fn run(args: &RunArgs) -> CliResult {
    let location = require_rules(args.output.rules.as_deref())?;
    let (watcher, rules) = RuleWatcher::open(&location.path).map_err(|e| CliError::BadInput(anyhow!(e)))?;
    let audit = audit_config(&rules, &args.output, LogDefault::FromRules);
    let mut live = LiveOptions::new(&args.iface);
    live.promisc = args.promisc;
    live.snaplen = args.snaplen;
    if let Some(bytes) = args.buffer_size {
        live.buffer_bytes = bytes;
    }
    live.filter.clone_from(&args.output.filter);
    let mut config = EngineConfig::new(SourceSpec::Live(live), shared(rules));
    config.rules_watcher = Some(watcher);
    config.audit = audit;
    config.local_addrs = LocalAddrs::from_system();
    config.flows = Some(FlowConfig::default());
    config.attribute = true;
    config.deliver = if args.output.all {
        Deliver::All
    } else {
        Deliver::Notable
    };
    let pipelines = Pipelines::start(&args.output.pipeline, &config.rules)?;
    let guard = if args.guard.wanted() {
        let guard = super::enforce::RunGuard::start(&args.guard, &config.rules, pipelines.metrics())?;
        config.alert_sink = guard.alert_sender();
        config.kernel_blocked = Some(guard.kernel_blocked());
        Some(guard)
    } else {
        None
    };
    let engine = match Engine::spawn(config) {
        Ok(engine) => engine,
        Err(e) => {
            guard.into_iter().for_each(super::enforce::RunGuard::stop);
            return Err(capture_error(e));
        }
    };
    pipelines.attach(std::sync::Arc::clone(&engine.stats));
    let stopper = engine.stopper();
    // A second Ctrl-C while stopping has nothing more to do; a failure to install the handler only means
    // Ctrl-C kills the process the default way.
    ctrlc::set_handler(move || stopper.stop()).ok();
    eprintln!("netwarden: capturing on {} (Ctrl-C to stop)", args.iface);
    if !netwarden::attrib::can_read_other_users_processes() {
        eprintln!("netwarden: note: {}", netwarden::attrib::NO_PTRACE_NOTICE);
    }
    let result = print_events(&engine, &args.output, &pipelines, true);
    let stats_shared = std::sync::Arc::clone(&engine.stats);
    let end = engine.shutdown();
    guard.into_iter().for_each(super::enforce::RunGuard::stop);
    let stats = stats_shared.snapshot();
    eprintln!(
        "netwarden: {} packets, {} denied, {} alerts; kernel dropped {}, interface dropped {}",
        stats.packets, stats.blocked, stats.alerts, stats.kernel_dropped, stats.kernel_if_dropped
    );
    pipelines.finish();
    result?;
    end.map_err(capture_error)
}

/// Longest a printed event waits for its flow's program and user (the attribution thread's retries end
/// after about 160 ms; the rest is headroom for a busy machine).
const ATTRIBUTION_WAIT: Duration = Duration::from_millis(500);

/// Waits (up to `ATTRIBUTION_WAIT` after `received`) until the event's flow has its program, so the first
/// packet of a flow prints with it too. Costs nothing for events that are not pending.
pub fn await_attribution(event: &Event, received: Instant) {
    while event.attribution_pending() && received.elapsed() < ATTRIBUTION_WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Prints events (when `print`) and forwards the notable ones until the engine stops.
fn print_events(engine: &Engine, args: &OutputArgs, pipelines: &Pipelines, print: bool) -> CliResult {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let format = args.json_format();
    loop {
        let Ok(message) = engine.events.recv() else {
            return Ok(());
        };
        match message {
            EngineMessage::Events(events) => {
                let received = Instant::now();
                for event in &events {
                    pipelines.offer(event);
                    if !print {
                        continue;
                    }
                    await_attribution(event, received);
                    let written = match format {
                        Some(JsonFormat::Ecs) => write_ecs_line(event, &mut out),
                        Some(JsonFormat::Flat) => write_json_line(event, &mut out),
                        None => write_text_line(event, &mut out),
                    };
                    if let Err(e) = written {
                        if e.kind() == io::ErrorKind::BrokenPipe {
                            engine.request_stop();
                            return Ok(());
                        }
                        return Err(CliError::Runtime(anyhow!("writing output: {e}")));
                    }
                }
                if engine.events.is_empty() {
                    out.flush().ok();
                }
            }
            EngineMessage::Notice(notice) => {
                out.flush().ok();
                eprintln!("netwarden: {}", notice.describe());
            }
            EngineMessage::Stopped(_) => {
                out.flush().ok();
                return Ok(());
            }
        }
    }
}

/// Replays a capture file.
///
/// # Errors
/// Bad rules or capture file (exit 2); a read failure (exit 1).
pub fn replay(args: &ReplayArgs) -> CliResult {
    let rules = match locate_rules(args.output.rules.as_deref()) {
        Ok(location) => load_rules(&location.path)?,
        Err(not_found) => {
            eprintln!("netwarden: {not_found}: judging by an empty rule set (default allow)");
            netwarden::rules::RuleSet::compile(netwarden::rules::RuleFile::default(), None)
                .map_err(|e| CliError::Runtime(anyhow!(e)))?
        }
    };
    if let Some(old_path) = &args.compare {
        let old = load_rules(old_path)?;
        return compare(args, &old, &rules);
    }
    let audit = audit_config(&rules, &args.output, LogDefault::Off);
    let source = SourceSpec::File {
        path: args.file.clone(),
        filter: args.output.filter.clone(),
    };
    let shared_rules = shared(rules);
    let mut config = EngineConfig::new(source, std::sync::Arc::clone(&shared_rules));
    config.audit = audit;
    config.local_addrs = LocalAddrs::new(args.local.iter().copied());
    config.backpressure = true;
    let pipelines = Pipelines::start(&args.output.pipeline, &config.rules)?;
    // `--summary` prints only the totals, unless `--all` asks for every event as well; forwarding still
    // needs the denied and suspicious ones.
    let print = args.output.all || !args.summary;
    config.deliver = match (args.output.all, print || pipelines.forwarding()) {
        (true, _) => Deliver::All,
        (false, true) => Deliver::Notable,
        (false, false) => Deliver::Nothing,
    };
    let engine = Engine::spawn(config).map_err(capture_error)?;
    pipelines.attach(std::sync::Arc::clone(&engine.stats));
    let stopper = engine.stopper();
    ctrlc::set_handler(move || stopper.stop()).ok();
    let printed = print_events(&engine, &args.output, &pipelines, print);
    let stats = std::sync::Arc::clone(&engine.stats);
    let end = engine.join().map_err(capture_error);
    let summary = match (&printed, &end) {
        (Ok(()), Ok(())) if args.summary => {
            let summary = RunSummary::new(&stats, &shared_rules.load());
            print_summary(&summary, args.output.json_format().is_some())
                .map_err(|e| CliError::Runtime(anyhow!(e)))
        }
        _ => Ok(()),
    };
    pipelines.finish();
    printed?;
    end?;
    summary
}

fn print_summary(summary: &RunSummary, json: bool) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer(&mut out, summary)?;
        return writeln!(out);
    }
    let c = &summary.counts;
    writeln!(out, "packets     {}", c.packets)?;
    writeln!(out, "bytes       {}", c.bytes)?;
    writeln!(out, "allowed     {}", c.allowed)?;
    writeln!(out, "blocked     {}", c.blocked)?;
    writeln!(out, "logged      {}", c.logged)?;
    writeln!(out, "malformed   {}", c.malformed)?;
    writeln!(out, "unparsed    {}", c.unparsed)?;
    writeln!(out, "alerts      {}", c.alerts)?;
    writeln!(out, "elapsed     {:.3} s", summary.elapsed_secs)?;
    writeln!(out, "rate        {:.0} packets/s", summary.packets_per_sec)?;
    writeln!(out, "rule hits:")?;
    for (name, hits) in &summary.rule_hits {
        writeln!(out, "  {hits:>10}  {name}")?;
    }
    Ok(())
}

/// Reads every packet of a file into parsed metadata (for what-if comparisons).
///
/// # Errors
/// The file cannot be opened or read.
pub fn read_metas(
    path: &Path,
    filter: Option<&str>,
    local: &LocalAddrs,
) -> Result<Vec<PacketMeta>, CaptureError> {
    let mut source = PcapSource::open_file(path, filter)?;
    let link = source.link_type();
    let mut metas = Vec::new();
    loop {
        match source.read()? {
            Read::Packet(raw) => {
                let mut meta = packet::parse(link, raw.ts_micros, raw.wire_len, raw.data);
                local.classify(&mut meta);
                metas.push(meta);
            }
            Read::Idle => {}
            Read::End => return Ok(metas),
        }
    }
}

fn compare(args: &ReplayArgs, old: &netwarden::rules::RuleSet, new: &netwarden::rules::RuleSet) -> CliResult {
    let local = LocalAddrs::new(args.local.iter().copied());
    let metas = read_metas(&args.file, args.output.filter.as_deref(), &local).map_err(capture_error)?;
    let report = whatif::compare(metas.iter().map(|m| (m, "file")), old, new);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if args.output.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        write_compare_text(&report, &mut out)
    };
    written.map_err(|e| CliError::Runtime(anyhow!("writing output: {e}")))
}

fn write_compare_text(report: &whatif::CompareReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{} of {} packets change verdict ({} newly blocked, {} newly allowed) in {} flows",
        report.changed_packets,
        report.packets,
        report.newly_blocked,
        report.newly_allowed,
        report.flows.len()
    )?;
    for change in &report.flows {
        writeln!(
            out,
            "  {:>8} pkts  {}  {} (\"{}\") -> {} (\"{}\")  first {}",
            change.packets,
            change.flow.describe(),
            change.old_action.name(),
            escape(&change.old_rule),
            change.new_action.name(),
            escape(&change.new_rule),
            iso_time(change.first_ts_micros)
        )?;
    }
    Ok(())
}

/// `netwarden interfaces`.
///
/// # Errors
/// libpcap cannot list devices.
pub fn interfaces() -> CliResult {
    let list = list_interfaces().map_err(|e| CliError::Runtime(anyhow!(e)))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for iface in list {
        let mut state = Vec::new();
        if iface.up {
            state.push("up");
        }
        if iface.running {
            state.push("running");
        }
        if iface.loopback {
            state.push("loopback");
        }
        let addrs: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "{:<16} {:<22} {}{}",
            escape(&iface.name),
            state.join(","),
            addrs.join(" "),
            iface
                .description
                .map(|d| format!("  ({})", escape(&d)))
                .unwrap_or_default()
        )
        .map_err(|e| CliError::Runtime(anyhow!(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_sizes_take_units_and_bounds() {
        for (text, bytes) in [
            ("32M", 32 << 20),
            ("32MiB", 32 << 20),
            ("512k", 512 << 10),
            (" 1G ", 1 << 30),
            ("65536", 65_536),
            ("2047M", 2047 << 20),
        ] {
            assert_eq!(parse_buffer_size(text), Ok(bytes), "{text}");
        }
        for (text, why) in [
            ("2G", "too large"),
            ("99999999999999999999G", "too large"),
            ("18446744073709551615K", "too large"),
            ("1000", "too small"),
            ("0", "too small"),
            ("32X", "unknown unit"),
            ("M", "expected a size"),
            ("-1M", "expected a size"),
            ("", "expected a size"),
        ] {
            let err = parse_buffer_size(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
