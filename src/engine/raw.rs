//! A bounded store of recent packets' raw bytes, for the details pane's hex dump and pcap export. Only the
//! GUI asks for it; the capture thread pushes one batch per lock.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::packet::LinkType;

/// One stored frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacketRecord {
    /// The event's `seq`.
    pub seq: u64,
    pub ts_micros: i64,
    pub wire_len: u32,
    pub link: LinkType,
    pub data: Box<[u8]>,
}

/// Recent frames, oldest evicted first once `max_bytes` of packet data is held.
#[derive(Debug)]
pub struct RawStore {
    max_bytes: usize,
    inner: Mutex<(VecDeque<RawPacketRecord>, usize)>,
}

impl RawStore {
    /// A store holding at most `max_bytes` of frame data.
    #[must_use]
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new((VecDeque::new(), 0)),
        }
    }

    pub(crate) fn push_batch(&self, records: Vec<RawPacketRecord>) {
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (queue, bytes) = &mut *guard;
        for record in records {
            *bytes += record.data.len();
            queue.push_back(record);
        }
        while *bytes > self.max_bytes {
            let Some(old) = queue.pop_front() else { break };
            *bytes -= old.data.len();
        }
    }

    /// The frame of event `seq`, if still held.
    #[must_use]
    pub fn get(&self, seq: u64) -> Option<RawPacketRecord> {
        let guard = self.inner.lock().ok()?;
        let queue = &guard.0;
        // Sequence numbers grow monotonically, so the queue is sorted by seq.
        let index = queue.binary_search_by_key(&seq, |r| r.seq).ok()?;
        queue.get(index).cloned()
    }

    /// Frames whose `seq` is in `seqs` (any order), in capture order.
    #[must_use]
    pub fn get_many(&self, seqs: &[u64]) -> Vec<RawPacketRecord> {
        let Ok(guard) = self.inner.lock() else {
            return Vec::new();
        };
        let mut wanted: Vec<u64> = seqs.to_vec();
        wanted.sort_unstable();
        wanted
            .iter()
            .filter_map(|seq| {
                let index = guard.0.binary_search_by_key(seq, |r| r.seq).ok()?;
                guard.0.get(index).cloned()
            })
            .collect()
    }

    /// Frames held and bytes used.
    #[must_use]
    pub fn usage(&self) -> (usize, usize) {
        self.inner.lock().map_or((0, 0), |g| (g.0.len(), g.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, len: usize) -> RawPacketRecord {
        RawPacketRecord {
            seq,
            ts_micros: 0,
            wire_len: len as u32,
            link: LinkType::Ethernet,
            data: vec![0u8; len].into_boxed_slice(),
        }
    }

    #[test]
    fn evicts_oldest_past_the_byte_cap() {
        let store = RawStore::new(250);
        store.push_batch((1..=5).map(|s| rec(s, 100)).collect());
        assert_eq!(store.usage(), (2, 200));
        assert!(store.get(3).is_none());
        assert_eq!(store.get(4).unwrap().seq, 4);
        assert_eq!(
            store
                .get_many(&[5, 1, 4])
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );
    }
}
