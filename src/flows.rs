//! The flow table: one entry per connection (protocol and both endpoints; both directions of a conversation
//! map to one flow), owned by the capture thread, shared read-only with front ends and the attribution
//! thread.
//!
//! Per packet the capture thread does one hash lookup ([`FlowTable::observe`]) and updates the flow's
//! counters with plain relaxed stores (it is their only writer, so no locked read-modify-write). A new flow is
//! handed to the attribution thread ([`crate::attrib`]), which fills in [`Flow::attribution`] once, when
//! its lookup finishes; the capture thread never waits for it.
//!
//! Front ends read a [`FlowSnapshot`]: a list of `Arc<Flow>` published on the engine's tick when flows
//! came or went (never per packet). A frame reads only the rows it shows, so it costs O(visible rows); the
//! counters inside each flow are live atomics, so the numbers move between snapshots too.
//!
//! Flows age out on packet time: a TCP flow closed by FIN or RST after `closed_secs`, any other after
//! `idle_secs` without packets. The table holds at most `max_flows`; past that, new flows are counted as
//! untracked instead of growing memory without bound.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use crate::attrib::Attribution;
use crate::packet::{Direction, IpProto, PacketMeta, TcpFlags};
use crate::rules::{Action, Owner};

/// Flow-table settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// Flows kept at most; new flows past this are counted in [`FlowStats::untracked`].
    pub max_flows: usize,
    /// A flow without packets for this long is dropped (packet time).
    pub idle_secs: u32,
    /// A TCP flow closed by FIN or RST is dropped this long after its last packet.
    pub closed_secs: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 200_000,
            idle_secs: 300,
            closed_secs: 30,
        }
    }
}

/// One endpoint of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// 0 for protocols without ports.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::text::endpoint(
            Some(self.ip),
            (self.port != 0).then_some(self.port),
        ))
    }
}

/// The identity of a flow: protocol and both endpoints in a fixed order, so a packet and its reply give
/// the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub protocol: u8,
    /// The lower endpoint (by address, then port).
    pub low: Endpoint,
    /// The higher endpoint.
    pub high: Endpoint,
}

impl FlowKey {
    /// The key of a packet: IP packets with a protocol; TCP and UDP ones only with ports (a non-first
    /// fragment has none, and would otherwise make a flow of its own).
    #[must_use]
    pub fn of(meta: &PacketMeta) -> Option<Self> {
        let (src_ip, dst_ip, protocol) = (meta.src_ip?, meta.dst_ip?, meta.protocol?);
        let (src_port, dst_port) = match (meta.src_port, meta.dst_port) {
            (Some(s), Some(d)) => (s, d),
            _ if protocol == IpProto::TCP || protocol == IpProto::UDP => return None,
            _ => (0, 0),
        };
        let src = Endpoint {
            ip: src_ip,
            port: src_port,
        };
        let dst = Endpoint {
            ip: dst_ip,
            port: dst_port,
        };
        let (low, high) = if src <= dst { (src, dst) } else { (dst, src) };
        Some(Self {
            protocol: protocol.0,
            low,
            high,
        })
    }
}

/// Who started a flow, relative to this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowDirection {
    /// A program on this host opened it (its first packet went out).
    Outbound,
    /// A remote host opened it.
    Inbound,
    /// Both ends are this host (loopback); `local` is the side that sent the first packet.
    Local,
    /// Neither address is this host's (another network namespace, forwarded or bridged traffic).
    Unknown,
}

impl FlowDirection {
    /// Lower-case name (`out`, `in`, `local`, `unknown`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Outbound => "out",
            Self::Inbound => "in",
            Self::Local => "local",
            Self::Unknown => "unknown",
        }
    }
}

/// What the TCP flags of a flow said so far (other protocols stay `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    None,
    /// A SYN without an answer yet.
    SynSent,
    /// Data or a SYN-ACK was seen.
    Established,
    /// A FIN was seen.
    Closing,
    /// Both FINs or a RST: the connection is over.
    Closed,
}

