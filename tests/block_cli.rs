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
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    Command::new("chmod").arg("777").arg(&state).status().unwrap();
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
