//! Detection of suspicious traffic beyond the rules: port scans, SYN floods / packet-rate bursts and
//! repeated denied packets from one source, over per-source windows.
//!
//! Windows run on packet timestamps, so a replayed capture raises the alerts the live run did. Scans and
//! repeated denies count within a `window_secs` window; SYN and packet rates within 1-second buckets. Each
//! kind alerts once per source and then stays quiet for `window_secs`. Outbound packets of our own host
//! are not counted against it. Memory is bounded by `max_sources`.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::packet::{Direction, IpProto, PacketMeta};
use crate::rules::{Action, Verdict};

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

/// Counters since the detector started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectStats {
    pub tracked_sources: usize,
    pub alerts_raised: u64,
}

const KINDS: usize = 4;

fn kind_index(kind: AlertKind) -> usize {
    match kind {
        AlertKind::PortScan => 0,
        AlertKind::SynFlood => 1,
        AlertKind::RateExceeded => 2,
        AlertKind::RepeatedDenied => 3,
    }
}

/// What one source did recently. `repr(C)` keeps the declared order: the fields every packet touches come
/// first, next to the key, so most packets read one or two cache lines of their slot (the per-packet lookup
/// is bound by memory, not arithmetic); the port and host lists follow, read by probes only.
#[derive(Debug, Default)]
#[repr(C)]
struct SourceState {
    window_start: i64,
    second_start: i64,
    last_seen: i64,
    /// When each kind last alerted (quiet for a window afterwards), valid where `alerted` has its bit.
    alerted_at: [i64; KINDS],
    packets_this_second: u32,
    syns_this_second: u32,
    denied: u32,
    /// Bit `kind_index(kind)` set: that kind alerted at `alerted_at[kind_index(kind)]`.
    alerted: u8,
    /// One bit per `filter_bit` of each port and host in `ports` and `hosts`: a clear bit proves a value
    /// new without scanning the list (most probes hit new ports).
    port_bits: u64,
    host_bits: u64,
    /// Distinct destination ports and hosts in the window, kept only up to the threshold (a short list:
    /// a linear scan of at most ~20 entries beats hashing per packet).
    ports: SmallList<u16, 16>,
    hosts: HostSet,
}

/// A short list: the first `N` values inline, in the source's table slot, so a probe reads them with the
/// rest of the state instead of chasing a pointer to another cache line; further values on the heap.
#[derive(Debug)]
struct SmallList<T, const N: usize> {
    inline: [T; N],
    inline_len: u8,
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Default for SmallList<T, N> {
    fn default() -> Self {
        Self {
            inline: [T::default(); N],
            inline_len: 0,
            spill: Vec::new(),
        }
    }
}

impl<T: Copy + PartialEq, const N: usize> SmallList<T, N> {
    fn len(&self) -> usize {
        usize::from(self.inline_len) + self.spill.len()
    }

    fn clear(&mut self) {
        self.inline_len = 0;
        self.spill.clear();
    }

    fn contains(&self, value: T) -> bool {
        self.inline
            .get(..usize::from(self.inline_len))
            .unwrap_or_default()
            .contains(&value)
            || self.spill.contains(&value)
    }

    fn push(&mut self, value: T) {
        match self.inline.get_mut(usize::from(self.inline_len)) {
            Some(slot) => {
                *slot = value;
                self.inline_len += 1;
            }
            None => self.spill.push(value),
        }
    }
}

/// Distinct destination hosts, by family: 4-byte IPv4 entries scan much faster than `IpAddr`s (tag, then
/// bytes) and take a quarter of the memory.
#[derive(Debug, Default)]
struct HostSet {
    v4: SmallList<u32, 12>,
    v6: Vec<u128>,
}

impl HostSet {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(v4.to_bits()),
            IpAddr::V6(v6) => self.v6.contains(&v6.to_bits()),
        }
    }

    fn push(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.v4.push(v4.to_bits()),
            IpAddr::V6(v6) => self.v6.push(v6.to_bits()),
        }
    }
}

