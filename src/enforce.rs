//! Kernel enforcement of the block list: ipset hash sets (one lookup per packet however many entries) and
//! two rules in our own `NETWARDEN` chain of the `filter` table, jumped to from INPUT, OUTPUT and FORWARD,
//! for IPv4 (`iptables`) and IPv6 (`ip6tables`). Nothing of anyone else's is touched; `flush` removes every
//! trace. Changes to the sets go in as one `ipset restore -exist` batch; the chain as one
//! `iptables-restore --noflush -w` transaction. Entries with an expiry carry an ipset `timeout`, so the
//! kernel lifts the ban on time even if netwarden is not running.

pub mod runner;
pub mod script;

use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;

pub use runner::{CommandError, CommandRunner, SystemRunner};
use script::{CHAIN, HOOKS, SET_V4, SET_V6};

/// Why something could not be enforced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(
        "changing the firewall needs root or CAP_NET_ADMIN: run with sudo, or grant the binary once with \
         `sudo setcap cap_net_raw,cap_net_admin+eip {binary}`; nothing was changed"
    )]
    NotPermitted { binary: String },
    #[error("refusing to block {net}: {why} (use --force if you really mean it)")]
    Refused { net: IpNet, why: String },
}

/// Seconds the xtables lock is waited for before iptables gives up (`-w`).
const XTABLES_WAIT_SECS: &str = "5";

/// True when this process may change the firewall: root, or `CAP_NET_ADMIN` (bit 12) in its effective set.
#[must_use]
pub fn has_net_admin() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let root = field("Uid:").is_some_and(|v| v.split_whitespace().nth(1) == Some("0"));
    let cap = field("CapEff:")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << 12) != 0);
    root || cap
}

/// The default gateways of this host (IPv4 from `/proc/net/route`).
#[must_use]
pub fn default_gateways() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(table) = std::fs::read_to_string("/proc/net/route") {
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let (Some(&"00000000"), Some(gateway)) = (fields.get(1), fields.get(2))
                && let Ok(raw) = u32::from_str_radix(gateway, 16)
                && raw != 0
            {
                out.push(IpAddr::from(raw.to_le_bytes()));
            }
        }
    }
    out
}

/// The address of the SSH client this session came from (`SSH_CONNECTION`), if any.
#[must_use]
pub fn ssh_peer() -> Option<IpAddr> {
    std::env::var("SSH_CONNECTION")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Addresses that must never be blocked by accident: they would cut the user off.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    pub own: Vec<IpAddr>,
    pub gateways: Vec<IpAddr>,
    pub ssh_peer: Option<IpAddr>,
}

impl Protected {
    /// This host's addresses, gateways and SSH peer.
    #[must_use]
    pub fn from_system() -> Self {
        Self {
            own: crate::packet::LocalAddrs::from_system().addrs(),
            gateways: default_gateways(),
            ssh_peer: ssh_peer(),
        }
    }

    /// Why `net` must not be blocked, if it must not.
    #[must_use]
    pub fn refusal(&self, net: &IpNet) -> Option<String> {
        if net.contains(&IpAddr::from([127, 0, 0, 1])) || net.contains(&"::1".parse::<IpAddr>().ok()?) {
            return Some("it covers loopback".into());
        }
        if net.network().is_loopback() {
            return Some("it is a loopback address".into());
        }
        if let Some(own) = self.own.iter().find(|ip| net.contains(*ip)) {
            return Some(format!("it covers this host's own address {own}"));
        }
        if let Some(gw) = self.gateways.iter().find(|ip| net.contains(*ip)) {
            return Some(format!("it covers the default gateway {gw}"));
        }
        if let Some(peer) = self.ssh_peer.filter(|ip| net.contains(ip)) {
            return Some(format!("it covers your SSH connection from {peer}"));
        }
        None
    }
}

/// Drives the kernel. One `Enforcer` serialises its changes, so concurrent requests cannot interleave.
pub struct Enforcer {
    runner: Box<dyn CommandRunner>,
    lock: Mutex<()>,
}

impl Enforcer {
    /// An enforcer running its commands through `runner`.
    #[must_use]
    pub fn new(runner: Box<dyn CommandRunner>) -> Self {
        Self {
            runner,
            lock: Mutex::new(()),
        }
    }

