//! Where the capture thread's packets come from, and reading a file ahead on a thread of its own.
//!
//! Reading a capture file through libpcap (the kernel's copy out of the page cache, libpcap's record
//! handling) costs about as much as everything the engine does with the packets afterwards, so for a file
//! replayed as fast as possible a "read-ahead" thread reads and parses while the capture thread evaluates:
//! the two overlap on two cores. It hands over parsed packets (`PacketMeta`), not frames, so the capture
//! thread never touches the frame bytes; it copies a frame only when the engine needs it (raw packets kept
//! for export, DNS answers for passive names). Packets, order, the end and errors are those of the file.
//!
//! Live captures have a reader thread of their own too (`live`), which copies frames rather than parsing
//! them, so it drains the kernel's ring as fast as it can. Paced demos and test sources are read on the
//! capture thread.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::live::LiveReader;
use crate::capture::{CaptureError, KernelStats, PacketSource, Read};
use crate::packet::{self, PacketMeta};

/// Packets per chunk: the channel is touched once per chunk, and a chunk's parsed packets (~100 bytes
/// each) stay small enough to pass between the cores' caches.
const CHUNK_PACKETS: usize = 256;
/// Frame bytes at which a chunk is sent before it has `CHUNK_PACKETS` packets (frames kept for export).
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks in flight. Enough that the threads rarely wait for each other (with fewer, the capture thread
/// parked and woke thousands of times per run, leaving a core idle); memory stays bounded whatever the
/// file's length: about `CHUNKS` times 24 KiB of parsed packets plus at most `CHUNK_BYTES` of frames each.
const CHUNKS: usize = 32;

/// One packet from an `Input`.
pub(crate) enum Next<'a> {
    /// A parsed packet; `data` is its frame when the engine needs it (see `Input::next`).
    Packet {
        meta: PacketMeta,
        data: Option<&'a [u8]>,
    },
    /// No packet within the read timeout (live sources).
    Idle,
    /// The file ended.
    End,
}

/// Where the capture thread's packets come from.
pub(crate) enum Input {
    /// Read and parsed on the capture thread: paced demos, files given by tests.
    Direct(Box<dyn PacketSource>),
    /// A file read and parsed ahead on its own thread.
    Ahead(ReadAhead),
    /// A live source drained by its own reader thread; parsed on the capture thread.
    Live(LiveReader),
}

impl Input {
    /// The input for `source`: a live source gets its reader thread ("read-IFACE"), anything else is read
    /// directly.
    ///
    /// # Errors
    /// The reader thread cannot be started.
    pub(crate) fn for_source(source: Box<dyn PacketSource>, iface: &str) -> Result<Self, CaptureError> {
        if source.is_live() {
            Ok(Self::Live(LiveReader::start(source, iface)?))
        } else {
            Ok(Self::Direct(source))
        }
    }

    /// True for a live capture (the only input whose flows can be attributed to local programs).
    pub(crate) fn is_live(&self) -> bool {
        match self {
            Self::Direct(source) => source.is_live(),
            Self::Ahead(_) => false,
            Self::Live(_) => true,
        }
    }

    pub(crate) fn kernel_stats(&mut self) -> Option<KernelStats> {
        match self {
            Self::Direct(source) => source.kernel_stats(),
            Self::Ahead(_) => None,
            Self::Live(reader) => reader.kernel_stats(),
        }
    }

    /// True when the packet just taken was the last one a live reader has handed over so far (a moment to
    /// flush what was collected); false for other inputs.
    pub(crate) fn caught_up(&self) -> bool {
        match self {
            Self::Live(reader) => reader.caught_up(),
            Self::Direct(_) | Self::Ahead(_) => false,
        }
    }

    /// Asks a live reader to stop reading, so the packets it already read can be taken to the end. False
    /// for other inputs: they have nothing read ahead worth finishing.
    pub(crate) fn stop_reading(&mut self) -> bool {
        match self {
            Self::Live(reader) => {
                reader.stop_reading();
                true
            }
            Self::Direct(_) | Self::Ahead(_) => false,
        }
    }

