//! End-to-end enforcement on the real kernel, inside network namespaces the tests create (never the
//! host's root namespace): traffic really stops and really flows again; reconcile, drift, atomicity,
//! concurrency, refusals and failure reporting.

// Helpers outside `#[test]` fns unwrap too: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::nspair::NetnsPair;
use ipnet::IpNet;
use netwarden::blocklist::EntryState;
use netwarden::enforce::runner::{Cmd, CommandRunner, SystemRunner};
use netwarden::enforce::{
    BlockRequest, EnforceConfig, EnforceError, Enforcer, KernelRule, RuleDirection, parse_addr,
};

fn config(dir: &Path) -> EnforceConfig {
    EnforceConfig {
        state_dir: Some(dir.to_owned()),
        ssh_connection: None,
        ..EnforceConfig::default()
    }
}

fn open(pair: &NetnsPair, dir: &Path) -> Enforcer {
    Enforcer::open(Arc::new(SystemRunner::in_netns(&pair.a)), config(dir)).unwrap()
}

/// A runner in namespace `ns` that uses the iptables-legacy tools for every iptables command.
fn legacy_runner(ns: &str) -> SystemRunner {
    let mut runner = SystemRunner::in_netns(ns);
    for tool in ["iptables", "ip6tables"] {
        for suffix in ["", "-restore", "-save"] {
            runner = runner.with_program(&format!("{tool}{suffix}"), &format!("{tool}-legacy{suffix}"));
        }
    }
    runner
}

/// Holds the xtables lock file `lock` for `secs` seconds in another process (as another tool would).
fn hold_lock(lock: &Path, secs: u32) -> std::process::Child {
    std::fs::write(lock, "").unwrap();
    let child = std::process::Command::new("flock")
        .arg("-x")
        .arg(lock)
        .args(["sleep", &secs.to_string()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child
}

fn req(addr: &str) -> BlockRequest {
    BlockRequest::parse(addr, "test", None, false).unwrap()
}

fn out(ns: &str, args: &[&str]) -> String {
    let output = NetnsPair::exec(ns, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Members of our sets in namespace `ns`, from `ipset save`.
fn kernel_members(ns: &str) -> BTreeSet<IpNet> {
    netwarden::enforce::ipset::parse_save(&out(ns, &["ipset", "save"])).members()
}

fn list_members(enforcer: &Enforcer) -> BTreeSet<IpNet> {
    enforcer.entries().iter().map(|e| e.net).collect()
}

#[test]
fn block_and_unblock_peer_ipv4_ipv6_and_cidr() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let _listener = pair.listen_in_b("::", 7001);
    let _echo = pair.udp_echo_in_b(&pair.b4, 7002);
    let enforcer = open(&pair, dir.path());
    assert!(pair.ping_from_a(&pair.b4) && pair.tcp_from_a(&pair.b4, 7001));
    assert!(pair.udp_from_a(&pair.b4, 7002), "UDP flows before the block");

    let entry = enforcer.block(req(&pair.b4)).unwrap();
    assert_eq!(entry.entry.state, EntryState::Enforced);
    assert!(!pair.ping_from_a(&pair.b4));
    assert!(!pair.tcp_from_a(&pair.b4, 7001));
    assert!(!pair.udp_from_a(&pair.b4, 7002), "UDP is dropped too");
    assert!(pair.ping_from_a(&pair.b6), "IPv6 untouched by an IPv4 block");
    assert!(enforcer.unblock(parse_addr(&pair.b4).unwrap()).unwrap());
    assert!(pair.ping_from_a(&pair.b4) && pair.tcp_from_a(&pair.b4, 7001));
    assert!(pair.udp_from_a(&pair.b4, 7002), "UDP flows again");

    // A CIDR covering the peer but not our own address.
    let cidr = format!("{}/31", pair.b4);
    enforcer.block(req(&cidr)).unwrap();
    assert!(!pair.ping_from_a(&pair.b4));
    enforcer.unblock(parse_addr(&cidr).unwrap()).unwrap();
    assert!(pair.ping_from_a(&pair.b4));

    enforcer.block(req(&pair.b6)).unwrap();
    assert!(!pair.ping_from_a(&pair.b6));
    assert!(!pair.tcp_from_a(&pair.b6, 7001));
    assert!(pair.ping_from_a(&pair.b4));
    enforcer.unblock(parse_addr(&pair.b6).unwrap()).unwrap();
    assert!(pair.ping_from_a(&pair.b6) && pair.tcp_from_a(&pair.b6, 7001));
    assert!(kernel_members(&pair.a).is_empty());
    assert_eq!(enforcer.history().len(), 3);
}

/// The cgroup v2 hierarchy's mount point (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_root() -> Option<std::path::PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .ok()?
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            let (_, point, kind) = (words.next()?, words.next()?, words.next()?);
            (kind == "cgroup2").then(|| std::path::PathBuf::from(point))
        })
}

