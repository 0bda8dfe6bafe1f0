//! Offline replay throughput of the whole pipeline (libpcap read, parse, rules, detection, audit log) on a
//! realistic 1,000,000-packet capture, with 10, 1,000 and 10,000 rules, next to the bare C libpcap loop and
//! the original Scapy design, plus peak memory on a 10x shorter capture to show it is flat in capture length.
//!
//! Run: `cargo bench --no-default-features --bench replay` (or `make bench`). Environment: `N` packets
//! (default 1,000,000), `RUNS` rounds (default 5; each row prints its median), `BENCH_OUT` work
//! directory (default `target/bench-data`), `SCAPY=0` to skip the Scapy seed (it needs `pip install scapy`
//! into a venv it creates), `SEED_N` packets for the Scapy run (default 20,000; it manages ~3,000/s).
//!
//! Every row is a whole process timed from outside by `/usr/bin/time` (start-up included), as in
//! `../shared/bench/run_all.sh`, so the figures compare like with like. The rows run interleaved: each round
//! runs every command once, so a slow spell of a shared machine falls on all of them rather than on
//! whichever ran during it. Besides each row's median, the netwarden / C ratio is taken within each round
//! and its median (and range) printed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use netwarden::rules::synthetic_rules;

struct Row {
    name: String,
    packets: u64,
    secs: f64,
    rss_kib: u64,
    note: String,
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One command of the bench and its timings, one per round.
struct Job {
    cmd: Vec<String>,
    walls: Vec<f64>,
    rss_kib: Vec<f64>,
    stdout: String,
}

impl Job {
    fn new(cmd: Vec<String>) -> Self {
        Self {
            cmd,
            walls: Vec::new(),
            rss_kib: Vec::new(),
            stdout: String::new(),
        }
    }

    /// Runs the command once under `/usr/bin/time`; `timed` records its wall time and peak RSS (the
    /// untimed first run is the warm-up that fills the page cache).
    fn run(&mut self, timed: bool) -> Result<(), String> {
        let time_file = std::env::temp_dir().join(format!("nw-bench-time-{}", std::process::id()));
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&time_file)
            .args(&self.cmd)
            .output()
            .map_err(|e| format!("/usr/bin/time: {e} (apt-get install time)"))?;
        let wall = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                self.cmd.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = std::fs::read_to_string(&time_file).map_err(|e| e.to_string())?;
        std::fs::remove_file(&time_file).ok();
        let kib: f64 = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        if timed {
            self.walls.push(wall);
            self.rss_kib.push(kib);
        }
        self.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(())
    }

    fn secs(&self) -> f64 {
        median(self.walls.clone())
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "KiB figures"
    )]
    fn rss(&self) -> u64 {
        median(self.rss_kib.clone()) as u64
    }
}

fn generate(script: &Path, n: u64, out: &Path) -> Result<(), String> {
    if out.exists() {
        return Ok(());
    }
    eprintln!("generating {} ({n} packets)", out.display());
    let status = Command::new("python3")
        .arg(script)
        .arg("-n")
        .arg(n.to_string())
        .arg("-o")
        .arg(out)
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed", script.display()))
    }
}

