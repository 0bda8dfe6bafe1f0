//! The traffic table driven as a user drives it (egui_kittest): the filter narrows the table (and a bad
//! filter says why), pause keeps buffering and "Jump to live" returns, a row's details say why it got its
//! verdict, and right-click makes a pre-filled rule. Also the whole app headless: with an unknown interface
//! it falls back to the demo capture and fills the table.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use netwarden::engine::RawStore;
use netwarden::event::Event;
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta, TcpFlags};
use netwarden::rules::{RuleSet, Verdict};
use netwarden::ui::app::{App, AppOptions, State, Tab};
use netwarden::ui::log::LogPanel;
use netwarden::ui::traffic::{TrafficAction, TrafficPanel};

const RULES: &str = r#"(default_policy: Allow, rules: [
    (name: "router", action: Allow, src: ["192.168.1.1"]),
    (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
])"#;

struct Panel {
    panel: TrafficPanel,
    rules: RuleSet,
    raw: RawStore,
}

fn event(seq: u64, src: &str, dport: u16, rules: &RuleSet) -> Event {
    let mut meta = PacketMeta::new(
        1_764_000_000_000_000 + i64::try_from(seq).unwrap(),
        60,
        60,
        LinkType::Ethernet,
    );
    meta.src_ip = Some(src.parse().unwrap());
    meta.dst_ip = Some("192.168.1.50".parse().unwrap());
    meta.protocol = Some(IpProto::TCP);
    meta.src_port = Some(40_000);
    meta.dst_port = Some(dport);
    meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
    meta.direction = Direction::In;
    let verdict: Verdict = rules.evaluate(&meta, "eth0");
    Event {
        seq,
        rule_name: verdict.rule.and_then(|id| rules.rule_name(id).cloned()),
        meta,
        verdict,
        iface: Arc::from("eth0"),
        alert: None,
        src_name: None,
        dst_name: None,
        kernel_dropped: false,
        origin: netwarden::event::Origin::Untracked,
        rules_version: 0,
    }
}

fn harness() -> Harness<'static, Panel> {
    let rules = RuleSet::from_ron(RULES).unwrap();
    let mut panel = TrafficPanel::new(1_000);
    let events: Vec<Event> = (1..=30)
        .map(|i| match i % 3 {
            0 => event(i, "10.0.0.9", 22, &rules),
            1 => event(i, "192.168.1.1", 443, &rules),
            _ => event(i, "10.0.0.7", 80, &rules),
        })
        .collect();
    panel.push(events);
    panel.push([event(31, "203.0.113.7", 22, &rules)]);
    let state = Panel {
        panel,
        rules,
        raw: RawStore::new(1 << 20),
    };
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, s: &mut Panel| s.panel.ui(ui, &s.rules, &s.raw), state)
}

fn type_filter(h: &mut Harness<'static, Panel>, text: &str) {
    h.get_by_label("Filter:").focus();
    h.run();
    h.get_by_label("Filter:").type_text(text);
    h.run();
}

#[test]
fn filter_narrows_the_table_and_bad_syntax_is_explained() {
    let mut h = harness();
    h.run();
    assert_eq!(h.state().panel.counts().1, 31);
    type_filter(&mut h, "port:22 verdict:block");
    assert_eq!(h.state().panel.counts().1, 11);
    assert!(h.state().panel.shown().all(|r| r.dst_port == Some(22)));
    assert!(h.query_by_label_contains("31 stored, 11 shown").is_some());
    type_filter(&mut h, "x");
    assert!(h.query_by_label_contains("unknown key").is_none());
    let mut h = harness();
    type_filter(&mut h, "port:banana");
    assert!(
        h.query_by_label_contains("\"banana\" is not a port number")
            .is_some()
    );
    assert_eq!(h.state().panel.counts().1, 31, "a bad filter keeps the old one");
}

