//! Which program is talking, in the app (egui_kittest): the Connections tab fills from a flow table, sorts by
//! a clicked header, filters with `app:`, ages closed connections out, and its row menu blocks the remote
//! or opens a rule for the program or user; the traffic table shows Program and User and the details pane
//! the PID, executable and command line. The flow table is the engine's own (`FlowTable`, filled through its
//! public API), with attributions set as the attribution thread sets them; `live_loopback_capture_names_the_
//! client_program` then does it for real: the whole app capturing on loopback (root) while a client program
//! with a distinctive name, run as another user, talks to a listener.
#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use netwarden::attrib::{Attribution, ProcessInfo, UnknownReason, UserId};
use netwarden::engine::RawStore;
use netwarden::event::{Event, Origin};
use netwarden::flows::{Flow, FlowConfig, FlowTable, Observed, SharedFlows};
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta, TcpFlags};
use netwarden::rules::{Action, RuleSet, UserSpec};
use netwarden::ui::app::{App, AppOptions, State, Tab};
use netwarden::ui::connections::ConnectionsPanel;
use netwarden::ui::traffic::{TrafficAction, TrafficPanel};

const T0: i64 = 1_764_000_000_000_000;

#[allow(clippy::too_many_arguments)]
fn packet(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    dir: Direction,
    proto: IpProto,
    flags: u8,
) -> PacketMeta {
    let mut meta = PacketMeta::new(T0, 100, 100, LinkType::Ethernet);
    meta.src_ip = Some(src.parse().unwrap());
    meta.dst_ip = Some(dst.parse().unwrap());
    meta.protocol = Some(proto);
    meta.src_port = Some(sport);
    meta.dst_port = Some(dport);
    meta.direction = dir;
    if proto == IpProto::TCP {
        meta.tcp_flags = Some(TcpFlags(flags));
    }
    meta
}

fn process(pid: u32, exe: &str, uid: u32, user: &str) -> Attribution {
    Attribution::Process {
        process: Arc::new(ProcessInfo {
            pid,
            exe: exe.into(),
            cmdline: vec![exe.rsplit('/').next().unwrap().into(), "--verbose".into()],
            start_ticks: u64::from(pid),
            unit: Some("session-2.scope".into()),
            app: None,
        }),
        user: UserId {
            uid,
            name: Some(Arc::from(user)),
        },
    }
}

/// Feeds `packets` (each with the time offset in seconds and its verdict) through the table and returns
/// the flow of the first.
fn flow_of(table: &mut FlowTable, packets: &[(PacketMeta, i64, Action)]) -> Arc<Flow> {
    let iface: Arc<str> = Arc::from("eth0");
    let mut flow = None;
    for (meta, secs, action) in packets {
        let mut meta = meta.clone();
        meta.ts_micros = T0 + secs * 1_000_000;
        let found = match table.observe(&meta, &iface) {
            Observed::New(f) | Observed::Known(f) => Arc::clone(f),
            Observed::None => panic!("untracked packet"),
        };
        found.record(&meta, *action, None);
        flow.get_or_insert(found);
    }
    flow.unwrap()
}

