//! Opening and reading live devices and capture files, with errors that say what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap::{Activated, Capture};

use crate::packet::LinkType;

/// Why a capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "no permission to capture on {iface}: run netwarden as root; with the Debian package, join the group \
         netwarden; from a source checkout, grant CAP_NET_RAW and CAP_NET_ADMIN to a binary only you may run \
         (`chmod 0750 {binary}`, then `sudo setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip {binary}`, \
         as `make run` does) ({detail})"
    )]
    NotPermitted {
        iface: String,
        binary: String,
        detail: String,
    },
    #[error("no such interface {iface:?}; `netwarden interfaces` lists the devices you can capture on")]
    NoSuchInterface { iface: String },
    #[error("interface {iface:?} disappeared while capturing")]
    InterfaceGone { iface: String },
    #[error("cannot open capture file {}: {detail}", path.display())]
    File { path: PathBuf, detail: String },
    #[error("invalid capture filter {filter:?}: {detail}")]
    Filter { filter: String, detail: String },
    #[error("capture on {iface} failed: {detail}")]
    Device { iface: String, detail: String },
    #[error("reading {source_name} failed: {detail}")]
    Read { source_name: String, detail: String },
}

/// Result alias for capture operations.
pub type Result<T, E = CaptureError> = std::result::Result<T, E>;

/// What to capture from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A live interface by name, or `any` for all of them (Linux cooked headers).
    Live(LiveOptions),
    /// An offline pcap or pcapng file.
    File { path: PathBuf, filter: Option<String> },
}

impl SourceSpec {
    /// Interface name for display and rule matching (`file` for offline captures).
    #[must_use]
    pub fn iface_name(&self) -> &str {
        match self {
            Self::Live(o) => &o.iface,
            Self::File { .. } => "file",
        }
    }
}

/// Options for a live capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    pub iface: String,
    pub promisc: bool,
    /// BPF filter expression (tcpdump syntax), compiled by libpcap.
    pub filter: Option<String>,
    /// Bytes kept per packet.
    pub snaplen: i32,
    /// Kernel buffer in bytes (libpcap's ring); larger buffers ride out bursts without kernel drops.
    pub buffer_bytes: i32,
}

/// The kernel buffer a live capture asks for unless told otherwise: 32 MiB, about 0.6 s of a link
/// carrying 100,000 packets/s of 450 bytes, so the kernel drops nothing while the reader thread is briefly
/// descheduled. (tcpdump's default is 2 MiB.)
pub const DEFAULT_BUFFER_BYTES: i32 = 32 << 20;

impl LiveOptions {
    /// Defaults suited to a monitor: not promiscuous, full frames, a 32 MiB buffer.
    #[must_use]
    pub fn new(iface: impl Into<String>) -> Self {
        Self {
            iface: iface.into(),
            promisc: false,
            filter: None,
            // As tcpdump: BIG TCP super-packets of this host's own traffic exceed 64 KiB.
            snaplen: 262_144,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
        }
    }
}

/// One packet as read from a source; `data` borrows the source's buffer until the next read.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub ts_micros: i64,
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// Result of one read attempt.
#[derive(Debug)]
pub enum Read<'a> {
    Packet(RawPacket<'a>),
    /// No packet within the read timeout (live sources only): the caller checks for shutdown and loops.
    Idle,
    /// The file ended.
    End,
}

/// Kernel-side counters from libpcap (`pcap_stats`), cumulative since the source was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub received: u64,
    /// Dropped because the buffer was full (the reader was too slow).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// What one `PacketSource::read_batch` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// This many packets went to the callback (at least one). Fewer than asked for means the source had
    /// no more ready: the reader has caught up.
    Packets(usize),
    /// No packet within the read timeout, or the read was woken (live sources only).
    Idle,
    /// The file ended.
    End,
}

