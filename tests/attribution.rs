//! Which program is talking, end to end with real processes and sockets: a small C client (compiled here,
//! copied under distinctive names) runs as different users (`setpriv --reuid`) in a network namespace the
//! test creates, and talks TCP and UDP, IPv4 and IPv6, over a veth pair to servers in a second namespace,
//! while `netwarden run --all --json` captures in the first. Every flow must name the right program, pid
//! and user; 1,000 short-lived clients must be attributed right (the share is printed) and never wrong;
//! a `user` rule with `enforce: true` must drop one uid's outbound traffic in the kernel and not another's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

mod common;

use common::nspair::NetnsPair;

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

/// The client: `CLIENT tcp|udp ADDR PORT SRCPORT HOLD_MS` binds SRCPORT, connects (TCP) or sends (UDP) a
/// line, holds the socket HOLD_MS, exits. Unique source ports keep every client's 5-tuple its own.
const CLIENT_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 6) return 2;
    int tcp = strcmp(argv[1], "tcp") == 0;
    struct sockaddr_storage to, me;
    memset(&to, 0, sizeof to);
    memset(&me, 0, sizeof me);
    socklen_t len;
    int family;
    struct sockaddr_in *t4 = (void *)&to, *m4 = (void *)&me;
    struct sockaddr_in6 *t6 = (void *)&to, *m6 = (void *)&me;
    if (inet_pton(AF_INET, argv[2], &t4->sin_addr) == 1) {
        family = AF_INET; len = sizeof *t4;
        t4->sin_family = m4->sin_family = AF_INET;
        t4->sin_port = htons(atoi(argv[3])); m4->sin_port = htons(atoi(argv[4]));
    } else if (inet_pton(AF_INET6, argv[2], &t6->sin6_addr) == 1) {
        family = AF_INET6; len = sizeof *t6;
        t6->sin6_family = m6->sin6_family = AF_INET6;
        t6->sin6_port = htons(atoi(argv[3])); m6->sin6_port = htons(atoi(argv[4]));
    } else return 2;
    int fd = socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (fd < 0) return 1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (void *)&me, len) != 0) return 3;
    if (tcp) {
        if (connect(fd, (void *)&to, len) != 0) return 4;
        if (send(fd, "hi\n", 3, 0) != 3) return 5;
    } else if (sendto(fd, "hi\n", 3, 0, (void *)&to, len) != 3) return 5;
    int hold = atoi(argv[5]);
    struct timespec t = { hold / 1000, (hold % 1000) * 1000000L };
    nanosleep(&t, NULL);
    close(fd);
    return 0;
}
"#;

/// Compiles the client into a directory everybody may enter and returns the directory.
fn build_client() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("nw-attrib").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let source = dir.path().join("client.c");
    std::fs::write(&source, CLIENT_C).unwrap();
    let out = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(dir.path().join("client"))
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A copy of the client named `name` (its own executable path, as `/proc/PID/exe` will say).
fn client_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(dir.join("client"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The user name of `uid` as the system says it.
fn user_name(uid: u32) -> String {
    let out = Command::new("id")
        .args(["-nu", &uid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One client run: who runs which copy, and what it sends where.
struct Client<'a> {
    uid: u32,
    exe: &'a Path,
    proto: &'a str,
    addr: &'a str,
    port: u16,
    src_port: u16,
    hold_ms: u32,
}

impl Client<'_> {
    /// Starts the client in namespace `ns` as `uid` (its group too).
    fn spawn(&self, ns: &str) -> Child {
        Command::new("ip")
            .args(["netns", "exec", ns, "setpriv"])
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.uid))
            .arg("--clear-groups")
            .arg(self.exe)
            .args([
                self.proto,
                self.addr,
                &self.port.to_string(),
                &self.src_port.to_string(),
                &self.hold_ms.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Streams a child's output lines into a channel.
fn lines_of(reader: impl std::io::Read + Send + 'static, name: &str) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    rx
}

/// `netwarden run` on A's veth inside A; waits until it captures. Returns the child, stdout and stderr.
fn start_run(
    pair: &NetnsPair,
    rules: &Path,
    state: &Path,
    extra: &[&str],
) -> (Child, Receiver<String>, Receiver<String>) {
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
            "--rules",
        ])
        .arg(rules)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap(), "stdout");
    let err = lines_of(child.stderr.take().unwrap(), "stderr");
    let start = Instant::now();
    let mut seen = String::new();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "netwarden did not start: {seen}"
        );
        if let Ok(line) = err.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("capturing on") {
                break;
            }
        }
    }
    (child, out, err)
}