    /// Stops a reader thread and waits for it, so its final counters can be read.
    pub(crate) fn finish(&mut self) {
        if let Self::Live(reader) = self {
            reader.finish();
        }
    }

    /// The next packet, parsed. A direct source always lends its frame, as that costs nothing; a read-ahead
    /// one passes the frames it was started to keep (all of them, or DNS answers only).
    ///
    /// # Errors
    /// Reading failed (see `PacketSource::read`).
    pub(crate) fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        match self {
            Self::Direct(source) => {
                let link = source.link_type();
                Ok(match source.read()? {
                    Read::Packet(raw) => Next::Packet {
                        meta: packet::parse(link, raw.ts_micros, raw.wire_len, raw.data),
                        data: Some(raw.data),
                    },
                    Read::Idle => Next::Idle,
                    Read::End => Next::End,
                })
            }
            Self::Ahead(ahead) => ahead.next(),
            Self::Live(reader) => reader.next(),
        }
    }
}

/// Parsed packets read ahead, with the frames that were kept back to back in `data`.
#[derive(Default)]
struct Chunk {
    metas: Vec<PacketMeta>,
    /// The kept frames in packet order: the packet's index in `metas` and where its frame lies in `data`
    /// (most packets keep none, and then cost nothing here).
    frames: Vec<(usize, usize, usize)>,
    data: Vec<u8>,
}

impl Chunk {
    fn clear(&mut self) {
        self.metas.clear();
        self.frames.clear();
        self.data.clear();
    }
}

/// What the read-ahead thread hands over.
enum Message {
    Packets(Chunk),
    /// The file ended after the packets sent before.
    End,
    /// Reading failed after the packets sent before; the thread has stopped.
    Failed(CaptureError),
}

/// A file source read and parsed on its own thread (see the module docs).
pub(crate) struct ReadAhead {
    rx: Receiver<Message>,
    /// Emptied chunks going back to the reader, so chunks are not allocated per send.
    spare: Sender<Chunk>,
    current: Chunk,
    next: usize,
    /// The first entry of `current.frames` not yet passed.
    next_frame: usize,
    /// The end or an error was reached; later reads report the end.
    ended: bool,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading `source` on a new thread; frames are kept for every packet when `keep_data` is set,
    /// else only for DNS answers.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(crate) fn start(mut source: Box<dyn PacketSource>, keep_data: bool) -> Result<Self, CaptureError> {
        let (tx, rx) = bounded::<Message>(CHUNKS);
        let (spare, spare_rx) = bounded::<Chunk>(CHUNKS + 2);
        let thread = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || read_ahead(source.as_mut(), keep_data, &tx, &spare_rx))
            .map_err(|e| CaptureError::Read {
                source_name: "read-ahead thread".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            rx,
            spare,
            current: Chunk::default(),
            next: 0,
            next_frame: 0,
            ended: false,
            thread: Some(thread),
        })
    }

    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        while self.next >= self.current.metas.len() {
            if self.ended {
                return Ok(Next::End);
            }
            match self.rx.recv() {
                Ok(Message::Packets(chunk)) => {
                    let done = std::mem::replace(&mut self.current, chunk);
                    // A full return channel only costs the reader an allocation.
                    self.spare.try_send(done).ok();
                    self.next = 0;
                    self.next_frame = 0;
                }
                Ok(Message::End) | Err(_) => self.ended = true,
                Ok(Message::Failed(e)) => {
                    self.ended = true;
                    return Err(e);
                }
            }
        }
        let i = self.next;
        self.next += 1;
        let meta = self.current.metas[i].clone();
        let mut data = None;
        if let Some(&(at, start, end)) = self.current.frames.get(self.next_frame)
            && at == i
        {
            // The reader kept this frame because the engine needs it.
            self.next_frame += 1;
            data = self.current.data.get(start..end);
        }
        Ok(Next::Packet { meta, data })
    }
}