    /// The exact commands `ensure_setup` followed by `block` would run, for `--dry-run`.
    #[must_use]
    pub fn describe_block(&self, adds: &[(IpNet, Option<u64>)]) -> Vec<String> {
        let mut out = vec![format!(
            "{} <<< {:?}",
            self.runner.describe(&["ipset", "restore", "-exist"]),
            script::create_sets()
        )];
        for (tool, set) in [("iptables-restore", SET_V4), ("ip6tables-restore", SET_V6)] {
            out.push(format!(
                "{} <<< {:?}",
                self.runner
                    .describe(&[tool, "--noflush", "-w", XTABLES_WAIT_SECS]),
                script::chain_rules(set, &HOOKS)
            ));
        }
        out.push(format!(
            "{} <<< {:?}",
            self.runner.describe(&["ipset", "restore", "-exist"]),
            script::set_changes(adds, &[])
        ));
        out
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no kernel state half-written that the lock protects.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates the sets, our chains and the jumps if missing (idempotent; repairs a flushed chain or a
    /// deleted jump).
    ///
    /// # Errors
    /// A command failed; its stderr is in the error.
    pub fn ensure_setup(&self) -> Result<(), EnforceError> {
        let _guard = self.guard();
        self.setup_locked()
    }

    fn setup_locked(&self) -> Result<(), EnforceError> {
        self.runner
            .run(&["ipset", "restore", "-exist"], Some(&script::create_sets()))?;
        for (tool, restore, set) in [
            ("iptables", "iptables-restore", SET_V4),
            ("ip6tables", "ip6tables-restore", SET_V6),
        ] {
            let missing: Vec<&str> = HOOKS
                .iter()
                .copied()
                .filter(|hook| {
                    self.runner
                        .run(&[tool, "-w", XTABLES_WAIT_SECS, "-C", hook, "-j", CHAIN], None)
                        .is_err()
                })
                .collect();
            self.runner.run(
                &[restore, "--noflush", "-w", XTABLES_WAIT_SECS],
                Some(&script::chain_rules(set, &missing)),
            )?;
        }
        Ok(())
    }

    /// Adds entries (with a timeout in seconds where given) in one batch.
    ///
    /// # Errors
    /// A command failed; nothing is reported enforced then.
    pub fn block(&self, adds: &[(IpNet, Option<u64>)]) -> Result<(), EnforceError> {
        let _guard = self.guard();
        self.setup_locked()?;
        self.runner.run(
            &["ipset", "restore", "-exist"],
            Some(&script::set_changes(adds, &[])),
        )?;
        Ok(())
    }

    /// Removes entries in one batch (absent ones are fine).
    ///
    /// # Errors
    /// A command failed.
    pub fn unblock(&self, nets: &[IpNet]) -> Result<(), EnforceError> {
        let _guard = self.guard();
        self.runner
            .run(&["ipset", "restore", "-exist"], Some(&script::create_sets()))?;
        self.runner.run(
            &["ipset", "restore", "-exist"],
            Some(&script::set_changes(&[], nets)),
        )?;
        Ok(())
    }

    /// What the kernel holds in our sets right now (with remaining timeouts); empty when the sets are absent.
    ///
    /// # Errors
    /// `ipset` is missing or failed for another reason than a missing set.
    pub fn kernel_entries(&self) -> Result<Vec<(IpNet, Option<u64>)>, EnforceError> {
        let _guard = self.guard();
        let mut out = Vec::new();
        for set in [SET_V4, SET_V6] {
            match self.runner.run(&["ipset", "save", set], None) {
                Ok(text) => out.extend(script::parse_saved(&text)),
                Err(CommandError::Failed { stderr, .. }) if stderr.contains("does not exist") => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort();
        Ok(out)
    }

    /// True when both chains are in place with their jumps (drift check).
    #[must_use]
    pub fn chains_intact(&self) -> bool {
        let _guard = self.guard();
        ["iptables", "ip6tables"].into_iter().all(|tool| {
            HOOKS.iter().all(|hook| {
                self.runner
                    .run(&[tool, "-w", XTABLES_WAIT_SECS, "-C", hook, "-j", CHAIN], None)
                    .is_ok()
            }) && self
                .runner
                .run(&[tool, "-w", XTABLES_WAIT_SECS, "-S", CHAIN], None)
                .is_ok_and(|rules| rules.contains("--match-set"))
        })
    }

    /// Removes every trace of netwarden from the kernel: jumps, chains and sets, IPv4 and IPv6.
    ///
    /// # Errors
    /// A command that should have succeeded failed (absent pieces are fine).
    pub fn flush(&self) -> Result<(), EnforceError> {
        let _guard = self.guard();
        for tool in ["iptables", "ip6tables"] {
            for hook in HOOKS {
                // Delete every jump (there should be one; a stray duplicate goes too).
                for _ in 0..16 {
                    if self
                        .runner
                        .run(&[tool, "-w", XTABLES_WAIT_SECS, "-D", hook, "-j", CHAIN], None)
                        .is_err()
                    {
                        break;
                    }
                }
            }
            // Absent chains are fine: nothing to flush.
            self.runner
                .run(&[tool, "-w", XTABLES_WAIT_SECS, "-F", CHAIN], None)
                .ok();
            self.runner
                .run(&[tool, "-w", XTABLES_WAIT_SECS, "-X", CHAIN], None)
                .ok();
        }
        for set in [SET_V4, SET_V6] {
            match self.runner.run(&["ipset", "destroy", set], None) {
                Ok(_) => {}
                Err(CommandError::Failed { stderr, .. }) if stderr.contains("does not exist") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_addresses_are_refused() {
        let p = Protected {
            own: vec!["192.168.1.50".parse().unwrap()],
            gateways: vec!["192.168.1.1".parse().unwrap()],
            ssh_peer: Some("198.51.100.9".parse().unwrap()),
        };
        let refusal = |s: &str| p.refusal(&s.parse::<IpNet>().unwrap());
        assert_eq!(refusal("127.0.0.0/8").as_deref(), Some("it covers loopback"));
        assert_eq!(refusal("::1/128").as_deref(), Some("it covers loopback"));
        assert_eq!(
            refusal("192.168.1.0/24").as_deref(),
            Some("it covers this host's own address 192.168.1.50")
        );
        assert_eq!(
            refusal("192.168.1.1/32").as_deref(),
            Some("it covers the default gateway 192.168.1.1")
        );
        assert_eq!(
            refusal("198.51.100.0/24").as_deref(),
            Some("it covers your SSH connection from 198.51.100.9")
        );
        assert_eq!(refusal("203.0.113.7/32"), None);
    }
}