#[test]
fn pause_keeps_buffering_and_jump_to_live_returns() {
    let mut h = harness();
    h.get_by_label("Pause").click();
    h.run();
    assert!(h.state().panel.is_paused());
    let rules = RuleSet::from_ron(RULES).unwrap();
    h.state_mut()
        .panel
        .push((32..42).map(|i| event(i, "10.0.0.8", 443, &rules)));
    h.run();
    h.get_by_label("Jump to live (10 new)").click();
    h.run();
    assert!(!h.state().panel.is_paused());
    assert_eq!(h.state().panel.counts().1, 41);
}

#[test]
fn details_say_why_and_right_click_makes_a_rule() {
    let mut h = harness();
    h.run();
    h.get_by_label("203.0.113.7").click();
    h.run();
    assert_eq!(h.state().panel.selected().unwrap().seq, 31);
    assert!(
        h.query_by_label_contains("rule 1 \"router\": skipped, src 203.0.113.7 not in 192.168.1.1")
            .is_some()
    );
    assert!(h.query_by_label_contains("rule 2 \"no ssh\": MATCHED").is_some());
    h.get_by_label("203.0.113.7").click_secondary();
    h.run();
    h.get_by_label("Block rule for source").click();
    h.run();
    h.get_by_label("203.0.113.7").click_secondary();
    h.run();
    h.get_by_label("Block source for 1 hour").click();
    h.run();
    let actions = &h.state().panel.actions;
    assert_eq!(actions.len(), 2);
    let TrafficAction::Block { addr, secs, reason } = &actions[1] else {
        panic!("expected a block, got {actions:?}");
    };
    assert_eq!(addr.to_string(), "203.0.113.7");
    assert_eq!(*secs, Some(3_600));
    assert!(reason.contains("no ssh"), "{reason}");
    let TrafficAction::EditNewRule(spec) = &actions[0] else {
        panic!("expected a rule, got {actions:?}");
    };
    assert_eq!(spec.name, "block 203.0.113.7");
    assert_eq!(spec.src, vec!["203.0.113.7"]);
}

#[test]
fn whole_app_falls_back_to_demo_and_fills_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(&rules, RULES).unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.pcap");
    let options = AppOptions {
        rules_path: rules,
        demo_file: demo,
        iface: Some("nwnosuch0".into()),
        demo: false,
        state_dir: dir.path().join("state"),
        enforcer: Err("disabled in this test".into()),
        protected: netwarden::enforce::Protected::default(),
        remove_on_exit: false,
    };
    let app = App::new(State::default(), options);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut App| app.frame_ui(ui), app);
    let start = Instant::now();
    while h.state().traffic().counts().0 < 20 && start.elapsed() < Duration::from_secs(20) {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        h.state().traffic().counts().0 >= 20,
        "demo packets reach the table"
    );
    assert!(h.query_by_label_contains("DEMO: replaying").is_some());
    assert!(
        h.query_by_label_contains("no such interface \"nwnosuch0\"")
            .is_some()
    );
    // Right-click a row and block its source for an hour: it lands on the block list (not enforced here:
    // this test runs without an enforcer, so it never touches the host's firewall).
    h.get_by_label("Pause").click();
    h.run();
    h.get_all_by_label("192.168.1.50")
        .next()
        .unwrap()
        .click_secondary();
    h.run();
    h.get_by_label("Block source for 1 hour").click();
    h.run();
    let entries: Vec<_> = h.state().blocklist().list().iter().cloned().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].expires.is_some());
    assert_eq!(entries[0].state, netwarden::blocklist::EntryState::NotEnforced);
    h.get_by_label("Rules").click();
    h.run();
    assert_eq!(h.state().tab(), Tab::Rules);
}

