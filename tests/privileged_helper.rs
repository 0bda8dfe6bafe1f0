//! The packaged privilege model (issue 13): only `PREFIX/lib/netwarden/netwarden-priv`, owned root:GROUP with
//! mode 0750, carries `cap_net_raw,cap_net_admin`; `PREFIX/bin/netwarden` has none and re-executes the copy
//! when the user may run it. Built here as the package lays it out, in a temporary prefix with a test group
//! id, and run as `nobody` (setpriv) inside a network namespace this test creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::netns::Pair;

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");
/// The group allowed to run the privileged copy; `nobody` is given it only where a test says so.
const GROUP_ID: &str = "4242";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    out
}

/// `PREFIX/bin/netwarden` and `PREFIX/lib/netwarden/netwarden-priv` (root:GROUP_ID 0750, capabilities).
struct Prefix {
    dir: tempfile::TempDir,
}

impl Prefix {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("lib/netwarden")).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let prefix = Self { dir };
        // Copies without debug info (the test build is large); the tests' own binary stays untouched.
        for target in [prefix.bin(), prefix.helper()] {
            run("strip", &["--strip-debug", "-o", target.to_str().unwrap(), BIN]);
        }
        let helper = prefix.helper();
        let helper = helper.to_str().unwrap();
        run("chown", &[&format!("0:{GROUP_ID}"), helper]);
        run("chmod", &["0750", helper]);
        run("setcap", &["cap_net_raw,cap_net_admin+eip", helper]);
        run("chmod", &["-R", "a+rX", prefix.dir.path().to_str().unwrap()]);
        run("chmod", &["0777", prefix.state().to_str().unwrap()]);
        run("chmod", &["0750", helper]);
        prefix
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin/netwarden")
    }

    fn helper(&self) -> PathBuf {
        self.dir.path().join("lib/netwarden/netwarden-priv")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs `PREFIX/bin/netwarden ARGS --state-dir STATE` as `nobody` in namespace `ns`, with the test
    /// group or without any supplementary group; no inherited capabilities, a normal user's PATH.
    fn as_nobody(&self, ns: &str, in_group: bool, args: &[&str]) -> Output {
        let groups = if in_group {
            format!("--groups={GROUP_ID}")
        } else {
            "--clear-groups".to_owned()
        };
        Command::new("timeout")
            .args([
                "60",
                "ip",
                "netns",
                "exec",
                ns,
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
            ])
            .args([groups.as_str(), "--inh-caps=-all", "--"])
            .args(["env", "PATH=/usr/local/bin:/usr/bin:/bin"])
            .arg(self.bin())
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .output()
            .unwrap()
    }
}

/// What the kernel of namespace `ns` holds: iptables and ip6tables rules (without counters) and ipset sets.
fn kernel(ns: &str) -> String {
    let mut all = String::new();
    for tool in [&["iptables-save"][..], &["ip6tables-save"], &["ipset", "save"]] {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(tool)
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with('#') {
                continue;
            }
            // Chain policy counters (`:INPUT ACCEPT [3:180]`) move with any packet.
            let line = line.split(" [").next().unwrap_or(line);
            all.push_str(line);
            all.push('\n');
        }
    }
    all
}

fn assert_refused(out: &Output) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("needs root or the CAP_NET_ADMIN capability") && said.contains("nothing was changed"),
        "{said}"
    );
    assert!(
        said.contains("only members of the group `netwarden` may run")
            && said.contains("sudo usermod -aG netwarden $USER"),
        "{said}"
    );
}

#[test]
fn a_user_outside_the_group_cannot_flush_or_block() {
    common::root::require_root!("setcap, chown and setpriv in a network namespace");
    let pair = Pair::new();
    let prefix = Prefix::new();
    // Something to lose: one block by root in the namespace.
    let root_state = tempfile::tempdir().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &pair.a, BIN, "block", "192.0.2.7", "--state-dir"])
        .arg(root_state.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = kernel(&pair.a);
    assert!(
        before.contains("NETWARDEN") && before.contains("192.0.2.7"),
        "{before}"
    );

    assert_refused(&prefix.as_nobody(&pair.a, false, &["flush"]));
    assert_eq!(
        kernel(&pair.a),
        before,
        "flush by a non-member changed the kernel"
    );
    assert_refused(&prefix.as_nobody(&pair.a, false, &["block", "192.0.2.8"]));
    assert_eq!(
        kernel(&pair.a),
        before,
        "block by a non-member changed the kernel"
    );
    assert!(!prefix.state().join("blocklist.ron").exists());
    // Reading works without privilege and gives no group hint.
    let out = prefix.as_nobody(&pair.a, false, &["history"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("usermod"), "{}", text(&out));
}

#[test]
fn a_group_member_runs_the_privileged_copy() {
    common::root::require_root!("setcap, chown and setpriv in a network namespace");
    let pair = Pair::new();
    let prefix = Prefix::new();
    let out = prefix.as_nobody(&pair.a, true, &["block", "192.0.2.8"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(": enforced"), "{}", text(&out));
    let held = kernel(&pair.a);
    assert!(held.contains("add netwarden4 192.0.2.8"), "{held}");
    let out = prefix.as_nobody(&pair.a, true, &["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!kernel(&pair.a).contains("NETWARDEN"), "{}", kernel(&pair.a));
}

#[test]
fn a_privileged_copy_without_capabilities_is_not_re_executed_in_a_loop() {
    common::root::require_root!("setcap, chown and setpriv in a network namespace");
    let pair = Pair::new();
    let prefix = Prefix::new();
    // As on a file system without extended attributes, where the postinst's setcap failed.
    run("setcap", &["-r", prefix.helper().to_str().unwrap()]);
    let out = prefix.as_nobody(&pair.a, true, &["block", "192.0.2.8"]);
    // `timeout` would exit 124 on a loop.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("needs root or the CAP_NET_ADMIN capability"),
        "{}",
        text(&out)
    );
    assert!(!kernel(&pair.a).contains("NETWARDEN"));
}

#[test]
fn the_helper_is_not_executable_by_others() {
    common::root::require_root!("chown to root and a test group");
    let prefix = Prefix::new();
    let mode = std::fs::metadata(prefix.helper()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(mode.mode() & 0o7777, 0o750);
    assert_eq!((mode.uid(), mode.gid().to_string()), (0, GROUP_ID.to_owned()));
    let caps = run("getcap", &[prefix.helper().to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&caps.stdout).contains("cap_net_admin,cap_net_raw=eip"),
        "{}",
        text(&caps)
    );
    assert!(Path::new(&prefix.bin()).exists());
}