/// Ctrl-C, then every line printed until exit.
fn stop(mut child: Child, out: &Receiver<String>) -> Vec<String> {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("netwarden did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    out.try_iter().collect()
}

/// JSON events of the capture by (protocol, local port of A's end).
fn events_by_client_port(
    lines: &[String],
    a_addrs: &[&str],
) -> HashMap<(String, u16), Vec<serde_json::Value>> {
    let mut by_port: HashMap<(String, u16), Vec<serde_json::Value>> = HashMap::new();
    for line in lines {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let proto = event["protocol"].as_str().unwrap_or_default().to_owned();
        let src = event["src_ip"].as_str().unwrap_or_default();
        let port = if a_addrs.contains(&src) {
            event["src_port"].as_u64()
        } else {
            event["dst_port"].as_u64()
        };
        if let Some(port) = port.and_then(|p| u16::try_from(p).ok()) {
            by_port.entry((proto, port)).or_default().push(event);
        }
    }
    by_port
}

/// A TCP server in B on `[::]:port` (IPv4 too) that keeps each connection open until the client closes it,
/// as a real server would (one that closes at once resets the client's socket out of the kernel's tables
/// before anyone could look it up).
fn tcp_server(pair: &NetnsPair, port: u16) -> common::nspair::Listener {
    let script = format!(
        "import socket,threading\n\
         s=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('::',{port}))\ns.listen(256)\nprint('ready',flush=True)\n\
         def serve(c):\n  while c.recv(4096): pass\n  c.close()\n\
         while True:\n  c,_=s.accept()\n  threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
    );
    pair.serve_in_b(&script)
}

fn rules_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("rules.ron");
    std::fs::write(&path, text).unwrap();
    path
}

const ALLOW_ALL: &str = "(default_policy: Allow, rules: [])";

