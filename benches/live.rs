//! Live capture against tcpdump on a veth pair: a generated capture (`benches/reference/gen_pcap.py`, the
//! 100,000-packet file by default) is sent by `tcpreplay` from one network namespace into a veth pair at
//! several rates, while `tcpdump -w /dev/null` (libpcap's default 2 MiB buffer, and again with netwarden's
//! 32 MiB) or `netwarden run` (the 10 reference rules, detection, the audit log on, JSON lines to a file)
//! captures in the other. For each rate it prints, side by side, what each tool received and what the kernel
//! dropped, and the CPU time each spent per packet (utime + stime from /proc/PID/stat, from start of sending
//! to the end of its work, so start-up is not counted). With `xvfb-run` and a build with the `gui` feature,
//! the desktop app capturing on the veth under Xvfb is measured as well: every packet is denied, so the
//! packets it judged are its audit log's lines and their `repeated=` counts.
//!
//! Rounds are interleaved (each round runs every tool at every rate once) and each cell is the median of
//! `RUNS`. It prints figures and makes no assertion.
//!
//! Run: `cargo bench --bench live` (root: it creates two network namespaces and a veth pair; needs
//! `tcpreplay`, `tcpdump`, `python3`). Environment: `N` packets (default 100,000), `RUNS` (default 5),
//! `RATES` packets/s, `max` for tcpreplay's top speed (default `30000,60000,max`), `GUI_RATES` (default
//! `30000,50000`; empty skips the app), `BENCH_OUT` work directory (default `target/bench-data`),
//! `NETWARDEN_BIN` another netwarden binary to measure (an older build, for a before/after).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/netns.rs"]
#[allow(dead_code)]
mod netns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use netns::Pair;

/// The netwarden binary measured: `NETWARDEN_BIN`, else the one cargo built with this bench.
fn bin() -> String {
    std::env::var("NETWARDEN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_netwarden").to_owned())
}

