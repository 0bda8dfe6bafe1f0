//! `netwarden run --auto-block` for real, fail2ban style: inside namespaces this test creates, the peer
//! port-scans the host, detection raises an alert, the peer is banned in the host's kernel (its pings stop),
//! an `enforce: true` rule from `rules.ron` is in the kernel, and `--remove-on-exit` leaves no trace after
//! Ctrl-C. All traffic stays between the two namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::nspair::NetnsPair;

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

/// Streams the child's stderr lines into a channel so the test can wait for one.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("stderr".into())
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    rx
}

/// Waits up to `secs` for a line containing `needle`; returns every line seen.
fn wait_for(lines: &Receiver<String>, needle: &str, secs: u64) -> (bool, String) {
    let start = Instant::now();
    let mut seen = String::new();
    while start.elapsed() < Duration::from_secs(secs) {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return (true, seen);
            }
        }
    }
    (false, seen)
}

/// Starts `netwarden run` on A's veth inside namespace A with `rules`, the state in `dir`, and `extra`
/// options; stdout is piped, stderr streamed into the returned channel.
fn start_run(pair: &NetnsPair, rules: &Path, dir: &Path, extra: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.a,
            BIN,
            "run",
            "--iface",
            &pair.veth_a,
            "--no-log",
        ])
        .arg("--rules")
        .arg(rules)
        .arg("--state-dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    (child, lines)
}

/// Sends `signal` and waits up to 20 s for the exit code (killed and `None` past that).
fn stop(child: &mut Child, signal: &str) -> Option<i32> {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    None
}

fn ping_from_b(pair: &NetnsPair) -> bool {
    NetnsPair::exec(&pair.b, &["ping", "-c", "1", "-W", "1", "-n", &pair.a4])
        .status
        .success()
}

