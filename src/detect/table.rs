//! The per-source table of the detector: open addressing with linear probing over slots of two cache
//! lines. The first holds the source's address next to what every packet updates, so a packet's lookup
//! reads one line (a map of keys to state elsewhere costs two dependent misses; a general map's buckets
//! straddle lines); the second holds the first ports and IPv4 hosts of the window, which probes read, and
//! whose address is known as soon as the slot's is, so its miss overlaps the first one's. Entries are only
//! ever removed all at once (`retain`), which rebuilds the table, so there are no tombstones.

/// Ports kept in a slot; more go to the source's `Cold` lists.
pub(super) const SLOT_PORTS: usize = 16;
/// IPv4 hosts kept in a slot; more, and IPv6 hosts, go to the source's `Cold` lists.
pub(super) const SLOT_HOSTS: usize = 7;

/// One source: its address and what every packet updates (the first cache line), then the first ports and
/// IPv4 hosts of its window (the second).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(128))]
pub(super) struct Slot {
    /// The source address, IPv4 as its IPv4-mapped IPv6 form.
    pub(super) key: u128,
    pub(super) window_start: i64,
    pub(super) second_start: i64,
    pub(super) last_seen: i64,
    pub(super) packets_this_second: u32,
    pub(super) syns_this_second: u32,
    /// A filter of the ports (low 32 bits) and hosts (high 32 bits) in the source's lists: a clear bit
    /// proves a value new without reading the lists (most probes hit new ports).
    pub(super) seen_bits: u64,
    /// Where the source's lists and alert times are (`Cold`); `EMPTY` marks a free slot.
    pub(super) cold: u32,
    /// Denied packets in the window, counted up to 65,535.
    pub(super) denied: u16,
    /// Distinct ports and hosts (IPv4 and IPv6) in the window, up to 255 (beyond that the lists tell).
    pub(super) ports_len: u8,
    pub(super) hosts_len: u8,
    /// The first `SLOT_PORTS` distinct destination ports of the window.
    pub(super) ports: [u16; SLOT_PORTS],
    /// The first `SLOT_HOSTS` distinct IPv4 destination hosts of the window.
    pub(super) hosts_v4: [u32; SLOT_HOSTS],
    /// Distinct IPv4 hosts in the window, up to 255.
    pub(super) hosts_v4_len: u8,
}

/// `Slot::cold` of a free slot.
const EMPTY: u32 = u32::MAX;

impl Slot {
    const FREE: Self = Self {
        key: 0,
        window_start: 0,
        second_start: 0,
        last_seen: 0,
        packets_this_second: 0,
        syns_this_second: 0,
        seen_bits: 0,
        cold: EMPTY,
        denied: 0,
        ports_len: 0,
        hosts_len: 0,
        ports: [0; SLOT_PORTS],
        hosts_v4: [0; SLOT_HOSTS],
        hosts_v4_len: 0,
    };

    /// A fresh slot for `key` whose lists are at `cold`.
    pub(super) fn new(key: u128, cold: u32) -> Self {
        Self {
            key,
            cold,
            ..Self::FREE
        }
    }
}

/// Sources by address. At most half full, so a lookup usually reads one slot and rarely a second.
#[derive(Debug, Default)]
pub(super) struct Table {
    slots: Vec<Slot>,
    len: usize,
}