/// The filter bit of a port or folded address (64 bits, spread by a multiplicative hash).
fn filter_bit(value: u64) -> u64 {
    1 << (value.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// An address folded to 64 bits for `filter_bit`.
fn fold_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()),
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            #[expect(clippy::cast_possible_truncation, reason = "folding halves on purpose")]
            let folded = (bits as u64) ^ ((bits >> 64) as u64);
            folded
        }
    }
}

impl SourceState {
    fn alerted_at(&self, kind: AlertKind) -> Option<i64> {
        let i = kind_index(kind);
        (self.alerted & (1 << i) != 0).then(|| self.alerted_at.get(i).copied().unwrap_or_default())
    }

    fn set_alerted_at(&mut self, kind: AlertKind, ts: i64) {
        let i = kind_index(kind);
        if let Some(at) = self.alerted_at.get_mut(i) {
            *at = ts;
            self.alerted |= 1 << i;
        }
    }
}

/// A source address as a map key: the address bits and the family, 24 bytes. Hashing it is one multiply,
/// where hashing an `IpAddr` feeds the enum tag, a length and each byte through the hasher (it was the most
/// expensive part of detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceKey {
    high: u64,
    low: u64,
    v6: bool,
}

impl SourceKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self {
                high: 0,
                low: u64::from(v4.to_bits()),
                v6: false,
            },
            IpAddr::V6(v6) => {
                let bits = v6.to_bits();
                #[expect(clippy::cast_possible_truncation, reason = "splitting into halves")]
                Self {
                    high: (bits >> 64) as u64,
                    low: bits as u64,
                    v6: true,
                }
            }
        }
    }
}

impl std::hash::Hash for SourceKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Folds the key into one word; `Eq` still tells apart keys that fold alike.
        state.write_u64(self.low ^ self.high.rotate_left(29) ^ u64::from(self.v6));
    }
}

/// Per-source detection state. Cheap per packet: one hash lookup and a few counters.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    sources: FxHashMap<SourceKey, SourceState>,
    alerts_raised: u64,
}

impl Detector {
    /// A detector with `config`'s thresholds.
    #[must_use]
    pub fn new(config: DetectConfig) -> Self {
        Self {
            config,
            sources: FxHashMap::default(),
            alerts_raised: 0,
        }
    }

    /// Changes thresholds (rules reloaded); what was seen so far is kept.
    pub fn set_config(&mut self, config: DetectConfig) {
        self.config = config;
    }

    /// Counters for the status bar.
    #[must_use]
    pub fn stats(&self) -> DetectStats {
        DetectStats {
            tracked_sources: self.sources.len(),
            alerts_raised: self.alerts_raised,
        }
    }

    /// Looks at one packet; returns an alert when this packet crosses a threshold.
    pub fn observe(&mut self, meta: &PacketMeta, verdict: &Verdict) -> Option<Alert> {
        self.prepare(meta)?.observe(meta, verdict)
    }

    /// Finds (or makes) the state of the packet's source before its verdict is known; `None` when
    /// detection is off or the packet is not counted. The engine calls this before evaluating the rules, so
    /// the table lookup's cache miss overlaps with the rule evaluation instead of stalling after it.
    pub(crate) fn prepare(&mut self, meta: &PacketMeta) -> Option<Prepared<'_>> {
        if !self.config.enabled || meta.direction == Direction::Out {
            return None;
        }
        let src = meta.src_ip?;
        let window = i64::from(self.config.window_secs.max(1)) * 1_000_000;
        let key = SourceKey::of(src);
        if self.sources.len() >= self.config.max_sources.max(1) as usize && !self.sources.contains_key(&key) {
            self.make_room(meta.ts_micros, window);
        }
        let state = self.sources.entry(key).or_default();
        Some(Prepared {
            config: &self.config,
            state,
            alerts_raised: &mut self.alerts_raised,
            src,
        })
    }

    /// Keeps memory flat under floods from many (spoofed) sources: drop sources idle for a window, then if
    /// still full the least recently seen half.
    fn make_room(&mut self, now: i64, window: i64) {
        self.sources
            .retain(|_, s| now.saturating_sub(s.last_seen) < window);
        let max = self.config.max_sources.max(1) as usize;
        if self.sources.len() >= max {
            let mut seen: Vec<i64> = self.sources.values().map(|s| s.last_seen).collect();
            let middle = seen.len() / 2;
            let (_, median, _) = seen.select_nth_unstable(middle);
            let cutoff = *median;
            self.sources.retain(|_, s| s.last_seen > cutoff);
        }
    }
}

