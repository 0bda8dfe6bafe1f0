//! Live capture with real libpcap on a veth pair between two network namespaces this test creates (traffic
//! only between them): the binary sees the ping and UDP packets it is sent, with the right direction, and
//! stops cleanly on Ctrl-C; a downed interface is waited for and a deleted one ends capture with one error;
//! tens of thousands of packets sent by `tcpreplay` at a steady rate are all judged, none dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::netns::{Pair, ok};

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

fn rules_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("rules.ron");
    std::fs::write(
        &path,
        r#"(default_policy: Allow, rules: [(name: "no udp 5353", action: Block, protocol: Udp, dst_ports: ["5353"])])"#,
    )
    .unwrap();
    path
}

/// Starts `netwarden run` on `vA` inside namespace `ns` and waits until it says it is capturing.
fn start_capture(ns: &str, extra: &[&str], rules: &std::path::Path) -> Child {
    let extra: Vec<&str> = ["--no-log"].iter().chain(extra).copied().collect();
    start_capture_on(ns, "vA", &extra, rules)
}

/// Starts `netwarden run --iface IFACE` inside namespace `ns` and waits until it says it is capturing.
fn start_capture_on(ns: &str, iface: &str, extra: &[&str], rules: &std::path::Path) -> Child {
    start_capture_to(ns, iface, extra, rules, Stdio::piped())
}

/// As `start_capture_on`, with the events going to `stdout`.
fn start_capture_to(ns: &str, iface: &str, extra: &[&str], rules: &std::path::Path, stdout: Stdio) -> Child {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, BIN, "run", "--iface", iface, "--rules"])
        .arg(rules)
        .args(extra)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(
        first.contains(&format!("capturing on {iface}")),
        "unexpected start: {first}"
    );
    // Keep draining stderr in the background so the child never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("stderr".into())
        .spawn(move || {
            let mut rest = String::new();
            lines.read_to_string(&mut rest).ok();
            tx.send(rest).ok();
        })
        .unwrap();
    STDERR.with(|s| *s.borrow_mut() = Some(rx));
    child
}

thread_local! {
    static STDERR: std::cell::RefCell<Option<std::sync::mpsc::Receiver<String>>> = const { std::cell::RefCell::new(None) };
}

fn rest_of_stderr() -> String {
    STDERR
        .with(|s| {
            s.borrow_mut()
                .take()
                .and_then(|rx| rx.recv_timeout(Duration::from_secs(10)).ok())
        })
        .unwrap_or_default()
}

fn interrupt(child: &Child) {
    ok(&["kill", "-INT", &child.id().to_string()]);
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    None
}

