//! The block list panel and the whole app driven through egui_kittest with a real guard and enforcer
//! inside network namespaces this test creates (every iptables/ipset command runs there through
//! `ip netns exec`, never in the host's namespace): "Add to block list" makes the kernel drop the peer,
//! "Unblock" lets it through, a broad CIDR is rolled back unless kept (also when no frame is drawn at all),
//! drift is repaired, `enforce: true` rules from `rules.ron` reach the kernel, a `netwarden block` run by
//! another process shows in the panel within 2 s. Without an enforcer (or in demo mode) the panel says why
//! and still keeps, imports and exports the list.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::nspair::NetnsPair;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ipnet::IpNet;
use netwarden::blocklist::EntryState;
use netwarden::enforce::runner::{CommandRunner, SystemRunner};
use netwarden::enforce::{KernelRule, Protected, RuleDirection};
use netwarden::ui::app::{App, AppOptions, State, Tab};
use netwarden::ui::blocklist::BlocklistPanel;

fn type_into(h: &mut Harness<'static, BlocklistPanel>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run_steps(2);
    h.get_by_label(label).type_text(text);
    h.run_steps(2);
}

/// Steps until the worker has answered every job (at most 20 s). Steps, not `run`: the spinner and the
/// confirmation countdown keep repainting.
fn settle(h: &mut Harness<'static, BlocklistPanel>) {
    let start = Instant::now();
    h.run_steps(2);
    while h.state().busy() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    h.run_steps(2);
}

/// Polls a panel that is not drawn until `done` holds (at most `secs`); returns whether it did.
fn poll_until(panel: &mut BlocklistPanel, secs: u64, done: impl Fn(&BlocklistPanel) -> bool) -> bool {
    let start = Instant::now();
    panel.poll();
    while !done(panel) && start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(50));
        panel.poll();
    }
    done(panel)
}

/// Steps until `done` holds (at most `secs`); returns whether it did.
fn step_until(
    h: &mut Harness<'static, BlocklistPanel>,
    secs: u64,
    done: impl Fn(&BlocklistPanel) -> bool,
) -> bool {
    let start = Instant::now();
    while !done(h.state()) && start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
        h.step();
    }
    done(h.state())
}

fn netns_runner(pair: &NetnsPair) -> Arc<dyn CommandRunner> {
    Arc::new(SystemRunner::in_netns(&pair.a))
}

/// The whole app capturing live on the host's loopback (the demo never touches the kernel) with `rules`
/// as its rules.ron and a real enforcer in `pair`'s namespace A (state in `dir`, our rules removed on exit).
fn app_in(pair: &NetnsPair, dir: &std::path::Path, rules: &str) -> Harness<'static, App> {
    let rules_path = dir.join("rules.ron");
    std::fs::write(&rules_path, rules).unwrap();
    let options = AppOptions {
        rules_path,
        demo_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.pcap"),
        iface: Some("lo".into()),
        demo: false,
        state_dir: dir.join("state"),
        enforcer: Ok(netns_runner(pair)),
        protected: Protected::default(),
        remove_on_exit: true,
    };
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(
            |ui, app: &mut App| app.frame_ui(ui),
            App::new(State::default(), options),
        )
}

/// A fresh namespace pair and a temporary state directory (root only: `None` skips the test).
fn pair_and_dir() -> Option<(NetnsPair, tempfile::TempDir)> {
    common::root::may_run("network namespaces").then(|| (NetnsPair::new(), tempfile::tempdir().unwrap()))
}

/// Clicks "Keep this change" and steps past the (2 s) deadline, so a missed confirmation would show.
fn keep_past_deadline(h: &mut Harness<'static, BlocklistPanel>) {
    h.get_by_label("Keep this change").click();
    settle(h);
    std::thread::sleep(Duration::from_secs(3));
    h.step();
    settle(h);
}

fn flush(pair: &NetnsPair) {
    NetnsPair::exec(&pair.a, &["iptables", "-w", "5", "-F"]);
}

