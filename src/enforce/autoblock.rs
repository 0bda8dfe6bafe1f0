//! Opt-in automatic blocking from detection alerts, fail2ban style: the first offence bans for a base
//! time, each repeat doubles it up to a cap. Allow-listed and protected addresses (loopback, own
//! addresses, gateways, SSH peer) are never auto-blocked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::{BlockRequest, Protected};
use crate::detect::Alert;

/// Settings of the auto-blocker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoBlockConfig {
    /// First ban length.
    pub base_ban: Duration,
    /// Longest ban after doubling.
    pub max_ban: Duration,
    /// Never blocked automatically.
    pub allow: Vec<IpNet>,
    /// Sources remembered at once (oldest offenders forgotten beyond this).
    pub max_tracked: usize,
}

impl Default for AutoBlockConfig {
    fn default() -> Self {
        Self {
            base_ban: Duration::from_secs(600),
            max_ban: Duration::from_secs(7 * 86_400),
            allow: Vec::new(),
            max_tracked: 65_536,
        }
    }
}

/// Turns alerts into block requests, remembering repeat offenders.
#[derive(Debug, Clone)]
pub struct AutoBlocker {
    config: AutoBlockConfig,
    protected: Protected,
    offences: HashMap<IpAddr, (u32, i64)>,
}

impl AutoBlocker {
    /// A blocker with `config`, never blocking `protected`.
    #[must_use]
    pub fn new(config: AutoBlockConfig, protected: Protected) -> Self {
        Self {
            config,
            protected,
            offences: HashMap::new(),
        }
    }

    /// Ban length for the `offence`-th offence (1-based): base * 2^(offence-1), capped.
    #[must_use]
    pub fn ban_for(&self, offence: u32) -> Duration {
        let factor = 1u32.checked_shl(offence.saturating_sub(1)).unwrap_or(u32::MAX);
        self.config
            .base_ban
            .saturating_mul(factor)
            .min(self.config.max_ban)
    }

    /// The block request for an alert, or `None` when its source is allowed or protected.
    pub fn observe(&mut self, alert: &Alert) -> Option<BlockRequest> {
        // `::ffff:a.b.c.d` is the IPv4 host it stands for: one offender, one IPv4 kernel entry.
        let src_ip = crate::blocklist::normalize_ip(alert.src_ip);
        let net = IpNet::from(src_ip);
        if self.config.allow.iter().any(|allowed| allowed.contains(&net))
            || self.protected.refusal(&net).is_some()
        {
            return None;
        }
        if self.offences.len() >= self.config.max_tracked && !self.offences.contains_key(&src_ip) {
            // Forget the offender seen longest ago so memory stays bounded under spoofed floods.
            let oldest = self
                .offences
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                self.offences.remove(&oldest);
            }
        }
        let record = self.offences.entry(src_ip).or_insert((0, alert.ts_micros));
        record.0 = record.0.saturating_add(1);
        record.1 = alert.ts_micros;
        let offence = record.0;
        let ban = self.ban_for(offence);
        Some(BlockRequest {
            net,
            reason: format!(
                "auto: {} ({}), offence {offence}",
                alert.kind.name(),
                alert.reason
            ),
            duration: Some(ban),
            force: false,
            // A repeat offence extends the ban (never shortens it) and says which offence it is.
            update: super::Update {
                reason: true,
                expiry: true,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::AlertKind;

    fn alert(ip: &str) -> Alert {
        Alert {
            kind: AlertKind::PortScan,
            src_ip: ip.parse().unwrap(),
            ts_micros: 1,
            reason: "25 ports".to_owned(),
        }
    }

    #[test]
    fn doubles_and_caps() {
        let config = AutoBlockConfig {
            max_ban: Duration::from_secs(2_000),
            ..AutoBlockConfig::default()
        };
        let mut blocker = AutoBlocker::new(config, Protected::default());
        let bans: Vec<u64> = (0..4)
            .map(|_| {
                blocker
                    .observe(&alert("192.0.2.1"))
                    .unwrap()
                    .duration
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(bans, vec![600, 1_200, 2_000, 2_000]);
        let request = blocker.observe(&alert("192.0.2.2")).unwrap();
        assert_eq!(request.duration, Some(Duration::from_secs(600)));
        assert_eq!(request.reason, "auto: port-scan (25 ports), offence 1");
        assert_eq!(blocker.ban_for(100), Duration::from_secs(2_000));
    }

    #[test]
    fn allow_list_and_protected_are_skipped() {
        let config = AutoBlockConfig {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            ..AutoBlockConfig::default()
        };
        let protected = Protected {
            addrs: vec![("198.51.100.1".parse().unwrap(), "default gateway".to_owned())],
        };
        let mut blocker = AutoBlocker::new(config, protected);
        assert_eq!(blocker.observe(&alert("192.0.2.9")), None);
        assert_eq!(blocker.observe(&alert("198.51.100.1")), None);
        assert_eq!(blocker.observe(&alert("127.0.0.1")), None);
        assert_eq!(
            blocker.observe(&alert("::ffff:127.0.0.1")),
            None,
            "mapped loopback"
        );
        let mapped = blocker.observe(&alert("::ffff:203.0.113.7")).unwrap();
        assert_eq!(mapped.net.to_string(), "203.0.113.7/32");
        assert!(blocker.observe(&alert("203.0.113.5")).is_some());
    }
}