#[test]
fn sees_ping_and_udp_with_direction_and_stops_on_ctrl_c() {
    common::root::require_root!("network namespaces");
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let pair = Pair::new();
    let mut child = start_capture(&pair.a, &["--json", "--all"], &rules);
    ok(&[
        "ip",
        "netns",
        "exec",
        &pair.b,
        "ping",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        &pair.ip_a(),
    ]);
    let udp_target = format!("/dev/udp/{}/5353", pair.ip_a());
    ok(&[
        "ip",
        "netns",
        "exec",
        &pair.b,
        "bash",
        "-c",
        &format!("echo hello > {udp_target}"),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let stderr = rest_of_stderr();
    assert_eq!(code, Some(0), "clean exit on Ctrl-C; stderr: {stderr}");
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (a, b) = (pair.ip_a(), pair.ip_b());
    let icmp = |icmp_type: u8, src: &str, dst: &str, dir: &str| {
        events
            .iter()
            .filter(|e| {
                e["protocol"] == "icmp"
                    && e["icmp_type"] == icmp_type
                    && e["src_ip"] == src
                    && e["dst_ip"] == dst
                    && e["direction"] == dir
            })
            .count()
    };
    assert_eq!(icmp(8, &b, &a, "in"), 3, "echo requests arrive: {stdout}");
    assert_eq!(icmp(0, &a, &b, "out"), 3, "echo replies leave: {stdout}");
    assert_eq!(
        icmp(3, &a, &b, "out"),
        1,
        "the closed UDP port answers unreachable: {stdout}"
    );
    let udp: Vec<&serde_json::Value> = events.iter().filter(|e| e["dst_port"] == 5353).collect();
    assert_eq!(udp.len(), 1, "{stdout}");
    assert_eq!(udp[0]["verdict"], "block");
    assert_eq!(udp[0]["rule"], "no udp 5353");
    assert_eq!(udp[0]["direction"], "in");
    assert!(
        stderr.contains("kernel dropped 0"),
        "kernel drop counters are reported: {stderr}"
    );
}

#[test]
fn any_names_each_packets_interface_and_interface_rules_match() {
    common::root::require_root!("network namespaces");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(
        &rules,
        r#"(default_policy: Allow, rules: [
            (name: "no udp 5353 on vA", action: Block, protocol: Udp, dst_ports: ["5353"], interface: "vA"),
            (name: "no udp 5354 on lo", action: Block, protocol: Udp, dst_ports: ["5354"], interface: "lo"),
        ])"#,
    )
    .unwrap();
    let pair = Pair::new();
    let log = dir.path().join("fw.log");
    let mut child = start_capture_on(
        &pair.a,
        "any",
        &["--json", "--all", "--log", log.to_str().unwrap()],
        &rules,
    );
    let send = |ns: &str, target: &str, port: u16| {
        ok(&[
            "ip",
            "netns",
            "exec",
            ns,
            "bash",
            "-c",
            &format!("echo hello > /dev/udp/{target}/{port}"),
        ]);
    };
    send(&pair.b, &pair.ip_a(), 5353); // arrives through vA
    send(&pair.a, "127.0.0.1", 5353); // stays on lo
    send(&pair.a, "127.0.0.1", 5354); // denied on lo, right after a denial on vA
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(code, Some(0), "{}", rest_of_stderr());
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let udp = |src: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["dst_port"] == 5353 && e["src_ip"] == src)
            .collect()
    };
    let on_veth = udp(&pair.ip_b());
    assert_eq!(on_veth.len(), 1, "{stdout}");
    assert_eq!(on_veth[0]["link"], "linux_sll2", "{stdout}");
    assert_eq!(on_veth[0]["iface"], "vA", "{stdout}");
    assert_eq!(on_veth[0]["verdict"], "block", "the vA rule matches on any");
    let on_lo = udp("127.0.0.1");
    assert!(!on_lo.is_empty(), "{stdout}");
    for event in on_lo {
        assert_eq!(event["iface"], "lo", "{stdout}");
        let denied_on_lo = event["dst_port"] == 5354;
        assert_eq!(
            event["verdict"],
            if denied_on_lo { "block" } else { "allow" },
            "the vA rule leaves lo alone: {stdout}"
        );
    }
    // The audit log names each packet's own interface, also when denials on two interfaces follow each
    // other within one batch interval.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = |port: &str| text.lines().find(|l| l.contains(port)).unwrap_or_default();
    assert!(line(":5353 ").contains("iface=\"vA\""), "{text}");
    assert!(line(":5354 ").contains("iface=\"lo\""), "{text}");
}

#[test]
fn downed_interface_is_waited_for_and_a_deleted_one_ends_capture() {
    common::root::require_root!("network namespaces");
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let pair = Pair::new();
    let mut child = start_capture(&pair.a, &[], &rules);
    ok(&["ip", "-n", &pair.a, "link", "set", "vA", "down"]);
    std::thread::sleep(Duration::from_secs(3));
    ok(&["ip", "-n", &pair.a, "link", "set", "vA", "up"]);
    std::thread::sleep(Duration::from_secs(3));
    ok(&["ip", "-n", &pair.a, "link", "del", "vA"]);
    let code = wait_exit(&mut child, Duration::from_secs(20));
    let stderr = rest_of_stderr();
    assert_eq!(
        code,
        Some(1),
        "a vanished interface is a runtime failure: {stderr}"
    );
    // Deleting a link takes it down first, so a second "down" notice may precede the final error.
    let (outage, _) = stderr
        .split_once("vA is back; capturing again")
        .expect("the link came back");
    assert_eq!(
        outage
            .matches("vA is down or failed (link is down); waiting")
            .count(),
        1,
        "one notice per outage: {stderr}"
    );
    assert!(
        !stderr.contains("rules file changed"),
        "the loaded file is not reported as a change: {stderr}"
    );
    assert!(
        stderr.contains("interface \"vA\" disappeared while capturing"),
        "{stderr}"
    );
}