/// Four flows, as the engine would hold them after a minute and a half of capture:
/// curl (alice) to 192.0.2.9:443, 3 packets out and 2 in; systemd-resolved's DNS query; an inbound SSH
/// probe whose process cannot be read, blocked; and a connection of wget closed 80 s before the last packet.
fn flows() -> Arc<SharedFlows> {
    let shared = Arc::new(SharedFlows::default());
    let mut table = FlowTable::new(FlowConfig::default(), Arc::clone(&shared));
    let out = |sport, dst: &str, dport, flags| {
        packet("10.0.0.1", sport, dst, dport, Direction::Out, IpProto::TCP, flags)
    };
    let back = |src: &str, sport, dport, flags| {
        packet(src, sport, "10.0.0.1", dport, Direction::In, IpProto::TCP, flags)
    };
    let wget = flow_of(
        &mut table,
        &[
            (out(41000, "198.51.100.80", 80, TcpFlags::SYN), 0, Action::Allow),
            (back("198.51.100.80", 80, 41000, TcpFlags::RST), 10, Action::Allow),
        ],
    );
    wget.set_attribution(process(7, "/usr/bin/wget", 1000, "alice"));
    let curl = flow_of(
        &mut table,
        &[
            (out(40000, "192.0.2.9", 443, TcpFlags::SYN), 20, Action::Allow),
            (
                back("192.0.2.9", 443, 40000, TcpFlags::SYN | TcpFlags::ACK),
                20,
                Action::Allow,
            ),
            (out(40000, "192.0.2.9", 443, TcpFlags::ACK), 21, Action::Allow),
            (out(40000, "192.0.2.9", 443, TcpFlags::ACK), 22, Action::Allow),
            (back("192.0.2.9", 443, 40000, TcpFlags::ACK), 23, Action::Allow),
        ],
    );
    curl.set_attribution(process(42, "/usr/bin/curl", 1000, "alice"));
    let dns = flow_of(
        &mut table,
        &[(
            packet(
                "10.0.0.1",
                5353,
                "198.51.100.7",
                53,
                Direction::Out,
                IpProto::UDP,
                0,
            ),
            30,
            Action::Allow,
        )],
    );
    dns.set_attribution(process(
        101,
        "/usr/lib/systemd/systemd-resolved",
        101,
        "systemd-resolve",
    ));
    let probe = flow_of(
        &mut table,
        &[(
            packet(
                "203.0.113.7",
                50000,
                "10.0.0.1",
                22,
                Direction::In,
                IpProto::TCP,
                TcpFlags::SYN,
            ),
            90,
            Action::Block,
        )],
    );
    probe.set_attribution(Attribution::Unknown {
        reason: UnknownReason::NoPermission,
        user: Some(UserId {
            uid: 0,
            name: Some(Arc::from("root")),
        }),
    });
    table.publish();
    shared
}

struct View {
    panel: ConnectionsPanel,
    flows: Arc<SharedFlows>,
}

fn harness(keep_closed_secs: u32) -> Harness<'static, View> {
    let view = View {
        panel: ConnectionsPanel::new(keep_closed_secs),
        flows: flows(),
    };
    Harness::builder()
        .with_size(egui::vec2(1400.0, 700.0))
        .build_ui_state(|ui, v: &mut View| v.panel.ui(ui, Some(&v.flows)), view)
}

fn shown_programs(h: &Harness<'static, View>) -> Vec<String> {
    h.state()
        .panel
        .shown()
        .map(|f| match f.attribution().and_then(Attribution::process) {
            Some(p) => p.name().to_owned(),
            None => f.attribution().unwrap().program_label().into_owned(),
        })
        .collect()
}

fn type_filter<T>(h: &mut Harness<'static, T>, text: &str) {
    h.get_by_label("Filter:").focus();
    h.run();
    h.get_by_label("Filter:").type_text(text);
    h.run();
}