#[test]
fn log_viewer_filters_and_exports_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let rules = RuleSet::from_ron(RULES).unwrap();
    let mut log = LogPanel::new(dir.path().join("firewall.log"));
    let events: Vec<Event> = (1..=30)
        .map(|i| {
            if i % 3 == 0 {
                event(i, "10.0.0.9", 22, &rules)
            } else {
                event(i, "10.0.0.7", 443, &rules)
            }
        })
        .collect();
    log.push(&events);
    let out = dir.path().join("view.csv");
    log.set_export_path(&out);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, log: &mut LogPanel| log.ui(ui, &RawStore::new(1 << 16)), log);
    h.run();
    assert_eq!(
        h.state().counts(),
        (10, 10),
        "only denied and suspicious events are in the log"
    );
    h.get_by_label("Address:").focus();
    h.run();
    h.get_by_label("Address:").type_text("10.0.0.9");
    h.run();
    h.get_by_label("Export view").click();
    h.run();
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert!(
        rows.iter()
            .all(|r| &r[col("src_ip")] == "10.0.0.9" && &r[col("rule")] == "no ssh")
    );
    assert!(h.query_by_label_contains("exported 10 records").is_some());
}

#[test]
fn clicking_a_header_sorts_and_freezes() {
    let mut h = harness();
    h.run();
    h.get_by_label("Source").click();
    h.run();
    let panel = &h.state().panel;
    assert!(panel.is_paused());
    let sources: Vec<String> = panel.shown().map(|r| r.src_ip.unwrap().to_string()).collect();
    assert_eq!(sources.first().map(String::as_str), Some("10.0.0.7"));
    assert_eq!(sources.last().map(String::as_str), Some("203.0.113.7"));
    // Clicking again reverses; the label carries the direction marker.
    h.get_by_label("Source ^").click();
    h.run();
    let first = h.state().panel.shown().next().unwrap().src_ip.unwrap();
    assert_eq!(first.to_string(), "203.0.113.7");
    h.get_by_label_contains("Jump to live").click();
    h.run();
    assert!(!h.state().panel.is_paused());
    assert_eq!(h.state().panel.shown().next().unwrap().seq, 1);
}

#[test]
fn kernel_dropped_rows_say_so() {
    let rules = RuleSet::from_ron(RULES).unwrap();
    let mut e = event(1, "198.51.100.23", 443, &rules);
    e.kernel_dropped = true;
    let mut panel = TrafficPanel::new(10);
    panel.push([e]);
    let state = Panel {
        panel,
        rules,
        raw: RawStore::new(1 << 20),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, s: &mut Panel| s.panel.ui(ui, &s.rules, &s.raw), state);
    h.run();
    assert!(h.query_by_label("kernel drop").is_some());
}

#[test]
fn why_this_verdict_uses_the_rules_that_judged_the_packet() {
    let history = Arc::new(netwarden::engine::RulesHistory::default());
    let before = Arc::new(RuleSet::from_ron(RULES).unwrap());
    let version = history.record(&before);
    let mut probe = event(1, "203.0.113.7", 22, &before);
    probe.rules_version = version;
    assert_eq!(probe.verdict.action, netwarden::rules::Action::Block);
    // Since then "no ssh" was deleted: the current rules would allow the probe.
    const NOW: &str =
        r#"(default_policy: Allow, rules: [(name: "router", action: Allow, src: ["192.168.1.1"])])"#;
    history.record(&Arc::new(RuleSet::from_ron(NOW).unwrap()));
    let mut panel = TrafficPanel::new(10);
    panel.set_rules_history(Arc::clone(&history));
    panel.push([probe]);
    let state = Panel {
        panel,
        rules: RuleSet::from_ron(NOW).unwrap(),
        raw: RawStore::new(1 << 20),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, s: &mut Panel| s.panel.ui(ui, &s.rules, &s.raw), state);
    h.run();
    h.get_by_label("203.0.113.7").click();
    h.run();
    // Explained with the rules that judged it, as the Verdict column says...
    assert!(h.query_by_label_contains("rule 2 \"no ssh\": MATCHED").is_some());
    assert!(h.query_by_label("rule 2 \"no ssh\" matched: block").is_some());
    // ...and what the rules in force now would do.
    assert!(
        h.query_by_label_contains(
            "The rules have changed since this packet was judged. With the current rules: no rule matched: \
             default policy allow (a different verdict)."
        )
        .is_some()
    );
}

/// The sentence a screen reader hears for the SSH probe row.
const PROBE_ROW: &str = "in tcp 203.0.113.7 port 40000 to 192.168.1.50 port 22, block, rule no ssh";