/// Makes a blocked `PacketSource::read` or `read_batch` return, from any thread. Used once, to stop a
/// reader: a libpcap read that is woken may lose the packet it was returning (see `PcapSource::waker`).
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// A source of raw packets. Implemented by libpcap captures; tests can provide their own.
pub trait PacketSource: Send {
    /// Reads the next packet, waits up to the read timeout on live sources.
    ///
    /// # Errors
    /// A read failure (device went down, corrupt file); the caller decides whether to reopen.
    fn read(&mut self) -> Result<Read<'_>>;
    /// Reads up to `max_packets` packets that are ready, waiting (up to the read timeout) only when none
    /// is, and hands each to `each`. Live capture's reader thread uses this: libpcap then walks its buffer
    /// without a call per packet. The default reads one by one.
    ///
    /// # Errors
    /// As `read`. Packets handed to `each` before an error are valid.
    fn read_batch(&mut self, max_packets: usize, each: &mut dyn FnMut(RawPacket<'_>)) -> Result<Batch> {
        read_one_by_one(self, max_packets, each)
    }
    /// Link type of the frames this source yields.
    fn link_type(&self) -> LinkType;
    /// Kernel drop counters (live sources); `None` for files.
    fn kernel_stats(&mut self) -> Option<KernelStats>;
    /// For live sources whose read can block with no traffic: a handle that wakes it.
    fn waker(&mut self) -> Option<Waker> {
        None
    }
    /// True for live devices (reads may idle), false for files (reads end).
    fn is_live(&self) -> bool {
        false
    }
}

/// `PacketSource::read_batch` through `read`, for sources with no batch read of their own.
///
/// # Errors
/// As `PacketSource::read`.
pub fn read_one_by_one<S: PacketSource + ?Sized>(
    source: &mut S,
    max_packets: usize,
    each: &mut dyn FnMut(RawPacket<'_>),
) -> Result<Batch> {
    let mut count = 0;
    while count < max_packets {
        match source.read()? {
            Read::Packet(raw) => {
                each(raw);
                count += 1;
            }
            Read::Idle if count == 0 => return Ok(Batch::Idle),
            Read::End if count == 0 => return Ok(Batch::End),
            // The next call sees the idle read or the end again.
            Read::Idle | Read::End => break,
        }
    }
    Ok(Batch::Packets(count))
}

/// A libpcap capture, live or offline.
pub struct PcapSource {
    capture: Capture<dyn Activated>,
    name: String,
    link: LinkType,
    live: bool,
    /// Reads do not block and an empty read sleeps `NONBLOCKING_IDLE` (netfilter log devices, see
    /// `is_nflog`).
    nonblocking: bool,
}

/// Read timeout of live captures. Immediate mode is off, so libpcap uses TPACKET_V3: the kernel fills
/// 256 KiB blocks of the ring and wakes the reader once per block, or after this long when a block holds
/// packets but is not full. Under load blocks fill by size, so this only bounds how late a packet of a
/// quiet link reaches the engine: 5 ms, because the first packet of a flow must arrive while its program
/// still runs (a 50 ms client is gone before a 50 ms block timeout fires, and its attribution lost). At
/// low rates the reader then wakes at most 200 times a second. (A quiet link never wakes the read: only
/// packets retire blocks. The reader is woken once to stop.)
const LIVE_READ_TIMEOUT_MILLIS: i32 = 5;

/// How long an empty read of a non-blocking source waits before it reports `Read::Idle`.
const NONBLOCKING_IDLE: Duration = Duration::from_millis(10);

/// libpcap's netfilter log device: `nflog`, or `nflog:GROUPS` (`nflog:5`, `nflog:1,2`) for other groups
/// than 0. Its reads are a plain `recv` with no read timeout, and a `pcap_breakloop` set while one waits
/// makes libpcap discard the message that wakes it (libpcap 1.10, `pcap-netfilter-linux.c`), so it is read
/// without blocking and without a waker.
fn is_nflog(iface: &str) -> bool {
    iface == "nflog"
        || iface.strip_prefix("nflog:").is_some_and(|groups| {
            !groups.is_empty() && groups.bytes().all(|b| b.is_ascii_digit() || b == b',')
        })
}

/// The name libpcap lists a device under: `nflog` for `nflog:5`.
fn listed_name(iface: &str) -> &str {
    if is_nflog(iface) { "nflog" } else { iface }
}

impl PcapSource {
    /// Opens a live device.
    ///
    /// # Errors
    /// Unknown interface, missing privileges (with the fix in the message), bad BPF filter.
    pub fn open_live(opts: &LiveOptions) -> Result<Self> {
        if opts.iface != "any" && !interface_exists(&opts.iface) {
            return Err(CaptureError::NoSuchInterface {
                iface: opts.iface.clone(),
            });
        }
        let inactive =
            Capture::from_device(opts.iface.as_str()).map_err(|e| device_error(&opts.iface, &e))?;
        let mut capture = inactive
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_bytes)
            .timeout(LIVE_READ_TIMEOUT_MILLIS)
            .immediate_mode(false)
            .open()
            .map_err(|e| device_error(&opts.iface, &e))?;
        let nonblocking = is_nflog(&opts.iface);
        if nonblocking {
            capture = capture.setnonblock().map_err(|e| device_error(&opts.iface, &e))?;
        }
        let mut capture: Capture<dyn Activated> = capture.into();
        if opts.iface == "any" {
            // SLL2 carries each frame's interface index, so rules limited to an interface still match
            // on `any`. libpcap older than 1.10 lacks it: those frames then name no interface.
            capture
                .set_datalink(pcap::Linktype(LinkType::LinuxSll2.to_linktype()))
                .ok();
        }
        if let Some(filter) = &opts.filter {
            apply_filter(&mut capture, filter)?;
        }
        let link = LinkType::from_dlt(capture.get_datalink().0);
        Ok(Self {
            capture,
            name: opts.iface.clone(),
            link,
            live: true,
            nonblocking,
        })
    }

    /// Opens a pcap or pcapng file.
    ///
    /// # Errors
    /// Missing, unreadable, empty or non-capture file; bad BPF filter.
    pub fn open_file(path: &Path, filter: Option<&str>) -> Result<Self> {
        let file_error = |detail: String| CaptureError::File {
            path: path.to_path_buf(),
            detail,
        };
        match std::fs::metadata(path) {
            Err(e) => return Err(file_error(e.to_string())),
            Ok(m) if m.is_dir() => return Err(file_error("it is a directory".into())),
            Ok(m) if m.len() == 0 => return Err(file_error("the file is empty".into())),
            Ok(_) => {}
        }
        let capture = Capture::from_file(path).map_err(|e| {
            let detail = e.to_string();
            if detail.contains("unknown file format") || detail.contains("truncated dump file") {
                file_error(format!("not a pcap or pcapng capture ({detail})"))
            } else {
                file_error(detail)
            }
        })?;
        let mut capture: Capture<dyn Activated> = capture.into();
        if let Some(filter) = filter {
            apply_filter(&mut capture, filter)?;
        }
        let link = LinkType::from_dlt(capture.get_datalink().0);
        Ok(Self {
            capture,
            name: path.display().to_string(),
            link,
            live: false,
            nonblocking: false,
        })
    }

    /// Opens whatever `spec` names.
    ///
    /// # Errors
    /// As `open_live` / `open_file`.
    pub fn open(spec: &SourceSpec) -> Result<Self> {
        match spec {
            SourceSpec::Live(opts) => Self::open_live(opts),
            SourceSpec::File { path, filter } => Self::open_file(path, filter.as_deref()),
        }
    }
}

impl PacketSource for PcapSource {
    fn read(&mut self) -> Result<Read<'_>> {
        match self.capture.next_packet() {
            Ok(packet) => Ok(Read::Packet(RawPacket {
                ts_micros: micros(&packet.header.ts),
                wire_len: packet.header.len,
                data: packet.data,
            })),
            Err(e) => read_error(e, &self.name, self.live, self.nonblocking),
        }
    }

