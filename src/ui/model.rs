//! The compact row store behind the traffic table.
//!
//! Rows are stored compactly: a `Row` is a fixed-size copy of the fields the table shows and the filter
//! tests (under 100 bytes), with strings (interface, rule and host names) interned once in `Strings` and
//! referred to by a 32-bit id. A million rows therefore cost about 100 MB, not the ~250 bytes plus heap
//! strings of a full `Event` each.
//!
//! The program and user behind a row are interned the same way (`Owners`: one entry per process instance or
//! unknown reason, referred to by a 32-bit `OwnerId`). A row whose flow is still being looked up when it
//! arrives is `OWNER_PENDING` and listed apart (`RowStore::resolve_pending`) until the attribution thread
//! fills the flow in, a few milliseconds later; the row then gets its owner, so rows never hold a flow.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::attrib::{Attribution, UnknownReason};
use crate::detect::{Alert, AlertKind};
use crate::event::Event;
use crate::filter::FilterSubject;
use crate::flows::Flow;
use crate::packet::{Direction, IpProto, LinkType, Malformed, NetworkKind, PacketMeta, TcpFlags};
use crate::rules::{Action, Verdict};

/// Id of an interned string; `0` means "none".
pub type StrId = u32;

/// Interned strings shared by all rows (interface, rule and host names). Ids stay valid for the life of
/// the store; the set of distinct names is small (rules, interfaces, the engine's bounded name cache).
#[derive(Debug, Default)]
pub struct Strings {
    list: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, StrId>,
    /// Bytes of string data held, for the memory figure.
    bytes: usize,
}

impl Strings {
    /// The id of `text`, interning it on first sight; `None` gives 0.
    pub fn intern(&mut self, text: Option<&Arc<str>>) -> StrId {
        let Some(text) = text else { return 0 };
        if let Some(id) = self.ids.get(&**text) {
            return *id;
        }
        self.list.push(Arc::clone(text));
        // Ids start at 1 (0 is "none"); more than 4 billion distinct names cannot be held in memory anyway.
        let id = StrId::try_from(self.list.len()).unwrap_or(StrId::MAX);
        self.ids.insert(Arc::clone(text), id);
        self.bytes += text.len();
        id
    }

    /// The string of `id` (`None` for 0 or an unknown id).
    #[must_use]
    pub fn get(&self, id: StrId) -> Option<&Arc<str>> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.list.get(index)
    }

    /// Distinct strings held and an estimate of the bytes they take (data plus map and list overhead).
    #[must_use]
    pub fn usage(&self) -> (usize, usize) {
        // Each string: its bytes + Arc header (16) + list slot (16) + map entry (~16 key + 4 id, rounded).
        (self.list.len(), self.bytes + self.list.len() * 72)
    }
}

/// Id of an interned owner (`Owners`): `OWNER_NONE` (untracked), `OWNER_PENDING` (looked up now), or an
/// entry.
pub type OwnerId = u32;

/// The packet belongs to no tracked flow (attribution off, not IP, a full flow table): no program.
pub const OWNER_NONE: OwnerId = 0;
/// The packet's flow is still being looked up.
pub const OWNER_PENDING: OwnerId = OwnerId::MAX;

/// What makes two attributions the same owner: the process instance (pid and start time) and user, or the
/// reason a program is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OwnerKey {
    Process { pid: u32, start_ticks: u64, uid: u32 },
    Unknown(UnknownReason, Option<u32>),
    Offline,
}

impl OwnerKey {
    fn of(attribution: &Attribution) -> Self {
        match attribution {
            Attribution::Process { process, user } => Self::Process {
                pid: process.pid,
                start_ticks: process.start_ticks,
                uid: user.uid,
            },
            Attribution::Unknown { reason, user } => Self::Unknown(*reason, user.as_ref().map(|u| u.uid)),
            Attribution::Offline => Self::Offline,
        }
    }
}

/// Interned owners shared by all rows: one entry per process instance (its details shared with the flows
/// through `Arc`) or unknown reason. Like `Strings`, entries live as long as the store; there is one per
/// process that talked, not per packet.
#[derive(Debug, Default)]
pub struct Owners {
    list: Vec<Attribution>,
    ids: HashMap<OwnerKey, OwnerId>,
    /// Bytes held, for the memory figure.
    bytes: usize,
}

