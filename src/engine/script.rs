//! A scripted `PacketSource` for the engine's unit tests (the real sources need files or devices): its
//! frames, then what the script says (the end, idle reads, a read that blocks until woken, a failure, or the
//! last frame forever). It counts reads and counter reads for the test, which keeps a handle (`seen`) while
//! the engine owns the source.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::capture::{CaptureError, KernelStats, PacketSource, RawPacket, Read, Waker};
use crate::packet::LinkType;

/// What a script does once its frames are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// The end, as a file.
    End,
    /// Idle reads, as a quiet link with a read timeout.
    Idle,
    /// A read that blocks until woken, as TPACKET_V3 on a quiet link.
    BlockUntilWoken,
    /// A read error.
    Fail,
    /// A panic in `read` (a bug in a source).
    Panic,
    /// The last frame again, forever (a file that never ends, a link busier than the engine).
    Forever,
}

/// What the test can watch while the engine owns the source.
#[derive(Default)]
pub(crate) struct Seen {
    /// Packets read.
    pub(crate) reads: AtomicUsize,
    /// Calls of `kernel_stats` (live scripts).
    pub(crate) stats_calls: AtomicUsize,
    /// The waker was called (live scripts).
    pub(crate) woken: AtomicBool,
}

pub(crate) struct Script {
    frames: VecDeque<Vec<u8>>,
    current: Vec<u8>,
    after: After,
    ts: i64,
    live: bool,
    pub(crate) seen: Arc<Seen>,
}

impl Script {
    /// A capture file's frames.
    pub(crate) fn file(frames: Vec<Vec<u8>>, after: After) -> Self {
        Self::new(frames, after, false)
    }

    /// A live device's frames: kernel counters (`received` counts the calls), a waker.
    pub(crate) fn live(frames: Vec<Vec<u8>>, after: After) -> Self {
        Self::new(frames, after, true)
    }

    fn new(frames: Vec<Vec<u8>>, after: After, live: bool) -> Self {
        Self {
            frames: frames.into(),
            current: vec![0; 60],
            after,
            ts: 1_700_000_000_000_000,
            live,
            seen: Arc::default(),
        }
    }
}

impl PacketSource for Script {
    fn read(&mut self) -> Result<Read<'_>, CaptureError> {
        match (self.frames.pop_front(), self.after) {
            (Some(frame), _) => self.current = frame,
            (None, After::Forever) => {}
            (None, After::End) => return Ok(Read::End),
            (None, After::Idle) => {
                std::thread::sleep(Duration::from_millis(2));
                return Ok(Read::Idle);
            }
            (None, After::BlockUntilWoken) => {
                while !self.seen.woken.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Ok(Read::Idle);
            }
            (None, After::Panic) => panic!("scripted panic in read"),
            (None, After::Fail) => {
                let (source_name, detail) = if self.live {
                    ("vtest0", "The interface went down")
                } else {
                    ("script.pcap", "truncated dump file")
                };
                return Err(CaptureError::Read {
                    source_name: source_name.into(),
                    detail: detail.into(),
                });
            }
        }
        self.seen.reads.fetch_add(1, Ordering::Relaxed);
        self.ts += 1_000;
        Ok(Read::Packet(RawPacket {
            ts_micros: self.ts,
            wire_len: u32::try_from(self.current.len()).unwrap_or(u32::MAX),
            data: &self.current,
        }))
    }

    fn link_type(&self) -> LinkType {
        LinkType::Ethernet
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        if !self.live {
            return None;
        }
        let calls = self.seen.stats_calls.fetch_add(1, Ordering::Relaxed) + 1;
        Some(KernelStats {
            received: calls as u64,
            dropped: 0,
            if_dropped: 0,
        })
    }

    fn waker(&mut self) -> Option<Waker> {
        let seen = Arc::clone(&self.seen);
        self.live
            .then(|| -> Waker { Box::new(move || seen.woken.store(true, Ordering::Relaxed)) })
    }

    fn is_live(&self) -> bool {
        self.live
    }
}
