//! Bad input through the real binary: every failure gives one clear message naming the file, interface or
//! value, and the documented exit code (2 bad input, 1 runtime failure).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");

const VALID_RULES: &str = r#"(
    default_policy: Allow,
    rules: [
        (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
    ],
)
"#;

fn netwarden(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_rules_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = netwarden(&["check", "nope.ron"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope.ron"), "{}", stderr(&out));
}

#[test]
fn corrupt_rules_file_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.ron"),
        "(\n    default_policy: Allow,\n    rules: [ (name: \"x\", action: Blok) ],\n)\n",
    )
    .unwrap();
    let out = netwarden(&["check", "bad.ron"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.ron:3:"), "{err}");
}

#[test]
fn unreadable_rules_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("adir.ron")).unwrap();
    let out = netwarden(&["check", "adir.ron"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("adir.ron"), "{}", stderr(&out));
}

#[test]
fn valid_rules_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    let out = netwarden(&["check", "rules.ron"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 rules, default policy allow, 0 warnings"));
}

#[test]
fn check_names_rules_the_kernel_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.ron"),
        r#"(default_policy: Allow, rules: [
            (name: "ssh on eth0", action: Block, protocol: Tcp, dst_ports: ["22"], dst: ["192.0.2.0/24"], interface: "eth0", enforce: true),
            (name: "odd", action: Block, protocol: Tcp, dst_ports: ["23"], dst: ["192.0.2.0/24"], interface: "e th0", enforce: true),
        ])"#,
    )
    .unwrap();
    let out = netwarden(&["check", "rules.ron"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: not enforceable in the kernel: rule `odd`")
            && text.contains("interface \"e th0\" may only hold"),
        "{text}"
    );
    assert!(!text.contains("ssh on eth0"), "{text}");
    assert!(
        text.contains("2 rules, default policy allow, 1 warnings"),
        "{text}"
    );
    let strict = netwarden(&["check", "--strict", "rules.ron"], dir.path());
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
}

#[test]
fn unknown_interface_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    let out = netwarden(&["run", "--iface", "nwnosuch0", "--no-log"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no such interface \"nwnosuch0\""),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("netwarden interfaces"), "{}", stderr(&out));
}

#[test]
fn non_pcap_and_empty_files_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        "hello, this is not a capture\n".repeat(10),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.pcap"), b"").unwrap();
    let out = netwarden(&["replay", "notes.txt", "--no-log"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("notes.txt") && stderr(&out).contains("not a pcap"),
        "{}",
        stderr(&out)
    );
    let out = netwarden(&["replay", "empty.pcap", "--no-log"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("empty.pcap: the file is empty"),
        "{}",
        stderr(&out)
    );
    let out = netwarden(&["replay", "missing.pcap", "--no-log"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.pcap"), "{}", stderr(&out));
}

#[test]
fn a_capture_file_cut_short_reports_its_packets_then_the_error() {
    use common::frames::{eth, ipv4, tcp};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    // More packets than the engine reads ahead in one piece, each denied by "no ssh".
    let frame = eth(
        0x0800,
        &ipv4([192, 0, 2, 1], [10, 0, 0, 7], 6, &tcp(40_000, 22, 0x02, b"")),
    );
    let records: Vec<_> = (0..700i64)
        .map(|i| (1_764_000_000_000_000 + i * 1_000, frame.clone(), 54))
        .collect();
    let path = dir.path().join("cut.pcap");
    common::pcapfile::write_pcap(&path, 1, &records);
    // The last record loses its final 10 bytes, as when a capture is copied while still being written.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let out = netwarden(&["replay", "cut.pcap", "--no-log"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cut.pcap") && stderr(&out).contains("truncated"),
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let denied = stdout.lines().filter(|l| l.contains("no ssh")).count();
    assert_eq!(denied, 699, "every whole packet before the cut is reported");
}

#[test]
fn bad_bpf_filter_is_bad_input() {
    common::root::require_root!("capture on lo: libpcap opens the device before it compiles the filter");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    let out = netwarden(
        &["run", "--iface", "lo", "--filter", "tcp port banana", "--no-log"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid capture filter \"tcp port banana\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = netwarden(&["replay"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = netwarden(&["frobnicate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the binary as `nobody` (no capabilities): capture must fail with the fix in the message.
#[test]
fn no_capture_privilege_names_the_fix() {
    common::root::require_root!("setpriv to an unprivileged user");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), VALID_RULES).unwrap();
    // The temp dir and the binary must be reachable for `nobody`.
    Command::new("chmod")
        .args(["755"])
        .arg(dir.path())
        .status()
        .unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(BIN)
        .args(["run", "--iface", "lo", "--no-log", "--rules"])
        .arg(dir.path().join("rules.ron"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains("CAP_NET_RAW")
            && err.contains("setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip")
            && err.contains("chmod 0750"),
        "{err}"
    );
}

#[test]
fn malformed_program_glob_and_unknown_user_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("glob.ron"),
        "(default_policy: Allow, rules: [\n    (name: \"curl\", action: Block, program: \"/usr/bin/cu[rl\"),\n])\n",
    )
    .unwrap();
    let out = netwarden(&["check", "glob.ron"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "glob.ron:2:56: rule \"curl\": malformed program glob \"/usr/bin/cu[rl\": invalid range pattern"
        ),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        dir.path().join("user.ron"),
        "(default_policy: Allow, rules: [\n    (name: \"ghost\", action: Block,\n     user: \"nw-no-such-user\"),\n])\n",
    )
    .unwrap();
    let out = netwarden(&["check", "user.ron"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "user.ron:3:12: rule \"ghost\": unknown user \"nw-no-such-user\" (no such user on this system)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_says_program_rules_are_monitor_only_and_missing_programs_are_warned() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.ron"),
        r#"(default_policy: Allow, rules: [
    (name: "any curl", action: Block, program: "*/curl"),
    (name: "gone", action: Block, direction: Out, program: "/usr/bin/nw-not-installed", user: "root", enforce: true),
    (name: "root in", action: Block, direction: In, user: 0, enforce: true),
])
"#,
    )
    .unwrap();
    let out = netwarden(&["check", "rules.ron"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("note: rule \"any curl\" (program */curl) is monitor-only"),
        "{text}"
    );
    assert!(
        text.contains(
            "warning: rule 2 \"gone\": program /usr/bin/nw-not-installed does not exist on this system"
        ),
        "{text}"
    );
    assert!(
        text.contains("warning: not enforceable in the kernel: rule `gone`: monitor-only: iptables cannot match a program path"),
        "{text}"
    );
    assert!(
        text.contains("warning: not enforceable in the kernel: rule `root in`: a user rule can only be enforced on outbound traffic"),
        "{text}"
    );
}
