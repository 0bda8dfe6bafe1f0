//! Offline replay throughput of the whole pipeline (libpcap read, parse, rules, detection, audit log) on a
//! realistic 1,000,000-packet capture, with 10, 1,000 and 10,000 rules, next to the bare C libpcap loop and
//! the original Scapy design, plus peak memory on a 10x shorter capture to show it is flat in capture length.
//!
//! Run: `cargo bench --no-default-features --bench replay` (or `make bench`). Environment: `N` packets
//! (default 1,000,000), `RUNS` timed runs per row (default 3, the median is printed), `BENCH_OUT` work
//! directory (default `target/bench-data`), `SCAPY=0` to skip the Scapy seed (it needs `pip install scapy`
//! into a venv it creates), `SEED_N` packets for the Scapy run (default 20,000; it manages ~3,000/s).
//!
//! Every row is a whole process timed from outside by `/usr/bin/time` (start-up included), as in
//! `../shared/bench/run_all.sh`, so the figures compare like with like.

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

/// Runs `cmd` once untimed (warm-up, fills the page cache), then `runs` times under `/usr/bin/time`;
/// returns median wall seconds, median peak RSS and the last run's stdout.
fn measure(cmd: &[&str], runs: u64) -> Result<(f64, u64, String), String> {
    let (program, args) = cmd.split_first().ok_or("empty command")?;
    let warm = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !warm.status.success() {
        return Err(format!(
            "{} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&warm.stderr).trim()
        ));
    }
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    let mut stdout = String::new();
    let time_file = std::env::temp_dir().join(format!("nw-bench-time-{}", std::process::id()));
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&time_file)
            .args(cmd)
            .output()
            .map_err(|e| format!("/usr/bin/time: {e} (apt-get install time)"))?;
        let wall = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                cmd.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = std::fs::read_to_string(&time_file).map_err(|e| e.to_string())?;
        let kib: f64 = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        walls.push(wall);
        rss.push(kib);
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    std::fs::remove_file(&time_file).ok();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "KiB figures"
    )]
    Ok((median(walls), median(rss) as u64, stdout))
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
    let runs = env_num("RUNS", 3);
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

    let mut rows = Vec::new();
    let big_s = big.to_string_lossy().into_owned();
    let (secs, rss, stdout) = measure(&[&ceiling.to_string_lossy(), &big_s], runs)?;
    let ceiling_allowed = field(&stdout, "allowed").unwrap_or(0);
    let ceiling_denied = field(&stdout, "denied").unwrap_or(0);
    rows.push(Row {
        name: "C libpcap ceiling (pcap_ceiling.c, 10 rules)".into(),
        packets: n,
        secs,
        rss_kib: rss,
        note: format!("allowed {ceiling_allowed}, denied {ceiling_denied}"),
    });

    let log = out.join("firewall.log");
    let log_s = log.to_string_lossy().into_owned();
    let mut per_rules = Vec::new();
    for count in [10usize, 1_000, 10_000] {
        let path = out.join(format!("rules-{count}.ron"));
        let text = synthetic_rules(count)
            .to_ron_string()
            .map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let rules_s = path.to_string_lossy().into_owned();
        std::fs::remove_file(&log).ok();
        let (secs, rss, stdout) = measure(
            &[
                bin,
                "replay",
                &big_s,
                "--rules",
                &rules_s,
                "--summary",
                "--json",
                "--log",
                &log_s,
            ],
            runs,
        )?;
        let summary: serde_json::Value =
            serde_json::from_str(stdout.trim()).map_err(|e| format!("summary: {e}"))?;
        let allowed = json_u64(&summary, "allowed") + json_u64(&summary, "logged");
        let blocked = json_u64(&summary, "blocked");
        let log_lines = std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        per_rules.push((count, n as f64 / secs));
        rows.push(Row {
            name: format!("netwarden replay --summary, {count} rules (parse+rules+detect+audit log)"),
            packets: json_u64(&summary, "packets"),
            secs,
            rss_kib: rss,
            note: format!(
                "allowed {allowed}, denied {blocked}, malformed {}, alerts {}, log lines {log_lines}",
                json_u64(&summary, "malformed"),
                json_u64(&summary, "alerts")
            ),
        });
    }

    let small_s = small.to_string_lossy().into_owned();
    let rules10 = out.join("rules-10.ron").to_string_lossy().into_owned();
    let (secs, rss_small, _) = measure(
        &[
            bin,
            "replay",
            &small_s,
            "--rules",
            &rules10,
            "--summary",
            "--json",
            "--log",
            &log_s,
        ],
        runs,
    )?;
    rows.push(Row {
        name: "netwarden replay --summary, 10 rules, 1/10 of the capture".into(),
        packets: small_n,
        secs,
        rss_kib: rss_small,
        note: "memory check".into(),
    });

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
            "netwarden 10 rules / C ceiling = {:.2} (target >= 0.50)",
            pps10 / ceiling_pps
        );
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
    let (secs, rss, _) = measure(
        &[
            &python.to_string_lossy(),
            &reference.join("seed_scapy.py").to_string_lossy(),
            &file.to_string_lossy(),
            "--log",
            &log.to_string_lossy(),
        ],
        1,
    )?;
    Ok(Row {
        name: "seed: scapy sniff(offline) + logging".into(),
        packets: seed_n,
        secs,
        rss_kib: rss,
        note: "original Python design".into(),
    })
}