/// The read-ahead thread: reads, parses and sends chunks until the file ends, reading fails or the engine
/// is gone.
fn read_ahead(source: &mut dyn PacketSource, keep_data: bool, tx: &Sender<Message>, spare: &Receiver<Chunk>) {
    let link = source.link_type();
    let mut chunk = Chunk::default();
    loop {
        let last = match source.read() {
            Ok(Read::Packet(raw)) => {
                let meta = packet::parse(link, raw.ts_micros, raw.wire_len, raw.data);
                if keep_data || super::is_dns_answer(&meta) {
                    let start = chunk.data.len();
                    chunk.data.extend_from_slice(raw.data);
                    chunk.frames.push((chunk.metas.len(), start, chunk.data.len()));
                }
                chunk.metas.push(meta);
                if chunk.metas.len() < CHUNK_PACKETS && chunk.data.len() < CHUNK_BYTES {
                    continue;
                }
                None
            }
            // A file does not idle; a source that does is read again.
            Ok(Read::Idle) => continue,
            Ok(Read::End) => Some(Message::End),
            Err(e) => Some(Message::Failed(e)),
        };
        if !chunk.metas.is_empty() {
            let mut fresh = spare.try_recv().unwrap_or_default();
            fresh.clear();
            // The receiver is gone when the engine stopped early: nothing left to do.
            if tx
                .send(Message::Packets(std::mem::replace(&mut chunk, fresh)))
                .is_err()
            {
                return;
            }
        }
        if let Some(message) = last {
            tx.send(message).ok();
            return;
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Dropping the receiver fails the reader's next send, then the reader closes the file and ends.
        let (_, closed) = bounded(0);
        drop(std::mem::replace(&mut self.rx, closed));
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use etherparse::PacketBuilder;

    use super::super::script::{After, Script};
    use super::*;

    fn udp_frame(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 53], [10, 0, 0, 7], 64)
            .udp(src_port, dst_port)
            .write(&mut frame, payload)
            .unwrap();
        frame
    }

    fn tcp_frame(dst_port: u16, payload_len: usize) -> Vec<u8> {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 1], [10, 0, 0, 7], 64)
            .tcp(40_000, dst_port, 1, 1024)
            .syn()
            .write(&mut frame, &vec![0xab; payload_len])
            .unwrap();
        frame
    }

    /// More than a few chunks of mixed frames: TCP of several sizes, DNS answers, other UDP, a runt.
    fn mixed_frames() -> Vec<Vec<u8>> {
        (0..CHUNK_PACKETS * 3 + 17)
            .map(|i| match i % 7 {
                0 => udp_frame(53, 40_000, b"\x12\x34\x81\x80not really dns"),
                1 => udp_frame(40_000, 53, b"a query"),
                2 => vec![0xff; 9],
                _ => tcp_frame(u16::try_from(i % 1000).unwrap(), i % 300),
            })
            .collect()
    }

    /// A packet as read: its meta and, when it came along, its frame.
    type Packet = (PacketMeta, Option<Vec<u8>>);

    /// Reads an input to its end: its packets, then the error it ended with, if any.
    fn drain(input: &mut Input) -> (Vec<Packet>, Option<String>) {
        let mut packets = Vec::new();
        loop {
            match input.next() {
                Ok(Next::Packet { meta, data }) => packets.push((meta, data.map(<[u8]>::to_vec))),
                Ok(Next::Idle) => {}
                Ok(Next::End) => return (packets, None),
                Err(e) => return (packets, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn read_ahead_yields_what_direct_reading_does() {
        let (direct, end) = drain(&mut Input::Direct(Box::new(Script::file(
            mixed_frames(),
            After::End,
        ))));
        assert_eq!(end, None);
        assert_eq!(direct.len(), CHUNK_PACKETS * 3 + 17);

        for keep_data in [true, false] {
            let source = Box::new(Script::file(mixed_frames(), After::End));
            let mut ahead = Input::Ahead(ReadAhead::start(source, keep_data).unwrap());
            let (packets, end) = drain(&mut ahead);
            assert_eq!(end, None);
            assert_eq!(packets.len(), direct.len());
            for ((meta, data), (want_meta, want_data)) in packets.iter().zip(&direct) {
                assert_eq!(meta, want_meta);
                if keep_data || super::super::is_dns_answer(meta) {
                    assert_eq!(data, want_data, "the frame comes along");
                } else {
                    assert_eq!(data, &None, "frames are copied only when needed");
                }
            }
            // The end stays the end.
            assert!(matches!(ahead.next(), Ok(Next::End)));
            assert!(matches!(ahead.next(), Ok(Next::End)));
        }
    }

    #[test]
    fn a_read_error_comes_after_the_packets_before_it() {
        let frames: Vec<_> = (0..CHUNK_PACKETS + 5).map(|i| tcp_frame(22, i % 50)).collect();
        let mut ahead =
            Input::Ahead(ReadAhead::start(Box::new(Script::file(frames, After::Fail)), false).unwrap());
        let (packets, end) = drain(&mut ahead);
        assert_eq!(packets.len(), CHUNK_PACKETS + 5);
        assert_eq!(
            end.as_deref(),
            Some("reading script.pcap failed: truncated dump file")
        );
        assert!(matches!(ahead.next(), Ok(Next::End)));
    }

    #[test]
    fn an_empty_file_just_ends() {
        let mut ahead =
            Input::Ahead(ReadAhead::start(Box::new(Script::file(Vec::new(), After::End)), false).unwrap());
        let (packets, end) = drain(&mut ahead);
        assert!(packets.is_empty());
        assert_eq!(end, None);
    }

    #[test]
    fn kept_frames_bound_how_far_the_reader_runs_ahead() {
        // Frames kept for export, each near the largest snaplen: chunks are cut by size, not only by count.
        let big = tcp_frame(80, 60_000);
        let script = Script::file(vec![big.clone()], After::Forever);
        let seen = Arc::clone(&script.seen);
        let mut ahead = ReadAhead::start(Box::new(script), true).unwrap();
        match ahead.next() {
            Ok(Next::Packet { data, .. }) => assert_eq!(data, Some(&big[..])),
            _ => panic!("a packet with its frame"),
        }
        std::thread::sleep(Duration::from_millis(200));
        let read = seen.reads.load(Ordering::Relaxed);
        let per_chunk = CHUNK_BYTES.div_ceil(big.len());
        assert!(
            read <= (CHUNKS + 2) * per_chunk,
            "{read} frames of {} bytes read ahead",
            big.len()
        );
    }

    #[test]
    fn the_reader_stays_a_bounded_distance_ahead_and_stops_with_its_reader() {
        let script = Script::file(vec![tcp_frame(80, 100)], After::Forever);
        let seen = Arc::clone(&script.seen);
        let mut ahead = ReadAhead::start(Box::new(script), false).unwrap();
        for _ in 0..10 {
            assert!(matches!(ahead.next(), Ok(Next::Packet { .. })));
        }
        std::thread::sleep(Duration::from_millis(200));
        let read = seen.reads.load(Ordering::Relaxed);
        // The chunks in the channel, the one being filled, and the one being handed over.
        assert!(
            read <= (CHUNKS + 2) * CHUNK_PACKETS,
            "{read} packets read ahead: memory would grow with the file"
        );
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("drop-ahead".into())
            .spawn(move || {
                drop(ahead);
                done_tx.send(()).ok();
            })
            .unwrap();
        assert!(
            done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "dropping the read-ahead must stop its thread, not wait for the file's end"
        );
    }
}