#[test]
fn one_click_block_unblock_confirm_and_drift_in_the_kernel() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let protected = Protected {
        addrs: vec![(pair.a4.parse().unwrap(), "own address".into())],
    };
    let panel = BlocklistPanel::new(dir.path().to_path_buf(), Ok(netns_runner(&pair)), protected);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    settle(&mut h);
    assert!(h.state().unavailable().is_none(), "{:?}", h.state().unavailable());
    assert!(pair.ping_from_a(&pair.b4));

    // Block the peer with one click: the kernel drops it and the panel shows the kernel's state.
    type_into(&mut h, "Address or CIDR:", &pair.b4);
    type_into(&mut h, "Reason:", "test ban");
    h.get_by_label("Add to block list").click();
    settle(&mut h);
    let net: IpNet = format!("{}/32", pair.b4).parse().unwrap();
    assert_eq!(h.state().list().get(&net).unwrap().state, EntryState::Enforced);
    assert!(h.query_by_label("enforced").is_some());
    assert!(!pair.ping_from_a(&pair.b4), "the kernel drops the peer");
    assert!(
        h.state()
            .kernel_blocked()
            .load()
            .contains(pair.b4.parse().unwrap())
    );

    // Drift: someone deletes our jump from INPUT and OUTPUT; the panel repairs it within 10 s and says so.
    for hook in ["INPUT", "OUTPUT"] {
        NetnsPair::exec(&pair.a, &["iptables", "-w", "5", "-D", hook, "-j", "NETWARDEN"]);
    }
    assert!(pair.ping_from_a(&pair.b4), "without the jump traffic flows");
    assert!(
        step_until(&mut h, 12, |p| p
            .message()
            .is_some_and(|m| m.contains("drift repaired"))),
        "{:?}",
        h.state().message()
    );
    assert!(!pair.ping_from_a(&pair.b4), "repaired: dropped again");

    // Unblock with one click (the button is named for its entry): traffic flows again and the entry is
    // gone from list and kernel.
    h.get_by_label(&format!("Unblock {}/32", pair.b4)).click();
    settle(&mut h);
    assert!(h.state().list().is_empty());
    assert!(pair.ping_from_a(&pair.b4), "traffic flows again");
    assert!(
        !h.state()
            .kernel_blocked()
            .load()
            .contains(pair.b4.parse().unwrap())
    );

    // Our own address is refused with the reason.
    let refused = h.state_mut().add(&pair.a4, "oops", None, false).unwrap_err();
    assert!(refused.contains("own address"), "{refused}");

    // A /8 could cut the user off: applied, then rolled back when not kept in time.
    h.state_mut().set_confirm_timeout(Duration::from_secs(2));
    let broad = format!("{}/8", pair.b4);
    h.state_mut().add(&broad, "broad", None, true).unwrap();
    settle(&mut h);
    assert!(h.state().pending().is_some());
    assert!(h.query_by_label("Keep this change").is_some());
    assert!(!pair.ping_from_a(&pair.b4), "the /8 is applied at once");
    assert!(
        step_until(&mut h, 15, |p| p.pending().is_none() && p.list().is_empty()),
        "rolled back: {:?}",
        h.state().list()
    );
    assert!(h.state().message().unwrap().contains("rolled back"));
    assert!(pair.ping_from_a(&pair.b4), "the roll-back let traffic through");

    // The same change, kept: it stays after the deadline.
    h.state_mut().add(&broad, "broad", None, true).unwrap();
    settle(&mut h);
    keep_past_deadline(&mut h);
    assert_eq!(h.state().list().len(), 1);
    assert!(!pair.ping_from_a(&pair.b4), "kept");
    h.get_by_label("Unblock all").click();
    settle(&mut h);
    assert!(h.state().list().is_empty());
    assert!(pair.ping_from_a(&pair.b4));
    flush(&pair);
}