impl Owners {
    /// The id of `attribution`, interning it on first sight.
    pub fn intern(&mut self, attribution: &Attribution) -> OwnerId {
        let key = OwnerKey::of(attribution);
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        self.bytes += size_of::<Attribution>() + size_of::<(OwnerKey, OwnerId)>() + 16;
        if let Some(process) = attribution.process() {
            self.bytes += size_of_val(process)
                + process.exe.len()
                + process.cmdline.iter().map(|a| a.len() + 24).sum::<usize>()
                + process.unit.as_ref().map_or(0, String::len);
        }
        self.list.push(attribution.clone());
        // Ids start at 1; the last id is `OWNER_PENDING`, never reached by the processes one host runs.
        let id = OwnerId::try_from(self.list.len())
            .unwrap_or(OWNER_PENDING - 1)
            .min(OWNER_PENDING - 1);
        self.ids.insert(key, id);
        id
    }

    /// The owner of `id` (`None` for none, pending, or an unknown id).
    #[must_use]
    pub fn get(&self, id: OwnerId) -> Option<&Attribution> {
        let index = usize::try_from(id).ok()?.checked_sub(1)?;
        self.list.get(index)
    }

    /// Distinct owners held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no owner is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// An estimate of the bytes held (entries, map, process details).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// One stored packet, as compact as the table allows (see `size_of::<Row>()` in the frame bench).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The event's sequence number (links to the raw bytes in `RawStore`).
    pub seq: u64,
    pub ts_micros: i64,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub wire_len: u32,
    pub iface: StrId,
    pub rule_name: StrId,
    pub src_name: StrId,
    pub dst_name: StrId,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub network: NetworkKind,
    pub protocol: Option<IpProto>,
    pub tcp_flags: Option<TcpFlags>,
    pub icmp_type_code: Option<(u8, u8)>,
    pub action: Action,
    pub direction: Direction,
    pub alert: Option<AlertKind>,
    pub malformed: Option<Malformed>,
    pub kernel_dropped: bool,
    /// The rule set that judged it (`Event::rules_version`).
    pub rules_version: u32,
    /// The program and user (`Owners`), `OWNER_NONE` or `OWNER_PENDING`.
    pub owner: OwnerId,
}

impl Row {
    /// The compact copy of `event`, interning its strings in `strings` and its owner in `owners` (a flow
    /// still being looked up gives `OWNER_PENDING`).
    pub fn from_event(event: &Event, strings: &mut Strings, owners: &mut Owners) -> Self {
        let m = &event.meta;
        Self {
            seq: event.seq,
            ts_micros: m.ts_micros,
            src_ip: m.src_ip,
            dst_ip: m.dst_ip,
            wire_len: m.wire_len,
            iface: strings.intern(Some(&event.iface)),
            rule_name: strings.intern(event.rule_name.as_ref()),
            src_name: strings.intern(event.src_name.as_ref()),
            dst_name: strings.intern(event.dst_name.as_ref()),
            src_port: m.src_port,
            dst_port: m.dst_port,
            network: m.network,
            protocol: m.protocol,
            tcp_flags: m.tcp_flags,
            icmp_type_code: m.icmp_type_code,
            action: event.verdict.action,
            direction: m.direction,
            alert: event.alert.as_ref().map(|a| a.kind),
            malformed: m.malformed,
            kernel_dropped: event.kernel_dropped,
            rules_version: event.rules_version,
            owner: match event.attribution() {
                Some(attribution) => owners.intern(attribution),
                None if event.attribution_pending() => OWNER_PENDING,
                None => OWNER_NONE,
            },
        }
    }

    /// The packet facts back as a `PacketMeta` (link details such as VLAN ids and fragments are not kept;
    /// the rules and the filter do not need them).
    #[must_use]
    pub fn meta(&self) -> PacketMeta {
        let mut meta = PacketMeta::new(self.ts_micros, self.wire_len, self.wire_len, LinkType::Ethernet);
        meta.network = self.network;
        meta.src_ip = self.src_ip;
        meta.dst_ip = self.dst_ip;
        meta.protocol = self.protocol;
        meta.src_port = self.src_port;
        meta.dst_port = self.dst_port;
        meta.tcp_flags = self.tcp_flags;
        meta.icmp_type_code = self.icmp_type_code;
        meta.direction = self.direction;
        meta.malformed = self.malformed;
        meta
    }