#[test]
fn connections_fill_from_the_flow_table_sort_filter_and_age_out() {
    let mut h = harness(120);
    h.run();
    assert_eq!(
        shown_programs(&h),
        ["wget", "curl", "systemd-resolved", "unknown (no permission)"],
        "in order of first packet"
    );
    assert!(
        h.query_by_role_and_label(Role::Table, "Connections: 4 shown")
            .is_some()
    );
    assert!(
        h.query_by_role_and_label(
            Role::Row,
            "out tcp curl user alice 10.0.0.1:40000 to 192.0.2.9:443, established, 3 packets out, 2 in, \
             allow, rule default"
        )
        .is_some()
    );
    // Every column a flow has: user, both ends, bytes each way (3 x 100 out, 2 x 100 in), verdicts, state.
    for cell in [
        "alice",
        "192.0.2.9:443",
        "300B",
        "200B",
        "block",
        "established",
        "closed",
    ] {
        assert!(h.query_all_by_label(cell).next().is_some(), "no cell {cell:?}");
    }
    // Sort by bytes out, then reversed.
    h.get_by_label("Bytes out").click();
    h.run();
    assert_eq!(shown_programs(&h)[3], "curl");
    h.get_by_label("Bytes out ^").click();
    h.run();
    assert_eq!(shown_programs(&h)[0], "curl");
    h.get_by_label("Program").click();
    h.run();
    assert_eq!(
        shown_programs(&h),
        ["curl", "systemd-resolved", "unknown (no permission)", "wget"]
    );
    // The traffic table's filter language, with the program and user keys.
    type_filter(&mut h, "app:curl");
    assert_eq!(shown_programs(&h), ["curl"]);
    h.state_mut().panel.set_filter("");
    type_filter(&mut h, "user:alice");
    assert_eq!(shown_programs(&h), ["curl", "wget"]);
    type_filter(&mut h, " verdict:block");
    assert!(shown_programs(&h).is_empty());
    let mut h = harness(120);
    type_filter(&mut h, "verdict:block");
    assert_eq!(shown_programs(&h), ["unknown (no permission)"]);
    type_filter(&mut h, " user:1");
    assert!(h.query_by_label_contains("Filter not applied").is_none());
    // `user:1` is uid 1: nobody here.
    assert!(shown_programs(&h).is_empty());
    type_filter(&mut h, "x port:http");
    assert!(
        h.query_by_label_contains("Filter not applied: filter column")
            .is_some()
    );
    // Closed connections leave after the time set in the tab: wget's closed 80 s before the newest packet.
    let mut h = harness(120);
    h.run();
    assert_eq!(h.state().panel.counts(), (4, 4));
    h.get_by_label("Keep closed connections for")
        .set_value_accesskit(60.0);
    h.run();
    h.run();
    assert_eq!(h.state().panel.keep_closed_secs(), 60);
    assert_eq!(h.state().panel.counts(), (4, 3));
    assert!(!shown_programs(&h).contains(&"wget".to_owned()));
    assert!(
        h.query_by_label_contains("4 connections, 3 shown, 1 aged out (closed)")
            .is_some()
    );
}

#[test]
fn the_row_menu_blocks_the_remote_and_makes_rules_for_the_program_and_the_user() {
    let mut h = harness(120);
    h.run();
    h.get_by_label("curl").click_secondary();
    h.run();
    h.get_by_label("Block remote").click();
    h.run();
    h.get_by_label("curl").click_secondary();
    h.run();
    h.get_by_label("Rule for this program").click();
    h.run();
    h.get_by_label("curl").click_secondary();
    h.run();
    h.get_by_label("Rule for this user").click();
    h.run();
    let actions = h.state().panel.actions.clone();
    assert_eq!(actions.len(), 3, "{actions:?}");
    let TrafficAction::Block { addr, secs, reason } = &actions[0] else {
        panic!("expected a block, got {actions:?}");
    };
    assert_eq!((addr.to_string().as_str(), *secs), ("192.0.2.9", None));
    assert!(reason.contains("curl"), "{reason}");
    let TrafficAction::EditNewRule(program) = &actions[1] else {
        panic!("expected a rule, got {actions:?}");
    };
    assert_eq!(program.program.as_deref(), Some("/usr/bin/curl"));
    assert_eq!(
        (program.name.as_str(), program.action),
        ("block curl", Action::Block)
    );
    let TrafficAction::EditNewRule(user) = &actions[2] else {
        panic!("expected a rule, got {actions:?}");
    };
    assert_eq!(user.user, Some(UserSpec::Name("alice".into())));
    assert_eq!(user.direction, netwarden::rules::RuleDirection::Out);
    assert!(user.program.is_none());
    // The program of the SSH probe is not known: no program rule, but its user is.
    h.get_by_label("unknown (no permission)").click_secondary();
    h.run();
    h.get_by_label("Rule for this program").click();
    h.run();
    assert_eq!(h.state().panel.actions.len(), 3, "a disabled item does nothing");
    // The keyboard: Down selects the first row, the Menu key opens its menu with the first item focused.
    h.key_press(egui::Key::Escape);
    h.run();
    h.key_press(egui::Key::ArrowDown);
    h.run();
    assert!(h.state().panel.selected().is_some());
    h.key_press(egui::Key::Menu);
    h.run();
    assert!(h.get_by_label("Block remote").is_focused());
    h.key_press(egui::Key::Enter);
    h.run();
    let actions = &h.state().panel.actions;
    assert!(
        matches!(actions.last(), Some(TrafficAction::Block { addr, .. }) if addr.to_string() == "198.51.100.80"),
        "{actions:?}"
    );
    // The selected connection's program, in one line under the table.
    assert!(
        h.query_by_label_contains("PID: 7  ·  Executable: /usr/bin/wget")
            .is_some()
    );
}