fn field(text: &str, key: &str) -> Option<u64> {
    let start = text.find(&format!("{key}="))? + key.len() + 1;
    text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn json_u64(json: &serde_json::Value, key: &str) -> u64 {
    json.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0)
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

#[expect(clippy::too_many_lines, reason = "one linear script")]
#[expect(clippy::cast_precision_loss, reason = "rates for display")]
fn run() -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let reference = root.join("benches/reference");
    let out = std::env::var_os("BENCH_OUT").map_or_else(|| root.join("target/bench-data"), PathBuf::from);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let n = env_num("N", 1_000_000);
    let runs = env_num("RUNS", 5);
    let bin = env!("CARGO_BIN_EXE_netwarden");
    let big = out.join(format!("traffic-{n}.pcap"));
    let small_n = n / 10;
    let small = out.join(format!("traffic-{small_n}.pcap"));
    generate(&reference.join("gen_pcap.py"), n, &big)?;
    generate(&reference.join("gen_pcap.py"), small_n, &small)?;

    let ceiling = out.join("pcap_ceiling");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&ceiling)
        .arg(reference.join("pcap_ceiling.c"))
        .arg("-lpcap")
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err("compiling pcap_ceiling.c failed (apt-get install build-essential libpcap-dev)".into());
    }

    let big_s = big.to_string_lossy().into_owned();
    let small_s = small.to_string_lossy().into_owned();
    let replay = |capture: &str, rules: &Path, log: &Path| -> Vec<String> {
        [bin, "replay", capture, "--rules"]
            .into_iter()
            .map(String::from)
            .chain([rules.to_string_lossy().into_owned()])
            .chain(["--summary", "--json", "--log"].map(String::from))
            .chain([log.to_string_lossy().into_owned()])
            .collect()
    };
    // C, then 10, 1,000 and 10,000 rules on the full capture, then 10 rules on the tenth (memory check).
    let counts = [10usize, 1_000, 10_000];
    let mut jobs = vec![Job::new(vec![
        ceiling.to_string_lossy().into_owned(),
        big_s.clone(),
    ])];
    let mut logs = Vec::new();
    for count in counts {
        let rules = out.join(format!("rules-{count}.ron"));
        let text = synthetic_rules(count)
            .to_ron_string()
            .map_err(|e| e.to_string())?;
        std::fs::write(&rules, text).map_err(|e| e.to_string())?;
        let log = out.join(format!("firewall-{count}.log"));
        std::fs::remove_file(&log).ok();
        jobs.push(Job::new(replay(&big_s, &rules, &log)));
        logs.push(log);
    }
    let small_log = out.join("firewall-small.log");
    std::fs::remove_file(&small_log).ok();
    jobs.push(Job::new(replay(&small_s, &out.join("rules-10.ron"), &small_log)));
    for job in &mut jobs {
        job.run(false)?;
    }
    let mut round_ratios = Vec::new();
    for _ in 0..runs {
        for job in &mut jobs {
            job.run(true)?;
        }
        if let (Some(c), Some(nw)) = (jobs[0].walls.last(), jobs[1].walls.last()) {
            round_ratios.push(c / nw);
        }
    }

    let mut rows = Vec::new();
    let ceiling_job = &jobs[0];
    rows.push(Row {
        name: "C libpcap ceiling (pcap_ceiling.c, 10 rules)".into(),
        packets: n,
        secs: ceiling_job.secs(),
        rss_kib: ceiling_job.rss(),
        note: format!(
            "allowed {}, denied {}",
            field(&ceiling_job.stdout, "allowed").unwrap_or(0),
            field(&ceiling_job.stdout, "denied").unwrap_or(0)
        ),
    });
    let mut per_rules = Vec::new();
    for ((count, job), log) in counts.iter().zip(&jobs[1..]).zip(&logs) {
        let summary: serde_json::Value =
            serde_json::from_str(job.stdout.trim()).map_err(|e| format!("summary: {e}"))?;
        let allowed = json_u64(&summary, "allowed") + json_u64(&summary, "logged");
        let blocked = json_u64(&summary, "blocked");
        let log_lines = std::fs::read_to_string(log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        per_rules.push((*count, n as f64 / job.secs()));
        rows.push(Row {
            name: format!("netwarden replay --summary, {count} rules (parse+rules+detect+audit log)"),
            packets: json_u64(&summary, "packets"),
            secs: job.secs(),
            rss_kib: job.rss(),
            note: format!(
                "allowed {allowed}, denied {blocked}, malformed {}, alerts {}, log lines {log_lines}",
                json_u64(&summary, "malformed"),
                json_u64(&summary, "alerts")
            ),
        });
    }
    if let Some(small_job) = jobs.last() {
        rows.push(Row {
            name: "netwarden replay --summary, 10 rules, 1/10 of the capture".into(),
            packets: small_n,
            secs: small_job.secs(),
            rss_kib: small_job.rss(),
            note: "memory check".into(),
        });
    }

    if std::env::var("SCAPY").as_deref() != Ok("0") {
        match scapy_row(&reference, &out) {
            Ok(row) => rows.push(row),
            Err(e) => eprintln!("scapy seed skipped: {e}"),
        }
    }

    let ceiling_pps = rows.first().map_or(1.0, |r| r.packets as f64 / r.secs);
    println!();
    println!(
        "| tool | packets | seconds (median of {runs}) | packets/s | x C ceiling | peak RSS MiB | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let pps = r.packets as f64 / r.secs;
        println!(
            "| {} | {} | {:.3} | {:.0} | {:.4} | {:.1} | {} |",
            r.name,
            r.packets,
            r.secs,
            pps,
            pps / ceiling_pps,
            r.rss_kib as f64 / 1024.0,
            r.note
        );
    }
    println!();
    if let (Some((_, pps10)), Some((_, pps10k))) = (per_rules.first(), per_rules.last()) {
        println!(
            "10,000 rules run at {:.0}% of the 10-rule throughput (target >= 50%)",
            pps10k / pps10 * 100.0
        );
        println!(
            "netwarden 10 rules / C ceiling = {:.2} from the medians (target >= 0.50)",
            pps10 / ceiling_pps
        );
        let mut sorted = round_ratios.clone();
        sorted.sort_by(f64::total_cmp);
        if let (Some(low), Some(high)) = (sorted.first(), sorted.last()) {
            println!(
                "netwarden 10 rules / C ceiling within each of {} rounds: median {:.2}, range {low:.2}-{high:.2}",
                sorted.len(),
                median(round_ratios.clone())
            );
        }
        if let Some(seed) = rows.iter().find(|r| r.name.starts_with("seed")) {
            println!(
                "netwarden 10 rules / Scapy seed = {:.0}x (target > 100x)",
                pps10 / (seed.packets as f64 / seed.secs)
            );
        }
    }
    if let (Some(full), Some(tenth)) = (rows.get(1), rows.iter().find(|r| r.note == "memory check")) {
        println!(
            "peak RSS: {:.1} MiB for {} packets vs {:.1} MiB for {} packets (flat = about equal)",
            full.rss_kib as f64 / 1024.0,
            full.packets,
            tenth.rss_kib as f64 / 1024.0,
            tenth.packets
        );
    }
    Ok(())
}