impl TcpState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::SynSent,
            2 => Self::Established,
            3 => Self::Closing,
            4 => Self::Closed,
            _ => Self::None,
        }
    }

    /// Lower-case name for tables (`syn-sent`, `established`, ..; empty for non-TCP).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "",
            Self::SynSent => "syn-sent",
            Self::Established => "established",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }
}

/// A counter with one writer (the capture thread): a relaxed load and store, no locked instruction.
#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl Counter {
    #[inline]
    fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bits of [`Flow::verdicts_seen`].
const SEEN_ALLOW: u8 = 1;
const SEEN_BLOCK: u8 = 2;
const SEEN_LOG: u8 = 4;
/// Bits of the FINs seen, kept with the TCP state.
const FIN_FROM_LOCAL: u8 = 0x10;
const FIN_FROM_REMOTE: u8 = 0x20;

/// One connection: endpoints from this host's point of view, live counters, and the program behind it once
/// attribution is done. Shared as `Arc<Flow>` with events and front ends.
#[derive(Debug)]
pub struct Flow {
    /// The flow's key (both directions).
    pub key: FlowKey,
    /// This host's end (the first packet's source for outbound, local and unknown flows).
    pub local: Endpoint,
    /// The other end.
    pub remote: Endpoint,
    /// Who opened it.
    pub direction: FlowDirection,
    /// Capture time of the first packet (microseconds since the Unix epoch).
    pub first_seen_micros: i64,
    /// The interface of the first packet.
    pub iface: Arc<str>,
    last_seen_micros: AtomicI64,
    tx_packets: Counter,
    tx_bytes: Counter,
    rx_packets: Counter,
    rx_bytes: Counter,
    verdicts: AtomicU8,
    /// `TcpState` in the low bits, FIN bits above.
    tcp: AtomicU8,
    /// Name of the last deciding rule (`None` = default policy), stored only when it changes (rarely, so
    /// the lock is not taken per packet).
    rule: Mutex<Option<Arc<str>>>,
    last_rule_id: AtomicU64,
    /// The remote host's name, once passive DNS knows it.
    remote_name: OnceLock<Arc<str>>,
    attribution: OnceLock<Attribution>,
}

/// `last_rule_id` before the first packet and for the default policy.
const NO_RULE: u64 = u64::MAX;

impl Flow {
    /// A new flow from its first packet.
    #[must_use]
    pub fn new(key: FlowKey, meta: &PacketMeta, iface: Arc<str>) -> Self {
        let (src, dst) = (
            Endpoint {
                ip: meta.src_ip.unwrap_or(key.low.ip),
                port: meta.src_port.unwrap_or(0),
            },
            Endpoint {
                ip: meta.dst_ip.unwrap_or(key.high.ip),
                port: meta.dst_port.unwrap_or(0),
            },
        );
        let (direction, local, remote) = match meta.direction {
            Direction::Out => (FlowDirection::Outbound, src, dst),
            Direction::In => (FlowDirection::Inbound, dst, src),
            Direction::Local => (FlowDirection::Local, src, dst),
            Direction::Unknown => (FlowDirection::Unknown, src, dst),
        };
        Self {
            key,
            local,
            remote,
            direction,
            first_seen_micros: meta.ts_micros,
            iface,
            last_seen_micros: AtomicI64::new(meta.ts_micros),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            verdicts: AtomicU8::new(0),
            tcp: AtomicU8::new(0),
            rule: Mutex::new(None),
            last_rule_id: AtomicU64::new(NO_RULE - 1),
            remote_name: OnceLock::new(),
            attribution: OnceLock::new(),
        }
    }

    /// The program and user behind the flow; `None` while the lookup is still running.
    #[must_use]
    pub fn attribution(&self) -> Option<&Attribution> {
        self.attribution.get()
    }

    /// Sets the attribution (once; later calls are ignored and return false).
    pub fn set_attribution(&self, attribution: Attribution) -> bool {
        self.attribution.set(attribution).is_ok()
    }