/// A cgroup `system.slice/NAME.service` made for the test; removed on drop (after its processes ended).
struct TestUnit(std::path::PathBuf);

impl Drop for TestUnit {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn unit_rules_drop_only_that_services_outbound_traffic() {
    common::root::require_root!("network namespaces, cgroups");
    let Some(root) = cgroup2_root() else {
        eprintln!("skipped: no cgroup v2 hierarchy on this host");
        return;
    };
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let _listener = pair.listen_in_b(&pair.b4, 7201);
    let unit = format!("nwtest-{}.service", std::process::id());
    let cgroup = root.join("system.slice").join(&unit);
    std::fs::create_dir_all(&cgroup).unwrap();
    let _unit_dir = TestUnit(cgroup.clone());
    // The rule as `rules.ron` gives it: `unit: "nwtest-PID.service", direction: Out, enforce: true`.
    let text = format!(
        r#"(default_policy: Allow, rules: [(name: "no svc", action: Block, direction: Out, protocol: Tcp,
            dst_ports: ["7201"], unit: "{unit}", enforce: true)])"#
    );
    let set =
        netwarden::rules::RuleSet::compile(netwarden::rules::RuleFile::parse(&text).unwrap(), None).unwrap();
    let (rules, errors) = netwarden::enforce::iptables::kernel_rules_of(&set);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        rules[0].cgroup_path.as_deref(),
        Some(format!("system.slice/{unit}").as_str())
    );
    let enforcer = open(&pair, dir.path());
    enforcer.set_kernel_rules(&rules).unwrap();
    // A process of the service: it waits to be moved into the unit's cgroup, then connects.
    let connect = format!(
        "import socket, time\ntime.sleep(1)\ntry:\n    socket.create_connection(('{}', 7201), timeout=2).close()\n    print('connected')\nexcept OSError:\n    print('dropped')\n",
        pair.b4
    );
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.a, "python3", "-c", &connect])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(cgroup.join("cgroup.procs"), child.id().to_string()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "dropped",
        "the service's traffic"
    );
    assert!(pair.tcp_from_a(&pair.b4, 7201), "other programs still connect");
    enforcer.set_kernel_rules(&[]).unwrap();
}

#[test]
fn port_specific_kernel_rule() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let _l1 = pair.listen_in_b("::", 7101);
    let _l2 = pair.listen_in_b("::", 7102);
    let _u1 = pair.udp_echo_in_b(&pair.b4, 7101);
    let _u2 = pair.udp_echo_in_b(&pair.b4, 7103);
    let enforcer = open(&pair, dir.path());
    let rule = KernelRule {
        name: "no 7101".to_owned(),
        direction: RuleDirection::Out,
        protocol: Some(6),
        src: vec![],
        dst: vec![parse_addr(&pair.b4).unwrap(), parse_addr(&pair.b6).unwrap()],
        dst_ports: vec![(7101, 7101)],
        src_ports: vec![],
        interface: None,
        uid_owner: None,
        cgroup_path: None,
    };
    enforcer.set_kernel_rules(std::slice::from_ref(&rule)).unwrap();
    for addr in [&pair.b4, &pair.b6] {
        assert!(!pair.tcp_from_a(addr, 7101), "{addr}:7101 should be blocked");
        assert!(pair.tcp_from_a(addr, 7102), "{addr}:7102 should flow");
        assert!(pair.ping_from_a(addr));
    }
    assert!(
        pair.udp_from_a(&pair.b4, 7101),
        "the TCP rule leaves UDP 7101 alone"
    );
    assert!(enforcer.check_drift().unwrap().problems.is_empty());
    let udp_rule = KernelRule {
        name: "no udp 7103".to_owned(),
        protocol: Some(17),
        dst_ports: vec![(7103, 7103)],
        ..rule.clone()
    };
    enforcer.set_kernel_rules(&[rule.clone(), udp_rule]).unwrap();
    assert!(!pair.udp_from_a(&pair.b4, 7103), "UDP 7103 is dropped");
    assert!(pair.udp_from_a(&pair.b4, 7101));
    assert!(!pair.tcp_from_a(&pair.b4, 7101), "the first rule is still there");
    enforcer.set_kernel_rules(&[]).unwrap();
    assert!(pair.udp_from_a(&pair.b4, 7103));
    assert!(pair.tcp_from_a(&pair.b4, 7101) && pair.tcp_from_a(&pair.b6, 7101));
}

