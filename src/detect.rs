//! Detection of suspicious traffic beyond the rules: port scans, SYN floods / packet-rate bursts and
//! repeated denied packets from one source, over per-source windows.
//!
//! Windows run on packet timestamps, so a replayed capture raises the alerts the live run did. Scans and
//! repeated denies count within a `window_secs` window; SYN and packet rates within 1-second buckets. Each
//! kind alerts once per source and then stays quiet for `window_secs`. Outbound packets of our own host
//! are not counted against it. Memory is bounded by `max_sources`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::packet::{Direction, IpProto, PacketMeta};
use crate::rules::{Action, Verdict};

mod table;

use table::{SLOT_HOSTS, SLOT_PORTS, Slot, Table};

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
    /// Denied packets from one source within the window that raise an alert (counted up to 65,535: a higher
    /// value acts as 65,535).
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

/// What one source did recently, beyond its table slot (`table::Slot`): the ports and hosts past the ones
/// the slot holds, and the alert times. Read only by probes past the slot's lists and by crossed
/// thresholds.
#[derive(Debug, Default)]
struct Cold {
    /// Bit `kind_index(kind)` set: that kind alerted at `alerted_at[kind_index(kind)]`.
    alerted: u8,
    /// When each kind last alerted (quiet for a window afterwards).
    alerted_at: [i64; KINDS],
    /// Ports past `Slot::ports`, IPv4 hosts past `Slot::hosts_v4`, and every IPv6 host, of the window.
    ports: Vec<u16>,
    hosts_v4: Vec<u32>,
    hosts_v6: Vec<u128>,
}