    /// The row back as an `Event` (for the clipboard text, exports and rules made from a packet).
    #[must_use]
    pub fn to_event(&self, store: &RowStore) -> Event {
        let strings = &store.strings;
        let meta = self.meta();
        let alert = self.alert.map(|kind| Alert {
            kind,
            src_ip: meta.src_ip.unwrap_or(IpAddr::from([0u8, 0, 0, 0])),
            ts_micros: self.ts_micros,
            reason: store.alert_reason(self.seq).unwrap_or_default().to_owned(),
        });
        Event {
            seq: self.seq,
            meta,
            verdict: Verdict {
                action: self.action,
                rule: None,
            },
            rule_name: strings.get(self.rule_name).cloned(),
            iface: strings.get(self.iface).cloned().unwrap_or_else(|| Arc::from("?")),
            alert,
            src_name: strings.get(self.src_name).cloned(),
            dst_name: strings.get(self.dst_name).cloned(),
            kernel_dropped: self.kernel_dropped,
            origin: crate::event::Origin::Untracked,
            rules_version: self.rules_version,
        }
    }
}

/// A row seen through the filter's eyes.
pub struct RowSubject<'a> {
    row: &'a Row,
    meta: PacketMeta,
    strings: &'a Strings,
    owners: &'a Owners,
}

impl<'a> RowSubject<'a> {
    /// Wraps `row` of `store` for `Filter::matches`.
    #[must_use]
    pub fn new(row: &'a Row, store: &'a RowStore) -> Self {
        Self {
            row,
            meta: row.meta(),
            strings: &store.strings,
            owners: &store.owners,
        }
    }
}

impl FilterSubject for RowSubject<'_> {
    fn meta(&self) -> &PacketMeta {
        &self.meta
    }
    fn action(&self) -> Action {
        self.row.action
    }
    fn rule_name(&self) -> Option<&str> {
        self.strings.get(self.row.rule_name).map(|s| &**s)
    }
    fn iface(&self) -> &str {
        self.strings.get(self.row.iface).map_or("", |s| &**s)
    }
    fn alert_kind(&self) -> Option<AlertKind> {
        self.row.alert
    }
    fn src_name(&self) -> Option<&str> {
        self.strings.get(self.row.src_name).map(|s| &**s)
    }
    fn dst_name(&self) -> Option<&str> {
        self.strings.get(self.row.dst_name).map(|s| &**s)
    }
    fn kernel_dropped(&self) -> bool {
        self.row.kernel_dropped
    }
    fn attribution(&self) -> Option<&Attribution> {
        self.owners.get(self.row.owner)
    }
}

/// Stored rows, oldest evicted first past `cap`. Rows are addressed by an absolute index that never
/// changes (index of the first row ever stored is 0), so index lists survive eviction.
#[derive(Debug)]
pub struct RowStore {
    rows: VecDeque<Row>,
    first_index: u64,
    cap: usize,
    evicted: u64,
    strings: Strings,
    owners: Owners,
    /// Rows whose flow was still being looked up when they arrived, with that flow, oldest first.
    pending: VecDeque<(u64, Arc<Flow>)>,
    /// Detection reasons of the rows that raised an alert (rare), by `seq`.
    alert_reasons: BTreeMap<u64, Box<str>>,
}