#[test]
fn risky_kernel_rules_are_rolled_back_unless_kept() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let _ssh = pair.listen_in_b("::", 22);
    let _web = pair.listen_in_b("::", 8080);
    let panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Ok(netns_runner(&pair)),
        Protected::default(),
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    settle(&mut h);
    h.state_mut().set_confirm_timeout(Duration::from_secs(2));
    let rule = |name: &str, port: u16| KernelRule {
        name: name.to_owned(),
        direction: RuleDirection::Out,
        protocol: Some(6),
        src: vec![],
        dst: vec![],
        dst_ports: vec![(port, port)],
        src_ports: vec![],
        interface: None,
        uid_owner: None,
        cgroup_path: None,
    };
    // A narrow rule goes straight in.
    h.state_mut().set_kernel_rules(vec![rule("no-8080", 8080)]);
    settle(&mut h);
    assert!(h.state().pending().is_none());
    assert!(!pair.tcp_from_a(&pair.b4, 8080) && pair.tcp_from_a(&pair.b4, 22));

    // Dropping SSH for every address could cut a remote user off: applied, then rolled back.
    let risky = vec![rule("no-8080", 8080), rule("no-ssh", 22)];
    h.state_mut().set_kernel_rules(risky.clone());
    settle(&mut h);
    assert!(!pair.tcp_from_a(&pair.b4, 22), "applied at once");
    assert!(
        h.query_by_label_contains(
            "This change could cut you off (`no-ssh` drops SSH (port 22) for every address)"
        )
        .is_some()
    );
    assert!(
        step_until(&mut h, 15, |p| p.pending().is_none()),
        "rolled back in time"
    );
    assert!(pair.tcp_from_a(&pair.b4, 22), "SSH flows again");
    assert!(
        !pair.tcp_from_a(&pair.b4, 8080),
        "the rules before the change are back"
    );

    // Kept, it stays; sending the same rules again (a rules.ron reload) does not ask again.
    h.state_mut().set_kernel_rules(risky.clone());
    settle(&mut h);
    keep_past_deadline(&mut h);
    assert!(!pair.tcp_from_a(&pair.b4, 22), "kept");
    h.state_mut().set_kernel_rules(risky);
    settle(&mut h);
    assert!(h.state().pending().is_none(), "confirmed rules do not ask again");
    h.state_mut().set_kernel_rules(Vec::new());
    settle(&mut h);
    assert!(pair.tcp_from_a(&pair.b4, 22) && pair.tcp_from_a(&pair.b4, 8080));
    flush(&pair);
}

#[test]
fn a_risky_rule_from_rules_ron_asks_on_whatever_tab_is_shown() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let mut h = app_in(
        &pair,
        dir.path(),
        r#"(default_policy: Allow, rules: [
            (name: "no-ssh", action: Block, direction: In, protocol: Tcp, dst_ports: ["22"], enforce: true),
        ])"#,
    );
    let start = Instant::now();
    while h.state().blocklist().pending().is_none() && start.elapsed() < Duration::from_secs(20) {
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    h.run_steps(2);
    assert_eq!(h.state().tab(), Tab::Traffic);
    assert!(
        h.query_by_label_contains("`no-ssh` drops SSH (port 22) for every address")
            .is_some(),
        "the banner shows on the traffic tab"
    );
    // The rule editor says the rule is only in force until kept; the banner is there too.
    h.state_mut().set_tab(Tab::Rules);
    h.run_steps(3);
    assert!(
        h.query_by_label_contains("kernel: in force until the change is kept")
            .is_some()
    );
    h.get_by_label("Keep this change").click();
    let start = Instant::now();
    while h.state().blocklist().pending().is_some() && start.elapsed() < Duration::from_secs(20) {
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(h.state().blocklist().pending().is_none(), "kept");
    h.run_steps(2);
    assert!(h.query_by_label("Keep this change").is_none());
    let saved = NetnsPair::exec(&pair.a, &["iptables", "-w", "5", "-S", "NETWARDEN-IN"]);
    assert!(
        String::from_utf8_lossy(&saved.stdout).contains("22"),
        "{}",
        String::from_utf8_lossy(&saved.stdout)
    );
}

#[test]
fn enforce_rules_from_rules_ron_reach_the_kernel_and_leave_with_remove_on_exit() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let _listener = pair.listen_in_b(&pair.b4, 9000);
    let _other = pair.listen_in_b(&pair.b4, 9001);
    assert!(pair.tcp_from_a(&pair.b4, 9000));
    let mut h = app_in(
        &pair,
        dir.path(),
        &format!(
            r#"(default_policy: Allow, rules: [
            (name: "no-9000", action: Block, direction: Out, protocol: Tcp, dst_ports: ["9000"],
             interface: "{}", enforce: true),
            (name: "odd", action: Block, dst: ["192.0.2.1"], interface: "any", enforce: true),
        ])"#,
            pair.veth_a
        ),
    );
    let in_kernel = || {
        let out = NetnsPair::exec(&pair.a, &["iptables", "-w", "5", "-S", "NETWARDEN-OUT"]);
        let rules = String::from_utf8_lossy(&out.stdout);
        rules.contains(&format!("-o {}", pair.veth_a))
            && (rules.contains("--dport 9000") || rules.contains("--dports 9000"))
    };
    let start = Instant::now();
    while !in_kernel() && start.elapsed() < Duration::from_secs(20) {
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(in_kernel(), "the enforce: true rule is in our chain");
    assert!(
        !pair.tcp_from_a(&pair.b4, 9000),
        "port 9000 is dropped by the kernel"
    );
    assert!(pair.tcp_from_a(&pair.b4, 9001), "other ports still work");
    // The rule editor says which enforce rules the kernel holds, and why one is not there.
    h.state_mut().set_tab(Tab::Rules);
    h.run_steps(3);
    assert!(h.query_by_label("kernel: in force").is_some());
    assert!(
        h.query_by_label_contains("kernel: refused (interface \"any\" is the capture pseudo-device")
            .is_some()
    );
    assert!(
        !h.state().state().blocklist.remove_on_exit,
        "--remove-on-exit is for this run, not saved"
    );
    // Closing the app with remove-on-exit takes our rules out again.
    drop(h);
    assert!(!in_kernel());
    assert!(
        pair.tcp_from_a(&pair.b4, 9000),
        "after exit port 9000 works again"
    );
}

