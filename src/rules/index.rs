//! The matcher index: evaluation examines only rules that can match, so 10,000 rules cost about what 10
//! cost.
//!
//! Every enabled rule goes into exactly one bucket family, chosen by its most selective constraint:
//! 1. it has `src` networks (none of them /0): one entry per network in a per-prefix-length hash map of
//!    source networks;
//! 2. else it has `dst` networks (none /0): the same for destinations;
//! 3. else it names a `user`: a map keyed by uid, consulted only for packets whose user is known;
//! 4. else it names a `program`: a list consulted only for packets whose program is known;
//! 5. else it has `dst_ports` covering few ports: one entry per port in a map keyed by (protocol, port);
//! 6. else it has `src_ports` covering few ports: the same for source ports;
//! 7. else it names a protocol: a list per protocol number;
//! 8. else: the list of rules that may match anything.
//!
//! So rules by user or program cost nothing for packets of unknown owner (offline replay, a flow whose
//! lookup has not finished), which they can never match.
//!
//! Every bucket holds rule ids in ascending order. A packet consults only the buckets its own fields
//! select (its source address under each prefix length in use, its destination, its ports, its protocol,
//! the catch-all list); in each it runs the full rule check on candidates in order and stops at the first
//! full match or at an id not lower than the best found so far. The lowest id wins, which is exactly the
//! linear scan's answer: a rule that matches a packet always sits in a bucket that packet consults.
//!
//! Per prefix length, a 64 Kibit filter of the networks' leading bits (the /16 for IPv4, a fold of the
//! /32 for IPv6) skips the hash lookup for addresses no network of that length can contain. Nothing is
//! allocated per evaluation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;

use super::RuleId;
use super::compile::Rule;
use super::predicate::Owner;
use crate::packet::PacketMeta;

/// A small fast hasher for integer keys (FxHash with a final rotation so the bucket bits depend on every
/// input bit). Keys are addresses and ports from traffic, but the map only ever holds keys from the rule
/// file, so collision flooding by packets cannot grow it.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.hash = self.hash.wrapping_add(v).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Rule ids of one bucket, ascending.
type Ids = Box<[u32]>;

/// A port rule expanded into at most this many (protocol, port) entries goes into the port map; wider
/// ones go to the protocol lists.
const MAX_PORTS_PER_RULE: u32 = 1024;
/// Total (protocol, port) entries over all rules, bounding memory for huge range-heavy files.
const MAX_PORT_ENTRIES: u32 = 1 << 18;
/// Key for port rules of protocol `Any`.
const ANY_PROTO: u32 = 256;

/// An address family's bits as an unsigned integer.
trait AddrBits: Copy + Eq + std::hash::Hash {
    /// Prefix lengths at or above this use the leading-bits filter.
    const FILTER_MIN: u8;
    fn masked(self, len: u8) -> Self;
    /// 16-bit summary of the leading `FILTER_MIN` bits.
    fn filter_key(self) -> usize;
}

impl AddrBits for u32 {
    const FILTER_MIN: u8 = 16;
    #[inline]
    fn masked(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len.min(32))))
        }
    }
    #[inline]
    fn filter_key(self) -> usize {
        (self >> 16) as usize
    }
}

impl AddrBits for u128 {
    const FILTER_MIN: u8 = 32;
    #[inline]
    fn masked(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len.min(128))))
        }
    }
    #[inline]
    fn filter_key(self) -> usize {
        let top = (self >> 96) as u32;
        ((top >> 16) ^ (top & 0xffff)) as usize
    }
}

/// All networks of one prefix length in one family.
#[derive(Debug)]
struct PrefixTable<A> {
    len: u8,
    /// 65,536-bit filter on `filter_key` of the networks (absent for short prefixes).
    filter: Option<Box<[u64]>>,
    /// The networks of a table this small (a typical hand-written rule set has a few per prefix length),
    /// compared one by one: cheaper than hashing the address (`map` is then empty).
    few: Box<[(A, Ids)]>,
    map: FxMap<A, Ids>,
}

/// A prefix table with at most this many networks is searched linearly.
const FEW_NETWORKS: usize = 4;

impl<A: AddrBits> PrefixTable<A> {
    #[inline]
    fn lookup(&self, addr: A) -> Option<&[u32]> {
        if let Some(f) = &self.filter {
            let k = addr.filter_key();
            let word = f.get(k / 64).copied().unwrap_or(0);
            if word & (1u64 << (k % 64)) == 0 {
                return None;
            }
        }
        let masked = addr.masked(self.len);
        if self.map.is_empty() {
            return self
                .few
                .iter()
                .find(|(net, _)| *net == masked)
                .map(|(_, ids)| &**ids);
        }
        self.map.get(&masked).map(|ids| &**ids)
    }
}

/// Networks of one family, by prefix length (longest first).
#[derive(Debug)]
struct FamilyIndex<A> {
    tables: Vec<PrefixTable<A>>,
}

