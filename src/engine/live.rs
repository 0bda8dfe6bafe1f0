//! Live capture's reader thread: it only drains libpcap, so the kernel's ring empties as fast as packets
//! arrive, whatever the engine is doing.
//!
//! The "read-IFACE" thread copies each frame (timestamp, lengths, captured bytes) into a chunk and hands full
//! chunks to the capture thread over a bounded channel; the capture thread parses and judges them. A chunk is
//! sent when it is full or when the reader has caught up with the ring (libpcap had no more packets ready),
//! so a lone packet travels at once and a burst travels in chunks of up to `CHUNK_PACKETS`. Chunk vectors go
//! back to the reader for reuse.
//!
//! The channel holds `CHUNKS` chunks: when the capture thread falls behind, that is up to 64 Ki packets on
//! top of the kernel's ring before the reader waits, and while it waits the ring keeps filling, so a burst
//! is lost only when both are full (and then the kernel counts the drops).
//!
//! The reader also reads the kernel's counters (libpcap's `pcap_stats` must be called on the thread that
//! reads) and publishes them for the capture thread. It is stopped by a flag and one wake (`pcap_breakloop`),
//! needed because a TPACKET_V3 read on a quiet link never returns by itself; it then publishes the final
//! counters and ends, and the capture thread judges what was already handed over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, bounded};

use super::readahead::Next;
use crate::capture::{Batch, CaptureError, KernelStats, PacketSource, RawPacket, Waker};
use crate::packet::{self, LinkType};

/// Packets per chunk at most.
const CHUNK_PACKETS: usize = 1024;
/// Frame bytes at which a chunk is sent before it has `CHUNK_PACKETS` packets.
const CHUNK_BYTES: usize = 512 * 1024;
/// Packets asked of libpcap per call: small enough that a chunk overshoots `CHUNK_BYTES` by at most this
/// many frames, large enough that a call per packet is avoided.
const READ_PACKETS: usize = 64;
/// Chunks in flight between the reader and the capture thread (see the module docs).
const CHUNKS: usize = 64;
/// How long the capture thread waits for a chunk before it does its periodic work (flush, commands, link
/// state, rules file) on a quiet link.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the reader reads the kernel's counters at most (it reads them when packets come, and once
/// more when it stops).
const STATS_PERIOD: Duration = Duration::from_millis(100);
/// How long the reader waits on a full channel before it looks at its stop flag again.
const SEND_RETRY: Duration = Duration::from_millis(100);

/// One frame in a chunk: where its bytes lie in `Chunk::data`.
#[derive(Debug, Clone, Copy)]
struct Record {
    ts_micros: i64,
    wire_len: u32,
    start: usize,
    end: usize,
}

/// Frames read from the ring, back to back.
#[derive(Default)]
struct Chunk {
    records: Vec<Record>,
    data: Vec<u8>,
}

impl Chunk {
    fn push(&mut self, raw: RawPacket<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(raw.data);
        self.records.push(Record {
            ts_micros: raw.ts_micros,
            wire_len: raw.wire_len,
            start,
            end: self.data.len(),
        });
    }

    fn is_full(&self) -> bool {
        self.records.len() >= CHUNK_PACKETS || self.data.len() >= CHUNK_BYTES
    }

    fn clear(&mut self) {
        self.records.clear();
        self.data.clear();
    }
}

/// What the reader hands over.
enum Message {
    Packets(Chunk),
    /// Reading failed after the packets sent before; the reader has stopped.
    Failed(CaptureError),
    /// The source ended (only test sources do).
    End,
}

/// What the reader and the capture thread share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// The kernel's counters as last read.
    kernel: Mutex<Option<KernelStats>>,
}

/// A live source read on its own thread (see the module docs). Dropping it stops and joins the reader.
pub(crate) struct LiveReader {
    rx: Receiver<Message>,
    spare: Sender<Chunk>,
    shared: Arc<Shared>,
    waker: Option<Waker>,
    link: LinkType,
    current: Chunk,
    next: usize,
    ended: bool,
    thread: Option<JoinHandle<()>>,
}

