//! Replay without surprises (issue 10 §3): the rules lookup (`--rules`, `./rules.ron`, the per-user file,
//! `/etc/netwarden/rules.ron`), no audit log unless `--log` is given, an empty rule set when there are no
//! rules anywhere, and error messages that name their cause once. Every run gets its own empty working
//! directory, `HOME` and `XDG_CONFIG_HOME`, so nothing of the developer's own configuration is read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::frames::{eth, ipv4, tcp};
use common::pcapfile::write_pcap;

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");
const SYSTEM_RULES: &str = "/etc/netwarden/rules.ron";

/// Blocks TCP port 22: the capture below has 3 packets to port 22 and 2 to port 80.
const BLOCK_SSH: &str =
    r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"])])"#;
/// Blocks TCP port 80 instead, to tell which file was read.
const BLOCK_HTTP: &str =
    r#"(default_policy: Allow, rules: [(name: "no http", action: Block, protocol: Tcp, dst_ports: ["80"])])"#;

/// An empty working directory, home and config directory, and a capture file outside the working one.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for dir in ["work", "home", "config", "data"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        let records: Vec<_> = [22u16, 22, 80, 22, 80]
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let frame = eth(
                    0x0800,
                    &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp(40_000, *port, 0x02, &[])),
                );
                let len = u32::try_from(frame.len()).unwrap();
                (
                    1_700_000_000_000_000 + i64::try_from(i).unwrap() * 1_000,
                    frame,
                    len,
                )
            })
            .collect();
        write_pcap(&root.path().join("data/five.pcap"), 1, &records);
        Self { root }
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn pcap(&self) -> PathBuf {
        self.root.path().join("data/five.pcap")
    }

    fn user_rules(&self) -> PathBuf {
        self.root.path().join("config/netwarden/rules.ron")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(self.work())
            .env("HOME", self.root.path().join("home"))
            .env("XDG_CONFIG_HOME", self.root.path().join("config"))
            .output()
            .unwrap()
    }

    /// `replay --summary --json` of the capture; the parsed totals and stderr.
    fn replay(&self, extra: &[&str]) -> (serde_json::Value, String) {
        let pcap = self.pcap();
        let mut args = vec!["replay", pcap.to_str().unwrap(), "--summary", "--json"];
        args.extend(extra);
        let out = self.run(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{err}");
        (serde_json::from_slice(&out.stdout).unwrap(), err)
    }

    fn work_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.work())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn replay_from_an_empty_directory_works_and_leaves_nothing_behind() {
    let sandbox = Sandbox::new();
    let (summary, err) = sandbox.replay(&[]);
    assert_eq!(summary["packets"], 5, "{err}");
    if Path::new(SYSTEM_RULES).exists() {
        // The package is installed on this machine: its rules are the last place looked at.
        assert!(err.contains(&format!("rules from {SYSTEM_RULES}")), "{err}");
    } else {
        assert!(
            err.contains("no rules file found (looked for rules.ron, ")
                && err.contains("config/netwarden/rules.ron, /etc/netwarden/rules.ron)")
                && err.contains("judging by an empty rule set (default allow)"),
            "{err}"
        );
        assert_eq!(summary["allowed"], 5, "{err}");
        assert_eq!(summary["blocked"], 0, "{err}");
    }
    assert!(
        sandbox.work_entries().is_empty(),
        "replay wrote into the working directory: {:?}",
        sandbox.work_entries()
    );
}

#[test]
fn replay_looks_in_the_working_directory_before_the_user_config() {
    let sandbox = Sandbox::new();
    write(&sandbox.user_rules(), BLOCK_HTTP);
    let (summary, err) = sandbox.replay(&[]);
    assert_eq!(summary["blocked"], 2, "the per-user rules block port 80: {err}");
    assert!(
        err.contains(&format!("rules from {}", sandbox.user_rules().display())),
        "{err}"
    );

    write(&sandbox.work().join("rules.ron"), BLOCK_SSH);
    let (summary, err) = sandbox.replay(&[]);
    assert_eq!(summary["blocked"], 3, "./rules.ron blocks port 22: {err}");
    assert!(err.contains("rules from rules.ron"), "{err}");

    let given = sandbox.root.path().join("data/given.ron");
    write(&given, BLOCK_HTTP);
    let (summary, err) = sandbox.replay(&["--rules", given.to_str().unwrap()]);
    assert_eq!(summary["blocked"], 2, "--rules wins: {err}");
    assert!(
        !err.contains("rules from"),
        "a given file is not announced: {err}"
    );
}