#[test]
fn interface_limited_kernel_rules() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let _l1 = pair.listen_in_b("::", 7201);
    let _l2 = pair.listen_in_b("::", 7202);
    let enforcer = open(&pair, dir.path());
    let veth = Some(pair.veth_a.clone());
    let out_rule = KernelRule {
        name: "no 7201 out via veth".to_owned(),
        direction: RuleDirection::Out,
        protocol: Some(6),
        src: vec![],
        dst: vec![],
        dst_ports: vec![(7201, 7201)],
        src_ports: vec![],
        interface: veth.clone(),
        uid_owner: None,
        cgroup_path: None,
    };
    let elsewhere = KernelRule {
        name: "no 7202 on another interface".to_owned(),
        direction: RuleDirection::Any,
        dst_ports: vec![(7202, 7202)],
        interface: Some("nwnone0".to_owned()),
        ..out_rule.clone()
    };
    enforcer.set_kernel_rules(&[out_rule.clone(), elsewhere]).unwrap();
    for addr in [&pair.b4, &pair.b6] {
        assert!(
            !pair.tcp_from_a(addr, 7201),
            "{addr}:7201 leaves through the veth: dropped"
        );
        assert!(
            pair.tcp_from_a(addr, 7202),
            "{addr}:7202: a rule on another interface leaves the veth alone"
        );
    }
    assert!(enforcer.check_drift().unwrap().problems.is_empty());

    // Inbound on the veth: the echo replies are dropped, so pings go unanswered.
    let in_rule = KernelRule {
        name: "no icmp in via veth".to_owned(),
        direction: RuleDirection::In,
        protocol: Some(1),
        dst_ports: vec![],
        ..out_rule.clone()
    };
    enforcer.set_kernel_rules(&[in_rule]).unwrap();
    assert!(!pair.ping_from_a(&pair.b4), "replies come in through the veth");
    assert!(pair.ping_from_a(&pair.b6), "an ICMP (1) rule leaves ICMPv6 alone");
    assert!(pair.tcp_from_a(&pair.b4, 7201), "the earlier rules are gone");

    // `Any` on the veth covers the outbound side too; `nv+` is iptables' wildcard for every `nv*` name.
    let any = KernelRule {
        name: "tcp 7202 on nv+".to_owned(),
        direction: RuleDirection::Any,
        dst_ports: vec![(7202, 7202)],
        interface: Some("nv+".to_owned()),
        ..out_rule.clone()
    };
    enforcer.set_kernel_rules(std::slice::from_ref(&any)).unwrap();
    assert!(!pair.tcp_from_a(&pair.b4, 7202) && !pair.tcp_from_a(&pair.b6, 7202));
    assert!(pair.tcp_from_a(&pair.b4, 7201) && pair.ping_from_a(&pair.b4));

    // A name that could smuggle text into the restore script is refused, and what is in force stays.
    let smuggled = KernelRule {
        interface: Some(format!("{} -j ACCEPT", pair.veth_a)),
        ..any.clone()
    };
    assert!(matches!(
        enforcer.set_kernel_rules(&[smuggled]),
        Err(EnforceError::BadRule { .. })
    ));
    assert!(!pair.tcp_from_a(&pair.b4, 7202), "the rule in force is kept");
    assert_eq!(enforcer.kernel_rules(), vec![any]);
    enforcer.set_kernel_rules(&[]).unwrap();
    assert!(pair.tcp_from_a(&pair.b4, 7202) && pair.tcp_from_a(&pair.b6, 7202));
}