#[test]
fn rows_are_table_rows_named_by_a_sentence_and_the_keys_move_the_selection() {
    use egui::accesskit::Role;
    use egui::{Key, Modifiers};
    let mut h = harness();
    h.run();
    assert!(
        h.query_by_role_and_label(Role::Table, "Traffic: 31 packets shown")
            .is_some()
    );
    assert!(h.query_by_role_and_label(Role::Row, PROBE_ROW).is_some());
    // End selects the newest row, gives it the focus and pauses following so it stays put.
    h.key_press(Key::End);
    h.run();
    assert_eq!(h.state().panel.selected().unwrap().seq, 31);
    assert!(h.state().panel.is_paused());
    assert!(h.query_by_label("Paused").is_some());
    assert!(h.get_by_role_and_label(Role::Row, PROBE_ROW).is_focused());
    h.key_press(Key::ArrowUp);
    h.run();
    assert_eq!(h.state().panel.selected().unwrap().seq, 30);
    h.key_press(Key::Home);
    h.run();
    assert_eq!(h.state().panel.selected().unwrap().seq, 1);
    h.key_press(Key::ArrowDown);
    h.run();
    assert_eq!(h.state().panel.selected().unwrap().seq, 2);
    h.key_press(Key::PageDown);
    h.run();
    assert!(
        h.state().panel.selected().unwrap().seq > 10,
        "a page is more than 8 rows here"
    );
    h.key_press(Key::End);
    h.run();
    // Enter hides and shows the details of the selected row.
    assert!(h.state().panel.details_open());
    h.key_press(Key::Enter);
    h.run();
    assert!(!h.state().panel.details_open());
    h.key_press(Key::Enter);
    h.run();
    assert!(h.query_by_label_contains("Why this verdict").is_some());
    // The Menu key opens the row menu with the focus on its first item; Enter picks it.
    h.key_press(Key::Menu);
    h.run();
    assert!(h.get_by_label("Block source").is_focused());
    h.key_press(Key::Enter);
    h.run();
    let actions = &h.state().panel.actions;
    assert!(
        matches!(&actions[..], [TrafficAction::Block { addr, secs: None, .. }] if addr.to_string() == "203.0.113.7"),
        "{actions:?}"
    );
    assert!(h.query_by_label("Block source").is_none(), "the menu closed");
    // Shift+F10 opens it too; Escape closes it.
    h.key_press_modifiers(Modifiers::SHIFT, Key::F10);
    h.run();
    assert!(h.query_by_label("Block source for 1 hour").is_some());
    // Jump to live lands on the newest row again.
    h.state_mut().panel.jump_to_live();
    h.run();
    assert!(!h.state().panel.is_paused());
    assert!(h.query_by_label("Following live").is_some());
}