impl RowStore {
    /// An empty store keeping at most `cap` rows (at least 1).
    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            rows: VecDeque::new(),
            first_index: 0,
            cap: cap.max(1),
            evicted: 0,
            strings: Strings::default(),
            owners: Owners::default(),
            pending: VecDeque::new(),
            alert_reasons: BTreeMap::new(),
        }
    }

    /// Stores `event` and returns its absolute index. Call `evict` after a batch.
    pub fn push(&mut self, event: &Event) -> u64 {
        let index = self.end_index();
        if let Some(alert) = &event.alert {
            self.alert_reasons
                .insert(event.seq, alert.reason.clone().into_boxed_str());
        }
        let row = Row::from_event(event, &mut self.strings, &mut self.owners);
        if row.owner == OWNER_PENDING
            && let Some(flow) = event.flow()
        {
            self.pending.push_back((index, Arc::clone(flow)));
        }
        self.rows.push_back(row);
        index
    }

    /// Gives the rows whose lookup has finished since their arrival their owner, and returns their
    /// absolute indices (ascending). O(rows still pending), which the attribution thread keeps short (a
    /// flow is settled within about 160 ms); evicted rows are forgotten.
    pub fn resolve_pending(&mut self) -> Vec<u64> {
        let mut resolved = Vec::new();
        if self.pending.is_empty() {
            return resolved;
        }
        let first = self.first_index;
        let Self {
            pending,
            rows,
            owners,
            ..
        } = self;
        pending.retain(|(index, flow)| {
            let Some(offset) = index.checked_sub(first).and_then(|k| usize::try_from(k).ok()) else {
                return false;
            };
            let Some(attribution) = flow.attribution() else {
                return true;
            };
            if let Some(row) = rows.get_mut(offset) {
                row.owner = owners.intern(attribution);
                resolved.push(*index);
            }
            false
        });
        resolved
    }

    /// Rows waiting for their owner.
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The program and user of `row` (`None`: untracked or still being looked up).
    #[must_use]
    pub fn owner(&self, row: &Row) -> Option<&Attribution> {
        self.owners.get(row.owner)
    }

    /// Where the lookup of `row`'s program stands.
    #[must_use]
    pub fn owner_state(&self, row: &Row) -> super::widgets::OwnerState<'_> {
        use super::widgets::OwnerState;
        match row.owner {
            OWNER_NONE => OwnerState::Untracked,
            OWNER_PENDING => OwnerState::Pending,
            id => self
                .owners
                .get(id)
                .map_or(OwnerState::Untracked, OwnerState::Known),
        }
    }

    /// Interned owners.
    #[must_use]
    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    /// Drops the oldest rows past the cap; returns the new first index.
    pub fn evict(&mut self) -> u64 {
        let excess = self.rows.len().saturating_sub(self.cap);
        if excess > 0 {
            self.rows.drain(..excess);
            self.first_index += excess as u64;
            self.evicted += excess as u64;
            if let Some(first) = self.rows.front() {
                let keep = self.alert_reasons.split_off(&first.seq);
                self.alert_reasons = keep;
            }
        }
        self.first_index
    }

    /// Changes the cap (evicts at the next `evict`).
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// The cap.
    #[must_use]
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The row at absolute `index`, if still stored.
    #[must_use]
    pub fn get(&self, index: u64) -> Option<&Row> {
        usize::try_from(index.checked_sub(self.first_index)?)
            .ok()
            .and_then(|k| self.rows.get(k))
    }

    /// Rows stored now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Absolute index of the oldest stored row.
    #[must_use]
    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    /// Absolute index the next row will get.
    #[must_use]
    pub fn end_index(&self) -> u64 {
        self.first_index + self.rows.len() as u64
    }

    /// Rows evicted by the cap so far.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Interned strings.
    #[must_use]
    pub fn strings(&self) -> &Strings {
        &self.strings
    }

    /// The string of `id`, or "" for none.
    #[must_use]
    pub fn text(&self, id: StrId) -> &str {
        self.strings.get(id).map_or("", |s| &**s)
    }

    /// The detection reason of the alert row `seq`, if any.
    #[must_use]
    pub fn alert_reason(&self, seq: u64) -> Option<&str> {
        self.alert_reasons.get(&seq).map(|s| &**s)
    }

    /// Rows with their absolute index, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &Row)> + ExactSizeIterator {
        let first = self.first_index;
        self.rows
            .iter()
            .enumerate()
            .map(move |(k, row)| (first + k as u64, row))
    }

    /// Bytes per stored row: the fixed part plus the shared strings and owners spread over the rows.
    #[must_use]
    pub fn bytes_per_row(&self) -> usize {
        let (_, string_bytes) = self.strings.usage();
        size_of::<Row>() + (string_bytes + self.owners.bytes()) / self.rows.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, rule: Option<&str>) -> Event {
        let mut event = crate::event::testing::ssh_probe(seq, 1_000 * i64::try_from(seq).unwrap(), 40_000);
        event.rule_name = rule.map(Arc::from);
        event.dst_name = Some(Arc::from("example.org"));
        event
    }

    #[test]
    fn rows_are_compact() {
        assert!(size_of::<Row>() <= 128, "{}", size_of::<Row>());
    }

    #[test]
    fn row_round_trips_what_the_table_shows() {
        let mut store = RowStore::new(10);
        let e = event(7, Some("no ssh"));
        let index = store.push(&e);
        let back = store.get(index).unwrap().to_event(&store);
        assert_eq!(back.seq, 7);
        assert_eq!(back.meta.src_ip, e.meta.src_ip);
        assert_eq!(back.meta.dst_port, Some(22));
        assert_eq!(back.rule_name.as_deref(), Some("no ssh"));
        assert_eq!(back.dst_name.as_deref(), Some("example.org"));
        assert_eq!(&*back.iface, "eth0");
        assert_eq!(store.strings().usage().0, 3);
    }

    #[test]
    fn eviction_keeps_absolute_indices() {
        let mut store = RowStore::new(3);
        for seq in 1..=5 {
            store.push(&event(seq, None));
        }
        assert_eq!(store.evict(), 2);
        assert_eq!((store.len(), store.evicted()), (3, 2));
        assert!(store.get(1).is_none());
        assert_eq!(store.get(2).unwrap().seq, 3);
        assert_eq!(store.end_index(), 5);
    }

    #[test]
    fn rows_get_their_owner_when_the_lookup_finishes() {
        use crate::attrib::{ProcessInfo, UserId};
        let mut store = RowStore::new(3);
        let probe = event(1, None);
        let key = crate::flows::FlowKey::of(&probe.meta).unwrap();
        let flow = Arc::new(Flow::new(key, &probe.meta, Arc::from("eth0")));
        let mut pending = probe.clone();
        pending.origin = crate::event::Origin::Flow(Arc::clone(&flow));
        store.push(&probe);
        store.push(&pending);
        store.push(&pending);
        assert_eq!(store.get(0).unwrap().owner, OWNER_NONE);
        assert_eq!(store.get(1).unwrap().owner, OWNER_PENDING);
        assert!(store.resolve_pending().is_empty(), "still looking");
        let curl = Attribution::Process {
            process: Arc::new(ProcessInfo {
                pid: 42,
                exe: "/usr/bin/curl".into(),
                cmdline: vec!["curl".into()],
                start_ticks: 7,
                unit: None,
                app: None,
            }),
            user: UserId {
                uid: 1000,
                name: None,
            },
        };
        flow.set_attribution(curl.clone());
        // One row of the flow was evicted meanwhile: only the stored one is resolved.
        store.push(&probe);
        store.push(&probe);
        store.evict();
        assert_eq!(store.resolve_pending(), vec![2]);
        assert_eq!(store.pending_len(), 0);
        let owner = store.get(2).unwrap().owner;
        assert_eq!(store.owner(store.get(2).unwrap()), Some(&curl));
        // A second flow of the same process shares the owner entry.
        let mut again = probe.clone();
        let other = Arc::new(Flow::new(key, &probe.meta, Arc::from("eth0")));
        other.set_attribution(curl);
        again.origin = crate::event::Origin::Flow(other);
        store.push(&again);
        assert_eq!(store.get(5).unwrap().owner, owner);
        assert_eq!(store.owners().len(), 1);
        assert!(
            crate::filter::Filter::parse("app:curl user:1000")
                .unwrap()
                .matches(&RowSubject::new(store.get(5).unwrap(), &store))
        );
    }

    #[test]
    fn filter_sees_interned_strings() {
        let mut store = RowStore::new(10);
        store.push(&event(1, Some("no ssh")));
        let row = store.get(0).unwrap();
        let subject = RowSubject::new(row, &store);
        assert!(
            crate::filter::Filter::parse("rule:ssh host:example port:22")
                .unwrap()
                .matches(&subject)
        );
        assert!(
            !crate::filter::Filter::parse("verdict:allow")
                .unwrap()
                .matches(&subject)
        );
    }
}