#[test]
fn kernel_lifts_expired_ban_without_netwarden() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = open(&pair, dir.path());
    let request = BlockRequest::parse(&pair.b4, "short", Some(Duration::from_secs(2)), false).unwrap();
    enforcer.block(request).unwrap();
    assert!(!pair.ping_from_a(&pair.b4));
    drop(enforcer);
    // Nobody calls tick: the ipset timeout alone must lift the ban (bounded wait, not a timing assertion).
    let mut lifted = false;
    for _ in 0..40 {
        if kernel_members(&pair.a).is_empty() {
            lifted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(lifted, "kernel kept the entry");
    assert!(pair.ping_from_a(&pair.b4));
    // Restart: the expired entry is dropped from the list and the history says why.
    let enforcer = open(&pair, dir.path());
    assert!(enforcer.entries().is_empty());
    let history = enforcer.history();
    let record = history.iter().next().unwrap();
    assert_eq!(record.lifted_by, Some(netwarden::blocklist::LiftReason::Expired));
}

#[test]
fn reconcile_at_start_and_drift_repair() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = open(&pair, dir.path());
    enforcer.block(req(&pair.b4)).unwrap();
    enforcer.block(req("192.0.2.10")).unwrap();
    enforcer.block(req("2001:db8::/48")).unwrap();
    let wanted = list_members(&enforcer);
    drop(enforcer);

    // Tamper: remove an entry and a jump, add a stray entry of ours.
    out(&pair.a, &["ipset", "del", "netwarden4", &pair.b4]);
    out(&pair.a, &["iptables", "-D", "INPUT", "-j", "NETWARDEN"]);
    out(&pair.a, &["ipset", "add", "netwarden4", "198.51.100.1"]);
    assert!(pair.ping_from_a(&pair.b4));

    let enforcer = open(&pair, dir.path());
    assert_eq!(kernel_members(&pair.a), wanted);
    assert!(enforcer.entries().iter().all(|e| e.state == EntryState::Enforced));
    assert!(!pair.ping_from_a(&pair.b4));
    assert!(out(&pair.a, &["iptables-save", "-t", "filter"]).contains("-A INPUT -j NETWARDEN\n"));

    // Drift while running: chain flushed, entry deleted.
    out(&pair.a, &["iptables", "-F", "NETWARDEN"]);
    out(&pair.a, &["ipset", "del", "netwarden6", "2001:db8::/48"]);
    assert!(pair.ping_from_a(&pair.b4));
    let report = enforcer.check_drift().unwrap();
    assert!(
        report
            .problems
            .contains(&"entry 2001:db8::/48 missing from netwarden6".to_owned()),
        "{report:?}"
    );
    assert!(
        report
            .problems
            .contains(&"iptables: chain NETWARDEN holds 0 rules of netwarden, expected 2".to_owned()),
        "{report:?}"
    );
    assert!(!pair.ping_from_a(&pair.b4));
    assert_eq!(enforcer.check_drift().unwrap().problems, Vec::<String>::new());
    assert_eq!(kernel_members(&pair.a), wanted);

    // Set destroyed under us: reported and rebuilt.
    out(&pair.a, &["iptables", "-F", "NETWARDEN"]);
    out(&pair.a, &["ipset", "destroy", "netwarden4"]);
    let report = enforcer.check_drift().unwrap();
    assert!(
        report.problems.contains(&"set netwarden4 is missing".to_owned()),
        "{report:?}"
    );
    assert_eq!(kernel_members(&pair.a), wanted);

    // A rule added by hand inside our chain is removed at the next repair, and reported as such.
    for side in ["-s", "-d"] {
        out(
            &pair.a,
            &["iptables", "-I", "NETWARDEN", "1", side, &pair.b4, "-j", "ACCEPT"],
        );
    }
    assert!(
        pair.ping_from_a(&pair.b4),
        "the hand-made ACCEPTs let the peer through"
    );
    let report = enforcer.check_drift().unwrap();
    assert_eq!(
        report.foreign,
        vec![
            format!("-A NETWARDEN -d {}/32 -j ACCEPT", pair.b4),
            format!("-A NETWARDEN -s {}/32 -j ACCEPT", pair.b4)
        ],
        "{report:?}"
    );
    assert!(!pair.ping_from_a(&pair.b4), "dropped again");
    assert!(enforcer.check_drift().unwrap().foreign.is_empty());
}