#[test]
fn replay_writes_an_audit_log_only_when_asked() {
    let sandbox = Sandbox::new();
    // The rules name a log file: replay must still not write it.
    write(
        &sandbox.work().join("rules.ron"),
        r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"])],
            log: (path: "firewall.log"))"#,
    );
    let (summary, err) = sandbox.replay(&[]);
    assert_eq!(summary["blocked"], 3, "{err}");
    assert_eq!(sandbox.work_entries(), ["rules.ron"]);

    let log = sandbox.root.path().join("data/audit.log");
    let (_, err) = sandbox.replay(&["--log", log.to_str().unwrap()]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("action=block") && text.contains("rule=\"no ssh\""),
        "{err}\n{text}"
    );
    assert_eq!(sandbox.work_entries(), ["rules.ron"]);
}

#[test]
fn check_and_run_without_any_rules_file_say_where_they_looked() {
    let sandbox = Sandbox::new();
    if Path::new(SYSTEM_RULES).exists() {
        // With the package installed there is always a rules file; `check` uses it.
        let out = sandbox.run(&["check"]);
        assert_eq!(out.status.code(), Some(0));
        return;
    }
    for args in [&["check"][..], &["run", "--iface", "lo", "--no-log"][..]] {
        let out = sandbox.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no rules file found (looked for rules.ron, ")
                && err.contains("give one with --rules FILE"),
            "{args:?}: {err}"
        );
    }
    write(&sandbox.user_rules(), BLOCK_SSH);
    let out = sandbox.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{}: 1 rules", sandbox.user_rules().display())),
        "{text}"
    );
}

/// Regression (issue 10): `error: rules.ron: No such file or directory (os error 2): No such file or
/// directory (os error 2)`.
#[test]
fn a_missing_rules_file_names_its_cause_once() {
    let sandbox = Sandbox::new();
    let pcap = sandbox.pcap();
    for args in [
        &["replay", pcap.to_str().unwrap(), "--rules", "rules.ron"][..],
        &["check", "rules.ron"][..],
        &["run", "--iface", "lo", "--rules", "rules.ron"][..],
    ] {
        let out = sandbox.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "netwarden: error: rules.ron: No such file or directory (os error 2)",
            "{args:?}"
        );
    }
}

/// The app's editor never writes `/etc` for a user who is not root: rules found there are saved to the
/// per-user file, which the lookup then finds first.
#[cfg(feature = "gui")]
#[test]
fn the_editor_saves_system_rules_to_the_user_copy() {
    use netwarden::rules::paths::{LookupEnv, RulesLocation, RulesOrigin};
    use netwarden::rules::{RuleSet, shared};
    use netwarden::ui::rules::RulesPanel;

    let sandbox = Sandbox::new();
    // Stands for /etc/netwarden/rules.ron (the lookup only knows it by its origin).
    let system = sandbox.root.path().join("etc/netwarden/rules.ron");
    write(&system, BLOCK_SSH);
    let env = LookupEnv {
        xdg_config_home: Some(sandbox.root.path().join("config").display().to_string()),
        home: Some(sandbox.root.path().join("home").display().to_string()),
        euid: Some(1000),
    };
    let location = RulesLocation {
        path: system.clone(),
        origin: RulesOrigin::System,
    };
    let target = env.save_target(&location);
    assert_eq!(target, sandbox.user_rules());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();

    let set = RuleSet::load(&system).unwrap();
    let mut panel = RulesPanel::new(system.clone(), &set);
    let before = set.file().clone();
    let rules = shared(set);
    panel.set_save_path(target.clone());
    panel.save(&rules).unwrap();
    assert_eq!(
        std::fs::read_to_string(&system).unwrap(),
        BLOCK_SSH,
        "/etc untouched"
    );
    let copy = RuleSet::load(&target).unwrap();
    assert_eq!(copy.file(), &before);
    let (summary, err) = sandbox.replay(&[]);
    assert_eq!(summary["blocked"], 3, "the user copy is found: {err}");
}
