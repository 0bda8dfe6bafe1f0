//! The rule editor driven as a user drives it (egui_kittest): add a rule through the form and find it in
//! `rules.ron`; invalid input shows an error and saves nothing; reorder and toggle change verdicts.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta};
use netwarden::rules::{Action, RuleSet, SharedRules, shared};
use netwarden::ui::rules::{RecentPackets, RulesPanel};

const START: &str = r#"(
    default_policy: Allow,
    rules: [
        (name: "allow admin", action: Allow, src: ["10.0.0.5"]),
        (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
    ],
)
"#;

struct State {
    panel: RulesPanel,
    rules: SharedRules,
    recent: RecentPackets,
}

fn ssh_from(src: &str) -> PacketMeta {
    let mut meta = PacketMeta::new(1_700_000_000_000_000, 60, 60, LinkType::Ethernet);
    meta.src_ip = Some(src.parse().unwrap());
    meta.dst_ip = Some("192.168.1.50".parse().unwrap());
    meta.protocol = Some(IpProto::TCP);
    meta.src_port = Some(40_000);
    meta.dst_port = Some(22);
    meta.direction = Direction::In;
    meta
}

fn setup(dir: &Path) -> (Harness<'static, State>, PathBuf) {
    let path = dir.join("rules.ron");
    std::fs::write(&path, START).unwrap();
    let set = RuleSet::load(&path).unwrap();
    let state = State {
        panel: RulesPanel::new(path.clone(), &set),
        rules: shared(set),
        recent: vec![
            (ssh_from("10.0.0.5"), Arc::from("eth0")),
            (ssh_from("10.0.0.9"), Arc::from("eth0")),
        ],
    };
    let harness = Harness::new_ui_state(
        |ui, state: &mut State| {
            let recent = state.recent.clone();
            state.panel.ui(ui, &state.rules, &move || recent.clone());
        },
        state,
    );
    (harness, path)
}

/// Focuses the text field labelled `label` and types `text`, as a user does.
fn type_into(harness: &mut Harness<'static, State>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run();
    harness.get_by_label(label).type_text(text);
    harness.run();
}

fn verdict(rules: &SharedRules, src: &str) -> Action {
    rules.load().evaluate(&ssh_from(src), "eth0").action
}

#[test]
fn add_rule_through_the_form_is_saved_to_the_file_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, path) = setup(dir.path());
    harness.get_by_label("Add rule").click();
    harness.run();
    type_into(&mut harness, "Name", "lan web");
    type_into(&mut harness, "Source addresses", "10.0.0.0/8");
    type_into(&mut harness, "Destination ports", "80, 8000-8999");
    harness.run();
    harness.get_by_label("Add to list").click();
    harness.run();
    // The first press shows the what-if preview, the second writes the file.
    harness.get_by_label("Save and apply").click();
    harness.run();
    assert!(
        harness
            .query_by_label_contains("What-if on 2 recent packets")
            .is_some()
    );
    harness.get_by_label("Save and apply").click();
    harness.run();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"lan web\""), "{text}");
    assert!(
        text.contains("\"10.0.0.0/8\"") && text.contains("\"8000-8999\""),
        "{text}"
    );
    let reloaded = RuleSet::load(&path).unwrap();
    assert_eq!(reloaded.rules().len(), 3);
    assert_eq!(&*reloaded.rules()[2].name, "lan web");
    assert_eq!(
        harness.state().rules.load().rules().len(),
        3,
        "the new rules are in force"
    );
}

#[test]
fn invalid_input_shows_an_error_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, path) = setup(dir.path());
    harness.get_by_label("Add rule").click();
    harness.run();
    type_into(&mut harness, "Name", "bad");
    type_into(&mut harness, "Source addresses", "10.0.0.300");
    harness.run();
    assert!(
        harness.query_by_label_contains("10.0.0.300").is_some(),
        "the error names the bad address"
    );
    harness.get_by_label("Add to list").click();
    harness.run();
    assert_eq!(
        harness.state().panel.draft().rules.len(),
        2,
        "an invalid rule is not added"
    );
    assert!(!harness.state().panel.is_dirty());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        START,
        "nothing was written"
    );
}

#[test]
fn reorder_and_toggle_change_verdicts_of_replayed_packets() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _path) = setup(dir.path());
    assert_eq!(verdict(&harness.state().rules, "10.0.0.5"), Action::Allow);
    // Move "no ssh" above "allow admin": the admin's ssh is now denied.
    let downs = harness.get_all_by_label_contains("Move down rule").count();
    assert_eq!(downs, 2);
    harness.get_by_label("Move down rule allow admin").click();
    harness.run();
    harness.get_by_label("Save and apply").click();
    harness.run();
    harness.get_by_label("Save and apply").click();
    harness.run();
    assert_eq!(verdict(&harness.state().rules, "10.0.0.5"), Action::Block);
    // Disable "no ssh" (now first): ssh from anyone is allowed by the default policy.
    harness.get_by_label("Enabled: no ssh").click();
    harness.run();
    harness.get_by_label("Save and apply").click();
    harness.run();
    harness.get_by_label("Save and apply").click();
    harness.run();
    assert_eq!(verdict(&harness.state().rules, "10.0.0.9"), Action::Allow);
    assert!(!harness.state().rules.load().rules()[0].enabled);
}

#[test]
fn delete_has_undo() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _path) = setup(dir.path());
    harness.get_by_label("Delete rule allow admin").click();
    harness.run();
    assert_eq!(harness.state().panel.draft().rules.len(), 1);
    harness.get_by_label("Undo").click();
    harness.run();
    assert_eq!(harness.state().panel.draft().rules.len(), 2);
    assert!(!harness.state().panel.is_dirty());
}
