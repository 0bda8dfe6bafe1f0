//! Kernel enforcement for real, inside network namespaces this test creates (all iptables/ipset work runs
//! in namespace `a` through `ip netns exec`; the host's tables are never touched): ping flows, blocking the
//! peer stops it, unblocking lets it through again; the same for a CIDR, for IPv6 and for an entry with an
//! expiry that the kernel lifts by itself; rules of other tools are left exactly as they were; `flush`
//! removes every trace; 100 concurrent block requests give one entry per address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::netns::{Pair, is_root, sh};
use ipnet::IpNet;
use netwarden::enforce::{Enforcer, SystemRunner};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn enforcer(pair: &Pair) -> Enforcer {
    Enforcer::new(Box::new(SystemRunner::in_netns(&pair.a)))
}

fn save(pair: &Pair, tool: &str) -> String {
    String::from_utf8(sh(&["ip", "netns", "exec", &pair.a, tool]).stdout).unwrap()
}

/// The tables as `iptables-save` prints them, without counters and comments (which change with traffic).
fn foreign_rules(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains("NETWARDEN"))
        .map(|l| l.split(" [").next().unwrap_or(l).to_owned())
        .collect()
}

#[test]
fn block_and_unblock_stop_and_restore_traffic() {
    assert!(
        is_root(),
        "enforcement tests need root (network namespaces); CI runs as root"
    );
    let pair = Pair::new();
    let e = enforcer(&pair);
    // Another tool's rule in the same table must survive everything we do.
    assert!(Pair::exec_ok(
        &pair.a,
        &[
            "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT"
        ]
    ));
    let before = foreign_rules(&save(&pair, "iptables-save"));
    assert!(pair.ping_a_from_b(false), "traffic flows before any block");

    e.block(&[(net(&format!("{}/32", pair.ip_b())), None)]).unwrap();
    assert!(!pair.ping_a_from_b(false), "blocked peer cannot ping");
    assert_eq!(
        e.kernel_entries().unwrap(),
        vec![(net(&format!("{}/32", pair.ip_b())), None)]
    );
    assert!(e.chains_intact());

    e.unblock(&[net(&format!("{}/32", pair.ip_b()))]).unwrap();
    assert!(pair.ping_a_from_b(false), "unblocked peer can ping again");

    e.block(&[(net(&format!("10.{}.0.0/24", pair.subnet)), None)])
        .unwrap();
    assert!(!pair.ping_a_from_b(false), "a CIDR covering the peer blocks it");
    e.unblock(&[net(&format!("10.{}.0.0/24", pair.subnet))]).unwrap();
    assert!(pair.ping_a_from_b(false));

    assert!(pair.ping_a_from_b(true), "IPv6 flows");
    e.block(&[(net(&format!("{}/128", pair.ip6_b())), None)]).unwrap();
    assert!(!pair.ping_a_from_b(true), "IPv6 peer blocked");
    assert!(pair.ping_a_from_b(false), "IPv4 unaffected by an IPv6 entry");
    e.unblock(&[net(&format!("{}/128", pair.ip6_b()))]).unwrap();
    assert!(pair.ping_a_from_b(true));

    assert_eq!(
        foreign_rules(&save(&pair, "iptables-save")),
        before,
        "other rules untouched"
    );
    e.flush().unwrap();
    assert!(!save(&pair, "iptables-save").contains("NETWARDEN"));
    assert!(!save(&pair, "ip6tables-save").contains("NETWARDEN"));
    let sets =
        String::from_utf8(sh(&["ip", "netns", "exec", &pair.a, "ipset", "list", "-n"]).stdout).unwrap();
    assert!(!sets.contains("netwarden"), "sets destroyed: {sets}");
    assert_eq!(
        foreign_rules(&save(&pair, "iptables-save")),
        before,
        "other rules untouched by flush"
    );
}

#[test]
fn an_entry_with_an_expiry_is_lifted_by_the_kernel() {
    assert!(
        is_root(),
        "enforcement tests need root (network namespaces); CI runs as root"
    );
    let pair = Pair::new();
    let e = enforcer(&pair);
    e.block(&[(net(&format!("{}/32", pair.ip_b())), Some(2))])
        .unwrap();
    assert!(!pair.ping_a_from_b(false));
    let entries = e.kernel_entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].1.is_some_and(|t| t <= 2),
        "the kernel holds a timeout: {entries:?}"
    );
    std::thread::sleep(Duration::from_millis(3_000));
    assert!(
        pair.ping_a_from_b(false),
        "the ban lifted without netwarden doing anything"
    );
    assert!(e.kernel_entries().unwrap().is_empty());
    e.flush().unwrap();
}

#[test]
fn drift_is_repaired_by_setup() {
    assert!(
        is_root(),
        "enforcement tests need root (network namespaces); CI runs as root"
    );
    let pair = Pair::new();
    let e = enforcer(&pair);
    e.block(&[(net(&format!("{}/32", pair.ip_b())), None)]).unwrap();
    // Someone deletes our jump and flushes our chain.
    assert!(Pair::exec_ok(
        &pair.a,
        &["iptables", "-D", "INPUT", "-j", "NETWARDEN"]
    ));
    assert!(Pair::exec_ok(&pair.a, &["iptables", "-F", "NETWARDEN"]));
    assert!(pair.ping_a_from_b(false), "the kernel no longer drops");
    assert!(!e.chains_intact(), "drift is detected");
    e.ensure_setup().unwrap();
    assert!(e.chains_intact());
    assert!(!pair.ping_a_from_b(false), "repaired: dropped again");
    let jumps = save(&pair, "iptables-save")
        .matches("-A INPUT -j NETWARDEN")
        .count();
    assert_eq!(jumps, 1, "setup never duplicates the jump");
    e.flush().unwrap();
}

#[test]
fn concurrent_requests_give_one_entry_per_address() {
    assert!(
        is_root(),
        "enforcement tests need root (network namespaces); CI runs as root"
    );
    let pair = Pair::new();
    let e = Arc::new(enforcer(&pair));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::Builder::new()
                .name(format!("blocker-{t}"))
                .spawn(move || {
                    for i in 0..25u8 {
                        // Every thread blocks the same 25 addresses: 100 requests in all.
                        e.block(&[(net(&format!("198.18.0.{i}/32")), None)]).unwrap();
                    }
                    let _ = t;
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let entries = e.kernel_entries().unwrap();
    assert_eq!(entries.len(), 25, "{entries:?}");
    let jumps = save(&pair, "iptables-save")
        .matches("-A INPUT -j NETWARDEN")
        .count();
    assert_eq!(jumps, 1);
    e.flush().unwrap();
}