fn kernel(pair: &NetnsPair) -> String {
    let out = NetnsPair::exec(&pair.a, &["iptables-save"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn port_scan_is_banned_in_the_kernel_and_remove_on_exit_cleans_up() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(
        &rules,
        r#"(default_policy: Allow, rules: [
            (name: "no telnet", action: Block, direction: In, protocol: Tcp, dst_ports: ["23"], enforce: true),
        ])"#,
    )
    .unwrap();
    assert!(ping_from_b(&pair));
    let (mut child, lines) = start_run(
        &pair,
        &rules,
        dir.path(),
        &["--auto-block", "1m", "--remove-on-exit", "--all"],
    );
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::Builder::new()
        .name("stdout".into())
        .spawn(move || {
            let mut text = String::new();
            BufReader::new(stdout).read_to_string(&mut text).ok();
            text
        })
        .unwrap();
    let (started, seen) = wait_for(&lines, "capturing on", 20);
    assert!(started, "{seen}");
    assert!(
        seen.contains("auto-block on") && seen.contains("1 kernel rules"),
        "{seen}"
    );
    assert!(kernel(&pair).contains("--dports 23"), "{}", kernel(&pair));
    // The enforce: true rule drops telnet in the kernel, and the row says so.
    let telnet = format!(
        "import socket\ns=socket.socket()\ns.settimeout(1)\ntry: s.connect(('{}', 23))\nexcept OSError: pass\n",
        pair.a4
    );
    NetnsPair::exec(&pair.b, &["python3", "-c", &telnet]);

    // The peer connects to 40 closed ports of the host: a port scan (threshold 20 in 10 s).
    let scan = format!(
        "import socket\nfor p in range(2000, 2040):\n  s=socket.socket()\n  s.settimeout(0.3)\n  \
         try: s.connect(('{}', p))\n  except OSError: pass\n  s.close()\n",
        pair.a4
    );
    NetnsPair::exec(&pair.b, &["python3", "-c", &scan]);
    let (banned, seen) = wait_for(&lines, &format!("auto-blocked {}/32", pair.b4), 15);
    assert!(banned, "{seen}");
    assert!(seen.contains("port-scan"), "{seen}");
    assert!(!ping_from_b(&pair), "the scanner is dropped by the host's kernel");
    // The ban reaches the capture thread right after it is applied; ping once more to see it marked.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!ping_from_b(&pair));
    let saved = std::fs::read_to_string(dir.path().join("blocklist.ron")).unwrap();
    assert!(
        saved.contains(&pair.b4) && saved.contains("auto: port-scan"),
        "{saved}"
    );

    // Editing rules.ron while running moves the kernel rule too (now limited to the veth).
    std::fs::write(
        &rules,
        format!(
            r#"(default_policy: Allow, rules: [
            (name: "no telnet", action: Block, direction: In, protocol: Tcp, dst_ports: ["2323"],
             interface: "{}", enforce: true),
        ])"#,
            pair.veth_a
        ),
    )
    .unwrap();
    let (reloaded, seen) = wait_for(&lines, "1 kernel rules after reload", 20);
    assert!(reloaded, "{seen}");
    assert!(
        kernel(&pair).contains(&format!("-i {} ", pair.veth_a)) && kernel(&pair).contains("--dports 2323"),
        "{}",
        kernel(&pair)
    );
    assert!(!kernel(&pair).contains("--dports 23 "), "{}", kernel(&pair));

    let status = stop(&mut child, "-INT");
    let mut rest = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert_eq!(status, Some(0), "{rest}");
    let printed = printed.join().unwrap();
    assert!(
        printed
            .lines()
            .any(|l| l.contains("icmp") && l.contains(&pair.b4) && l.contains("kernel=dropped")),
        "the banned peer's packets are marked as dropped by the kernel: {printed}"
    );
    let telnet_line = printed
        .lines()
        .find(|l| l.contains(&format!("{}:23 ", pair.a4)))
        .unwrap_or_default();
    assert!(
        telnet_line.contains("rule=\"no telnet\"") && telnet_line.contains("kernel=dropped"),
        "the enforce: true rule's packets are marked too: {telnet_line:?} in {printed}"
    );
    assert!(
        rest.contains("removed netwarden's rules from the kernel"),
        "{rest}"
    );
    assert!(!kernel(&pair).contains("NETWARDEN"), "{}", kernel(&pair));
    assert!(ping_from_b(&pair), "after exit the peer gets through again");
    // The ban is still on the list: the next `run --enforce` puts it back.
    let mut list = String::new();
    Command::new("ip")
        .args(["netns", "exec", &pair.a, BIN, "list", "--state-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut list)
        .unwrap();
    assert!(list.contains(&format!("{}/32", pair.b4)), "{list}");
}

#[test]
fn auto_block_options_are_checked_before_anything_changes() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(&rules, "(default_policy: Allow, rules: [])").unwrap();
    for (flag, value, expect) in [
        ("--auto-block", "soon", "bad duration `soon`"),
        ("--allow", "10.0.0.0/8;reboot", "bad address"),
    ] {
        let mut args = vec!["run", "--iface", &pair.veth_a, "--no-log", "--state-dir"];
        let state = dir.path().to_str().unwrap();
        args.push(state);
        if flag == "--allow" {
            args.extend(["--auto-block", "--allow", value]);
        } else {
            args.extend([flag, value]);
        }
        let out = Command::new("ip")
            .args(["netns", "exec", &pair.a, BIN])
            .args(&args)
            .arg("--rules")
            .arg(&rules)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(expect), "{text}");
        assert!(!kernel(&pair).contains("NETWARDEN"), "nothing was changed");
    }
}

#[test]
fn sigterm_stops_run_cleanly_and_removes_our_rules() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(&rules, "(default_policy: Allow, rules: [])").unwrap();
    let (mut child, lines) = start_run(&pair, &rules, dir.path(), &["--enforce", "--remove-on-exit"]);
    let (started, seen) = wait_for(&lines, "capturing on", 20);
    assert!(started, "{seen}");
    assert!(kernel(&pair).contains(":NETWARDEN"), "{}", kernel(&pair));
    // A service manager stops it with SIGTERM, not Ctrl-C.
    let status = stop(&mut child, "-TERM");
    let mut seen = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
        seen.push_str(&line);
        seen.push('\n');
    }
    assert_eq!(status, Some(0), "{seen}");
    assert!(
        seen.contains("removed netwarden's rules from the kernel"),
        "{seen}"
    );
    assert!(!kernel(&pair).contains("NETWARDEN"), "{}", kernel(&pair));
}