/// Spreads an address over the table: a multiplicative hash of the folded halves, top bits used.
fn hash(key: u128) -> u64 {
    #[expect(clippy::cast_possible_truncation, reason = "folding the halves on purpose")]
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    folded.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Table {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Where `key` is, or the free slot where it would go.
    fn position(&self, key: u128) -> Option<usize> {
        let capacity = self.slots.len();
        if capacity == 0 {
            return None;
        }
        let mask = capacity - 1;
        // The top bits of the product are the well mixed ones.
        let mut at = (hash(key) >> (64 - capacity.trailing_zeros())) as usize & mask;
        loop {
            let slot = self.slots.get(at)?;
            if slot.cold == EMPTY || slot.key == key {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot of `key`, if the source is known.
    pub(super) fn get_mut(&mut self, key: u128) -> Option<&mut Slot> {
        let at = self.position(key)?;
        self.slots.get_mut(at).filter(|s| s.cold != EMPTY)
    }

    pub(super) fn contains(&self, key: u128) -> bool {
        self.position(key)
            .and_then(|at| self.slots.get(at))
            .is_some_and(|s| s.cold != EMPTY)
    }

    /// The slot of `key`, made with `make` (given nothing) when the source is new.
    pub(super) fn get_or_insert_with(&mut self, key: u128, make: impl FnOnce() -> Slot) -> Option<&mut Slot> {
        if !self.contains(key) {
            if (self.len + 1) * 2 > self.slots.len() {
                self.rebuild((self.len + 1) * 2, |_| true);
            }
            let at = self.position(key)?;
            *self.slots.get_mut(at)? = make();
            self.len += 1;
        }
        self.get_mut(key)
    }

    /// Keeps only the slots `keep` accepts (it may update them, as when their lists move).
    pub(super) fn retain(&mut self, keep: impl FnMut(&mut Slot) -> bool) {
        self.rebuild(self.slots.len(), keep);
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.cold != EMPTY)
    }

    /// Moves the kept slots into a table of at least `min_capacity` (a power of two, at least 16).
    fn rebuild(&mut self, min_capacity: usize, mut keep: impl FnMut(&mut Slot) -> bool) {
        let capacity = min_capacity.max(16).next_power_of_two();
        let old = std::mem::replace(&mut self.slots, vec![Slot::FREE; capacity]);
        self.len = 0;
        for mut slot in old.into_iter().filter(|s| s.cold != EMPTY) {
            if !keep(&mut slot) {
                continue;
            }
            if let Some(at) = self.position(slot.key)
                && let Some(free) = self.slots.get_mut(at)
            {
                *free = slot;
                self.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_two_cache_lines_the_hot_part_first() {
        assert_eq!(std::mem::size_of::<Slot>(), 128);
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        assert_eq!(std::mem::offset_of!(Slot, ports), 64);
    }

    #[test]
    fn finds_what_it_holds_through_growth_and_clean_ups() {
        let mut table = Table::default();
        // Keys that share their low bits, as addresses of one network do.
        let key = |i: u32| (0xffff_u128 << 32) | u128::from(0x0a00_0000 + (i << 8));
        for i in 0..5_000u32 {
            let slot = table.get_or_insert_with(key(i), || Slot::new(key(i), i)).unwrap();
            slot.denied = u16::try_from(i % 1000).unwrap();
        }
        assert_eq!(table.len(), 5_000);
        assert!(table.slots.len() >= 10_000, "at most half full");
        for i in 0..5_000u32 {
            let slot = table.get_mut(key(i)).unwrap();
            assert_eq!((slot.key, slot.cold), (key(i), i));
        }
        assert!(table.get_mut(key(5_000)).is_none());
        assert!(!table.contains(key(5_001)));
        // Known keys are not inserted twice.
        table
            .get_or_insert_with(key(7), || Slot::new(key(7), 999_999))
            .unwrap();
        assert_eq!(table.get_mut(key(7)).unwrap().cold, 7);
        assert_eq!(table.len(), 5_000);

        table.retain(|s| {
            s.cold += 1;
            s.cold % 2 == 0
        });
        assert_eq!(table.len(), 2_500);
        for i in 0..5_000u32 {
            match table.get_mut(key(i)) {
                Some(slot) => assert_eq!((i % 2, slot.cold), (1, i + 1)),
                None => assert_eq!(i % 2, 0),
            }
        }
        assert_eq!(table.iter().count(), 2_500);
    }
}