impl LiveReader {
    /// Starts reading `source` on a thread named `read-IFACE`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(crate) fn start(mut source: Box<dyn PacketSource>, iface: &str) -> Result<Self, CaptureError> {
        let (tx, rx) = bounded::<Message>(CHUNKS);
        let (spare, spare_rx) = bounded::<Chunk>(CHUNKS + 2);
        let shared = Arc::new(Shared::default());
        let waker = source.waker();
        let link = source.link_type();
        let name: String = format!("read-{iface}").chars().take(15).collect();
        let reader_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || read_live(source.as_mut(), &tx, &spare_rx, &reader_shared))
            .map_err(|e| CaptureError::Read {
                source_name: "reader thread".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            rx,
            spare,
            shared,
            waker,
            link,
            current: Chunk::default(),
            next: 0,
            ended: false,
            thread: Some(thread),
        })
    }

    /// The next packet, parsed here (on the capture thread); `Idle` when none came within `IDLE_WAIT`,
    /// `End` once the reader has stopped and everything it read was taken.
    ///
    /// # Errors
    /// The read failed (the reader has stopped; the packets before the failure came first).
    pub(crate) fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        while self.next >= self.current.records.len() {
            if self.ended {
                return Ok(Next::End);
            }
            match self.rx.recv_timeout(IDLE_WAIT) {
                Ok(Message::Packets(chunk)) => {
                    let mut done = std::mem::replace(&mut self.current, chunk);
                    done.clear();
                    // A full return channel only costs the reader an allocation.
                    self.spare.try_send(done).ok();
                    self.next = 0;
                }
                Ok(Message::Failed(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Ok(Message::End) => self.ended = true,
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    // The reader ends by itself only after a failure, which it sends first (or a panic).
                    if !self.shared.stop.load(Ordering::Relaxed) {
                        return Err(CaptureError::Read {
                            source_name: "reader thread".into(),
                            detail: "it ended unexpectedly".into(),
                        });
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Ok(Next::Idle),
            }
        }
        let Some(&record) = self.current.records.get(self.next) else {
            return Ok(Next::Idle);
        };
        self.next += 1;
        let data = self
            .current
            .data
            .get(record.start..record.end)
            .unwrap_or_default();
        Ok(Next::Packet {
            meta: packet::parse(self.link, record.ts_micros, record.wire_len, data),
            data: Some(data),
        })
    }

    /// True when the last packet taken was the last one handed over so far: a good moment to flush.
    pub(crate) fn caught_up(&self) -> bool {
        self.next >= self.current.records.len() && self.rx.is_empty()
    }

    /// The kernel's counters as the reader last read them.
    pub(crate) fn kernel_stats(&self) -> Option<KernelStats> {
        self.shared.kernel.lock().ok().and_then(|k| *k)
    }

    /// Tells the reader to stop reading; `next` then yields what was already read, then `End`.
    pub(crate) fn stop_reading(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(wake) = &self.waker {
            wake();
        }
    }

    /// Stops the reader and waits for it; its final counters are then in `kernel_stats`.
    pub(crate) fn finish(&mut self) {
        self.stop_reading();
        // Dropping the receiver fails a send the reader may be waiting in.
        let (_, closed) = bounded(0);
        drop(std::mem::replace(&mut self.rx, closed));
        self.ended = true;
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

impl Drop for LiveReader {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The reader thread: reads until stopped, the source fails or ends, or the capture thread is gone.
fn read_live(source: &mut dyn PacketSource, tx: &Sender<Message>, spare: &Receiver<Chunk>, shared: &Shared) {
    let mut chunk = Chunk::default();
    let mut stats_at: Option<Instant> = None;
    let last = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break None;
        }
        let room = CHUNK_PACKETS
            .saturating_sub(chunk.records.len())
            .clamp(1, READ_PACKETS);
        let caught_up = match source.read_batch(room, &mut |raw| chunk.push(raw)) {
            Ok(Batch::Packets(count)) => count < room,
            Ok(Batch::Idle) => true,
            Ok(Batch::End) => break Some(Message::End),
            // A read broken off to stop is no failure.
            Err(_) if shared.stop.load(Ordering::Relaxed) => break None,
            Err(e) => break Some(Message::Failed(e)),
        };
        if (caught_up && !chunk.records.is_empty()) || chunk.is_full() {
            let fresh = spare.try_recv().unwrap_or_default();
            if !send(tx, Message::Packets(std::mem::replace(&mut chunk, fresh)), shared) {
                break None;
            }
        }
        // libpcap's counters cost a system call and two small file reads (the interface's drops).
        let now = Instant::now();
        if stats_at.is_none_or(|at| now.duration_since(at) >= STATS_PERIOD) {
            stats_at = Some(now);
            publish_stats(source, shared);
        }
    };
    publish_stats(source, shared);
    if !chunk.records.is_empty() {
        send(tx, Message::Packets(chunk), shared);
    }
    if let Some(message) = last {
        send(tx, message, shared);
    }
}

/// Sends `message`, waiting while the channel is full. False when the capture thread is gone, or when it
/// asked the reader to stop and has not made room for a while (it is shutting down).
fn send(tx: &Sender<Message>, mut message: Message, shared: &Shared) -> bool {
    loop {
        match tx.send_timeout(message, SEND_RETRY) {
            Ok(()) => return true,
            Err(SendTimeoutError::Disconnected(_)) => return false,
            Err(SendTimeoutError::Timeout(back)) => {
                if shared.stop.load(Ordering::Relaxed) {
                    return false;
                }
                message = back;
            }
        }
    }
}

fn publish_stats(source: &mut dyn PacketSource, shared: &Shared) {
    if let Some(stats) = source.kernel_stats()
        && let Ok(mut kernel) = shared.kernel.lock()
    {
        *kernel = Some(stats);
    }
}

#[cfg(test)]
mod tests {
    use etherparse::PacketBuilder;

    use super::super::script::{After, Script};
    use super::*;

    /// A UDP frame whose destination port numbers it.
    fn frame(i: usize) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(40_000, u16::try_from(i % 65_536).unwrap())
            .write(&mut frame, &vec![0x5a; i % 700])
            .unwrap();
        frame
    }

    /// Takes packets until `stop` says so; each as its destination port and frame.
    fn take(
        reader: &mut LiveReader,
        mut stop: impl FnMut(&Result<Next<'_>, CaptureError>) -> bool,
    ) -> Vec<(u16, Vec<u8>)> {
        let mut packets = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let next = reader.next();
            if stop(&next) {
                break;
            }
            if let Ok(Next::Packet { meta, data }) = next {
                packets.push((meta.dst_port.unwrap(), data.unwrap().to_vec()));
            }
        }
        packets
    }

    #[test]
    fn every_packet_arrives_parsed_in_order_with_its_frame() {
        let count = CHUNK_PACKETS * 3 + 17;
        let frames: Vec<_> = (0..count).map(frame).collect();
        let mut reader =
            LiveReader::start(Box::new(Script::live(frames.clone(), After::Idle)), "vtest0").unwrap();
        let mut seen = 0;
        let packets = take(&mut reader, |_| {
            seen += 1;
            seen > count
        });
        assert_eq!(packets.len(), count);
        for (i, (port, data)) in packets.iter().enumerate() {
            assert_eq!(usize::from(*port), i, "order");
            assert_eq!(data, &frames[i], "the frame comes along");
        }
        assert!(reader.caught_up(), "the reader had nothing more");
        assert!(matches!(reader.next(), Ok(Next::Idle)));
        assert!(reader.kernel_stats().is_some(), "counters are published");
    }

    #[test]
    fn a_read_error_comes_after_the_packets_before_it_and_ends_the_reader() {
        let frames: Vec<_> = (0..READ_PACKETS * 2 + 5).map(frame).collect();
        let mut reader = LiveReader::start(Box::new(Script::live(frames, After::Fail)), "vtest0").unwrap();
        let mut error = None;
        let packets = take(&mut reader, |next| match next {
            Err(e) => {
                error = Some(e.to_string());
                true
            }
            _ => false,
        });
        assert_eq!(packets.len(), READ_PACKETS * 2 + 5);
        assert_eq!(
            error.as_deref(),
            Some("reading vtest0 failed: The interface went down")
        );
        assert!(matches!(reader.next(), Ok(Next::End)));
    }

    #[test]
    fn a_reader_that_dies_is_an_error_not_the_end_of_a_quiet_link() {
        let mut reader =
            LiveReader::start(Box::new(Script::live(Vec::new(), After::Panic)), "vtest0").unwrap();
        let mut error = None;
        let packets = take(&mut reader, |next| match next {
            Err(e) => {
                error = Some(e.to_string());
                true
            }
            _ => false,
        });
        assert!(packets.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("reading reader thread failed: it ended unexpectedly")
        );
    }

    #[test]
    fn stopping_wakes_a_blocked_read_and_hands_over_what_was_read_then_the_final_counters() {
        let frames: Vec<_> = (0..300).map(frame).collect();
        let script = Script::live(frames, After::BlockUntilWoken);
        let seen = Arc::clone(&script.seen);
        let mut reader = LiveReader::start(Box::new(script), "vtest0").unwrap();
        // Nothing taken yet: the reader has read all 300 and now blocks in a read only a wake ends.
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.reads.load(Ordering::Relaxed) < 300 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats_before = seen.stats_calls.load(Ordering::Relaxed);
        reader.stop_reading();
        let packets = take(&mut reader, |next| matches!(next, Ok(Next::End)));
        assert_eq!(packets.len(), 300, "what was read is judged after the stop");
        let started = Instant::now();
        reader.finish();
        assert!(started.elapsed() < Duration::from_secs(2));
        let stats_after = seen.stats_calls.load(Ordering::Relaxed);
        assert!(
            stats_after > stats_before,
            "the counters are read once more as the reader stops"
        );
        assert_eq!(
            reader.kernel_stats().map(|k| k.received),
            Some(stats_after as u64)
        );
    }

    #[test]
    fn a_busy_link_keeps_the_reader_a_bounded_distance_ahead_and_dropping_stops_it() {
        let script = Script::live(vec![frame(100)], After::Forever);
        let seen = Arc::clone(&script.seen);
        let mut reader = LiveReader::start(Box::new(script), "vtest0").unwrap();
        for _ in 0..10 {
            assert!(matches!(reader.next(), Ok(Next::Packet { .. })));
        }
        std::thread::sleep(Duration::from_millis(300));
        let read = seen.reads.load(Ordering::Relaxed);
        // The chunks in the channel, the one being filled and the one being taken.
        assert!(
            read <= (CHUNKS + 2) * CHUNK_PACKETS + READ_PACKETS,
            "{read} packets read ahead: memory would grow without bound"
        );
        assert!(
            read >= CHUNKS * CHUNK_PACKETS,
            "the queue absorbs a burst: {read}"
        );
        let (done_tx, done_rx) = bounded(1);
        std::thread::Builder::new()
            .name("drop-live".into())
            .spawn(move || {
                drop(reader);
                done_tx.send(()).ok();
            })
            .unwrap();
        assert!(
            done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "dropping must end the reader"
        );
    }
}