/// An event of `flow` as the engine hands it over.
fn event_of(seq: u64, flow: &Arc<Flow>, rules: &RuleSet) -> Event {
    let mut meta = packet(
        "10.0.0.1",
        40000,
        "192.0.2.9",
        443,
        Direction::Out,
        IpProto::TCP,
        TcpFlags::ACK,
    );
    meta.ts_micros = T0 + i64::try_from(seq).unwrap();
    let verdict = rules.evaluate_with_owner(&meta, "eth0", flow.owner());
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
        origin: Origin::Flow(Arc::clone(flow)),
        rules_version: 0,
    }
}

struct Traffic {
    panel: TrafficPanel,
    rules: RuleSet,
    raw: RawStore,
}

#[test]
fn the_traffic_table_shows_program_and_user_and_the_details_the_process() {
    let rules = RuleSet::from_ron(
        r#"(default_policy: Allow, rules: [(name: "no curl", action: Block, program: "*/curl")])"#,
    )
    .unwrap();
    let shared = Arc::new(SharedFlows::default());
    let mut table = FlowTable::new(FlowConfig::default(), shared);
    let curl = flow_of(
        &mut table,
        &[(
            packet(
                "10.0.0.1",
                40000,
                "192.0.2.9",
                443,
                Direction::Out,
                IpProto::TCP,
                TcpFlags::SYN,
            ),
            0,
            Action::Allow,
        )],
    );
    let mut panel = TrafficPanel::new(100);
    // The first packets arrive before the lookup finishes: their rows wait for the program.
    panel.push([event_of(1, &curl, &rules), event_of(2, &curl, &rules)]);
    panel.set_filter("app:curl");
    assert_eq!(panel.counts().1, 0, "not judged before the program is known");
    curl.set_attribution(process(42, "/usr/bin/curl", 1000, "alice"));
    panel.push([event_of(3, &curl, &rules)]);
    assert_eq!(panel.counts(), (3, 3, 0), "the waiting rows join the view");
    panel.set_filter("");
    let state = Traffic {
        panel,
        rules,
        raw: RawStore::new(1 << 16),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, s: &mut Traffic| s.panel.ui(ui, &s.rules, &s.raw), state);
    h.run();
    assert!(h.query_by_label("Program").is_some() && h.query_by_label("User").is_some());
    assert_eq!(h.query_all_by_label("curl").count(), 3);
    assert_eq!(h.query_all_by_label("alice").count(), 3);
    // The first two packets were judged before the program was known; the third by the program rule.
    assert_eq!(
        h.query_all_by_role_and_label(
            Role::Row,
            "out tcp 10.0.0.1 port 40000 to 192.0.2.9 port 443, allow, rule default, program curl, user alice"
        )
        .count(),
        2
    );
    assert!(
        h.query_by_role_and_label(
            Role::Row,
            "out tcp 10.0.0.1 port 40000 to 192.0.2.9 port 443, block, rule no curl, program curl, user alice"
        )
        .is_some()
    );
    h.get_all_by_label("curl").next().unwrap().click();
    h.run();
    for line in [
        "PID: 42",
        "Executable: /usr/bin/curl",
        "Command line: curl --verbose",
        "User: alice (uid 1000)",
        "Systemd unit: session-2.scope",
    ] {
        assert!(h.query_by_label(line).is_some(), "no {line:?} in the details");
    }
    // Explained with the owner: the program rule matches the packet, although the engine judged these
    // packets before their program was known.
    assert!(h.query_by_label_contains("rule 1 \"no curl\": MATCHED").is_some());
}

/// A copy of bash named `nw-gui-talker` in a directory everyone may enter (its `/proc/PID/exe`).
fn talker() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("nw-gui").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("nw-gui-talker");
    std::fs::copy("/bin/bash", &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, exe)
}

