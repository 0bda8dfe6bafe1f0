//! The block list panel driven through egui_kittest with a real enforcer inside a network namespace this
//! test creates: "Add to block list" makes the kernel drop the peer, "Unenforce" lets it through, the state
//! shown is the kernel's. Without an enforcer the panel says why and shows the commands.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::netns::{Pair, is_root};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use netwarden::blocklist::EntryState;
use netwarden::enforce::{Enforcer, Protected, SystemRunner};
use netwarden::ui::blocklist::BlocklistPanel;

fn type_into(h: &mut Harness<'static, BlocklistPanel>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run();
    h.get_by_label(label).type_text(text);
    h.run();
}

fn settle(h: &mut Harness<'static, BlocklistPanel>) {
    let start = Instant::now();
    h.run();
    while h.state().busy() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    h.run();
}

#[test]
fn one_click_enforce_and_unenforce_in_the_kernel() {
    assert!(
        is_root(),
        "enforcement tests need root (network namespaces); CI runs as root"
    );
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    let protected = Protected {
        own: vec![pair.ip_a().parse().unwrap()],
        ..Protected::default()
    };
    let panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Ok(Enforcer::new(Box::new(SystemRunner::in_netns(&pair.a)))),
        protected,
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    assert!(pair.ping_a_from_b(false));
    type_into(&mut h, "Address or CIDR:", &pair.ip_b());
    type_into(&mut h, "Reason:", "test ban");
    h.get_by_label("Add to block list").click();
    settle(&mut h);
    let net = format!("{}/32", pair.ip_b()).parse().unwrap();
    assert_eq!(h.state().list().get(&net).unwrap().state, EntryState::Enforced);
    assert!(h.query_by_label("enforced").is_some());
    assert!(!pair.ping_a_from_b(false), "the kernel drops the peer");
    assert!(
        h.state()
            .kernel_blocked()
            .load()
            .contains(pair.ip_b().parse().unwrap())
    );

    h.get_by_label("Unenforce").click();
    settle(&mut h);
    assert_eq!(h.state().list().get(&net).unwrap().state, EntryState::NotEnforced);
    assert!(pair.ping_a_from_b(false), "traffic flows again");

    // Our own address is refused with the reason.
    let own = pair.ip_a();
    let refused = h.state_mut().add(&own, "oops", None, false).unwrap_err();
    assert!(refused.contains("this host's own address"), "{refused}");
    Enforcer::new(Box::new(SystemRunner::in_netns(&pair.a)))
        .flush()
        .unwrap();
}

#[test]
fn without_enforcement_the_panel_says_why_and_shows_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Err("no CAP_NET_ADMIN".into()),
        Protected::default(),
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    h.run();
    assert!(
        h.query_by_label_contains("Kernel enforcement unavailable: no CAP_NET_ADMIN")
            .is_some()
    );
    h.get_by_label_contains("Commands that would run").click();
    h.run();
    assert!(
        h.query_by_label_contains("add netwarden4 203.0.113.7/32 timeout 600")
            .is_some()
    );
    h.state_mut()
        .add("198.51.100.9", "later", Some(Duration::from_secs(60)), false)
        .unwrap();
    h.run();
    let entry = h
        .state()
        .list()
        .get(&"198.51.100.9/32".parse().unwrap())
        .unwrap()
        .clone();
    assert_eq!(entry.state, EntryState::NotEnforced);
    assert!(entry.expires.is_some());
    // The list persists.
    assert!(
        std::fs::read_to_string(dir.path().join("blocklist.ron"))
            .unwrap()
            .contains("198.51.100.9/32")
    );
}