#[test]
fn each_flow_names_its_program_pid_and_user_over_tcp_udp_v4_v6() {
    common::root::require_root!("network namespaces, setpriv");
    let pair = NetnsPair::new();
    let bin_dir = build_client();
    let alpha = client_copy(bin_dir.path(), "nw-client-alpha");
    let beta = client_copy(bin_dir.path(), "nw-client-beta");
    let _tcp = tcp_server(&pair, 7401);
    let _udp = pair.udp_echo_in_b("::", 7402);
    let state = tempfile::tempdir().unwrap();
    let rules = rules_file(state.path(), ALLOW_ALL);
    let (child, out, _err) = start_run(&pair, &rules, state.path(), &["--all", "--json"]);
    let users = [(65_534u32, alpha.clone()), (1u32, beta.clone())];
    let mut expected = Vec::new();
    let mut src_port = 21_000;
    for (uid, exe) in &users {
        for (proto, port) in [("tcp", 7401), ("udp", 7402)] {
            for addr in [&pair.b4, &pair.b6] {
                src_port += 1;
                let status = Client {
                    uid: *uid,
                    exe,
                    proto,
                    addr,
                    port,
                    src_port,
                    hold_ms: 200,
                }
                .spawn(&pair.a)
                .wait_with_output()
                .unwrap();
                assert!(status.status.success(), "client {proto} {addr}: {status:?}");
                expected.push((proto, src_port, exe.clone(), *uid));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = stop(child, &out);
    let by_port = events_by_client_port(&lines, &[&pair.a4, &pair.a6]);
    for (proto, port, exe, uid) in expected {
        let events = by_port
            .get(&(proto.to_owned(), port))
            .unwrap_or_else(|| panic!("no events of the {proto} client on port {port}: {lines:?}"));
        for event in events {
            assert_eq!(
                event["program"].as_str(),
                exe.to_str(),
                "{proto} port {port}: {event}"
            );
            assert_eq!(event["user"].as_str(), Some(user_name(uid).as_str()), "{event}");
            assert_eq!(event["uid"].as_u64(), Some(u64::from(uid)), "{event}");
            assert!(event["pid"].as_u64().is_some_and(|pid| pid > 1), "{event}");
        }
    }
}

#[test]
fn short_lived_clients_are_attributed_right_and_never_wrong() {
    common::root::require_root!("network namespaces, setpriv");
    const CLIENTS: u16 = 1_000;
    const WAVE: u16 = 20;
    let pair = NetnsPair::new();
    let bin_dir = build_client();
    let even = client_copy(bin_dir.path(), "nw-short-even");
    let odd = client_copy(bin_dir.path(), "nw-short-odd");
    let _tcp = tcp_server(&pair, 7411);
    let _udp = pair.udp_echo_in_b("::", 7412);
    let state = tempfile::tempdir().unwrap();
    let rules = rules_file(state.path(), ALLOW_ALL);
    let (child, out, _err) = start_run(&pair, &rules, state.path(), &["--all", "--json"]);
    let mut expected: HashMap<(String, u16), PathBuf> = HashMap::new();
    let started = Instant::now();
    for wave in 0..CLIENTS / WAVE {
        let mut children = Vec::new();
        for k in 0..WAVE {
            let i = wave * WAVE + k;
            let (exe, uid) = if i.is_multiple_of(2) {
                (&even, 65_534)
            } else {
                (&odd, 1)
            };
            let (proto, port) = if i % 4 < 2 { ("tcp", 7411) } else { ("udp", 7412) };
            let addr = if i % 8 < 4 { &pair.b4 } else { &pair.b6 };
            let src_port = 30_000 + i;
            // Each client lives about 50 ms: start-up, one exchange, a 40 ms hold.
            children.push(
                Client {
                    uid,
                    exe,
                    proto,
                    addr,
                    port,
                    src_port,
                    hold_ms: 40,
                }
                .spawn(&pair.a),
            );
            expected.insert((proto.to_owned(), src_port), exe.clone());
        }
        for child in children {
            let done = child.wait_with_output().unwrap();
            assert!(done.status.success(), "{done:?}");
        }
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let lines = stop(child, &out);
    let by_port = events_by_client_port(&lines, &[&pair.a4, &pair.a6]);
    let (mut right, mut wrong, mut unknown, mut unseen) = (0, Vec::new(), HashMap::new(), 0);
    for (key, exe) in &expected {
        let Some(events) = by_port.get(key) else {
            unseen += 1;
            continue;
        };
        // Every packet of the flow names the same program: the first one is the flow's answer.
        let program = events[0]["program"].as_str().unwrap_or("(none)").to_owned();
        let programs: std::collections::BTreeSet<&str> =
            events.iter().filter_map(|e| e["program"].as_str()).collect();
        assert_eq!(programs.len(), 1, "one answer per flow: {key:?} {programs:?}");
        if program == exe.to_string_lossy() {
            right += 1;
        } else if program.starts_with('/') {
            wrong.push((key.clone(), program));
        } else {
            let user = if events[0]["uid"].is_null() {
                "no socket"
            } else {
                "socket found"
            };
            *unknown
                .entry(format!("{program} [{user}, {}]", key.0))
                .or_insert(0) += 1;
        }
    }
    let share = f64::from(right) / f64::from(CLIENTS);
    println!(
        "short-lived clients: {right} of {CLIENTS} right ({:.1}%), {} wrong, unknown {unknown:?}, {unseen} not captured; {CLIENTS} clients in {:.1} s",
        share * 100.0,
        wrong.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        wrong.is_empty(),
        "a wrong program is worse than unknown: {wrong:?}"
    );
    // The target is 95% (reached at load 10 on the 2-core VM, see the report); the floor here leaves room
    // for a machine busier than that, where a 50 ms process can exit before the lookup thread is even
    // scheduled. Packets libpcap itself lost under load count as misses too.
    assert!(
        share >= 0.90,
        "only {right} of {CLIENTS} attributed right: unknown {unknown:?}, {unseen} not captured"
    );
}

#[test]
fn a_user_rule_drops_one_users_outbound_traffic_in_the_kernel_and_not_anothers() {
    common::root::require_root!("network namespaces, setpriv");
    let pair = NetnsPair::new();
    let bin_dir = build_client();
    let client = client_copy(bin_dir.path(), "nw-kernel-client");
    let _tcp = pair.listen_in_b("::", 7421);
    let state = tempfile::tempdir().unwrap();
    let rules = rules_file(
        state.path(),
        r#"(default_policy: Allow, rules: [
            (name: "no daemon out", action: Block, direction: Out, user: "daemon", protocol: Tcp,
             dst_ports: ["7421"], enforce: true),
        ])"#,
    );
    let (child, out, err) = start_run(&pair, &rules, state.path(), &["--enforce", "--remove-on-exit"]);
    let saved = NetnsPair::exec(&pair.a, &["iptables-save"]);
    let saved = String::from_utf8_lossy(&saved.stdout);
    assert!(saved.contains("--uid-owner 1"), "{saved}");
    // nobody connects; daemon's SYN never leaves (connect fails: the client exits non-zero).
    let connect = |uid: u32, src_port: u16| {
        let mut c = Client {
            uid,
            exe: &client,
            proto: "tcp",
            addr: &pair.b4,
            port: 7421,
            src_port,
            hold_ms: 0,
        }
        .spawn(&pair.a);
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status.success();
            }
            if start.elapsed() > Duration::from_secs(3) {
                c.kill().ok();
                c.wait().ok();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(connect(65_534, 22_001), "nobody's traffic passes");
    assert!(
        !connect(1, 22_002),
        "daemon's outbound traffic is dropped by the kernel"
    );
    assert!(connect(65_534, 22_003), "and nobody's still passes");
    stop(child, &out);
    let rest: Vec<String> = err.try_iter().collect();
    let saved = NetnsPair::exec(&pair.a, &["iptables-save"]);
    assert!(
        !String::from_utf8_lossy(&saved.stdout).contains("uid-owner"),
        "--remove-on-exit took the rule out: {rest:?}"
    );
}

#[test]
fn replayed_files_say_offline() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("one.pcap");
    let frame = common::frames::eth(
        0x0800,
        &common::frames::ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            17,
            &common::frames::udp(5000, 53, b"q"),
        ),
    );
    let len = u32::try_from(frame.len()).unwrap();
    common::pcapfile::write_pcap(&pcap, 1, &[(1_700_000_000_000_000, frame, len)]);
    let rules = rules_file(dir.path(), ALLOW_ALL);
    let out = Command::new(BIN)
        .args(["replay", "--all", "--json", "--no-log", "--rules"])
        .arg(&rules)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    let event: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(event["program"], "(offline)");
    assert!(event["pid"].is_null() && event["user"].is_null());
    let text = Command::new(BIN)
        .args(["replay", "--all", "--no-log", "--rules"])
        .arg(&rules)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains(" program=\"(offline)\""));
}