#[test]
fn keyboard_only_filter_select_block_add_a_rule_and_save() {
    use egui::{Key, Modifiers};
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.ron");
    let text = "(\n    // My rules: this comment must survive a save.\n    default_policy: Allow,\n    rules: [\n        \
                // SSH is for admins only.\n        (name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\"]),\n    ],\n)\n";
    std::fs::write(&rules_path, text).unwrap();
    let options = AppOptions {
        rules_path: rules_path.clone(),
        demo_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.pcap"),
        iface: None,
        demo: true,
        state_dir: dir.path().join("state"),
        enforcer: Err("disabled in this test".into()),
        protected: netwarden::enforce::Protected::default(),
        remove_on_exit: false,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(
            |ui, app: &mut App| app.frame_ui(ui),
            App::new(State::default(), options),
        );
    // The demo's SSH probes arrive after a few seconds of its capture.
    let start = Instant::now();
    let ssh_rows = |h: &Harness<'_, App>| {
        h.state()
            .traffic()
            .store()
            .iter()
            .filter(|(_, r)| r.dst_port == Some(22))
            .count()
    };
    while ssh_rows(&h) < 2 && start.elapsed() < Duration::from_secs(30) {
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ssh_rows(&h) >= 2, "the demo's ssh probes reach the table");
    // Ctrl+F, type a filter, Escape leaves the field.
    h.key_press_modifiers(Modifiers::COMMAND, Key::F);
    h.run_steps(2);
    assert!(h.get_by_label("Filter:").is_focused());
    h.event(egui::Event::Text("port:22 src:203.0.113.7".into()));
    h.run_steps(2);
    h.key_press(Key::Escape);
    h.run_steps(2);
    // Select the newest matching row and block its source through the row menu.
    h.key_press(Key::End);
    h.run_steps(2);
    let selected = h.state().traffic().selected().unwrap().clone();
    assert_eq!(selected.dst_port, Some(22));
    assert_eq!(selected.src_ip.unwrap().to_string(), "203.0.113.7");
    h.key_press(Key::Menu);
    h.run_steps(2);
    h.key_press(Key::Enter);
    h.run_steps(2);
    // The kernel guard takes the job on its own thread: wait for its answer.
    let asked = std::time::Instant::now();
    while h.state().blocklist().list().is_empty() && asked.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        h.step();
    }
    let entries: Vec<_> = h.state().blocklist().list().iter().cloned().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].net.to_string(), "203.0.113.7/32");
    // To the Rules tab, add a rule, save: focus as a screen reader moves it, then keys.
    let press = |h: &mut Harness<'_, App>, label: &str, key: Key| {
        h.get_by_label(label).focus();
        h.run_steps(2);
        h.key_press(key);
        h.run_steps(2);
    };
    press(&mut h, "Rules", Key::Enter);
    assert_eq!(h.state().tab(), Tab::Rules);
    press(&mut h, "Add rule", Key::Space);
    h.get_by_label("Name").focus();
    h.run_steps(2);
    h.event(egui::Event::Text("no telnet".into()));
    h.get_by_label("Destination ports").focus();
    h.run_steps(2);
    h.event(egui::Event::Text("23".into()));
    h.run_steps(2);
    press(&mut h, "Add to list", Key::Enter);
    // The first press shows the what-if preview, the second saves.
    press(&mut h, "Save and apply", Key::Enter);
    press(&mut h, "Save and apply", Key::Enter);
    let saved = std::fs::read_to_string(&rules_path).unwrap();
    assert!(
        saved.contains("(name: \"no telnet\", action: Block, dst_ports: [\"23\"])"),
        "{saved}"
    );
    assert!(
        saved.contains("// My rules: this comment must survive a save."),
        "{saved}"
    );
    assert!(
        saved.contains("        // SSH is for admins only.\n        (name: \"no ssh\""),
        "{saved}"
    );
    // Names a screen reader reads: the window, each Browse button, each plot (a sentence).
    use egui::accesskit::Role;
    let root = format!("{:?}", h.root());
    // The root node is the window: `Node { id: .., role: Window, label: "netwarden", .. }`.
    let head = root.split(", focused").next().unwrap_or_default();
    assert!(head.ends_with("role: Window, label: \"netwarden\""), "{head}");
    press(&mut h, "Log", Key::Enter);
    assert!(
        h.query_by_role_and_label(
            Role::Button,
            "Browse: Export to (CSV, JSON, JSON lines or pcap file)"
        )
        .is_some()
    );
    press(&mut h, "Stats", Key::Enter);
    for title in ["Packets per second: ", "Bytes per second: "] {
        let named = |n: &egui_kittest::kittest::AccessKitNode<'_>| {
            n.role() == Role::Image && n.label().is_some_and(|l| l.starts_with(title))
        };
        assert!(h.query_by(named).is_some(), "{title}");
    }
}

#[test]
fn a_row_takes_a_press_and_release_in_separate_frames() {
    let mut h = harness();
    h.run();
    let at = h.get_by_label("203.0.113.7").rect().center();
    h.hover_at(at);
    h.step();
    h.event(egui::Event::PointerButton {
        pos: at,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
    h.event(egui::Event::PointerButton {
        pos: at,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
    h.run();
    assert_eq!(h.state().panel.selected().map(|r| r.seq), Some(31));
}