#[test]
fn auto_block_settings_are_remembered() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let panel = |runner: Result<Arc<dyn CommandRunner>, String>| {
        BlocklistPanel::new(dir.path().to_path_buf(), runner, Protected::default())
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(
            |ui, p: &mut BlocklistPanel| p.ui(ui),
            panel(Ok(netns_runner(&pair))),
        );
    settle(&mut h);
    h.get_by_label("first ban:").focus();
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    h.get_by_label("first ban:").type_text("2h");
    h.run_steps(2);
    type_into(&mut h, "never auto-block:", "10.9.0.0/16");
    h.get_by_label("Auto-block detected attackers").click();
    h.run_steps(2);
    h.get_by_label("Remove kernel rules on exit").click();
    settle(&mut h);
    assert!(h.state().auto_block(), "{:?}", h.state().message());
    let prefs = h.state().prefs();
    assert!(prefs.auto_block && prefs.remove_on_exit);
    assert_eq!(
        (prefs.first_ban.as_str(), prefs.allow.as_str()),
        ("2h", "10.9.0.0/16")
    );
    drop(h);

    // Saved with the app's preferences and read back (as eframe does, in RON).
    let state = State {
        blocklist: prefs.clone(),
        ..State::default()
    };
    let text = ron::to_string(&state).unwrap();
    let state: State = ron::from_str(&text).unwrap();
    let mut again = panel(Ok(netns_runner(&pair)));
    again.apply_prefs(&state.blocklist);
    assert!(
        poll_until(&mut again, 20, BlocklistPanel::auto_block),
        "auto-block is back on after a restart"
    );
    assert_eq!(again.prefs(), prefs);

    // Without enforcement it stays off but is not forgotten; broken saved settings say why it is off.
    let mut monitor = panel(Err("no CAP_NET_ADMIN".into()));
    monitor.apply_prefs(&prefs);
    assert!(poll_until(&mut monitor, 20, |p| !p.busy()));
    assert!(!monitor.auto_block());
    assert!(monitor.prefs().auto_block);
    let mut broken = panel(Ok(netns_runner(&pair)));
    broken.apply_prefs(&netwarden::ui::blocklist::BlocklistPrefs {
        first_ban: "soon".into(),
        ..prefs
    });
    assert!(!broken.auto_block());
    assert!(
        broken
            .message()
            .is_some_and(|m| m.contains("auto-block stays off")),
        "{:?}",
        broken.message()
    );
    // Preferences saved before these settings existed still load.
    let old: State = ron::from_str("(iface: \"eth0\", bpf: \"\", row_cap: 1000, tab: Traffic)").unwrap();
    assert_eq!(old.blocklist, netwarden::ui::blocklist::BlocklistPrefs::default());
}

#[test]
fn the_rule_editor_says_when_nothing_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("rules.ron");
    std::fs::write(
        &rules_path,
        r#"(default_policy: Allow, rules: [
            (name: "no-telnet", action: Block, protocol: Tcp, dst_ports: ["23"], dst: ["192.0.2.0/24"], enforce: true),
            (name: "watch", action: Log, protocol: Udp),
        ])"#,
    )
    .unwrap();
    let options = AppOptions {
        rules_path,
        demo_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.pcap"),
        iface: None,
        demo: true,
        state_dir: dir.path().join("state"),
        enforcer: Err("no CAP_NET_ADMIN".into()),
        protected: Protected::default(),
        remove_on_exit: false,
    };
    let mut app = App::new(State::default(), options);
    app.set_tab(Tab::Rules);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut App| app.frame_ui(ui), app);
    h.run_steps(3);
    assert!(
        h.query_by_label("kernel: not enforced (no CAP_NET_ADMIN)")
            .is_some()
    );
    assert_eq!(
        h.query_all_by_label_contains("kernel:").count(),
        1,
        "only the enforce rule has a kernel status"
    );
}