    fn read_batch(&mut self, max_packets: usize, each: &mut dyn FnMut(RawPacket<'_>)) -> Result<Batch> {
        if !self.live {
            return read_one_by_one(self, max_packets, each);
        }
        // `pcap_dispatch` hands over what the ring holds without a call per packet. Unlike `pcap_next_ex`,
        // it gives every packet it consumed to the callback even when the read is broken off: libpcap 1.10
        // checks for `pcap_breakloop` after taking a packet from the ring, and `pcap_next_ex` then returns
        // "break" and drops that packet (the packets a live run missed without a reported drop).
        let result = self.capture.dispatch(Some(max_packets.max(1)), |packet| {
            each(RawPacket {
                ts_micros: micros(&packet.header.ts),
                wire_len: packet.header.len,
                data: packet.data,
            });
        });
        match result {
            Ok(0) => {
                if self.nonblocking {
                    std::thread::sleep(NONBLOCKING_IDLE);
                }
                Ok(Batch::Idle)
            }
            Ok(count) => Ok(Batch::Packets(count)),
            Err(e) => read_error(e, &self.name, self.live, self.nonblocking).map(|_| Batch::Idle),
        }
    }

    fn link_type(&self) -> LinkType {
        self.link
    }

    fn waker(&mut self) -> Option<Waker> {
        // A non-blocking source returns by itself; breaking its loop would only lose a message.
        if !self.live || self.nonblocking {
            return None;
        }
        // With TPACKET_V3 the kernel wakes a blocked read only when a block holds packets, so the read
        // timeout never fires on a quiet link; `pcap_breakloop` (an eventfd since libpcap 1.10) does. It is
        // only for stopping: a read it breaks returns an error libpcap does not tell apart from others.
        let handle = self.capture.breakloop_handle();
        Some(Box::new(move || handle.breakloop()))
    }

    fn is_live(&self) -> bool {
        self.live
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        if !self.live {
            return None;
        }
        self.capture.stats().ok().map(|s| KernelStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}

/// A libpcap timestamp in microseconds since the epoch (`time_t` and `suseconds_t` are i64 on 64-bit
/// Linux).
fn micros(ts: &libc::timeval) -> i64 {
    ts.tv_sec.saturating_mul(1_000_000).saturating_add(ts.tv_usec)
}

/// What a failed `next_packet` means for a source named `name`. Kept out of `read`, whose packet path
/// every frame takes.
#[cold]
fn read_error<'a>(error: pcap::Error, name: &str, live: bool, nonblocking: bool) -> Result<Read<'a>> {
    match error {
        pcap::Error::TimeoutExpired => {
            if nonblocking {
                std::thread::sleep(NONBLOCKING_IDLE);
            }
            Ok(Read::Idle)
        }
        // An empty non-blocking netfilter read is an error to libpcap ("Can't receive packet: Resource
        // temporarily unavailable"): nothing has arrived yet.
        pcap::Error::PcapError(detail) if nonblocking && would_block(&detail) => {
            std::thread::sleep(NONBLOCKING_IDLE);
            Ok(Read::Idle)
        }
        // On a live device this is `pcap_breakloop` from the waker: not an end.
        pcap::Error::NoMorePackets if live => Ok(Read::Idle),
        pcap::Error::NoMorePackets => Ok(Read::End),
        e => Err(CaptureError::Read {
            source_name: name.to_owned(),
            detail: e.to_string(),
        }),
    }
}

/// True when libpcap's error text is `strerror(EAGAIN)` (glibc and musl word it alike), as
/// `pcap_fmt_errmsg_for_errno` appends it.
fn would_block(detail: &str) -> bool {
    detail.contains("Resource temporarily unavailable")
}

fn apply_filter(capture: &mut Capture<dyn Activated>, filter: &str) -> Result<()> {
    capture.filter(filter, true).map_err(|e| CaptureError::Filter {
        filter: filter.to_owned(),
        detail: e.to_string(),
    })
}

fn device_error(iface: &str, e: &pcap::Error) -> CaptureError {
    let detail = e.to_string();
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        CaptureError::NotPermitted {
            iface: iface.to_owned(),
            binary: std::env::current_exe()
                .map_or_else(|_| "netwarden".to_owned(), |p| p.display().to_string()),
            detail,
        }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface {
            iface: iface.to_owned(),
        }
    } else {
        CaptureError::Device {
            iface: iface.to_owned(),
            detail,
        }
    }
}

/// A capture device as `netwarden interfaces` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<std::net::IpAddr>,
    pub up: bool,
    pub running: bool,
    pub loopback: bool,
}

/// Lists the devices libpcap can capture on (including `any`).
///
/// # Errors
/// libpcap could not enumerate devices.
pub fn list_interfaces() -> Result<Vec<InterfaceInfo>> {
    let devices = pcap::Device::list().map_err(|e| CaptureError::Device {
        iface: "(all)".into(),
        detail: e.to_string(),
    })?;
    Ok(devices
        .into_iter()
        .map(|d| InterfaceInfo {
            up: d.flags.is_up(),
            running: d.flags.is_running(),
            loopback: d.flags.is_loopback(),
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// True when `iface` is a device the system has right now (by `/sys/class/net`, falling back to libpcap).
#[must_use]
pub fn interface_exists(iface: &str) -> bool {
    if iface == "any" {
        return true;
    }
    if iface.contains('/') || iface.is_empty() {
        return false;
    }
    if Path::new("/sys/class/net").join(iface).exists() {
        return true;
    }
    let listed = listed_name(iface);
    pcap::Device::list().is_ok_and(|list| list.iter().any(|d| d.name == listed))
}

/// True when the interface exists and its operational state is up (or unknown, as for tunnels). libpcap's
/// pseudo devices that are no kernel interface (`nflog`, `dbus-system`, ..) have no link state: up while
/// libpcap lists them.
#[must_use]
pub fn interface_is_up(iface: &str) -> bool {
    if iface == "any" {
        return true;
    }
    let dir = Path::new("/sys/class/net").join(iface);
    match std::fs::read_to_string(dir.join("operstate")) {
        Ok(state) => matches!(state.trim(), "up" | "unknown"),
        Err(_) => !dir.exists() && interface_exists(iface),
    }
}

/// Back-off schedule for reopening a device that went down: 0.5 s doubling to 10 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(10);

    /// The delay to wait now; the following call returns a longer one, up to 10 s.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, vec![500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn missing_file_names_path() {
        let err = PcapSource::open_file(Path::new("/nonexistent/x.pcap"), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
    }

    #[test]
    fn empty_and_garbage_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").unwrap();
        let err = PcapSource::open_file(&empty, None).err().unwrap();
        assert!(err.to_string().contains("the file is empty"), "{err}");
        let junk = dir.path().join("junk.pcap");
        std::fs::write(&junk, b"this is not a capture file at all, just text\n").unwrap();
        let err = PcapSource::open_file(&junk, None).err().unwrap();
        assert!(err.to_string().contains("not a pcap or pcapng capture"), "{err}");
    }

    #[test]
    fn nflog_device_names() {
        for name in ["nflog", "nflog:5", "nflog:1,2"] {
            assert!(is_nflog(name), "{name}");
            assert_eq!(listed_name(name), "nflog");
        }
        for name in ["nflog:", "nflog:x", "nflog5", "eth0", "nfqueue"] {
            assert!(!is_nflog(name), "{name}");
            assert_eq!(listed_name(name), name);
        }
        assert!(would_block(
            "Can't receive packet: Resource temporarily unavailable"
        ));
        assert!(!would_block("Can't receive packet: No buffer space available"));
    }

    #[test]
    fn pseudo_devices_count_as_up_and_deleted_interfaces_do_not() {
        // `nflog` is listed by libpcap on Linux but is no kernel interface, so it has no operstate.
        if pcap::Device::list().is_ok_and(|list| list.iter().any(|d| d.name == "nflog")) {
            assert!(interface_exists("nflog:7"));
            assert!(interface_is_up("nflog"));
        }
        assert!(!interface_is_up("nw-no-such0"));
        assert!(interface_is_up("lo"));
    }

    #[test]
    fn unknown_interface_is_reported() {
        let err = PcapSource::open_live(&LiveOptions::new("nw-no-such0"))
            .err()
            .unwrap();
        assert!(matches!(err, CaptureError::NoSuchInterface { .. }), "{err}");
        assert!(!interface_exists("../etc"));
    }
}
