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