    /// What the rule matcher knows of the flow's owner (nothing while the lookup runs).
    #[inline]
    #[must_use]
    pub fn owner(&self) -> Owner<'_> {
        self.attribution().map_or(Owner::UNKNOWN, Attribution::owner)
    }

    /// Capture time of the last packet.
    #[must_use]
    pub fn last_seen_micros(&self) -> i64 {
        self.last_seen_micros.load(Ordering::Relaxed)
    }

    /// Packets and bytes sent by this host's end.
    #[must_use]
    pub fn tx(&self) -> (u64, u64) {
        (self.tx_packets.get(), self.tx_bytes.get())
    }

    /// Packets and bytes received by this host's end.
    #[must_use]
    pub fn rx(&self) -> (u64, u64) {
        (self.rx_packets.get(), self.rx_bytes.get())
    }

    /// The verdicts its packets got so far, in `allow, block, log` order.
    #[must_use]
    pub fn verdicts_seen(&self) -> Vec<Action> {
        let bits = self.verdicts.load(Ordering::Relaxed);
        [
            (SEEN_ALLOW, Action::Allow),
            (SEEN_BLOCK, Action::Block),
            (SEEN_LOG, Action::Log),
        ]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, action)| action)
        .collect()
    }

    /// The rule that decided the last packet (`None`: the default policy).
    #[must_use]
    pub fn rule(&self) -> Option<Arc<str>> {
        self.rule.lock().ok().and_then(|r| r.clone())
    }

    /// TCP state so far (`TcpState::None` for other protocols).
    #[must_use]
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.tcp.load(Ordering::Relaxed) & 0x0f)
    }

    /// The remote host's name from passive DNS, if known.
    #[must_use]
    pub fn remote_name(&self) -> Option<&Arc<str>> {
        self.remote_name.get()
    }

    /// Counts one packet of the flow and what it said (capture thread only).
    #[inline]
    pub fn record(&self, meta: &PacketMeta, action: Action, rule: Option<(u32, &Arc<str>)>) {
        self.last_seen_micros.store(meta.ts_micros, Ordering::Relaxed);
        let from_local = meta.src_ip == Some(self.local.ip) && meta.src_port.unwrap_or(0) == self.local.port;
        let bytes = u64::from(meta.wire_len);
        if from_local {
            self.tx_packets.add(1);
            self.tx_bytes.add(bytes);
        } else {
            self.rx_packets.add(1);
            self.rx_bytes.add(bytes);
        }
        let bit = match action {
            Action::Allow => SEEN_ALLOW,
            Action::Block => SEEN_BLOCK,
            Action::Log => SEEN_LOG,
        };
        let seen = self.verdicts.load(Ordering::Relaxed);
        if seen & bit == 0 {
            self.verdicts.store(seen | bit, Ordering::Relaxed);
        }
        let rule_id = rule.map_or(NO_RULE, |(id, _)| u64::from(id));
        if self.last_rule_id.load(Ordering::Relaxed) != rule_id {
            self.last_rule_id.store(rule_id, Ordering::Relaxed);
            if let Ok(mut slot) = self.rule.lock() {
                *slot = rule.map(|(_, name)| Arc::clone(name));
            }
        }
        if let Some(flags) = meta.tcp_flags {
            self.track_tcp(flags, from_local);
        }
    }

    fn track_tcp(&self, flags: TcpFlags, from_local: bool) {
        let old = self.tcp.load(Ordering::Relaxed);
        let mut fins = old & (FIN_FROM_LOCAL | FIN_FROM_REMOTE);
        let state = TcpState::from_u8(old & 0x0f);
        if flags.has(TcpFlags::FIN) {
            fins |= if from_local {
                FIN_FROM_LOCAL
            } else {
                FIN_FROM_REMOTE
            };
        }
        let next = if flags.has(TcpFlags::RST) || fins == FIN_FROM_LOCAL | FIN_FROM_REMOTE {
            TcpState::Closed
        } else if fins != 0 {
            TcpState::Closing
        } else if flags.is_syn_only() && matches!(state, TcpState::None | TcpState::SynSent) {
            TcpState::SynSent
        } else if state == TcpState::Closed {
            // A packet after the end (a late ACK) does not reopen the flow.
            TcpState::Closed
        } else {
            TcpState::Established
        };
        let new = next as u8 | fins;
        if new != old {
            self.tcp.store(new, Ordering::Relaxed);
        }
    }

    /// Records the remote host's name the first time it is known.
    pub fn set_remote_name(&self, name: &Arc<str>) {
        if self.remote_name.get().is_none() {
            self.remote_name.set(Arc::clone(name)).ok();
        }
    }

    /// True when the flow may be dropped at packet time `now_micros`.
    fn expired(&self, now_micros: i64, config: &FlowConfig) -> bool {
        let limit = if self.tcp_state() == TcpState::Closed {
            config.closed_secs
        } else {
            config.idle_secs
        };
        now_micros.saturating_sub(self.last_seen_micros()) > i64::from(limit) * 1_000_000
    }
}

