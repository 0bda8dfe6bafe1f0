//! Attribution figures: the cost of attributing a new flow (from the lookup's start until the program is
//! known) for a new socket of a running process and for a new process, the flow table's memory at 100,000
//! concurrent flows, and the capture thread's cost per packet of a known flow.
//!
//! Run with `cargo bench --bench attrib` (root not needed: the sockets and processes are this bench's own,
//! on loopback). Times are wall-clock medians and 95th percentiles over many lookups; on a shared machine
//! they vary with load, so the load average is printed next to them.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::attrib::procfs_source::ProcFs;
use netwarden::attrib::resolve::{Query, Resolver, Step};
use netwarden::attrib::socket::{SystemSockets, TCP};
use netwarden::attrib::{Attribution, ProcessInfo, UserId};
use netwarden::flows::{FlowConfig, FlowDirection, FlowTable, Observed, SharedFlows};
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta, TcpFlags};
use netwarden::rules::Action;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(name: &str, mut times: Vec<Duration>, right: usize, total: usize) {
    times.sort_unstable();
    println!(
        "{name:<44} median {:>8.1} us   p95 {:>8.1} us   ({right} of {total} attributed right)",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.95).as_secs_f64() * 1e6,
    );
}

fn query(local: SocketAddr, remote: SocketAddr) -> Query {
    Query {
        protocol: TCP,
        local,
        remote,
        direction: FlowDirection::Outbound,
        first_seen_micros: chrono::Utc::now().timestamp_micros(),
    }
}

/// Resolves until final (retrying as the attribution thread would); returns the time and the answer.
fn timed_resolve(
    resolver: &mut Resolver<SystemSockets, ProcFs>,
    q: &Query,
) -> (Duration, Option<Attribution>) {
    let start = Instant::now();
    for attempt in 0..=4 {
        if let Step::Done(a) = resolver.resolve(q, attempt == 4) {
            return (start.elapsed(), Some(a));
        }
    }
    (start.elapsed(), None)
}

/// A new socket in a process the index already knows (a browser opening its next connection).
fn new_socket_of_a_running_process(lookups: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let mut resolver = Resolver::new(SystemSockets::open(), ProcFs::new());
    let me = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut times = Vec::with_capacity(lookups);
    let mut right = 0;
    let mut keep = Vec::new();
    for _ in 0..lookups {
        let client = TcpStream::connect(server)?;
        let (accepted, _) = listener.accept()?;
        let q = query(client.local_addr()?, server);
        let (took, answer) = timed_resolve(&mut resolver, &q);
        if answer
            .as_ref()
            .and_then(Attribution::process)
            .is_some_and(|p| p.exe == me)
        {
            right += 1;
        }
        times.push(took);
        keep.push((client, accepted));
        if keep.len() > 200 {
            keep.clear();
        }
    }
    report("new socket, running process", times, right, lookups);
    Ok(())
}

/// A new process that just opened its socket (a short-lived client).
fn new_process(children: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let mut resolver = Resolver::new(SystemSockets::open(), ProcFs::new());
    let mut times = Vec::with_capacity(children);
    let mut right = 0;
    let script = format!(
        "import socket,sys,time\ns=socket.create_connection(('127.0.0.1',{}))\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n",
        server.port()
    );
    for _ in 0..children {
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let (_accepted, _) = listener.accept()?;
        let Ok(port) = line.trim().parse::<u16>() else {
            child.kill().ok();
            continue;
        };
        let q = query(SocketAddr::from(([127, 0, 0, 1], port)), server);
        let (took, answer) = timed_resolve(&mut resolver, &q);
        let child_pid = child.id();
        if answer
            .as_ref()
            .and_then(Attribution::process)
            .is_some_and(|p| p.pid == child_pid)
        {
            right += 1;
        }
        times.push(took);
        // Closing stdin ends the child.
        drop(child.stdin.take());
        child.wait()?;
    }
    report("new process (python3 client)", times, right, children);
    Ok(())
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn packet(i: u32, reply: bool) -> PacketMeta {
    let mut m = PacketMeta::new(1_700_000_000_000_000 + i64::from(i), 60, 60, LinkType::Ethernet);
    let host = std::net::Ipv4Addr::from(0x0a00_0000 | (i >> 10));
    let server = std::net::Ipv4Addr::new(192, 0, 2, 1);
    let port = 1024 + u16::try_from(i & 0x3ff).unwrap_or(0);
    let (src, dst, sport, dport) = if reply {
        (server, host, 443, port)
    } else {
        (host, server, port, 443)
    };
    m.src_ip = Some(src.into());
    m.dst_ip = Some(dst.into());
    m.protocol = Some(IpProto::TCP);
    m.src_port = Some(sport);
    m.dst_port = Some(dport);
    m.tcp_flags = Some(TcpFlags(TcpFlags::ACK));
    m.direction = if reply { Direction::In } else { Direction::Out };
    m
}

/// The flow table at `flows` concurrent flows: memory per flow, and the capture thread's cost per packet
/// of a known flow (lookup and counters).
fn flow_table(flows: u32) {
    let before = rss_bytes();
    let shared = Arc::new(SharedFlows::default());
    let mut table = FlowTable::new(
        FlowConfig {
            max_flows: 1_000_000,
            ..FlowConfig::default()
        },
        Arc::clone(&shared),
    );
    let iface: Arc<str> = Arc::from("eth0");
    let process = Arc::new(ProcessInfo {
        pid: 4242,
        exe: "/usr/lib/firefox/firefox".into(),
        cmdline: vec!["/usr/lib/firefox/firefox".into(), "-contentproc".into()],
        start_ticks: 1,
        unit: Some("app-firefox.scope".into()),
        app: None,
    });
    for i in 0..flows {
        if let Observed::New(flow) = table.observe(&packet(i, false), &iface) {
            flow.set_attribution(Attribution::Process {
                process: Arc::clone(&process),
                user: UserId {
                    uid: 1000,
                    name: Some(Arc::from("alice")),
                },
            });
        }
    }
    table.publish();
    let after = rss_bytes();
    println!(
        "flow table at {flows} flows (attributed, snapshot published): {:.1} MiB, {} bytes per flow (RSS growth)",
        after.saturating_sub(before) as f64 / f64::from(1 << 20),
        after.saturating_sub(before) / u64::from(flows)
    );
    let packets = 2_000_000u32;
    let start = Instant::now();
    let mut checksum = 0u64;
    for n in 0..packets {
        let i = n.wrapping_mul(2_654_435_761) % flows;
        let m = packet(i, n % 2 == 1);
        if let Observed::Known(flow) = table.observe(&m, &iface) {
            flow.record(&m, Action::Allow, None);
            checksum = checksum.wrapping_add(flow.tx().0);
        }
    }
    let per_packet = start.elapsed().as_secs_f64() * 1e9 / f64::from(packets);
    println!(
        "known-flow packet at {flows} flows: {per_packet:.0} ns (lookup, counters; packet built in the loop too) [{checksum}]"
    );
}

fn main() -> ExitCode {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "attribution bench (load average {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let result = new_socket_of_a_running_process(2_000).and_then(|()| new_process(100));
    if let Err(e) = result {
        eprintln!("bench failed: {e}");
        return ExitCode::FAILURE;
    }
    flow_table(100_000);
    std::io::stdout().flush().ok();
    ExitCode::SUCCESS
}