#[test]
fn failed_batch_applies_nothing_and_names_the_entry() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = open(&pair, dir.path());
    // Swap in a set that holds only two entries so the kernel rejects the third add of the batch.
    out(
        &pair.a,
        &[
            "ipset", "create", "nwsmall", "hash:net", "family", "inet", "maxelem", "2", "timeout", "0",
        ],
    );
    out(&pair.a, &["ipset", "swap", "nwsmall", "netwarden4"]);
    let requests: Vec<BlockRequest> = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .iter()
        .map(|a| req(a))
        .collect();
    let err = enforcer.block_many(&requests).unwrap_err();
    assert!(
        matches!(err, EnforceError::BatchEntry { ref entry, .. } if entry == "192.0.2.3/32"),
        "{err}"
    );
    assert!(err.to_string().contains("Hash is full"), "{err}");
    assert!(kernel_members(&pair.a).is_empty());
    assert!(enforcer.entries().is_empty());
    // A bad address in a batch is refused before anything runs.
    let inputs = ["192.0.2.1", "1.2.3.4;reboot"];
    let parsed: Result<Vec<_>, _> = inputs
        .iter()
        .map(|a| BlockRequest::parse(a, "", None, false))
        .collect();
    assert!(matches!(parsed, Err(EnforceError::BadAddress { ref input, .. }) if input == "1.2.3.4;reboot"));
}

#[test]
fn concurrent_blocks_give_one_entry_per_address() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = Arc::new(open(&pair, dir.path()));
    let addrs: Vec<String> = (1..=25).map(|i| format!("198.51.100.{i}")).collect();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let enforcer = Arc::clone(&enforcer);
            let addrs = addrs.clone();
            std::thread::Builder::new()
                .name(format!("block-{t}"))
                .spawn(move || {
                    for addr in &addrs {
                        enforcer.block(req(addr)).unwrap();
                    }
                })
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let listing = out(&pair.a, &["ipset", "list", "netwarden4"]);
    assert!(listing.contains("Number of entries: 25\n"), "{listing}");
    let expected: BTreeSet<IpNet> = addrs.iter().map(|a| parse_addr(a).unwrap()).collect();
    assert_eq!(kernel_members(&pair.a), expected);
    assert_eq!(list_members(&enforcer), expected);
    assert_eq!(enforcer.history().len(), 25);
}

#[test]
fn protected_addresses_are_refused_unless_forced() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let gateway = format!("{}.3", pair.b4.rsplit_once('.').unwrap().0);
    out(&pair.a, &["ip", "route", "add", "default", "via", &gateway]);
    let mut cfg = config(dir.path());
    cfg.ssh_connection = Some(format!("{} 50000 {} 22", "10.250.0.9", pair.a4));
    let enforcer = Enforcer::open(Arc::new(SystemRunner::in_netns(&pair.a)), cfg).unwrap();
    for (addr, why) in [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        (pair.a4.as_str(), "own address"),
        (pair.a6.as_str(), "own address"),
        (gateway.as_str(), "default gateway"),
        ("10.250.0.9", "current SSH peer"),
    ] {
        let err = enforcer.block(req(addr)).unwrap_err();
        assert!(
            matches!(err, EnforceError::Refused { why: ref w, .. } if w.starts_with(why)),
            "{addr}: {err}"
        );
    }
    for bad in ["1.2.3.4;reboot", "999.1.1.1", "", "example.com"] {
        assert!(
            matches!(
                BlockRequest::parse(bad, "", None, false),
                Err(EnforceError::BadAddress { .. })
            ),
            "{bad}"
        );
    }
    assert!(kernel_members(&pair.a).is_empty());
    let forced = BlockRequest::parse(&gateway, "forced", None, true).unwrap();
    assert_eq!(enforcer.block(forced).unwrap().entry.state, EntryState::Enforced);
}

