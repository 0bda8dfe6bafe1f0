//! `NetnsPair`: two network namespaces joined by a veth pair, with IPv4 (10.x) and IPv6 (fd00::/8 ULA,
//! `nodad`) test addresses, removed again in `Drop` (also when the test panics). Traffic in tests stays
//! between these two namespaces. Plus small flow checks (ping, TCP connect) run inside them.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS` and panics with its stderr when it fails (test setup only).
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces `a` and `b` joined by a veth pair.
pub struct NetnsPair {
    /// Namespace name of side A (where the firewall under test usually runs).
    pub a: String,
    /// Namespace name of side B (the peer).
    pub b: String,
    /// IPv4 address of A.
    pub a4: String,
    /// IPv4 address of B.
    pub b4: String,
    /// IPv4 network of the link (/24).
    pub net4: String,
    /// IPv6 address of A.
    pub a6: String,
    /// IPv6 address of B.
    pub b6: String,
    /// veth name inside A.
    pub veth_a: String,
}

impl NetnsPair {
    /// Creates both namespaces, the veth pair and the addresses, and brings everything up.
    pub fn new() -> Self {
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let a = format!("nwtest-{pid}-{n}-a");
        let b = format!("nwtest-{pid}-{n}-b");
        let veth_a = format!("nv{}a{n}", pid % 1_000_000);
        let veth_b = format!("nv{}b{n}", pid % 1_000_000);
        let (x, y) = (20 + pid % 200, n % 250);
        let pair = Self {
            a4: format!("10.{x}.{y}.1"),
            b4: format!("10.{x}.{y}.2"),
            net4: format!("10.{x}.{y}.0/24"),
            a6: format!("fd00:{:x}:{y}::1", pid % 0xffff),
            b6: format!("fd00:{:x}:{y}::2", pid % 0xffff),
            a,
            b,
            veth_a,
        };
        // Drop cleans up whatever part of the setup below succeeded.
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link",
            "add",
            &pair.veth_a,
            "netns",
            &pair.a,
            "type",
            "veth",
            "peer",
            "name",
            &veth_b,
            "netns",
            &pair.b,
        ]);
        for (ns, dev, v4, v6) in [
            (&pair.a, &pair.veth_a, &pair.a4, &pair.a6),
            (&pair.b, &veth_b, &pair.b4, &pair.b6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// Runs a command inside namespace `ns`.
    pub fn exec(ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .unwrap()
    }

    /// True when one ping from A to `addr` gets an answer within a second.
    pub fn ping_from_a(&self, addr: &str) -> bool {
        Self::exec(&self.a, &["ping", "-c", "1", "-W", "1", "-n", addr])
            .status
            .success()
    }

    /// Starts a TCP listener in B on `addr:port` (accepting forever) and waits until it listens.
    pub fn listen_in_b(&self, addr: &str, port: u16) -> Listener {
        let script = format!(
            "import socket,sys\nfam=socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET\n\
             s=socket.socket(fam)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{addr}',{port}))\ns.listen(64)\nprint('ready',flush=True)\n\
             while True:\n  c,_=s.accept()\n  c.close()\n"
        );
        self.serve_in_b(&script)
    }

    /// Starts a UDP echo server in B on `addr:port` and waits until it is bound.
    pub fn udp_echo_in_b(&self, addr: &str, port: u16) -> Listener {
        let script = format!(
            "import socket\nfam=socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET\n\
             s=socket.socket(fam,socket.SOCK_DGRAM)\ns.bind(('{addr}',{port}))\nprint('ready',flush=True)\n\
             while True:\n  d,a=s.recvfrom(2048)\n  s.sendto(d,a)\n"
        );
        self.serve_in_b(&script)
    }

    /// True when a UDP datagram from A to `addr:port` is echoed back within a second.
    pub fn udp_from_a(&self, addr: &str, port: u16) -> bool {
        let script = format!(
            "import socket\nfam=socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET\n\
             s=socket.socket(fam,socket.SOCK_DGRAM)\ns.settimeout(1)\ns.sendto(b'nw',('{addr}',{port}))\n\
             assert s.recvfrom(64)[0]==b'nw'\n"
        );
        Self::exec(&self.a, &["python3", "-c", &script]).status.success()
    }

    /// Runs a Python server in B that prints `ready` once it listens, and waits for that line.
    pub fn serve_in_b(&self, script: &str) -> Listener {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.b, "python3", "-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Listener { child }
    }

    /// True when a TCP connect from A to `addr:port` succeeds within a second.
    pub fn tcp_from_a(&self, addr: &str, port: u16) -> bool {
        let script =
            format!("import socket\nsocket.create_connection(('{addr}',{port}),timeout=1).close()\n");
        Self::exec(&self.a, &["python3", "-c", &script]).status.success()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace also deletes the veth end in it and its peer.
        for ns in [&self.a, &self.b] {
            Command::new("ip").args(["netns", "del", ns]).output().ok();
        }
    }
}

/// A listener process, killed on drop.
pub struct Listener {
    child: Child,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