/// The number after `label` in `text` (`"Successful packets:        20000"`, `"netwarden: 20000 packets"`).
fn count_after(text: &str, label: &str) -> Option<u64> {
    let start = text.find(label)? + label.len();
    text[start..]
        .split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// A count of `netwarden run`'s stop summary (`"N packets, N denied, N alerts; kernel dropped N, interface
/// dropped N"`), by the words next to it.
fn summary_count(stderr: &str, what: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" packets, ") && l.contains("kernel dropped"))?;
    let line = line.strip_prefix("netwarden: ")?;
    line.split([',', ';']).map(str::trim).find_map(|part| {
        part.strip_suffix(what)
            .or_else(|| part.strip_prefix(what))
            .and_then(|n| n.trim().parse().ok())
    })
}

#[test]
fn every_packet_of_a_steady_20k_per_second_stream_is_judged_with_no_kernel_drop() {
    common::root::require_root!("network namespaces");
    const PACKETS: usize = 40_000;
    const RATE: &str = "20000";
    let dir = tempfile::tempdir().unwrap();
    // Half the stream is denied by a rule (and written to the audit log); the rest is allowed.
    let rules = dir.path().join("rules.ron");
    std::fs::write(
        &rules,
        r#"(default_policy: Allow, rules: [
            (name: "deny udp 1000-1999", action: Block, protocol: Udp, dst_ports: ["1000-1999"]),
            (name: "allow dns", action: Allow, protocol: Udp, dst_ports: ["53"]),
        ])"#,
    )
    .unwrap();
    // UDP from 4,000 sources in 198.18.0.0/15 to a host that is not A (so A answers nothing and the link
    // carries only this stream), to ports 1000-2999, of 60 to 1,060 bytes.
    let records: Vec<common::pcapfile::Record> = (0..PACKETS)
        .map(|i| {
            let src = [
                198,
                18,
                u8::try_from(i / 256 % 16).unwrap(),
                u8::try_from(i % 256).unwrap(),
            ];
            let port = u16::try_from(1000 + i % 2000).unwrap();
            let payload = vec![0x5a; 18 + i % 1000];
            let frame = common::frames::eth(
                0x0800,
                &common::frames::ipv4(
                    src,
                    [198, 19, 0, 1],
                    17,
                    &common::frames::udp(40_000, port, &payload),
                ),
            );
            let wire_len = u32::try_from(frame.len()).unwrap();
            (
                1_700_000_000_000_000 + i64::try_from(i).unwrap() * 50,
                frame,
                wire_len,
            )
        })
        .collect();
    let denied = (0..PACKETS).filter(|i| i % 2000 < 1000).count() as u64;
    let pcap = dir.path().join("stream.pcap");
    common::pcapfile::write_pcap(&pcap, 1, &records);
    let pair = Pair::new();
    // Only the stream is counted.
    pair.without_ipv6();
    let log = dir.path().join("fw.log");
    let out = std::fs::File::create(dir.path().join("events.json")).unwrap();
    let mut child = start_capture_to(
        &pair.a,
        "vA",
        &["--json", "--log", log.to_str().unwrap()],
        &rules,
        Stdio::from(out),
    );
    let replay = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.b,
            "tcpreplay",
            "-q",
            "--pps",
            RATE,
            "-i",
            "vB",
        ])
        .arg(&pcap)
        .output()
        .expect("tcpreplay (Debian package tcpreplay; `make deps` installs it)");
    let replayed =
        String::from_utf8_lossy(&replay.stdout).into_owned() + &String::from_utf8_lossy(&replay.stderr);
    assert!(replay.status.success(), "{replayed}");
    assert_eq!(
        count_after(&replayed, "Successful packets:"),
        Some(PACKETS as u64),
        "{replayed}"
    );
    // The last partly filled block of the ring is handed over after the read timeout (50 ms).
    std::thread::sleep(Duration::from_secs(1));
    interrupt(&child);
    let code = wait_exit(&mut child, Duration::from_secs(20));
    let stderr = rest_of_stderr();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary_count(&stderr, "kernel dropped"), Some(0), "{stderr}");
    assert_eq!(summary_count(&stderr, "interface dropped"), Some(0), "{stderr}");
    assert_eq!(
        summary_count(&stderr, "packets"),
        Some(PACKETS as u64),
        "every packet judged: {stderr}"
    );
    assert_eq!(summary_count(&stderr, "denied"), Some(denied), "{stderr}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged
            .lines()
            .filter(|l| l.contains("deny udp 1000-1999"))
            .count()
            > 0,
        "denied packets reach the audit log: {}",
        logged.lines().next().unwrap_or_default()
    );
}