/// A source's detection state found ahead of the packet's verdict (`Detector::prepare`).
pub(crate) struct Prepared<'a> {
    config: &'a DetectConfig,
    state: &'a mut SourceState,
    alerts_raised: &'a mut u64,
    src: IpAddr,
}

impl Prepared<'_> {
    /// Counts the packet with its verdict; returns an alert when this packet crosses a threshold.
    pub(crate) fn observe(self, meta: &PacketMeta, verdict: &Verdict) -> Option<Alert> {
        let Self {
            config,
            state,
            alerts_raised,
            src,
        } = self;
        let ts = meta.ts_micros;
        let window = i64::from(config.window_secs.max(1)) * 1_000_000;
        if ts.saturating_sub(state.window_start) >= window || ts < state.window_start {
            state.window_start = ts;
            state.ports.clear();
            state.hosts.clear();
            state.port_bits = 0;
            state.host_bits = 0;
            state.denied = 0;
        }
        if ts.saturating_sub(state.second_start) >= 1_000_000 || ts < state.second_start {
            state.second_start = ts;
            state.syns_this_second = 0;
            state.packets_this_second = 0;
        }
        state.last_seen = ts;
        state.packets_this_second = state.packets_this_second.saturating_add(1);
        let syn = meta.protocol == Some(IpProto::TCP) && meta.tcp_flags.is_some_and(|f| f.is_syn_only());
        if syn {
            state.syns_this_second = state.syns_this_second.saturating_add(1);
        }
        // A probe: a connection attempt, a UDP datagram that is not a service's reply (from a port below 1024
        // to one above, as DNS and NTP answers are), or an echo request.
        let udp_reply = matches!((meta.src_port, meta.dst_port), (Some(s), Some(d)) if s < 1024 && d >= 1024);
        let probe = syn
            || (meta.protocol == Some(IpProto::UDP) && !udp_reply)
            || matches!(
                (meta.protocol, meta.icmp_type_code),
                (Some(IpProto::ICMP), Some((8, _)))
            )
            || matches!(
                (meta.protocol, meta.icmp_type_code),
                (Some(IpProto::ICMPV6), Some((128, _)))
            );
        if probe {
            let port_cap = config.scan_ports as usize + 1;
            if let Some(port) = meta.dst_port
                && state.ports.len() < port_cap
            {
                let bit = filter_bit(u64::from(port));
                if state.port_bits & bit == 0 || !state.ports.contains(port) {
                    state.ports.push(port);
                    state.port_bits |= bit;
                }
            }
            if let Some(dst) = meta.dst_ip
                && state.hosts.len() < config.scan_hosts as usize + 1
            {
                let bit = filter_bit(fold_ip(dst));
                if state.host_bits & bit == 0 || !state.hosts.contains(dst) {
                    state.hosts.push(dst);
                    state.host_bits |= bit;
                }
            }
        }
        if verdict.action == Action::Block {
            state.denied = state.denied.saturating_add(1);
        }
        let window_secs = config.window_secs.max(1);
        let candidates = [
            (
                AlertKind::SynFlood,
                config.syn_flood_pps > 0 && state.syns_this_second >= config.syn_flood_pps,
            ),
            (
                AlertKind::PortScan,
                (config.scan_ports > 0 && state.ports.len() >= config.scan_ports as usize)
                    || (config.scan_hosts > 0 && state.hosts.len() >= config.scan_hosts as usize),
            ),
            (
                AlertKind::RateExceeded,
                config.rate_pps > 0 && state.packets_this_second >= config.rate_pps,
            ),
            (
                AlertKind::RepeatedDenied,
                config.denied_count > 0 && state.denied >= config.denied_count,
            ),
        ];
        let kind = candidates.into_iter().find_map(|(kind, crossed)| {
            let quiet = || {
                state
                    .alerted_at(kind)
                    .is_some_and(|at| ts.saturating_sub(at) < window)
            };
            (crossed && !quiet()).then_some(kind)
        })?;
        state.set_alerted_at(kind, ts);
        let reason = match kind {
            AlertKind::PortScan => format!(
                "touched {} ports on {} hosts in {window_secs} s",
                state.ports.len(),
                state.hosts.len()
            ),
            AlertKind::SynFlood => format!("SYN flood: {} SYN/s", state.syns_this_second),
            AlertKind::RateExceeded => format!("{} packets/s", state.packets_this_second),
            AlertKind::RepeatedDenied => format!("{} denied packets in {window_secs} s", state.denied),
        };
        *alerts_raised += 1;
        Some(Alert {
            kind,
            src_ip: src,
            ts_micros: ts,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{LinkType, TcpFlags};
    use crate::rules::RuleId;

    const SEC: i64 = 1_000_000;

    fn syn(ts: i64, src: &str, dst: &str, port: u16) -> PacketMeta {
        let mut m = PacketMeta::new(ts, 60, 60, LinkType::Ethernet);
        m.src_ip = Some(src.parse().unwrap());
        m.dst_ip = Some(dst.parse().unwrap());
        m.protocol = Some(IpProto::TCP);
        m.src_port = Some(40_000);
        m.dst_port = Some(port);
        m.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
        m.direction = Direction::In;
        m
    }

    const ALLOW: Verdict = Verdict {
        action: Action::Allow,
        rule: None,
    };
    const BLOCK: Verdict = Verdict {
        action: Action::Block,
        rule: Some(RuleId(0)),
    };

    fn quiet_config() -> DetectConfig {
        DetectConfig {
            syn_flood_pps: 0,
            rate_pps: 0,
            denied_count: 0,
            ..DetectConfig::default()
        }
    }

    #[test]
    fn port_scan_alerts_once_at_the_threshold_and_rearms_after_the_window() {
        let mut d = Detector::new(quiet_config());
        let mut alerts = Vec::new();
        for port in 1..=30u16 {
            if let Some(a) = d.observe(
                &syn(i64::from(port) * 1000, "203.0.113.7", "192.168.1.50", port),
                &ALLOW,
            ) {
                alerts.push((port, a));
            }
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].0, 20, "the 20th distinct port crosses scan_ports = 20");
        assert_eq!(alerts[0].1.kind, AlertKind::PortScan);
        assert_eq!(alerts[0].1.reason, "touched 20 ports on 1 hosts in 10 s");
        // After the window, a new scan alerts again.
        let later: Vec<Alert> = (1..=20u16)
            .filter_map(|p| {
                d.observe(
                    &syn(11 * SEC + i64::from(p), "203.0.113.7", "192.168.1.50", p),
                    &ALLOW,
                )
            })
            .collect();
        assert_eq!(later.len(), 1);
    }

    #[test]
    fn host_and_port_lists_count_distinct_values_past_their_inline_part() {
        let mut hosts = HostSet::default();
        let mut ports = SmallList::<u16, 16>::default();
        for round in 0..2 {
            for i in 0..30u16 {
                let v4 = IpAddr::from([10, 0, 0, u8::try_from(i).unwrap()]);
                let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]);
                for ip in [v4, v6] {
                    assert_eq!(hosts.contains(ip), round == 1, "{ip}");
                    if !hosts.contains(ip) {
                        hosts.push(ip);
                    }
                }
                assert_eq!(ports.contains(i), round == 1, "{i}");
                if !ports.contains(i) {
                    ports.push(i);
                }
            }
        }
        assert_eq!((hosts.len(), ports.len()), (60, 30));
        assert!(!hosts.contains(IpAddr::from([10, 0, 0, 30])));
        hosts.clear();
        ports.clear();
        assert_eq!((hosts.len(), ports.len()), (0, 0));
        assert!(!ports.contains(3));
    }

    #[test]
    fn host_sweep_counts_hosts() {
        let mut d = Detector::new(quiet_config());
        let alerts: Vec<Alert> = (1..=25u8)
            .filter_map(|h| {
                d.observe(
                    &syn(i64::from(h), "198.51.100.23", &format!("10.0.0.{h}"), 22),
                    &ALLOW,
                )
            })
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].reason, "touched 1 ports on 20 hosts in 10 s");
    }

    #[test]
    fn syn_flood_and_rate_and_denies() {
        let cfg = DetectConfig {
            scan_ports: 0,
            scan_hosts: 0,
            syn_flood_pps: 100,
            rate_pps: 0,
            denied_count: 0,
            ..DetectConfig::default()
        };
        let mut d = Detector::new(cfg);
        let kinds: Vec<AlertKind> = (0..300)
            .filter_map(|i| d.observe(&syn(i * 1000, "10.9.9.9", "192.168.1.50", 80), &ALLOW))
            .map(|a| a.kind)
            .collect();
        assert_eq!(kinds, vec![AlertKind::SynFlood]);

        let mut d = Detector::new(DetectConfig {
            rate_pps: 50,
            syn_flood_pps: 0,
            scan_ports: 0,
            scan_hosts: 0,
            denied_count: 0,
            ..DetectConfig::default()
        });
        let mut m = syn(0, "10.9.9.8", "192.168.1.50", 443);
        m.tcp_flags = Some(TcpFlags(TcpFlags::ACK));
        let alerts: Vec<Alert> = (0..60)
            .filter_map(|i| {
                m.ts_micros = i * 100;
                d.observe(&m, &ALLOW)
            })
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].reason, "50 packets/s");

        let mut d = Detector::new(DetectConfig {
            denied_count: 5,
            ..quiet_config()
        });
        let alerts: Vec<Alert> = (0..10)
            .filter_map(|i| d.observe(&syn(i, "10.9.9.7", "192.168.1.50", 22), &BLOCK))
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].reason, "5 denied packets in 10 s");
    }

    #[test]
    fn service_replies_are_not_probes() {
        let mut d = Detector::new(quiet_config());
        for port in 0..100u16 {
            let mut m = syn(i64::from(port), "192.168.1.1", "192.168.1.50", 40_000 + port);
            m.protocol = Some(IpProto::UDP);
            m.tcp_flags = None;
            m.src_port = Some(53);
            assert!(
                d.observe(&m, &ALLOW).is_none(),
                "DNS answers to many client ports are not a scan"
            );
        }
    }

    #[test]
    fn outbound_traffic_is_not_a_scan_on_us() {
        let mut d = Detector::new(quiet_config());
        for port in 1..=50u16 {
            let mut m = syn(i64::from(port), "192.168.1.50", "10.0.0.1", port);
            m.direction = Direction::Out;
            assert!(d.observe(&m, &ALLOW).is_none());
        }
    }

    #[test]
    fn memory_stays_bounded_under_many_sources() {
        let mut d = Detector::new(DetectConfig {
            max_sources: 1_000,
            ..DetectConfig::default()
        });
        for i in 0..50_000u32 {
            let src = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            d.observe(&syn(i64::from(i), &src, "192.168.1.50", 80), &ALLOW);
            assert!(d.stats().tracked_sources <= 1_000);
        }
    }
}