/// The filter bit of a port (`half` 0) or a folded address (`half` 1): one of 32 bits in that half of
/// `Slot::seen_bits`, spread by a multiplicative hash.
fn filter_bit(value: u64, half: u32) -> u64 {
    1 << ((value.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59) + u64::from(half) * 32)
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

impl Cold {
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

/// A source address as a table key: IPv4 as its IPv4-mapped IPv6 form (the same host either way).
fn source_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// Per-source detection state. Cheap per packet: one lookup that reads one cache line.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    table: Table,
    /// Per source, at its slot's `cold` index.
    cold: Vec<Cold>,
    alerts_raised: u64,
}

impl Detector {
    /// A detector with `config`'s thresholds.
    #[must_use]
    pub fn new(config: DetectConfig) -> Self {
        Self {
            config,
            table: Table::default(),
            cold: Vec::new(),
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
            tracked_sources: self.table.len(),
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
        let key = source_key(src);
        if self.table.len() >= self.config.max_sources.max(1) as usize && !self.table.contains(key) {
            self.make_room(meta.ts_micros, window);
        }
        let Self {
            config,
            table,
            cold,
            alerts_raised,
        } = self;
        let slot = table.get_or_insert_with(key, || {
            cold.push(Cold::default());
            Slot::new(key, u32::try_from(cold.len() - 1).unwrap_or(u32::MAX - 1))
        })?;
        Some(Prepared {
            config,
            slot,
            cold,
            alerts_raised,
            src,
        })
    }

    /// Keeps memory flat under floods from many (spoofed) sources: drop sources idle for a window, then if
    /// still full the least recently seen half.
    fn make_room(&mut self, now: i64, window: i64) {
        self.keep_sources(|s| now.saturating_sub(s.last_seen) < window);
        let max = self.config.max_sources.max(1) as usize;
        if self.table.len() >= max {
            let mut seen: Vec<i64> = self.table.iter().map(|s| s.last_seen).collect();
            let middle = seen.len() / 2;
            let (_, median, _) = seen.select_nth_unstable(middle);
            let cutoff = *median;
            self.keep_sources(|s| s.last_seen > cutoff);
        }
    }

    /// Drops the sources `keep` refuses and packs the survivors' lists.
    fn keep_sources(&mut self, keep: impl Fn(&Slot) -> bool) {
        let mut packed = Vec::with_capacity(self.cold.len());
        let cold = &mut self.cold;
        self.table.retain(|slot| {
            if !keep(slot) {
                return false;
            }
            let lists = cold
                .get_mut(slot.cold as usize)
                .map(std::mem::take)
                .unwrap_or_default();
            slot.cold = u32::try_from(packed.len()).unwrap_or(u32::MAX - 1);
            packed.push(lists);
            true
        });
        self.cold = packed;
    }
}

/// A source's detection state found ahead of the packet's verdict (`Detector::prepare`).
pub(crate) struct Prepared<'a> {
    config: &'a DetectConfig,
    slot: &'a mut Slot,
    /// All sources' lists; this one's is at `slot.cold`, read only when needed.
    cold: &'a mut Vec<Cold>,
    alerts_raised: &'a mut u64,
    src: IpAddr,
}

impl Prepared<'_> {
    /// Counts the packet with its verdict; returns an alert when this packet crosses a threshold.
    pub(crate) fn observe(self, meta: &PacketMeta, verdict: &Verdict) -> Option<Alert> {
        let Self {
            config,
            slot,
            cold,
            alerts_raised,
            src,
        } = self;
        let lists = slot.cold as usize;
        let ts = meta.ts_micros;
        let window = i64::from(config.window_secs.max(1)) * 1_000_000;
        if ts.saturating_sub(slot.window_start) >= window || ts < slot.window_start {
            slot.window_start = ts;
            let spilled = usize::from(slot.ports_len) > SLOT_PORTS
                || usize::from(slot.hosts_v4_len) > SLOT_HOSTS
                || slot.hosts_len > slot.hosts_v4_len;
            if spilled && let Some(c) = cold.get_mut(lists) {
                c.ports.clear();
                c.hosts_v4.clear();
                c.hosts_v6.clear();
            }
            slot.ports_len = 0;
            slot.hosts_len = 0;
            slot.hosts_v4_len = 0;
            slot.seen_bits = 0;
            slot.denied = 0;
        }
        if ts.saturating_sub(slot.second_start) >= 1_000_000 || ts < slot.second_start {
            slot.second_start = ts;
            slot.syns_this_second = 0;
            slot.packets_this_second = 0;
        }
        slot.last_seen = ts;
        slot.packets_this_second = slot.packets_this_second.saturating_add(1);
        let syn = meta.protocol == Some(IpProto::TCP) && meta.tcp_flags.is_some_and(|f| f.is_syn_only());
        if syn {
            slot.syns_this_second = slot.syns_this_second.saturating_add(1);
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
            observe_probe(config, slot, cold, lists, meta);
        }
        if verdict.action == Action::Block {
            slot.denied = slot.denied.saturating_add(1);
        }
        let (ports, hosts) = (
            port_count(slot, cold.get(lists)),
            host_count(slot, cold.get(lists)),
        );
        let window_secs = config.window_secs.max(1);
        let candidates = [
            (
                AlertKind::SynFlood,
                config.syn_flood_pps > 0 && slot.syns_this_second >= config.syn_flood_pps,
            ),
            (
                AlertKind::PortScan,
                (config.scan_ports > 0 && ports >= config.scan_ports as usize)
                    || (config.scan_hosts > 0 && hosts >= config.scan_hosts as usize),
            ),
            (
                AlertKind::RateExceeded,
                config.rate_pps > 0 && slot.packets_this_second >= config.rate_pps,
            ),
            (
                AlertKind::RepeatedDenied,
                config.denied_count > 0
                    && u32::from(slot.denied) >= config.denied_count.min(u32::from(u16::MAX)),
            ),
        ];
        if !candidates.iter().any(|(_, crossed)| *crossed) {
            // Most packets: nothing crossed, and the source's lists and alert times are not read.
            return None;
        }
        let lists = cold.get_mut(lists)?;
        let kind = candidates.into_iter().find_map(|(kind, crossed)| {
            let quiet = || {
                lists
                    .alerted_at(kind)
                    .is_some_and(|at| ts.saturating_sub(at) < window)
            };
            (crossed && !quiet()).then_some(kind)
        })?;
        lists.set_alerted_at(kind, ts);
        let reason = match kind {
            AlertKind::PortScan => format!("touched {ports} ports on {hosts} hosts in {window_secs} s"),
            AlertKind::SynFlood => format!("SYN flood: {} SYN/s", slot.syns_this_second),
            AlertKind::RateExceeded => format!("{} packets/s", slot.packets_this_second),
            AlertKind::RepeatedDenied => format!("{} denied packets in {window_secs} s", slot.denied),
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

/// Adds a probe's destination port and host to its source's lists, while they are shorter than one past
/// the thresholds (enough to know they were crossed). The slot holds the first ones; `cold[at]` (indexed
/// only when needed, so the compiler cannot load from it early) the rest.
fn observe_probe(config: &DetectConfig, slot: &mut Slot, cold: &mut [Cold], at: usize, meta: &PacketMeta) {
    if let Some(port) = meta.dst_port
        && port_count(slot, cold.get(at)) <= config.scan_ports as usize
    {
        let bit = filter_bit(u64::from(port), 0);
        let seen = slot.seen_bits & bit != 0
            && list_has(
                &slot.ports,
                slot.ports_len,
                || cold.get(at).map(|c| &c.ports),
                port,
            );
        if !seen {
            list_push(
                &mut slot.ports,
                &mut slot.ports_len,
                || cold.get_mut(at).map(|c| &mut c.ports),
                port,
            );
            slot.seen_bits |= bit;
        }
    }
    if let Some(dst) = meta.dst_ip
        && host_count(slot, cold.get(at)) <= config.scan_hosts as usize
    {
        let bit = filter_bit(fold_ip(dst), 1);
        if slot.seen_bits & bit == 0 || !has_host(slot, cold.get(at), dst) {
            match dst {
                IpAddr::V4(v4) => list_push(
                    &mut slot.hosts_v4,
                    &mut slot.hosts_v4_len,
                    || cold.get_mut(at).map(|c| &mut c.hosts_v4),
                    v4.to_bits(),
                ),
                IpAddr::V6(v6) => {
                    if let Some(c) = cold.get_mut(at) {
                        c.hosts_v6.push(v6.to_bits());
                    }
                }
            }
            slot.hosts_len = slot.hosts_len.saturating_add(1);
            slot.seen_bits |= bit;
        }
    }
}

/// Distinct ports of the window: the slot's count, or past its 255 the lists themselves.
fn port_count(slot: &Slot, cold: Option<&Cold>) -> usize {
    if slot.ports_len < u8::MAX {
        usize::from(slot.ports_len)
    } else {
        SLOT_PORTS + cold.map_or(0, |c| c.ports.len())
    }
}

/// Distinct hosts of the window: the slot's count, or past its 255 the lists themselves.
fn host_count(slot: &Slot, cold: Option<&Cold>) -> usize {
    if slot.hosts_len < u8::MAX {
        usize::from(slot.hosts_len)
    } else {
        let in_slot = usize::from(slot.hosts_v4_len).min(SLOT_HOSTS);
        in_slot + cold.map_or(0, |c| c.hosts_v4.len() + c.hosts_v6.len())
    }
}

/// Whether `value` is in a list kept as its first `N` values in the slot (`len` counts them all) and the
/// rest in `spill`, which is looked at only past the slot's part.
fn list_has<'a, T: PartialEq + 'a, const N: usize>(
    in_slot: &[T; N],
    len: u8,
    spill: impl FnOnce() -> Option<&'a Vec<T>>,
    value: T,
) -> bool {
    let len = usize::from(len);
    in_slot.get(..len.min(N)).unwrap_or_default().contains(&value)
        || (len > N && spill().is_some_and(|s| s.contains(&value)))
}

/// Appends `value` to such a list: into the slot while it has room, else to `spill` (reached only then).
fn list_push<'a, T: 'a, const N: usize>(
    in_slot: &mut [T; N],
    len: &mut u8,
    spill: impl FnOnce() -> Option<&'a mut Vec<T>>,
    value: T,
) {
    match in_slot.get_mut(usize::from(*len)) {
        Some(free) => *free = value,
        None => {
            if let Some(spill) = spill() {
                spill.push(value);
            }
        }
    }
    *len = len.saturating_add(1);
}

fn has_host(slot: &Slot, cold: Option<&Cold>, host: IpAddr) -> bool {
    match host {
        IpAddr::V4(v4) => list_has(
            &slot.hosts_v4,
            slot.hosts_v4_len,
            || cold.map(|c| &c.hosts_v4),
            v4.to_bits(),
        ),
        IpAddr::V6(v6) => {
            slot.hosts_len > slot.hosts_v4_len && cold.is_some_and(|c| c.hosts_v6.contains(&v6.to_bits()))
        }
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
    fn distinct_ports_and_hosts_are_counted_past_what_the_slot_holds() {
        // Thresholds far above what a slot holds (16 ports, 7 IPv4 hosts), so the lists spill; every value
        // is sent twice, and repeats must not count.
        let cfg = DetectConfig {
            scan_ports: 40,
            scan_hosts: 30,
            ..quiet_config()
        };
        let mut d = Detector::new(cfg);
        let src = "198.51.100.7";
        let mut alerts = Vec::new();
        for round in 0..2 {
            for i in 0..12u16 {
                let v4 = format!("10.0.0.{i}");
                let v6 = format!("2001:db8::{i:x}");
                for dst in [&v4, &v6] {
                    // 12 ports per family, 24 distinct in all: below the port threshold, whatever the round.
                    let port = if dst.contains(':') { 1000 + i } else { 2000 + i };
                    let ts = i64::from(round * 100 + i);
                    alerts.extend(d.observe(&syn(ts, src, dst, port), &ALLOW));
                }
            }
        }
        assert!(
            alerts.is_empty(),
            "24 ports and 24 hosts are below 40 and 30: {alerts:?}"
        );
        // Six new IPv4 hosts: 30 distinct hosts now, the sweep threshold.
        for i in 12..18u16 {
            alerts.extend(d.observe(
                &syn(300 + i64::from(i), src, &format!("10.0.0.{i}"), 2000),
                &ALLOW,
            ));
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].reason, "touched 24 ports on 30 hosts in 10 s");
        // A new window starts the lists over: the same hosts and ports count from zero again.
        let later = 20 * SEC;
        let again: Vec<Alert> = (0..18u16)
            .filter_map(|i| {
                d.observe(
                    &syn(later + i64::from(i), src, &format!("10.0.0.{i}"), 2000),
                    &ALLOW,
                )
            })
            .collect();
        assert!(again.is_empty(), "{again:?}");
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
    fn sources_kept_after_making_room_keep_their_own_counts() {
        let mut d = Detector::new(DetectConfig {
            max_sources: 100,
            denied_count: 40,
            ..quiet_config()
        });
        // A persistent offender, then a crowd that forces room to be made twice, each time leaving the
        // offender (seen recently) in place.
        let offender = "203.0.113.9";
        let deny = |d: &mut Detector, ts: i64| d.observe(&syn(ts, offender, "192.168.1.50", 23), &BLOCK);
        for i in 0..20 {
            assert!(deny(&mut d, i).is_none());
        }
        for i in 0..250u32 {
            let ts = 100 + i64::from(i);
            let src = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            d.observe(&syn(ts, &src, "192.168.1.50", 80), &ALLOW);
            if i % 20 == 0 {
                assert!(deny(&mut d, ts).is_none());
            }
            assert!(d.stats().tracked_sources <= 100);
        }
        // 20 + 13 denied so far: the offender's count survived the clean-ups, and its alert comes at 40.
        let alerts: Vec<Alert> = (0..10).filter_map(|i| deny(&mut d, 1_000 + i)).collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::RepeatedDenied);
        assert_eq!(alerts[0].reason, "40 denied packets in 10 s");
    }

    #[test]
    fn a_denied_threshold_past_the_counter_still_fires() {
        let mut d = Detector::new(DetectConfig {
            denied_count: 1_000_000,
            ..quiet_config()
        });
        // 70,000 denied packets within one window (1 µs apart): the alert comes at 65,535.
        let alerts: Vec<(i64, Alert)> = (0..70_000)
            .filter_map(|i| {
                d.observe(&syn(i, "203.0.113.9", "192.168.1.50", 23), &BLOCK)
                    .map(|a| (i, a))
            })
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].0, 65_534);
        assert_eq!(alerts[0].1.reason, "65535 denied packets in 10 s");
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
