//! End-to-end tests of rule files: syntax and validation errors with file:line:column, the shipped
//! `rules.ron`, hot reload that keeps the old set on a broken file, and atomic saves.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use std::path::{Path, PathBuf};

use netwarden::packet::{IpProto, LinkType, PacketMeta};
use netwarden::rules::{
    Action, Protocol, RuleError, RuleFile, RuleId, RuleSet, RuleSpec, RuleWatcher, Verdict, save_atomic,
    shared, swap_rules,
};

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("rules.ron");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_err(text: &str) -> (String, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), text);
    let e = RuleSet::load(&path).unwrap_err();
    (e.to_string(), path, dir)
}

#[test]
fn syntax_error_has_file_line_and_column() {
    let text =
        "(\n    default_policy: Allow,\n    rules: [\n        (name: \"a\" action: Allow),\n    ],\n)\n";
    let (msg, path, _dir) = load_err(text);
    assert_eq!(msg, format!("{}:4:20: Expected comma", path.display()));
}

#[test]
fn unknown_field_is_rejected_with_position() {
    let text = "(\n    default_policy: Allow,\n    rules: [\n        (name: \"a\", action: Allow, port: [\"22\"]),\n    ],\n)\n";
    let (msg, path, _dir) = load_err(text);
    assert!(msg.starts_with(&format!("{}:4:", path.display())), "{msg}");
    assert!(msg.contains("Unexpected field named `port`"), "{msg}");
}

#[test]
fn bad_cidr_names_file_position_and_rule() {
    let text = "(\n    default_policy: Allow,\n    rules: [\n        (name: \"router\", action: Allow, src: [\"192.168.1.1\"]),\n        (name: \"lan\", action: Block, src: [\"10.0.0.0/8\", \"10.0.0.0/40\"]),\n    ],\n)\n";
    let (msg, path, _dir) = load_err(text);
    assert_eq!(
        msg,
        format!(
            "{}:5:58: rule \"lan\": invalid address \"10.0.0.0/40\" (expected an IP or CIDR such as 10.0.0.0/8 or 2001:db8::/32)",
            path.display()
        )
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let text = "(default_policy: Allow, rules: [\n    (name: \"x\", action: Allow),\n    (name: \"y\", action: Allow),\n    (name: \"x\", action: Block),\n])";
    let (msg, path, _dir) = load_err(text);
    assert_eq!(
        msg,
        format!(
            "{}:4:12: rule \"x\": duplicate name (rule 1 has the same name)",
            path.display()
        )
    );
}

#[test]
fn enforce_on_allow_is_rejected() {
    let text = "(default_policy: Allow, rules: [\n    (name: \"x\", action: Log, dst: [\"10.0.0.1\"],\n     enforce: true),\n])";
    let (msg, path, _dir) = load_err(text);
    assert_eq!(
        msg,
        format!(
            "{}:3:6: rule \"x\": enforce is only valid on Block rules (this rule is log)",
            path.display()
        )
    );
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.ron");
    let e = RuleSet::load(&path).unwrap_err();
    assert!(matches!(e, RuleError::Io { .. }));
    assert!(e.to_string().starts_with(&format!("{}: ", path.display())), "{e}");
}

fn tcp(dst_port: u16) -> PacketMeta {
    let mut m = PacketMeta::new(1, 60, 60, LinkType::Ethernet);
    m.src_ip = Some("192.168.1.50".parse().unwrap());
    m.dst_ip = Some("192.168.1.60".parse().unwrap());
    m.protocol = Some(IpProto::TCP);
    m.src_port = Some(40000);
    m.dst_port = Some(dst_port);
    m
}

#[test]
fn shipped_rules_ron_compiles_and_has_the_seed_policy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.ron");
    let set = RuleSet::load(&path).unwrap();
    assert_eq!(set.default_policy(), Action::Allow);
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_ref()).collect();
    assert_eq!(names[..4], ["router", "localhost", "no ssh", "no http"]);
    assert_eq!(
        set.evaluate(&tcp(22), "eth0"),
        Verdict {
            action: Action::Block,
            rule: Some(RuleId(2))
        }
    );
    assert_eq!(
        set.evaluate(&tcp(80), "eth0"),
        Verdict {
            action: Action::Block,
            rule: Some(RuleId(3))
        }
    );
    assert_eq!(
        set.evaluate(&tcp(443), "eth0"),
        Verdict {
            action: Action::Allow,
            rule: None
        }
    );
    // Every example is disabled, so nothing beyond the seed applies.
    assert!(set.rules()[4..].iter().all(|r| !r.enabled));
    assert!(
        netwarden::rules::lint(&set).is_empty(),
        "{:?}",
        netwarden::rules::lint(&set)
    );
}

#[test]
fn broken_reload_keeps_the_old_set_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "(default_policy: Allow, rules: [(name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\"])])",
    );
    let (mut watcher, set) = RuleWatcher::open(&path).unwrap();
    let rules = shared(set);
    assert_eq!(rules.load().evaluate(&tcp(22), "eth0").action, Action::Block);

    std::fs::write(&path, "(default_policy: Allow, rules: [(name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22-\"])])").unwrap();
    match watcher.poll() {
        Some(Err(e)) => assert_eq!(
            e.to_string(),
            format!(
                "{}:1:92: rule \"no ssh\": invalid port \"22-\" (expected N or LO-HI, ports 0-65535)",
                path.display()
            )
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    // Nothing was swapped: the old rule still decides, and its hit counter keeps counting.
    assert_eq!(
        rules.load().evaluate(&tcp(22), "eth0"),
        Verdict {
            action: Action::Block,
            rule: Some(RuleId(0))
        }
    );
    assert!(watcher.poll().is_none());

    std::fs::write(&path, "(default_policy: Allow, rules: [(name: \"web\", action: Log, protocol: Tcp, dst_ports: [\"443\"]), (name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\"])])").unwrap();
    let new = watcher.poll().unwrap().unwrap();
    swap_rules(&rules, new);
    let now = rules.load();
    assert_eq!(
        now.evaluate(&tcp(443), "eth0"),
        Verdict {
            action: Action::Log,
            rule: Some(RuleId(0))
        }
    );
    assert_eq!(
        now.hits(RuleId(1)).count,
        2,
        "hits of \"no ssh\" carried over by name"
    );
}

#[test]
fn atomic_save_round_trips_and_a_failed_save_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.ron");
    let mut file = RuleFile::default();
    file.rules.push(RuleSpec {
        name: "no ssh".into(),
        action: Action::Block,
        protocol: Protocol::Tcp,
        dst_ports: vec!["22".into()],
        comment: "quotes \" and \\ survive".into(),
        ..RuleSpec::default()
    });
    file.detection.scan_ports = 7;
    save_atomic(&file, &path).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    let set = RuleSet::load(&path).unwrap();
    assert_eq!(set.file(), &file);
    assert_eq!(set.detection().scan_ports, 7);

    // An invalid model is refused before anything is written.
    let mut bad = file.clone();
    bad.rules.push(RuleSpec {
        name: "bad".into(),
        src: vec!["not-an-ip".into()],
        ..RuleSpec::default()
    });
    let e = save_atomic(&bad, &path).unwrap_err();
    assert!(
        e.to_string()
            .contains("rule \"bad\": invalid address \"not-an-ip\""),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved);
    // No temp files left behind.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [std::ffi::OsString::from("rules.ron")]);

    // A directory that does not exist: an I/O error, nothing written.
    let missing = dir.path().join("no/such/dir/rules.ron");
    assert!(matches!(save_atomic(&file, &missing), Err(RuleError::Io { .. })));
}
