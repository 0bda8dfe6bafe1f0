//! `netwarden block / unblock / list / flush` through the real binary, run inside a network namespace this
//! test creates (`ip netns exec`), so the host's firewall is never touched. Covers the kernel really
//! dropping and then passing traffic, refusals (injection, loopback, own address), dry runs and missing
//! privileges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::netns::Pair;

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

fn nw(pair: &Pair, state: &Path, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &pair.a, BIN])
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

/// Runs `bin ARGS --state-dir STATE` as `nobody` inside namespace `ns` (no inherited capabilities: only
/// what the binary file itself grants).
fn as_nobody(ns: &str, bin: &Path, args: &[&str], state: &Path) -> Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
        ])
        .args(["--clear-groups", "--inh-caps=-all", "--"])
        // A normal user's PATH: no sbin, where iptables and ipset live.
        .args(["env", "PATH=/usr/local/bin:/usr/bin:/bin"])
        .arg(bin)
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn block_list_unblock_flush_for_real() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let peer = pair.ip_b();
    assert!(pair.ping_a_from_b(false));
    let out = nw(
        &pair,
        dir.path(),
        &["block", &peer, "--reason", "brute force", "--for", "1h"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("blocked {peer}/32 for 1h (brute force): enforced")
    );
    assert!(!pair.ping_a_from_b(false), "the kernel drops the blocked peer");
    let out = nw(&pair, dir.path(), &["list"]);
    let listing = text(&out);
    assert!(
        listing.contains(&format!("{peer}/32"))
            && listing.contains("\tenforced\t")
            && listing.contains("s left)"),
        "{listing}"
    );
    assert!(
        listing.contains("brute force") && listing.contains("1 entries"),
        "{listing}"
    );
    let saved = std::fs::read_to_string(dir.path().join("blocklist.ron")).unwrap();
    assert!(
        saved.contains("Enforced") && saved.contains("brute force"),
        "{saved}"
    );

    let out = nw(&pair, dir.path(), &["unblock", &peer]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(pair.ping_a_from_b(false), "traffic flows again");
    assert!(text(&nw(&pair, dir.path(), &["list"])).contains("0 entries"));
    let history = std::fs::read_to_string(dir.path().join("history.ron")).unwrap();
    assert!(
        history.contains("Manual"),
        "the ban history records the lift: {history}"
    );

    nw(&pair, dir.path(), &["block", &peer]);
    let out = nw(&pair, dir.path(), &["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(pair.ping_a_from_b(false), "flush lifts every block");
    let save = Command::new("ip")
        .args(["netns", "exec", &pair.a, "iptables-save"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&save.stdout).contains("NETWARDEN"));
    assert!(
        text(&nw(&pair, dir.path(), &["list"])).contains("0 entries"),
        "flush unblocks everything"
    );
    assert!(
        text(&nw(&pair, dir.path(), &["history"])).contains("(Flush)"),
        "the history keeps the lifted bans"
    );
}

#[test]
fn refusals_and_dry_runs_change_nothing() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    for (addr, expect) in [
        (
            "1.2.3.4;reboot",
            "bad address `1.2.3.4;reboot`: not an IP address or CIDR network",
        ),
        (
            "127.0.0.1",
            "refusing to block 127.0.0.1/32: it covers the loopback",
        ),
        ("0.0.0.0/0", "a /0 prefix would block every address"),
    ] {
        let out = nw(&pair, dir.path(), &["block", addr]);
        assert_eq!(out.status.code(), Some(2), "{addr}: {}", text(&out));
        assert!(text(&out).contains(expect), "{addr}: {}", text(&out));
    }
    let own = nw(
        &pair,
        dir.path(),
        &["block", &format!("10.{}.0.0/24", pair.subnet)],
    );
    assert_eq!(own.status.code(), Some(2));
    assert!(
        text(&own).contains(&format!("own address {}", pair.ip_a())),
        "{}",
        text(&own)
    );
    let out = nw(&pair, dir.path(), &["block", "--for", "soon", &pair.ip_b()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("bad duration `soon`"), "{}", text(&out));

    let dry = nw(
        &pair,
        dir.path(),
        &["block", &pair.ip_b(), "--for", "10m", "--dry-run"],
    );
    assert_eq!(dry.status.code(), Some(0));
    let dry_text = text(&dry);
    assert!(dry_text.contains("ipset restore -exist"), "{dry_text}");
    assert!(
        dry_text.contains(&format!("add netwarden4 {}/32 timeout 600", pair.ip_b())),
        "{dry_text}"
    );
    assert!(dry_text.contains("iptables-restore --noflush -w 5"), "{dry_text}");
    assert!(pair.ping_a_from_b(false), "refusals and dry runs block nothing");
    let sets = Command::new("ip")
        .args(["netns", "exec", &pair.a, "ipset", "list", "-n"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&sets.stdout).contains("netwarden"));
}

#[test]
fn without_privilege_nothing_is_done() {
    common::root::require_root!("setpriv to an unprivileged user");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    Command::new("chmod").arg("777").arg(dir.path()).status().unwrap();
    let out = as_nobody(&pair.a, Path::new(BIN), &["block", &pair.ip_b()], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("needs root or the CAP_NET_ADMIN capability")
            && text(&out).contains("nothing was changed"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("blocklist.ron").exists());
    assert!(pair.ping_a_from_b(false));
}

#[test]
fn setcap_binary_enforces_for_an_unprivileged_user() {
    common::root::require_root!("setcap and network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    Command::new("chmod").arg("755").arg(dir.path()).status().unwrap();
    // The host's one list, shared by root and the group (as the package and `make run` create
    // /var/lib/netwarden): setgid, group-writable, nobody else.
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    for args in [&["root:nogroup"][..], &["2770"][..]] {
        let cmd = if args[0].contains(':') { "chown" } else { "chmod" };
        Command::new(cmd).args(args).arg(&state).status().unwrap();
    }
    // Root blocks first (a `sudo netwarden block`, or the service): its files must stay usable by the group.
    let out = nw(&pair, &state, &["block", "192.0.2.50", "--reason", "by root"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // What `make run` does: grant the binary its capabilities once, then run it as a normal user.
    // A copy without debug info (the debug build is ~400 MiB); setcap must not touch the tests' binary.
    let bin = dir.path().join("netwarden");
    let copied = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&bin)
        .arg(BIN)
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", text(&copied));
    let granted = Command::new("setcap")
        .args(["cap_net_raw,cap_net_admin+eip"])
        .arg(&bin)
        .output()
        .unwrap();
    assert!(granted.status.success(), "{}", text(&granted));
    let as_nobody = |args: &[&str]| as_nobody(&pair.a, &bin, args, &state);
    let peer = pair.ip_b();
    let out = as_nobody(&["block", &peer]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(": enforced"), "{}", text(&out));
    let listing = text(&as_nobody(&["list"]));
    assert!(
        listing.contains("192.0.2.50/32\tenforced") && listing.contains("2 entries"),
        "one list for root and the group: {listing}"
    );
    let listing = text(&nw(&pair, &state, &["list"]));
    assert!(listing.contains(&format!("{peer}/32\tenforced")), "{listing}");
    assert!(
        !pair.ping_a_from_b(false),
        "iptables and ipset ran with the granted capability"
    );
    let out = as_nobody(&["unblock", &peer]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(pair.ping_a_from_b(false));
    let out = as_nobody(&["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Members of our kernel set `set` in namespace `ns`, one line each.
fn set_members(ns: &str, set: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ipset", "list", set])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Members:"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_hundred_concurrent_block_processes_agree_with_the_kernel() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    // 50 addresses, two processes each, all started at once (a script or a fail2ban-style action).
    let addrs: Vec<String> = (1..=50).map(|i| format!("198.51.100.{i}")).collect();
    let children: Vec<(String, std::process::Child)> = addrs
        .iter()
        .chain(addrs.iter())
        .map(|addr| {
            let child = Command::new("ip")
                .args(["netns", "exec", &pair.a, BIN, "block", addr, "--for", "1h"])
                .arg("--state-dir")
                .arg(dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (addr.clone(), child)
        })
        .collect();
    let mut added = 0;
    let mut again = 0;
    for (addr, child) in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{addr}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.starts_with(&format!("blocked {addr}/32 for 1h")) {
            added += 1;
        } else if stdout.starts_with(&format!("already blocked {addr}/32"))
            || stdout.starts_with(&format!("updated {addr}/32: ban extended"))
        {
            // The second process for an address finds it blocked (and, seconds later, extends the hour).
            again += 1;
        } else {
            panic!("{addr}: {stdout}");
        }
        assert!(stdout.trim_end().ends_with(": enforced"), "{addr}: {stdout}");
    }
    assert_eq!(
        (added, again),
        (50, 50),
        "each address blocked once, then found blocked"
    );
    let mut want = addrs.clone();
    want.sort();
    let mut members: Vec<String> = set_members(&pair.a, "netwarden4")
        .iter()
        .map(|m| m.split_whitespace().next().unwrap().to_owned())
        .collect();
    members.sort();
    assert_eq!(members, want, "each address exactly once in the kernel");
    let listing = nw(&pair, dir.path(), &["list"]);
    assert_eq!(listing.status.code(), Some(0), "{}", text(&listing));
    let listing = String::from_utf8_lossy(&listing.stdout);
    for addr in &addrs {
        let lines = listing
            .lines()
            .filter(|l| l.starts_with(&format!("{addr}/32\t")))
            .count();
        assert_eq!(lines, 1, "{addr} once in the list: {listing}");
    }
    assert!(listing.contains("50 entries"), "{listing}");
    assert_eq!(listing.matches("\tenforced\t").count(), 50, "{listing}");
}

#[test]
fn list_tells_the_truth_about_the_kernel_and_repair_fixes_it() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let peer = pair.ip_b();
    let out = nw(&pair, dir.path(), &["block", &peer]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!pair.ping_a_from_b(false));
    // Someone deletes the jump from INPUT (and OUTPUT) to our chain: nothing is dropped any more.
    for hook in ["INPUT", "OUTPUT"] {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.a,
                "iptables",
                "-w",
                "5",
                "-D",
                hook,
                "-j",
                "NETWARDEN",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert!(pair.ping_a_from_b(false));
    let out = nw(&pair, dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(1), "drift is a failure: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("\tenforced\t"), "{stdout}");
    assert!(
        stdout.contains("NOT enforced: iptables: the jump from INPUT to NETWARDEN is missing"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: iptables: the jump from OUTPUT to NETWARDEN is missing")
            && stderr.contains("list --repair"),
        "{stderr}"
    );
    assert!(pair.ping_a_from_b(false), "list alone changes nothing");
    let out = nw(&pair, dir.path(), &["list", "--repair"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# repaired: iptables: the jump from INPUT to NETWARDEN is missing")
            && stdout.contains("\tenforced\t"),
        "{stdout}"
    );
    assert!(!pair.ping_a_from_b(false), "dropped again");
    let out = nw(&pair, dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let peer = pair.ip_b();
    let out = nw(&pair, dir.path(), &["block", &format!("::ffff:{peer}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("blocked {peer}/32 ")),
        "{}",
        text(&out)
    );
    assert!(!pair.ping_a_from_b(false), "the IPv4 traffic is dropped");
    assert!(
        set_members(&pair.a, "netwarden4")
            .iter()
            .any(|m| m.starts_with(&peer)),
        "in the IPv4 set"
    );
    assert!(
        set_members(&pair.a, "netwarden6").is_empty(),
        "nothing ::ffff: in the IPv6 set"
    );
    for (addr, expect) in [
        (
            "::ffff:127.0.0.1",
            "refusing to block 127.0.0.1/32: it covers the loopback",
        ),
        (
            &format!("::ffff:{}", pair.ip_a()) as &str,
            "it covers the own address",
        ),
    ] {
        let out = nw(&pair, dir.path(), &["block", addr]);
        assert_eq!(out.status.code(), Some(2), "{addr}: {}", text(&out));
        assert!(text(&out).contains(expect), "{addr}: {}", text(&out));
    }
    let out = nw(&pair, dir.path(), &["unblock", &format!("::ffff:{peer}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(pair.ping_a_from_b(false));
}

#[test]
fn hostile_reasons_are_printed_escaped() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let hostile = "x\n192.0.2.99/32\tenforced\texpires never\t\u{1b}[31mred\u{202e}";
    let out = nw(&pair, dir.path(), &["block", &pair.ip_b(), "--reason", hostile]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for output in [
        out,
        nw(&pair, dir.path(), &["list"]),
        nw(&pair, dir.path(), &["history"]),
    ] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\u{202e}'),
            "{stdout:?}"
        );
        assert!(
            !stdout.lines().any(|l| l.starts_with("192.0.2.99")),
            "no forged line: {stdout}"
        );
        assert!(
            stdout.contains("x\\n192.0.2.99/32\\tenforced\\texpires never\\t\\u{1b}[31mred\\u{202e}"),
            "{stdout}"
        );
    }
    let out = nw(&pair, dir.path(), &["list", "--csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(!csv.contains('\u{1b}') && csv.lines().count() == 2, "{csv:?}");
}

#[test]
fn blocking_again_says_already_and_never_shortens_without_force() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let peer = pair.ip_b();
    let stdout = |args: &[&str]| {
        let out = nw(&pair, dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(stdout(&["block", &peer, "--for", "10m", "--reason", "scan"]).starts_with("blocked "));
    let again = stdout(&["block", &peer]);
    assert!(
        again.starts_with(&format!("already blocked {peer}/32 (scan, expires "))
            && again.contains(": enforced"),
        "{again}"
    );
    let longer = stdout(&["block", &peer, "--for", "2h"]);
    assert!(
        longer.starts_with(&format!("updated {peer}/32: ban extended (scan")),
        "{longer}"
    );
    let shorter = stdout(&["block", &peer, "--for", "1m"]);
    assert!(
        shorter.contains("not shortened (use --force to shorten)"),
        "{shorter}"
    );
    let forced = stdout(&["block", &peer, "--for", "1m", "--force"]);
    assert!(forced.contains("ban shortened"), "{forced}");
    let members = set_members(&pair.a, "netwarden4");
    let timeout: u64 = members[0]
        .split("timeout ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(timeout <= 60, "the kernel has the shorter ban: {members:?}");
    let renamed = stdout(&["block", &peer, "--reason", "brute force"]);
    assert!(
        renamed.starts_with(&format!("updated {peer}/32: reason (brute force")),
        "{renamed}"
    );
    assert_eq!(set_members(&pair.a, "netwarden4").len(), 1);
}

#[test]
fn a_stale_lock_blocks_nobody_and_a_held_one_is_waited_for() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    // A process that took the lock and was killed: the kernel released its flock.
    let hold = |secs: u32| {
        Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep({secs})"
            ))
            .arg(&lock)
            .spawn()
            .unwrap()
    };
    let mut holder = hold(60);
    std::thread::sleep(std::time::Duration::from_millis(300));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let started = std::time::Instant::now();
    let out = nw(&pair, dir.path(), &["block", &pair.ip_b()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A live holder (another netwarden changing the list) is waited for, then the change goes in.
    let mut holder = hold(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out = nw(&pair, dir.path(), &["unblock", &pair.ip_b()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1_200),
        "it waited: {:?}",
        started.elapsed()
    );
    holder.wait().unwrap();
    assert!(pair.ping_a_from_b(false));
}

#[test]
fn a_broad_block_waits_for_netwarden_confirm() {
    common::root::require_root!("network namespaces");
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let out = nw(
        &pair,
        dir.path(),
        &["block", "198.18.0.0/15", "--reason", "benchmark nets"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("could cut you off") && text(&out).contains("netwarden confirm"),
        "{}",
        text(&out)
    );
    // Until kept, the kernel entry carries the confirmation window as its timeout: the kernel undoes it
    // by itself even if no netwarden runs.
    let members = set_members(&pair.a, "netwarden4");
    let timeout: u64 = members[0]
        .split("timeout ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((1..=31).contains(&timeout), "{members:?}");
    let listing = nw(&pair, dir.path(), &["list"]);
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("# waiting for confirmation"),
        "{}",
        text(&listing)
    );
    let out = nw(&pair, dir.path(), &["confirm"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).starts_with("kept: blocking 198.18.0.0/15"),
        "{}",
        text(&out)
    );
    let members = set_members(&pair.a, "netwarden4");
    assert_eq!(
        members,
        vec!["198.18.0.0/15 timeout 0".to_owned()],
        "kept for good"
    );
    let out = nw(&pair, dir.path(), &["confirm"]);
    assert_eq!(out.status.code(), Some(1), "nothing waits: {}", text(&out));
}
