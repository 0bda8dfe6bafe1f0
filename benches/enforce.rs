//! Enforcement figures, in namespaces this bench creates: time to enforce and remove 10,000 addresses via
//! ipset (one batch) and via plain iptables rules (one restore), and TCP throughput between the namespaces
//! with 0 and 10,000 blocked addresses (median of `RUNS`, default 5). Then the command line as a script runs
//! it, process start and the state directory's lock included: `netwarden block ADDR` (median and p95 of
//! `BLOCK_RUNS`, default 31, with an empty list and with 10,000 entries) and `netwarden import` of 10,000
//! addresses. Prints figures; no assertions.
//! Run: `cargo bench --no-default-features --bench enforce` (root: it creates network namespaces).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/nspair.rs"]
#[allow(dead_code)]
mod netns;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netns::NetnsPair;
use netwarden::enforce::runner::{Cmd, CommandRunner, SystemRunner};
use netwarden::enforce::{BlockRequest, EnforceConfig, Enforcer, Family, iptables};

const COUNT: u32 = 10_000;
const TRANSFER_BYTES: u64 = 256 * 1024 * 1024;

fn addresses() -> Vec<IpNet> {
    // 198.18.0.0/15 (benchmarking range, RFC 2544): never the peer.
    (0..COUNT)
        .map(|i| IpNet::from(IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i))))
        .collect()
}

/// Seconds to send `TRANSFER_BYTES` over TCP from A to B (python3 on both ends, bounded by a 60 s timeout).
fn throughput_mib_s(pair: &NetnsPair) -> f64 {
    let server = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',7300))\n\
         s.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\nwhile c.recv(1<<20):\n  pass\n",
        pair.b4
    );
    let mut child = std::process::Command::new("ip")
        .args([
            "netns", "exec", &pair.b, "timeout", "60", "python3", "-c", &server,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let client = format!(
        "import socket,time\nc=socket.create_connection(('{}',7300))\nb=b'x'*(1<<20)\nt=time.time()\n\
         for _ in range({}):\n  c.sendall(b)\nc.close()\nprint(time.time()-t)\n",
        pair.b4,
        TRANSFER_BYTES >> 20
    );
    let out = NetnsPair::exec(&pair.a, &["timeout", "60", "python3", "-c", &client]);
    child.wait().ok();
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN);
    (TRANSFER_BYTES >> 20) as f64 / secs
}

/// Median of `RUNS` throughput measurements (the VM is noisy; one run says little).
fn median_throughput(pair: &NetnsPair) -> f64 {
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    let mut v: Vec<f64> = (0..runs.max(1)).map(|_| throughput_mib_s(pair)).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

/// Wall time of `netwarden ARGS --state-dir DIR` run in namespace `ns`, as a script would run it.
fn timed_cli(ns: &str, dir: &std::path::Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, BIN])
        .args(args)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Median and 95th percentile of `samples`.
fn median_p95(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

/// `netwarden block` of one new address `runs` times (each a new address in 198.19.255.0/24).
fn cli_block_figures(ns: &str, dir: &std::path::Path, runs: u32) -> (Duration, Duration) {
    let samples = (0..runs)
        .map(|i| timed_cli(ns, dir, &["block", &format!("198.19.255.{}", i % 250 + 1)]))
        .collect();
    median_p95(samples)
}

fn cli_figures(pair: &NetnsPair) {
    let runs = std::env::var("BLOCK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(31u32);
    let dir = tempfile::tempdir().unwrap();
    let (median, p95) = cli_block_figures(&pair.a, dir.path(), runs);
    println!("CLI block 1 address, empty list:              median {median:?}, p95 {p95:?} ({runs} runs)");
    timed_cli(&pair.a, dir.path(), &["flush"]);
    let list = dir.path().join("import.txt");
    let text: String = addresses().iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(&list, text).unwrap();
    let import = timed_cli(&pair.a, dir.path(), &["import", list.to_str().unwrap()]);
    println!("CLI import {COUNT} addresses (one process):      {import:?}");
    let (median, p95) = cli_block_figures(&pair.a, dir.path(), runs);
    println!("CLI block 1 address, {COUNT} on the list:      median {median:?}, p95 {p95:?} ({runs} runs)");
    let list_took = timed_cli(&pair.a, dir.path(), &["list"]);
    println!(
        "CLI list with {}, kernel checked:           {list_took:?}",
        COUNT + runs.min(250)
    );
    timed_cli(&pair.a, dir.path(), &["flush"]);
}

fn main() {
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let runner = Arc::new(SystemRunner::in_netns(&pair.a));
    let config = EnforceConfig {
        state_dir: Some(dir.path().to_owned()),
        ssh_connection: None,
        ..EnforceConfig::default()
    };
    let enforcer = Enforcer::open(runner.clone(), config).unwrap();
    let nets = addresses();
    let requests: Vec<BlockRequest> = nets
        .iter()
        .map(|net| BlockRequest {
            net: *net,
            reason: "bench".to_owned(),
            duration: None,
            force: false,
            update: netwarden::enforce::Update::default(),
        })
        .collect();

    let base = median_throughput(&pair);
    let started = Instant::now();
    enforcer.block_many(&requests).unwrap();
    let ipset_add = started.elapsed();
    let blocked = median_throughput(&pair);
    let started = Instant::now();
    enforcer.check_drift().unwrap();
    let drift = started.elapsed();
    let started = Instant::now();
    enforcer
        .unblock_all(netwarden::blocklist::LiftReason::Manual)
        .unwrap();
    let ipset_remove = started.elapsed();

    let script = iptables::address_rules_script("NWBENCH", Family::V4, &nets);
    let restore = Cmd::new("iptables-restore", &["--noflush", "-w", "5"]);
    runner
        .run(
            &restore
                .clone()
                .with_stdin("*filter\n:NWBENCH - [0:0]\n-I INPUT 1 -j NWBENCH\nCOMMIT\n".to_owned()),
        )
        .unwrap();
    let started = Instant::now();
    runner.run(&restore.clone().with_stdin(script)).unwrap();
    let rules_add = started.elapsed();
    let rules_blocked = median_throughput(&pair);
    let started = Instant::now();
    runner
        .run(&restore.with_stdin("*filter\n:NWBENCH - [0:0]\nCOMMIT\n".to_owned()))
        .unwrap();
    let rules_remove = started.elapsed();
    enforcer.flush_kernel().unwrap();

    println!("enforce {COUNT} addresses, ipset batch:        {ipset_add:?}");
    println!("drift check with {COUNT} entries:              {drift:?}");
    println!("remove {COUNT} addresses, ipset flush:         {ipset_remove:?}");
    println!("enforce {COUNT} addresses, iptables rules:     {rules_add:?}");
    println!("remove {COUNT} addresses, iptables rules:      {rules_remove:?}");
    println!("TCP A->B, nothing blocked (median):            {base:.0} MiB/s");
    println!(
        "TCP A->B, {COUNT} blocked via ipset (median):   {blocked:.0} MiB/s ({:.2}x)",
        blocked / base
    );
    println!(
        "TCP A->B, {COUNT} blocked via rules (median):   {rules_blocked:.0} MiB/s ({:.2}x)",
        rules_blocked / base
    );
    cli_figures(&pair);
}