#[test]
fn without_enforcement_the_list_is_kept_imported_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Err("no CAP_NET_ADMIN".into()),
        Protected::default(),
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    h.run();
    assert!(
        h.query_by_label_contains("Kernel enforcement unavailable: no CAP_NET_ADMIN")
            .is_some()
    );
    h.state_mut()
        .add("198.51.100.9", "later", Some(Duration::from_secs(60)), false)
        .unwrap();
    settle(&mut h);
    let entry = h
        .state()
        .list()
        .get(&"198.51.100.9/32".parse().unwrap())
        .unwrap()
        .clone();
    assert_eq!(entry.state, EntryState::NotEnforced);
    assert!(entry.expires.is_some());
    assert!(
        std::fs::read_to_string(dir.path().join("blocklist.ron"))
            .unwrap()
            .contains("198.51.100.9/32")
    );
    // Loopback is refused even here.
    assert!(h.state_mut().add("127.0.0.1", "", None, false).is_err());

    // Import a text list (one bad line means nothing is imported), then export CSV and the history.
    let import = dir.path().join("in.txt");
    let export = dir.path().join("out.csv");
    let history = dir.path().join("history.csv");
    std::fs::write(
        &import,
        "203.0.113.0/24 # scanners\n2001:db8::/48\nnot-an-address\n",
    )
    .unwrap();
    h.state_mut().set_paths(
        import.to_str().unwrap(),
        export.to_str().unwrap(),
        history.to_str().unwrap(),
    );
    h.run();
    h.get_by_label("Import").click();
    settle(&mut h);
    assert!(
        h.state().message().unwrap().contains("line 3"),
        "{:?}",
        h.state().message()
    );
    assert_eq!(h.state().list().len(), 1);
    std::fs::write(&import, "203.0.113.0/24 # scanners\n2001:db8::/48\n").unwrap();
    h.get_by_label("Import").click();
    settle(&mut h);
    assert_eq!(h.state().list().len(), 3);
    h.get_by_label("Export").click();
    settle(&mut h);
    let csv = std::fs::read_to_string(&export).unwrap();
    assert!(csv.starts_with("address,reason,added,expires"), "{csv}");
    assert!(csv.contains("203.0.113.0/24,scanners,"), "{csv}");
    assert!(csv.contains("2001:db8::/48,imported,"), "{csv}");
    h.get_by_label("Unblock 198.51.100.9/32").click();
    settle(&mut h);
    h.get_by_label("Export history").click();
    settle(&mut h);
    let records = std::fs::read_to_string(&history).unwrap();
    assert!(records.contains("198.51.100.9/32"), "{records}");
    assert_eq!(h.state().list().len(), 2);
}

#[test]
fn hanging_or_missing_iptables_never_freezes_the_panel() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let script = dir.path().join("hang.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 100\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hanging: Arc<dyn CommandRunner> = Arc::new(
        SystemRunner::in_netns(&pair.a)
            .with_timeout(Duration::from_secs(2))
            .with_program("iptables-save", script.to_str().unwrap()),
    );
    let panel = BlocklistPanel::new(dir.path().join("a"), Ok(hanging), Protected::default());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    // While iptables-save hangs on the worker, frames keep coming and the user can still add entries.
    h.step();
    assert!(h.state().busy());
    h.state_mut().add("198.51.100.7", "queued", None, false).unwrap();
    for _ in 0..5 {
        h.step();
    }
    assert!(
        step_until(&mut h, 20, |p| p.unavailable().is_some()),
        "the hanging command is killed and reported"
    );
    let why = h.state().unavailable().unwrap().to_owned();
    assert!(why.contains("timed out after 2s and was killed"), "{why}");
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("Kernel enforcement unavailable")
            .is_some()
    );

    let missing: Arc<dyn CommandRunner> =
        Arc::new(SystemRunner::in_netns(&pair.a).with_program("iptables", "netwarden-test-no-iptables"));
    let panel = BlocklistPanel::new(dir.path().join("b"), Ok(missing), Protected::default());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    assert!(step_until(&mut h, 20, |p| p.unavailable().is_some()));
    let why = h.state().unavailable().unwrap().to_owned();
    assert!(
        why.starts_with("monitor-only mode: `netwarden-test-no-iptables` is not installed"),
        "{why}"
    );
}