/// Counters of the flow table, published with each snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows in the table.
    pub active: usize,
    /// Flows created since the start.
    pub created: u64,
    /// Flows aged out since the start.
    pub expired: u64,
    /// Packets of new flows that found the table full (not tracked).
    pub untracked: u64,
    /// New flows the attribution thread could not take (its queue was full); they say `unknown (busy)`.
    pub attribution_dropped: u64,
}

/// The flows at one moment, in order of first packet, for front ends. Cheap to hold: the list shares the
/// flows, whose counters keep moving.
#[derive(Debug, Default)]
pub struct FlowSnapshot {
    /// The flows, oldest first.
    pub flows: Vec<Arc<Flow>>,
    /// Table counters when the snapshot was taken.
    pub stats: FlowStats,
}

/// The published side of the flow table: the latest snapshot, swapped in whole on the capture thread's
/// tick. Read it with [`SharedFlows::snapshot`] as often as you like (one atomic load).
#[derive(Debug, Default)]
pub struct SharedFlows {
    snapshot: ArcSwap<FlowSnapshot>,
}

impl SharedFlows {
    /// The latest snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<FlowSnapshot> {
        self.snapshot.load_full()
    }
}

/// The capture thread's flow table.
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    map: FxHashMap<FlowKey, Arc<Flow>>,
    /// The same flows in order of creation (removals are batched by `expire`).
    order: Vec<Arc<Flow>>,
    shared: Arc<SharedFlows>,
    stats: FlowStats,
    changed: bool,
    /// Latest packet time seen, the clock flows age on.
    now_micros: i64,
}