impl<A: AddrBits> FamilyIndex<A> {
    fn build(entries: Vec<(A, u8, u32)>) -> Self {
        let mut by_len: std::collections::BTreeMap<u8, FxMap<A, Vec<u32>>> =
            std::collections::BTreeMap::new();
        for (addr, len, id) in entries {
            by_len
                .entry(len)
                .or_default()
                .entry(addr.masked(len))
                .or_default()
                .push(id);
        }
        let tables = by_len
            .into_iter()
            .rev()
            .map(|(len, map)| {
                let map_len = map.len();
                let filter = (len >= A::FILTER_MIN).then(|| {
                    let mut bits = vec![0u64; 1024].into_boxed_slice();
                    for addr in map.keys() {
                        let k = addr.filter_key();
                        if let Some(w) = bits.get_mut(k / 64) {
                            *w |= 1u64 << (k % 64);
                        }
                    }
                    bits
                });
                let entries = map.into_iter().map(|(k, v)| (k, freeze(v)));
                if map_len <= FEW_NETWORKS {
                    PrefixTable {
                        len,
                        filter,
                        few: entries.collect(),
                        map: FxMap::default(),
                    }
                } else {
                    PrefixTable {
                        len,
                        filter,
                        few: Box::default(),
                        map: entries.collect(),
                    }
                }
            })
            .collect();
        Self { tables }
    }
}

/// Networks of both families.
#[derive(Debug)]
struct NetIndex {
    v4: FamilyIndex<u32>,
    v6: FamilyIndex<u128>,
}

impl NetIndex {
    fn build(entries: Vec<(IpNet, u32)>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (net, id) in entries {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.addr()), n.prefix_len(), id)),
                IpNet::V6(n) => v6.push((u128::from(n.addr()), n.prefix_len(), id)),
            }
        }
        Self {
            v4: FamilyIndex::build(v4),
            v6: FamilyIndex::build(v6),
        }
    }

    #[inline]
    fn consult(&self, ip: Option<IpAddr>, mut visit: impl FnMut(&[u32])) {
        match ip {
            Some(IpAddr::V4(a)) => {
                let a = u32::from(a);
                for t in &self.v4.tables {
                    if let Some(ids) = t.lookup(a) {
                        visit(ids);
                    }
                }
            }
            Some(IpAddr::V6(a)) => {
                let a = u128::from(a);
                for t in &self.v6.tables {
                    if let Some(ids) = t.lookup(a) {
                        visit(ids);
                    }
                }
            }
            None => {}
        }
    }
}

/// Rules keyed by (protocol, port).
#[derive(Debug, Default)]
struct PortIndex {
    map: FxMap<u32, Ids>,
    has_any_proto: bool,
    /// One bit per port that is in some key of `map` (8 KiB): most packets' ports are in no rule, and a
    /// bit test is cheaper than hashing into the map.
    ports: Box<[u64]>,
}

impl PortIndex {
    fn build(map: FxMap<u32, Vec<u32>>, has_any_proto: bool) -> Self {
        let mut ports = vec![0u64; 1024].into_boxed_slice();
        for key in map.keys() {
            let port = (key & 0xffff) as usize;
            if let Some(word) = ports.get_mut(port / 64) {
                *word |= 1u64 << (port % 64);
            }
        }
        Self {
            map: map.into_iter().map(|(k, v)| (k, freeze(v))).collect(),
            has_any_proto,
            ports,
        }
    }

    #[inline]
    fn consult(&self, proto: Option<u8>, port: Option<u16>, mut visit: impl FnMut(&[u32])) {
        if self.map.is_empty() {
            return;
        }
        let Some(port) = port else { return };
        let word = self.ports.get(usize::from(port) / 64).copied().unwrap_or(0);
        if word & (1u64 << (port % 64)) == 0 {
            return;
        }
        let port = u32::from(port);
        if let Some(p) = proto
            && let Some(ids) = self.map.get(&((u32::from(p) << 16) | port))
        {
            visit(ids);
        }
        if self.has_any_proto
            && let Some(ids) = self.map.get(&((ANY_PROTO << 16) | port))
        {
            visit(ids);
        }
    }
}

/// The compiled index of a rule set.
#[derive(Debug)]
pub(crate) struct RuleIndex {
    src: NetIndex,
    dst: NetIndex,
    dst_ports: PortIndex,
    src_ports: PortIndex,
    /// Rules by the uid they name.
    by_uid: FxMap<u32, Ids>,
    /// Rules naming a program (and no user).
    by_program: Ids,
    /// Indexed by protocol number.
    by_proto: Box<[Ids]>,
    any: Ids,
}

fn freeze(mut v: Vec<u32>) -> Ids {
    v.dedup();
    v.into_boxed_slice()
}

