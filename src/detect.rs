//! Detection of suspicious traffic beyond the rules: port scans, SYN floods / packet-rate bursts and
//! repeated denied packets from one source, over per-source sliding windows.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What kind of suspicious behaviour an `Alert` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// One source touched many distinct ports or hosts within the window.
    PortScan,
    /// One source sent SYNs without ACK above the threshold rate.
    SynFlood,
    /// One source sent packets above the threshold rate.
    RateExceeded,
    /// One source kept sending packets that were denied.
    RepeatedDenied,
}

impl AlertKind {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::PortScan => "port-scan",
            Self::SynFlood => "syn-flood",
            Self::RateExceeded => "rate-exceeded",
            Self::RepeatedDenied => "repeated-denied",
        }
    }
}

/// A detection result, attached to the packet that crossed the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub src_ip: IpAddr,
    /// Microseconds since the Unix epoch of the packet that raised it.
    pub ts_micros: i64,
    /// Human-readable reason, e.g. `touched 25 ports on 1 host in 10 s`.
    pub reason: String,
}

/// Detection thresholds, the `detection` section of `rules.ron`. Every field has a sensible default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    pub enabled: bool,
    /// Sliding window length for all detectors, in seconds.
    pub window_secs: u32,
    /// Distinct destination ports (on any hosts) from one source within the window that mean a port scan.
    pub scan_ports: u32,
    /// Distinct destination hosts from one source within the window that mean a host sweep.
    pub scan_hosts: u32,
    /// SYN-without-ACK packets per second from one source that mean a SYN flood.
    pub syn_flood_pps: u32,
    /// Packets per second from one source that raise a rate alert (0 = off).
    pub rate_pps: u32,
    /// Denied packets from one source within the window that raise an alert.
    pub denied_count: u32,
    /// Upper bound on sources tracked at once (memory stays flat under spoofed floods).
    pub max_sources: u32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 10,
            scan_ports: 20,
            scan_hosts: 20,
            syn_flood_pps: 200,
            rate_pps: 5_000,
            denied_count: 50,
            max_sources: 65_536,
        }
    }
}

// STUB(lead): replaced by the detect module at merge.
/// Detector.
#[derive(Debug, Default)]
pub struct Detector;

impl Detector {
    #[must_use]
    pub fn new(config: DetectConfig) -> Self {
        let _ = config;
        Self
    }
    pub fn set_config(&mut self, config: DetectConfig) {
        let _ = config;
    }
    pub fn observe(
        &mut self,
        meta: &crate::packet::PacketMeta,
        verdict: &crate::rules::Verdict,
    ) -> Option<Alert> {
        let _ = (meta, verdict);
        None
    }
}
