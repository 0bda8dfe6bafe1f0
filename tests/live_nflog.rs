//! Live capture on libpcap's `nflog` device (link type NFLOG) inside a network namespace this test creates:
//! iptables logs the namespace's own loopback traffic to an NFLOG group, `netwarden run --iface nflog:N`
//! sees every logged packet with its addresses and ports, judges it by a port rule, reports no link state
//! for a device that has none, and stops at once on Ctrl-C although the device is quiet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Pair, ok};

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

/// Kills the capture if the test fails before it stops (a blocked read must not outlive the test).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn nflog_device_sees_logged_packets_and_stops_on_ctrl_c() {
    common::root::require_root!("network namespaces, iptables");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(
        &rules,
        r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"])])"#,
    )
    .unwrap();
    let pair = Pair::new();
    let ns = pair.a.as_str();
    ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    // Group 7, not the default 0, so the `nflog:GROUPS` device name is exercised.
    for proto in [&["-p", "icmp"][..], &["-p", "tcp", "--dport", "22"]] {
        let mut args = vec!["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-o", "lo"];
        args.extend(proto);
        args.extend(["-j", "NFLOG", "--nflog-group", "7"]);
        ok(&args);
    }
    let stdout_path = dir.path().join("out.jsonl");
    let stderr_path = dir.path().join("err.txt");
    let mut child = KillOnDrop(
        Command::new("ip")
            .args([
                "netns", "exec", ns, BIN, "run", "--iface", "nflog:7", "--json", "--all", "--no-log",
            ])
            .arg("--rules")
            .arg(&rules)
            .arg("--state-dir")
            .arg(dir.path())
            .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
            .spawn()
            .unwrap(),
    );
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(10), || stderr()
            .contains("capturing on nflog:7")),
        "{}",
        stderr()
    );
    ok(&[
        "ip",
        "netns",
        "exec",
        ns,
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "1",
        "127.0.0.1",
    ]);
    // Nothing listens on 22: the SYN is logged, refused, and the shell's redirect fails as it should.
    for _ in 0..2 {
        Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c", "echo > /dev/tcp/127.0.0.1/22"])
            .output()
            .unwrap();
    }
    let lines = || {
        std::fs::read_to_string(&stdout_path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(wait_for(Duration::from_secs(10), || lines() >= 6), "{}", stderr());
    // The device is quiet now; Ctrl-C must still end the capture promptly.
    std::thread::sleep(Duration::from_millis(300));
    ok(&["kill", "-INT", &child.0.id().to_string()]);
    let stopped_at = Instant::now();
    let mut code = None;
    wait_for(Duration::from_secs(5), || {
        code = child.0.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(0)), "clean exit on Ctrl-C: {}", stderr());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        stopped_at.elapsed()
    );

    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        events
            .iter()
            .all(|e| e["link"] == "nflog" && e["malformed"] == ""),
        "{stdout}"
    );
    let icmp = |icmp_type: u8| {
        events
            .iter()
            .filter(|e| {
                e["protocol"] == "icmp"
                    && e["icmp_type"] == icmp_type
                    && e["src_ip"] == "127.0.0.1"
                    && e["dst_ip"] == "127.0.0.1"
            })
            .count()
    };
    assert_eq!((icmp(8), icmp(0)), (2, 2), "echo requests and replies: {stdout}");
    let ssh: Vec<&serde_json::Value> = events.iter().filter(|e| e["dst_port"] == 22).collect();
    assert_eq!(ssh.len(), 2, "{stdout}");
    for event in ssh {
        assert_eq!(event["protocol"], "tcp");
        assert_eq!(event["tcp_flags"], "S");
        assert_eq!(event["verdict"], "block");
        assert_eq!(event["rule"], "no ssh");
    }
    let stderr = stderr();
    assert!(
        !stderr.contains("is down"),
        "nflog has no link state to lose: {stderr}"
    );
    assert!(stderr.contains("6 packets, 2 denied"), "{stderr}");
}