impl RuleIndex {
    /// Sorts every enabled rule into its bucket.
    pub(crate) fn build(rules: &[Rule]) -> Self {
        let mut src = Vec::new();
        let mut dst = Vec::new();
        let mut dst_ports: FxMap<u32, Vec<u32>> = FxMap::default();
        let mut src_ports: FxMap<u32, Vec<u32>> = FxMap::default();
        let (mut dst_any, mut src_any) = (false, false);
        let mut by_proto: Vec<Vec<u32>> = vec![Vec::new(); 256];
        let mut by_uid: FxMap<u32, Vec<u32>> = FxMap::default();
        let mut by_program = Vec::new();
        let mut any = Vec::new();
        let mut budget = MAX_PORT_ENTRIES;
        let indexable = |nets: &[IpNet]| !nets.is_empty() && nets.iter().all(|n| n.prefix_len() > 0);
        for (i, rule) in rules.iter().enumerate() {
            let Ok(id) = u32::try_from(i) else { break };
            if !rule.enabled {
                continue;
            }
            if indexable(&rule.src) {
                src.extend(rule.src.iter().map(|n| (*n, id)));
                continue;
            }
            if indexable(&rule.dst) {
                dst.extend(rule.dst.iter().map(|n| (*n, id)));
                continue;
            }
            if let Some(user) = &rule.user {
                by_uid.entry(user.uid).or_default().push(id);
                continue;
            }
            // Unit rules too: a unit is known only with its program.
            if rule.program.is_some() || rule.unit.is_some() {
                by_program.push(id);
                continue;
            }
            let width = |r: &[super::PortRange]| r.iter().map(|p| p.width()).sum::<u32>();
            let key = rule.protocol.number().map_or(ANY_PROTO, u32::from);
            let mut placed = false;
            for (ranges, map, any_flag) in [
                (&rule.dst_ports, &mut dst_ports, &mut dst_any),
                (&rule.src_ports, &mut src_ports, &mut src_any),
            ] {
                let w = width(ranges);
                if ranges.is_empty() || w > MAX_PORTS_PER_RULE || w > budget {
                    continue;
                }
                budget -= w;
                for r in ranges {
                    for p in r.lo..=r.hi {
                        map.entry((key << 16) | u32::from(p)).or_default().push(id);
                    }
                }
                *any_flag |= key == ANY_PROTO;
                placed = true;
                break;
            }
            if placed {
                continue;
            }
            match rule
                .protocol
                .number()
                .and_then(|n| by_proto.get_mut(usize::from(n)))
            {
                Some(list) => list.push(id),
                None => any.push(id),
            }
        }
        Self {
            src: NetIndex::build(src),
            dst: NetIndex::build(dst),
            dst_ports: PortIndex::build(dst_ports, dst_any),
            src_ports: PortIndex::build(src_ports, src_any),
            by_uid: by_uid.into_iter().map(|(k, v)| (k, freeze(v))).collect(),
            by_program: freeze(by_program),
            by_proto: by_proto.into_iter().map(freeze).collect(),
            any: freeze(any),
        }
    }

    /// The lowest-numbered enabled rule that fully matches the packet.
    #[inline]
    pub(crate) fn first_match(
        &self,
        rules: &[Rule],
        meta: &PacketMeta,
        iface: &str,
        owner: Owner<'_>,
    ) -> Option<RuleId> {
        let mut best = u32::MAX;
        let mut visit = |ids: &[u32]| {
            for &id in ids {
                if id >= best {
                    return;
                }
                if rules
                    .get(id as usize)
                    .is_some_and(|r| r.matches_packet_then(meta, iface, &owner))
                {
                    best = id;
                    return;
                }
            }
        };
        visit(&self.any);
        let proto = meta.protocol.map(|p| p.0);
        if let Some(ids) = proto.and_then(|p| self.by_proto.get(usize::from(p))) {
            visit(ids);
        }
        self.src.consult(meta.src_ip, &mut visit);
        self.dst.consult(meta.dst_ip, &mut visit);
        self.dst_ports.consult(proto, meta.dst_port, &mut visit);
        self.src_ports.consult(proto, meta.src_port, &mut visit);
        if let Some(ids) = owner.uid.and_then(|uid| self.by_uid.get(&uid)) {
            visit(ids);
        }
        if owner.program.is_some() {
            visit(&self.by_program);
        }
        (best != u32::MAX).then_some(RuleId(best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(0x0a01_0203u32.masked(8), 0x0a00_0000);
        assert_eq!(0x0a01_0203u32.masked(0), 0);
        assert_eq!(0x0a01_0203u32.masked(32), 0x0a01_0203);
        assert_eq!(u128::MAX.masked(128), u128::MAX);
        assert_eq!(u128::MAX.masked(1), 1u128 << 127);
    }

    #[test]
    fn hasher_spreads_high_bits() {
        let h = |v: u32| {
            let mut s = FxHasher::default();
            s.write_u32(v);
            s.finish()
        };
        // Networks differing only in their leading octet must not share low hash bits.
        let lows: std::collections::HashSet<u64> = (0..64u32).map(|o| h(o << 24) & 0xff).collect();
        assert!(lows.len() > 32, "{}", lows.len());
    }
}