#[test]
fn missing_iptables_is_monitor_only() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let runner = SystemRunner::in_netns(&pair.a).with_program("iptables", "netwarden-test-no-iptables");
    let err = Enforcer::open(Arc::new(runner), config(tempfile::tempdir().unwrap().path()))
        .err()
        .unwrap();
    assert!(matches!(err, EnforceError::MonitorOnly { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("monitor-only mode: `netwarden-test-no-iptables` is not installed"),
        "{err}"
    );
}

#[test]
fn held_xtables_lock_is_reported_with_command_and_stderr() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("xtables.lock");
    let lock_str = lock.to_str().unwrap();
    // The legacy backend takes the xtables lock (iptables-nft does not need one); hold it elsewhere.
    let mut holder = hold_lock(&lock, 30);
    let runner = legacy_runner(&pair.a).with_env("XTABLES_LOCKFILE", lock_str);
    let mut cfg = config(dir.path());
    cfg.lock_wait_secs = 1;
    let result = Enforcer::open(Arc::new(runner), cfg);
    holder.kill().ok();
    holder.wait().ok();
    let err = result.err().unwrap();
    match &err {
        EnforceError::Command { command, stderr, .. } => {
            assert_eq!(command, "iptables-legacy-restore --noflush -w 1");
            assert!(stderr.contains("xtables lock"), "{stderr}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn hanging_command_is_killed_and_reported() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let runner = SystemRunner::in_netns(&pair.a).with_timeout(Duration::from_millis(500));
    let err = runner.run(&Cmd::new("sleep", &["100"])).unwrap_err();
    assert!(
        matches!(err, EnforceError::Timeout { ref command, .. } if command == "sleep 100"),
        "{err}"
    );
    let script = dir.path().join("hang.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 100\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let runner = SystemRunner::in_netns(&pair.a)
        .with_timeout(Duration::from_millis(500))
        .with_program("iptables-save", script.to_str().unwrap());
    let err = Enforcer::open(Arc::new(runner), config(dir.path()))
        .err()
        .unwrap();
    assert!(
        matches!(err, EnforceError::Timeout { ref command, .. } if command.ends_with("hang.sh -t filter")),
        "{err}"
    );
}

/// `iptables-save` output without comments, counters and our own lines.
fn foreign_rules(ns: &str, tool: &str) -> String {
    out(ns, &[tool])
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("NETWARDEN") && !l.contains("netwarden"))
        .map(|l| {
            if l.starts_with(':') {
                l.split(" [").next().unwrap_or(l)
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn foreign_rules_are_untouched_and_flush_removes_every_trace() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    out(
        &pair.a,
        &["iptables", "-A", "INPUT", "-s", "192.0.2.99", "-j", "ACCEPT"],
    );
    out(&pair.a, &["iptables", "-N", "OTHERTOOL"]);
    out(
        &pair.a,
        &[
            "iptables",
            "-A",
            "OTHERTOOL",
            "-p",
            "tcp",
            "--dport",
            "9999",
            "-j",
            "REJECT",
        ],
    );
    out(&pair.a, &["iptables", "-A", "OUTPUT", "-j", "OTHERTOOL"]);
    out(
        &pair.a,
        &["ip6tables", "-A", "INPUT", "-s", "2001:db8::99", "-j", "ACCEPT"],
    );
    out(&pair.a, &["ipset", "create", "othertool", "hash:ip"]);
    let before4 = foreign_rules(&pair.a, "iptables-save");
    let before6 = foreign_rules(&pair.a, "ip6tables-save");

    let enforcer = open(&pair, dir.path());
    enforcer.block(req(&pair.b4)).unwrap();
    enforcer.block(req(&pair.b6)).unwrap();
    let rule = KernelRule {
        name: "r".to_owned(),
        direction: RuleDirection::In,
        protocol: Some(17),
        src: vec![],
        dst: vec![],
        dst_ports: vec![(53, 53)],
        src_ports: vec![],
        interface: None,
        uid_owner: None,
        cgroup_path: None,
    };
    enforcer.set_kernel_rules(&[rule]).unwrap();
    assert_eq!(foreign_rules(&pair.a, "iptables-save"), before4);
    assert_eq!(foreign_rules(&pair.a, "ip6tables-save"), before6);
    let saved = out(&pair.a, &["iptables-save", "-t", "filter"]);
    assert!(
        saved.contains(
            "-A INPUT -j NETWARDEN\n-A INPUT -j NETWARDEN-IN\n-A INPUT -s 192.0.2.99/32 -j ACCEPT\n"
        ),
        "{saved}"
    );

    enforcer
        .unblock_all(netwarden::blocklist::LiftReason::Manual)
        .unwrap();
    enforcer.flush_kernel().unwrap();
    for tool in ["iptables-save", "ip6tables-save"] {
        let text = out(&pair.a, &[tool]);
        assert!(!text.contains("NETWARDEN"), "{text}");
    }
    assert_eq!(out(&pair.a, &["ipset", "list", "-n"]), "othertool\n");
    assert_eq!(foreign_rules(&pair.a, "iptables-save"), before4);
    assert_eq!(foreign_rules(&pair.a, "ip6tables-save"), before6);
    assert!(pair.ping_from_a(&pair.b4), "{}", out(&pair.a, &["iptables-save"]));
    // Neighbour discovery may need a retry after the peer was unreachable.
    assert!(
        (0..3).any(|_| pair.ping_from_a(&pair.b6)),
        "{}",
        out(&pair.a, &["ip6tables-save"])
    );
}

#[test]
fn state_persists_across_restarts() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = open(&pair, dir.path());
    enforcer
        .block(BlockRequest::parse(&pair.b4, "kept", Some(Duration::from_secs(3600)), false).unwrap())
        .unwrap();
    drop(enforcer);
    let enforcer = open(&pair, dir.path());
    let entries = enforcer.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].reason, "kept");
    assert_eq!(entries[0].state, EntryState::Enforced);
    assert!(entries[0].expires.is_some());
    assert!(dir.path().join("blocklist.ron").exists() && dir.path().join("history.ron").exists());
}

#[test]
fn iptables_legacy_backend_is_detected_and_enforces() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let enforcer = Enforcer::open(Arc::new(legacy_runner(&pair.a)), config(dir.path())).unwrap();
    assert_eq!(enforcer.backend(), netwarden::enforce::Backend::Legacy);
    enforcer.block(req(&pair.b4)).unwrap();
    enforcer.block(req(&pair.b6)).unwrap();
    assert!(!pair.ping_from_a(&pair.b4) && !pair.ping_from_a(&pair.b6));
    assert!(out(&pair.a, &["iptables-legacy-save"]).contains("-A NETWARDEN -m set --match-set netwarden4"));
    assert!(
        !out(&pair.a, &["iptables-nft-save"]).contains("NETWARDEN"),
        "nothing went to the other backend"
    );
    assert!(enforcer.check_drift().unwrap().problems.is_empty());
    enforcer.flush_kernel().unwrap();
    assert!(pair.ping_from_a(&pair.b4) && pair.ping_from_a(&pair.b6));
    assert!(!out(&pair.a, &["iptables-legacy-save"]).contains("NETWARDEN"));
}

#[test]
fn xtables_lock_held_briefly_is_waited_for() {
    common::root::require_root!("network namespaces");
    let pair = NetnsPair::new();
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("xtables.lock");
    // Another tool holds the (legacy) xtables lock for 2 s; our -w 5 waits for it instead of failing.
    let mut holder = hold_lock(&lock, 2);
    let runner = legacy_runner(&pair.a).with_env("XTABLES_LOCKFILE", lock.to_str().unwrap());
    let started = std::time::Instant::now();
    let enforcer = Enforcer::open(Arc::new(runner), config(dir.path())).unwrap();
    let waited = started.elapsed();
    holder.wait().ok();
    assert!(
        waited >= Duration::from_secs(1),
        "it really waited for the lock ({waited:?})"
    );
    enforcer.block(req(&pair.b4)).unwrap();
    assert!(!pair.ping_from_a(&pair.b4));
    enforcer.flush_kernel().unwrap();
}