#[test]
fn a_risky_change_is_rolled_back_with_no_frame_drawn() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let mut panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Ok(netns_runner(&pair)),
        Protected::default(),
    );
    panel.set_confirm_timeout(Duration::from_secs(2));
    // No harness, no frame, no poll: only the guard's own clock runs from here on.
    panel
        .add(&format!("{}/8", pair.b4), "broad", None, false)
        .unwrap();
    let start = Instant::now();
    while pair.ping_from_a(&pair.b4) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pair.ping_from_a(&pair.b4), "the /8 is applied");
    std::thread::sleep(Duration::from_secs(4));
    assert!(pair.ping_from_a(&pair.b4), "rolled back on the guard's clock");
    let members = NetnsPair::exec(&pair.a, &["ipset", "list", "netwarden4"]);
    assert!(
        !String::from_utf8_lossy(&members.stdout).contains("/8"),
        "{}",
        String::from_utf8_lossy(&members.stdout)
    );
    let history = std::fs::read_to_string(dir.path().join("history.ron")).unwrap();
    assert!(history.contains("RolledBack"), "{history}");
    drop(panel);
    flush(&pair);
}

#[test]
fn a_block_by_another_process_shows_in_the_panel_within_2_s() {
    let Some((pair, dir)) = pair_and_dir() else { return };
    let panel = BlocklistPanel::new(
        dir.path().to_path_buf(),
        Ok(netns_runner(&pair)),
        Protected::default(),
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 800.0))
        .build_ui_state(|ui, p: &mut BlocklistPanel| p.ui(ui), panel);
    settle(&mut h);
    let net: IpNet = format!("{}/32", pair.b4).parse().unwrap();
    // The CLI, as a script would run it, in the same namespace and state directory.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.a,
            env!("CARGO_BIN_EXE_netwarden"),
            "block",
            &pair.b4,
        ])
        .args(["--reason", "from a script", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_done = Instant::now();
    assert!(step_until(&mut h, 5, |p| p.list().get(&net).is_some()));
    let shown_after = cli_done.elapsed();
    assert!(
        shown_after < Duration::from_secs(2),
        "shown after {shown_after:?}"
    );
    assert_eq!(h.state().list().get(&net).unwrap().state, EntryState::Enforced);
    h.run_steps(2);
    assert!(
        h.query_all_by_label("from a script").count() >= 1,
        "the reason shows (in the list and the ban history)"
    );
    assert!(
        h.state()
            .kernel_blocked()
            .load()
            .contains(pair.b4.parse().unwrap())
    );
    // Many processes at once while the app's guard runs (and repairs drift every 5 s): every one succeeds,
    // the kernel holds each address once and the panel shows them all within 2 s of the last one.
    let addrs: Vec<String> = (1..=20).map(|i| format!("198.51.100.{i}")).collect();
    let children: Vec<std::process::Child> = addrs
        .iter()
        .chain(addrs.iter())
        .map(|addr| {
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &pair.a,
                    env!("CARGO_BIN_EXE_netwarden"),
                    "block",
                    addr,
                ])
                .arg("--state-dir")
                .arg(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let all_done = Instant::now();
    assert!(step_until(&mut h, 5, |p| p.list().len() == 21));
    assert!(
        all_done.elapsed() < Duration::from_secs(2),
        "{:?}",
        all_done.elapsed()
    );
    let members = NetnsPair::exec(&pair.a, &["ipset", "list", "netwarden4"]);
    let members = String::from_utf8_lossy(&members.stdout);
    for addr in &addrs {
        assert_eq!(
            members
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(addr))
                .count(),
            1,
            "{addr}: {members}"
        );
    }
    assert!(h.state().list().iter().all(|e| e.state == EntryState::Enforced));

    // And the other way: the CLI sees what the panel unblocked.
    h.get_by_label("Unblock all").click();
    settle(&mut h);
    let list = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.a,
            env!("CARGO_BIN_EXE_netwarden"),
            "list",
            "--state-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("0 entries"), "{text}");
    drop(h);
    flush(&pair);
}