fn run_ok(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd} {}: {}", args.join(" "), text.trim()))
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A rate list: packets/s, 0 for tcpreplay's top speed.
fn env_rates(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .filter_map(|r| if r == "max" { Some(0) } else { r.parse().ok() })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The number after `label` in `text`.
fn number_after(text: &str, label: &str) -> Option<u64> {
    let start = text.find(label)? + label.len();
    text[start..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The number before `label` in `text` (`"97030 packets captured"`).
fn number_before(text: &str, label: &str) -> Option<u64> {
    let end = text.find(label)?;
    text[..end].split_whitespace().last()?.parse().ok()
}

/// CPU time of a process so far (utime + stime), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Waits until the process has used no CPU for 0.4 s (it has worked through what it received), at least
/// 1.2 s (tcpdump's ring hands over a partly filled block after its 1 s read timeout), at most 20 s.
fn wait_until_quiet(pid: u32) {
    std::thread::sleep(Duration::from_millis(1200));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = cpu_ticks(pid);
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = cpu_ticks(pid);
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Starts `cmd` inside namespace `ns` and waits for a line of its stderr containing `ready`; the rest of
/// stderr is collected on a thread and returned by `finish`.
struct Running {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
    first: String,
}

impl Running {
    fn start(
        ns: &str,
        cmd: &[&str],
        ready: &str,
        stdout: Stdio,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", cmd[0]))?;
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        while !first.contains(ready) {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                child.wait().ok();
                return Err(format!("{} did not start: {first}", cmd.join(" ")));
            }
            first.push_str(&line);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("bench-stderr".into())
            .spawn(move || {
                let mut rest = String::new();
                std::io::Read::read_to_string(&mut lines, &mut rest).ok();
                tx.send(rest).ok();
            })
            .unwrap();
        Ok(Self {
            child,
            stderr: rx,
            first,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`, waits for the exit and returns all of stderr.
    fn finish(mut self, signal: &str) -> String {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .output()
            .ok();
        self.child.wait().ok();
        self.first
            + &self
                .stderr
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_default()
    }
}

/// What one capture run saw.
#[derive(Clone, Copy)]
struct Sample {
    /// Packets tcpreplay sent.
    sent: u64,
    /// Packets the tool wrote or judged (for tcpdump: those that reached its socket and were not dropped,
    /// as it stops before taking the last few from the ring).
    processed: u64,
    /// Packets the kernel dropped (tcpdump, `netwarden run`); for the app, packets the link delivered that
    /// it did not judge (filled in when the table is printed).
    dropped: u64,
    /// CPU time, clock ticks.
    cpu_ticks: u64,
    /// Seconds over which `cpu_ticks` was counted.
    secs: f64,
    /// The rate tcpreplay reached, packets/s.
    pps: f64,
}

impl Sample {
    /// Packets that reached the tool's socket: processed or dropped.
    fn received(&self) -> u64 {
        self.processed + self.dropped
    }
}

/// Sends the capture from `vB` at `rate` (0: top speed); returns packets sent and the rate reached.
fn replay(link: &Pair, pcap: &Path, rate: u64) -> Result<(u64, f64), String> {
    let rate_arg = if rate == 0 {
        "--topspeed".to_owned()
    } else {
        format!("--pps={rate}")
    };
    let pcap = pcap.to_string_lossy();
    let text = run_ok(
        "ip",
        &[
            "netns",
            "exec",
            &link.b,
            "tcpreplay",
            "-q",
            "-i",
            "vB",
            &rate_arg,
            &pcap,
        ],
    )?;
    let sent = number_after(&text, "Successful packets:").ok_or_else(|| format!("tcpreplay said: {text}"))?;
    let secs: f64 = text
        .split("sent in ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let pps = sent as f64 / secs;
    Ok((sent, pps))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// tcpdump with libpcap's default buffer (2 MiB).
    Tcpdump,
    /// tcpdump with netwarden's buffer (`-B 32768`, 32 MiB).
    TcpdumpBig,
    Netwarden,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Tcpdump => "tcpdump (2 MiB)",
            Tool::TcpdumpBig => "tcpdump -B 32768",
            Tool::Netwarden => "netwarden run",
        }
    }
}

struct Setup {
    link: Pair,
    pcap: PathBuf,
    rules: PathBuf,
    work: PathBuf,
    clk_tck: f64,
}

fn capture_once(setup: &Setup, tool: Tool, rate: u64) -> Result<Sample, String> {
    let log = setup.work.join("fw.log");
    let events = setup.work.join("events.json");
    // Each run starts with an empty audit log (rotated files included).
    for i in 0..=5 {
        let path = if i == 0 {
            log.clone()
        } else {
            PathBuf::from(format!("{}.{i}", log.display()))
        };
        std::fs::remove_file(path).ok();
    }
    let (log_s, rules_s) = (
        log.to_string_lossy().into_owned(),
        setup.rules.to_string_lossy().into_owned(),
    );
    let running = match tool {
        Tool::Tcpdump | Tool::TcpdumpBig => {
            let mut cmd = vec!["tcpdump", "-i", "vA", "-w", "/dev/null"];
            if tool == Tool::TcpdumpBig {
                cmd.extend(["-B", "32768"]);
            }
            Running::start(&setup.link.a, &cmd, "listening on", Stdio::null(), &[])?
        }
        Tool::Netwarden => {
            let out = std::fs::File::create(&events).map_err(|e| e.to_string())?;
            let bin = bin();
            let cmd = [
                bin.as_str(),
                "run",
                "--iface",
                "vA",
                "--rules",
                &rules_s,
                "--log",
                &log_s,
                "--json",
            ];
            Running::start(&setup.link.a, &cmd, "capturing on", Stdio::from(out), &[])?
        }
    };
    let pid = running.pid();
    let before = cpu_ticks(pid).unwrap_or(0);
    let started = Instant::now();
    let (sent, pps) = replay(&setup.link, &setup.pcap, rate)?;
    wait_until_quiet(pid);
    let after = cpu_ticks(pid).unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    let text = running.finish("-INT");
    let (processed, dropped) = match tool {
        // tcpdump stops without reading the ring's last, partly filled block: what reached its socket is
        // "received by filter" (which counts the kernel's drops too).
        Tool::Tcpdump | Tool::TcpdumpBig => {
            let dropped = number_before(&text, "packets dropped by kernel");
            let received = number_before(&text, "packets received by filter");
            (received.zip(dropped).map(|(r, d)| r.saturating_sub(d)), dropped)
        }
        Tool::Netwarden => {
            // "netwarden: N packets, N denied, N alerts; kernel dropped N, interface dropped N"
            let summary = text
                .lines()
                .find(|l| l.contains("kernel dropped"))
                .unwrap_or_default();
            (
                number_after(summary, "netwarden: "),
                number_after(summary, "kernel dropped"),
            )
        }
    };
    let (Some(processed), Some(dropped)) = (processed, dropped) else {
        return Err(format!("{}: no counts in its output: {text}", tool.name()));
    };
    Ok(Sample {
        sent,
        processed,
        dropped,
        cpu_ticks: after.saturating_sub(before),
        secs,
        pps,
    })
}

/// The desktop app capturing on `vA` under a private Xvfb display; every packet is denied, so the packets
/// it judged are its audit log's lines plus their `repeated=` counts.
fn gui_once(setup: &Setup, rate: u64) -> Result<Sample, String> {
    let work = setup.work.join("gui");
    std::fs::remove_dir_all(&work).ok();
    for dir in ["state", "config", "data", "runtime"] {
        std::fs::create_dir_all(work.join(dir)).map_err(|e| e.to_string())?;
    }
    std::fs::set_permissions(
        work.join("runtime"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| e.to_string())?;
    let log = work.join("fw.log");
    let rules = work.join("rules.ron");
    std::fs::write(
        &rules,
        format!(
            "(default_policy: Block, rules: [], log: (path: {:?}, max_bytes: 1073741824, keep_files: 1))",
            log.to_string_lossy()
        ),
    )
    .map_err(|e| e.to_string())?;
    let display = format!(":{}", 100 + std::process::id() % 400);
    let mut xvfb = Command::new("Xvfb")
        .args([
            display.as_str(),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("Xvfb: {e} (apt-get install xvfb)"))?;
    std::thread::sleep(Duration::from_secs(1));
    let path = |dir: &str| work.join(dir).to_string_lossy().into_owned();
    let (state, config, data, runtime) = (path("state"), path("config"), path("data"), path("runtime"));
    let rules_s = rules.to_string_lossy().into_owned();
    let env = [
        ("DISPLAY", display.as_str()),
        ("XDG_CONFIG_HOME", config.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
        ("XDG_RUNTIME_DIR", runtime.as_str()),
    ];
    let bin = bin();
    let cmd = [
        bin.as_str(),
        "gui",
        "--iface",
        "vA",
        "--rules",
        &rules_s,
        "--no-enforce",
        "--state-dir",
        &state,
    ];
    let mut app = Command::new("ip")
        .args(["netns", "exec", &setup.link.a])
        .args(cmd)
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("netwarden gui: {e}"))?;
    // The window opens and capture starts.
    std::thread::sleep(Duration::from_secs(5));
    let pid = app.id();
    let result = (|| {
        if app.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Err("netwarden gui ended at once (built without the gui feature?)".to_owned());
        }
        let before = cpu_ticks(pid).unwrap_or(0);
        let started = Instant::now();
        let (sent, pps) = replay(&setup.link, &setup.pcap, rate)?;
        // The app keeps drawing, so its CPU never goes quiet: give the engine time, then let the audit
        // thread write its burst summaries (it flushes after 0.5 s without entries).
        std::thread::sleep(Duration::from_secs(3));
        let after = cpu_ticks(pid).unwrap_or(0);
        let secs = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let judged: u64 = text
            .lines()
            .map(|l| 1 + number_after(l, " repeated=").unwrap_or(0))
            .sum();
        Ok(Sample {
            sent,
            processed: judged,
            dropped: 0,
            cpu_ticks: after.saturating_sub(before),
            secs,
            pps,
        })
    })();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output()
        .ok();
    app.wait().ok();
    xvfb.kill().ok();
    xvfb.wait().ok();
    result
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::cast_precision_loss, reason = "figures for display")]
fn run() -> Result<(), String> {
    if !std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }) {
        println!("live bench skipped: it needs root (network namespaces); run it with sudo");
        return Ok(());
    }
    for tool in ["tcpreplay", "tcpdump", "python3"] {
        run_ok("sh", &["-c", &format!("command -v {tool}")])
            .map_err(|_| format!("missing {tool} (`make deps` installs it)"))?;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::var_os("BENCH_OUT").map_or_else(|| root.join("target/bench-data"), PathBuf::from);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let n = env_num("N", 100_000);
    let runs = env_num("RUNS", 5).max(1);
    let rates = env_rates("RATES", "30000,60000,max");
    let gui_rates = env_rates("GUI_RATES", "30000,50000");
    let pcap = out.join(format!("traffic-{n}.pcap"));
    if !pcap.exists() {
        let script = root.join("benches/reference/gen_pcap.py");
        run_ok(
            "python3",
            &[
                &script.to_string_lossy(),
                "-n",
                &n.to_string(),
                "-o",
                &pcap.to_string_lossy(),
            ],
        )?;
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let clk_tck = run_ok("getconf", &["CLK_TCK"])?.trim().parse().unwrap_or(100.0);
    let setup = Setup {
        link: {
            // Namespaces and a veth pair (`vA`, `vB`), removed on drop; no IPv6, so the link carries the
            // replayed packets only.
            let pair = Pair::new();
            pair.without_ipv6();
            pair
        },
        pcap,
        rules: root.join("benches/rules/ceiling10.ron"),
        work: work.path().to_owned(),
        clk_tck,
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "live capture: {n} packets from gen_pcap.py sent by tcpreplay into a veth pair; {runs} interleaved \
         rounds, medians; load average at start: {}; netwarden: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        bin()
    );
    let tools = [Tool::Tcpdump, Tool::TcpdumpBig, Tool::Netwarden];
    let gui = !gui_rates.is_empty() && run_ok("sh", &["-c", "command -v Xvfb"]).is_ok();
    // samples[rate][tool] over the rounds; the app is the last column.
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); tools.len()]; rates.len()];
    let mut gui_samples: Vec<Vec<Sample>> = vec![Vec::new(); gui_rates.len()];
    for round in 0..runs {
        for (r, &rate) in rates.iter().enumerate() {
            for (t, &tool) in tools.iter().enumerate() {
                samples[r][t].push(capture_once(&setup, tool, rate)?);
            }
        }
        if gui {
            for (r, &rate) in gui_rates.iter().enumerate() {
                match gui_once(&setup, rate) {
                    Ok(sample) => gui_samples[r].push(sample),
                    Err(e) => eprintln!("app run skipped: {e}"),
                }
            }
        }
        eprintln!("round {} of {runs} done", round + 1);
    }
    let rate_name = |rate: u64| {
        if rate == 0 {
            "max".to_owned()
        } else {
            rate.to_string()
        }
    };
    // The last column: CPU per packet, or (`per_core`) the share of a core used while sending and after.
    let row = |rate: u64, name: &str, cells: &[Sample], per_core: bool| {
        let med = |f: &dyn Fn(&Sample) -> f64| median(cells.iter().map(f).collect());
        let cpu = if per_core {
            format!("{:.2}", med(&|s| s.cpu_ticks as f64 / setup.clk_tck / s.secs))
        } else {
            format!(
                "{:.0}",
                med(&|s| s.cpu_ticks as f64 * 1e9 / setup.clk_tck / s.received().max(1) as f64)
            )
        };
        println!(
            "| {} | {:.0} | {:.0} | {name} | {:.0} | {:.0} | {:.0} | {:.2} | {cpu} |",
            rate_name(rate),
            med(&|s| s.pps),
            med(&|s| s.sent as f64),
            med(&|s| s.received() as f64),
            med(&|s| s.processed as f64),
            med(&|s| s.dropped as f64),
            med(&|s| 100.0 * s.dropped as f64 / s.received().max(1) as f64),
        );
    };
    println!();
    println!(
        "| rate (pps) | reached | sent | tool | received | written / judged | kernel dropped | dropped % | CPU ns/packet |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (r, &rate) in rates.iter().enumerate() {
        for (t, tool) in tools.iter().enumerate() {
            row(rate, tool.name(), &samples[r][t], false);
        }
    }
    if gui && gui_samples.iter().any(|s| !s.is_empty()) {
        // What the link delivers whatever the rate: tcpreplay counts some of the generated frames as sent
        // that the veth does not deliver (runts, oversized); tcpdump's received count includes its drops.
        let delivered = samples
            .iter()
            .flat_map(|per_tool| per_tool[..2].iter().flatten())
            .map(Sample::received)
            .max()
            .unwrap_or(0);
        for sample in gui_samples.iter_mut().flatten() {
            sample.dropped = delivered.saturating_sub(sample.processed);
        }
        println!();
        println!(
            "The app: `netwarden gui --iface vA` under Xvfb, every packet denied; judged = its audit log's lines \
             and their repeated= counts, dropped = the {delivered} packets the link delivers (tcpdump) less \
             those judged; CPU: cores busy (drawing included) from the start of sending to 3 s after."
        );
        println!(
            "| rate (pps) | reached | sent | tool | delivered | judged | not judged | % | CPU (cores) |"
        );
        println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
        for (r, &rate) in gui_rates.iter().enumerate() {
            if !gui_samples[r].is_empty() {
                row(rate, "netwarden gui", &gui_samples[r], true);
            }
        }
    }
    Ok(())
}