/// The original Python design (`seed_scapy.py`) on a shorter capture, in a venv with scapy from PyPI.
fn scapy_row(reference: &Path, out: &Path) -> Result<Row, String> {
    let seed_n = env_num("SEED_N", 20_000);
    let venv = out.join("venv");
    let python = venv.join("bin/python");
    let has_scapy = Command::new(&python)
        .args(["-c", "import scapy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_scapy {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "scapy"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            return Err("could not create a venv with scapy (python3-venv, PyPI)".into());
        }
    }
    let file = out.join(format!("traffic-{seed_n}.pcap"));
    generate(&reference.join("gen_pcap.py"), seed_n, &file)?;
    let log = out.join("seed-firewall.log");
    let mut job = Job::new(vec![
        python.to_string_lossy().into_owned(),
        reference.join("seed_scapy.py").to_string_lossy().into_owned(),
        file.to_string_lossy().into_owned(),
        "--log".into(),
        log.to_string_lossy().into_owned(),
    ]);
    // One warm-up (page cache, Python's byte code), then one timed run: it takes seconds.
    job.run(false)?;
    job.run(true)?;
    let (secs, rss) = (job.secs(), job.rss());
    Ok(Row {
        name: "seed: scapy sniff(offline) + logging".into(),
        packets: seed_n,
        secs,
        rss_kib: rss,
        note: "original Python design".into(),
    })
}