fn step_until<T>(h: &mut Harness<'static, T>, secs: u64, done: impl Fn(&T) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        h.step();
        if done(h.state()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn live_loopback_capture_names_the_client_program() {
    common::root::require_root!("capturing on loopback and running a client as another user");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The server keeps each connection open until the client closes it.
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                std::thread::Builder::new()
                    .name("connection".into())
                    .spawn(move || {
                        let mut buf = [0u8; 64];
                        while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
                    })
                    .unwrap();
            }
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.ron");
    std::fs::write(&rules, "(default_policy: Allow, rules: [])").unwrap();
    let state = State {
        // Only this test's traffic: other programs use loopback too.
        bpf: format!("tcp port {port}"),
        ..State::default()
    };
    let options = AppOptions {
        rules_path: rules,
        demo_file: dir.path().join("no-demo.pcap"),
        iface: Some("lo".into()),
        demo: false,
        state_dir: dir.path().join("state"),
        enforcer: Err("disabled in this test".into()),
        protected: netwarden::enforce::Protected::default(),
        remove_on_exit: false,
    };
    let app = App::new(state, options);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut App| app.frame_ui(ui), app);
    h.run();
    assert!(
        h.state().flows().is_some(),
        "live capture on lo with a flow table"
    );
    assert!(h.query_by_label_contains("live on lo").is_some());
    // The client: runs as nobody, connects, sends a line, holds the connection 3 s.
    let (_keep, exe) = talker();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3; read -t 3 <&3; exit 0");
    let mut client = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    h.get_by_label("Connections").click();
    h.run();
    assert_eq!(h.state().tab(), Tab::Connections);
    let named = step_until(&mut h, 10, |app| {
        app.connections()
            .shown()
            .any(|f| f.attribution().and_then(Attribution::process).is_some())
    });
    let pid = client.id();
    client.wait().unwrap();
    assert!(named, "the client's connection was not attributed");
    let flow = Arc::clone(h.state().connections().shown().next().unwrap());
    let process = flow.attribution().unwrap().process().unwrap().clone();
    assert_eq!(process.exe, exe.display().to_string());
    assert_eq!(process.pid, pid);
    let user = flow.attribution().unwrap().user().unwrap().to_string();
    assert_eq!(user, "nobody");
    assert!(h.query_by_label("nw-gui-talker").is_some());
    assert!(h.query_by_label("nobody").is_some());
    // The filter by program.
    type_filter(&mut h, "app:nw-gui-talker");
    assert_eq!(h.state().connections().counts().1, 1);
    type_filter(&mut h, " user:root");
    assert_eq!(h.state().connections().counts().1, 0);
    h.state_mut().connections_mut().set_filter("");
    type_filter(&mut h, "user:nobody");
    assert_eq!(h.state().connections().counts().1, 1);
    // The traffic table names it too, and its details show the process.
    h.get_by_label("Traffic").click();
    h.run();
    assert!(
        h.query_all_by_label("nw-gui-talker").count() >= 1,
        "the Program column"
    );
    h.get_all_by_label("nw-gui-talker").next().unwrap().click();
    h.run();
    assert!(h.query_by_label(&format!("PID: {pid}")).is_some());
    assert!(
        h.query_by_label(&format!("Executable: {}", exe.display()))
            .is_some()
    );
    assert!(h.query_by_label("User: nobody (uid 65534)").is_some());
    // Stats: per-program totals (counted once a second).
    h.get_by_label("Stats").click();
    assert!(step_until(&mut h, 5, |app| {
        app.stats().program_totals().iter().any(|(program, t)| {
            *program == exe.display().to_string() && t.connections == 1 && t.bytes_out > 0
        })
    }));
    // "Rule for this program" opens the editor with a new rule for it. (The programs table has a
    // "Connections" header too: the tab is the button.)
    h.get_by_role_and_label(Role::Button, "Connections").click();
    h.run();
    h.get_by_label("nw-gui-talker").click_secondary();
    h.run();
    h.get_by_label("Rule for this program").click();
    h.run();
    h.run();
    assert_eq!(h.state().tab(), Tab::Rules);
    assert_eq!(
        h.get_by_label("Program").value().as_deref(),
        Some(exe.display().to_string().as_str())
    );
    assert_eq!(
        h.get_by_label("Name").value().as_deref(),
        Some("block nw-gui-talker")
    );
    h.get_by_label("Add to list").click();
    h.run();
    let draft = h.state().rules_panel().draft().clone();
    assert_eq!(
        draft.rules[0].program.as_deref(),
        Some(exe.display().to_string().as_str())
    );
}