/// What [`FlowTable::observe`] found for a packet.
pub enum Observed<'a> {
    /// A packet of a known flow.
    Known(&'a Arc<Flow>),
    /// The first packet of a new flow.
    New(&'a Arc<Flow>),
    /// Not trackable (no addresses, a fragment without ports, or the table is full).
    None,
}

impl FlowTable {
    /// An empty table publishing to `shared`.
    #[must_use]
    pub fn new(config: FlowConfig, shared: Arc<SharedFlows>) -> Self {
        Self {
            config,
            map: FxHashMap::default(),
            order: Vec::new(),
            shared,
            stats: FlowStats::default(),
            changed: true,
            now_micros: i64::MIN,
        }
    }

    /// Finds the packet's flow, creating it on its first packet. One hash lookup for known flows.
    #[inline]
    pub fn observe(&mut self, meta: &PacketMeta, iface: &Arc<str>) -> Observed<'_> {
        self.now_micros = self.now_micros.max(meta.ts_micros);
        let Some(key) = FlowKey::of(meta) else {
            return Observed::None;
        };
        let Self {
            map,
            order,
            stats,
            changed,
            config,
            ..
        } = self;
        let full = map.len() >= config.max_flows;
        match map.entry(key) {
            // A SYN on a closed TCP flow is a new connection that reuses the 4-tuple, maybe by another
            // program: it gets a flow (and a lookup) of its own rather than the old one's attribution.
            std::collections::hash_map::Entry::Occupied(mut entry)
                if meta.tcp_flags.is_some_and(TcpFlags::is_syn_only)
                    && entry.get().tcp_state() == TcpState::Closed =>
            {
                let flow = Arc::new(Flow::new(key, meta, Arc::clone(iface)));
                order.push(Arc::clone(&flow));
                stats.created += 1;
                *changed = true;
                // The old flow stays in `order` until `expire` (its table entry is replaced now).
                entry.insert(flow);
                Observed::New(entry.into_mut())
            }
            std::collections::hash_map::Entry::Occupied(entry) => Observed::Known(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                stats.untracked += 1;
                Observed::None
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let flow = Arc::new(Flow::new(key, meta, Arc::clone(iface)));
                order.push(Arc::clone(&flow));
                stats.created += 1;
                *changed = true;
                Observed::New(entry.insert(flow))
            }
        }
    }

    /// Counts a new flow the attribution thread could not take.
    pub fn count_attribution_dropped(&mut self) {
        self.stats.attribution_dropped += 1;
    }

    /// Flows in the table.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no flow is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops flows that aged out (packet time); call on a slow tick.
    pub fn expire(&mut self) {
        let (now, config) = (self.now_micros, &self.config);
        let before = self.order.len();
        let map = &mut self.map;
        self.order.retain(|flow| {
            if flow.expired(now, config) {
                // The key may belong to a newer flow on the same tuple by now.
                if map
                    .get(&flow.key)
                    .is_some_and(|current| Arc::ptr_eq(current, flow))
                {
                    map.remove(&flow.key);
                }
                false
            } else {
                true
            }
        });
        let gone = before - self.order.len();
        if gone > 0 {
            self.stats.expired += gone as u64;
            self.changed = true;
        }
    }

    /// Publishes a new snapshot if flows came or went since the last one (counters inside flows are live
    /// anyway). O(flows); call on a tick, not per packet.
    pub fn publish(&mut self) {
        if !self.changed {
            return;
        }
        self.changed = false;
        self.stats.active = self.map.len();
        self.shared.snapshot.store(Arc::new(FlowSnapshot {
            flows: self.order.clone(),
            stats: self.stats,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::LinkType;

    fn packet(src: &str, sport: u16, dst: &str, dport: u16, dir: Direction, flags: u8) -> PacketMeta {
        let mut m = PacketMeta::new(1_000_000, 60, 60, LinkType::Ethernet);
        m.src_ip = Some(src.parse().unwrap());
        m.dst_ip = Some(dst.parse().unwrap());
        m.protocol = Some(IpProto::TCP);
        m.src_port = Some(sport);
        m.dst_port = Some(dport);
        m.direction = dir;
        m.tcp_flags = Some(TcpFlags(flags));
        m
    }

    #[test]
    fn both_directions_are_one_flow_seen_from_this_host() {
        let shared = Arc::new(SharedFlows::default());
        let mut table = FlowTable::new(FlowConfig::default(), Arc::clone(&shared));
        let iface: Arc<str> = Arc::from("eth0");
        let syn = packet("10.0.0.1", 40000, "192.0.2.9", 443, Direction::Out, TcpFlags::SYN);
        let flow = match table.observe(&syn, &iface) {
            Observed::New(flow) => Arc::clone(flow),
            _ => panic!("first packet makes a flow"),
        };
        flow.record(&syn, Action::Allow, None);
        let reply = packet(
            "192.0.2.9",
            443,
            "10.0.0.1",
            40000,
            Direction::In,
            TcpFlags::SYN | TcpFlags::ACK,
        );
        let Observed::Known(same) = table.observe(&reply, &iface) else {
            panic!("the reply belongs to the flow")
        };
        assert!(Arc::ptr_eq(same, &flow));
        let name: Arc<str> = Arc::from("web");
        flow.record(&reply, Action::Block, Some((3, &name)));
        assert_eq!(flow.direction, FlowDirection::Outbound);
        assert_eq!(flow.local.to_string(), "10.0.0.1:40000");
        assert_eq!(flow.remote.to_string(), "192.0.2.9:443");
        assert_eq!((flow.tx(), flow.rx()), ((1, 60), (1, 60)));
        assert_eq!(flow.verdicts_seen(), vec![Action::Allow, Action::Block]);
        assert_eq!(flow.rule().as_deref(), Some("web"));
        assert_eq!(flow.tcp_state(), TcpState::Established);
        assert!(flow.attribution().is_none());
        table.publish();
        let snap = shared.snapshot();
        assert_eq!(snap.flows.len(), 1);
        assert_eq!(snap.stats.created, 1);
    }

    #[test]
    fn tcp_state_follows_the_flags_and_closed_flows_age_out_first() {
        let shared = Arc::new(SharedFlows::default());
        let config = FlowConfig {
            max_flows: 10,
            idle_secs: 100,
            closed_secs: 5,
        };
        let mut table = FlowTable::new(config, shared);
        let iface: Arc<str> = Arc::from("eth0");
        let mut closed = packet("10.0.0.1", 1, "10.0.0.2", 80, Direction::Out, TcpFlags::SYN);
        let flow = match table.observe(&closed, &iface) {
            Observed::New(f) => Arc::clone(f),
            _ => panic!(),
        };
        flow.record(&closed, Action::Allow, None);
        assert_eq!(flow.tcp_state(), TcpState::SynSent);
        closed.tcp_flags = Some(TcpFlags(TcpFlags::FIN | TcpFlags::ACK));
        flow.record(&closed, Action::Allow, None);
        assert_eq!(flow.tcp_state(), TcpState::Closing);
        let fin_back = packet(
            "10.0.0.2",
            80,
            "10.0.0.1",
            1,
            Direction::In,
            TcpFlags::FIN | TcpFlags::ACK,
        );
        flow.record(&fin_back, Action::Allow, None);
        assert_eq!(flow.tcp_state(), TcpState::Closed);
        let open = packet("10.0.0.1", 2, "10.0.0.2", 80, Direction::Out, TcpFlags::ACK);
        assert!(matches!(table.observe(&open, &iface), Observed::New(_)));
        // Ten seconds later (packet time): the closed flow goes, the open one stays.
        let mut later = packet("10.0.0.1", 3, "10.0.0.2", 80, Direction::Out, TcpFlags::ACK);
        later.ts_micros += 10_000_000;
        table.observe(&later, &iface);
        table.expire();
        assert_eq!(table.len(), 2);
        assert!(!table.map.contains_key(&flow.key));
    }

    #[test]
    fn a_syn_after_a_closed_connection_starts_a_new_flow() {
        let shared = Arc::new(SharedFlows::default());
        let mut table = FlowTable::new(FlowConfig::default(), shared);
        let iface: Arc<str> = Arc::from("eth0");
        let syn = packet("10.0.0.1", 40000, "10.0.0.2", 80, Direction::Out, TcpFlags::SYN);
        let Observed::New(old) = table.observe(&syn, &iface) else {
            panic!()
        };
        let old = Arc::clone(old);
        old.record(&syn, Action::Allow, None);
        let rst = packet("10.0.0.2", 80, "10.0.0.1", 40000, Direction::In, TcpFlags::RST);
        old.record(&rst, Action::Allow, None);
        assert_eq!(old.tcp_state(), TcpState::Closed);
        let Observed::New(new) = table.observe(&syn, &iface) else {
            panic!("a new connection on the same tuple")
        };
        assert!(!Arc::ptr_eq(new, &old));
        assert!(matches!(table.observe(&rst, &iface), Observed::Known(f) if !Arc::ptr_eq(f, &old)));
        assert_eq!(table.order.len(), 2);
    }

    #[test]
    fn a_full_table_counts_instead_of_growing_and_fragments_make_no_flow() {
        let shared = Arc::new(SharedFlows::default());
        let config = FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        };
        let mut table = FlowTable::new(config, Arc::clone(&shared));
        let iface: Arc<str> = Arc::from("eth0");
        for port in 1..=3 {
            table.observe(
                &packet("10.0.0.1", port, "10.0.0.2", 80, Direction::Out, TcpFlags::SYN),
                &iface,
            );
        }
        let mut fragment = packet("10.0.0.1", 9, "10.0.0.2", 80, Direction::Out, 0);
        fragment.src_port = None;
        fragment.dst_port = None;
        assert!(matches!(table.observe(&fragment, &iface), Observed::None));
        table.publish();
        let stats = shared.snapshot().stats;
        assert_eq!((stats.active, stats.created, stats.untracked), (2, 2, 1));
    }
}
