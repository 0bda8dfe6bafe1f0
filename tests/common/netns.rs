//! Network namespaces for tests: two namespaces joined by a veth pair (`vA` in `a`, `vB` in `b`), with
//! IPv4 `10.S.0.1/24`, `10.S.0.2/24` and IPv6 `fd00:S::1/64`, `fd00:S::2/64`. Removed on drop, also when the
//! test fails. Traffic stays between the two namespaces.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth pair; removed on drop, also when the test fails.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub subnet: u32,
}

pub fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

pub fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pair {
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{}", std::process::id() % 100_000, n);
        let subnet = 100 + (std::process::id() + n) % 100;
        let pair = Self {
            a: format!("nwlcA{id}"),
            b: format!("nwlcB{id}"),
            subnet,
        };
        ok(&["ip", "netns", "add", &pair.a]);
        ok(&["ip", "netns", "add", &pair.b]);
        ok(&[
            "ip", "-n", &pair.a, "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", &pair.b,
        ]);
        ok(&[
            "ip",
            "-n",
            &pair.a,
            "addr",
            "add",
            &format!("10.{subnet}.0.1/24"),
            "dev",
            "vA",
        ]);
        ok(&[
            "ip",
            "-n",
            &pair.b,
            "addr",
            "add",
            &format!("10.{subnet}.0.2/24"),
            "dev",
            "vB",
        ]);
        ok(&[
            "ip",
            "-n",
            &pair.a,
            "-6",
            "addr",
            "add",
            &format!("fd00:{subnet}::1/64"),
            "dev",
            "vA",
            "nodad",
        ]);
        ok(&[
            "ip",
            "-n",
            &pair.b,
            "-6",
            "addr",
            "add",
            &format!("fd00:{subnet}::2/64"),
            "dev",
            "vB",
            "nodad",
        ]);
        for (ns, dev) in [(&pair.a, "vA"), (&pair.b, "vB")] {
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    pub fn ip_a(&self) -> String {
        format!("10.{}.0.1", self.subnet)
    }

    pub fn ip_b(&self) -> String {
        format!("10.{}.0.2", self.subnet)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}

impl Pair {
    pub fn ip6_a(&self) -> String {
        format!("fd00:{}::1", self.subnet)
    }

    pub fn ip6_b(&self) -> String {
        format!("fd00:{}::2", self.subnet)
    }

    /// Turns IPv6 off on both ends, so the link carries only what a test sends (no router solicitations or
    /// MLD reports).
    pub fn without_ipv6(&self) {
        for (ns, dev) in [(&self.a, "vA"), (&self.b, "vB")] {
            ok(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ]);
        }
    }

    /// Runs a command inside namespace `ns`; true when it succeeded.
    pub fn exec_ok(ns: &str, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// One ping from b to a (1 s timeout).
    pub fn ping_a_from_b(&self, v6: bool) -> bool {
        let target = if v6 { self.ip6_a() } else { self.ip_a() };
        Self::exec_ok(&self.b, &["ping", "-c", "1", "-W", "1", &target])
    }
}
