//! Forwarding denied and suspicious events to the system's log: syslog (RFC 5424 over UDP, TCP or a unix
//! socket) and journald (its native protocol).
//!
//! A `Forwarder` formats each event on the caller's thread (the front end's, never the capture thread) and
//! hands the bytes to a bounded queue; a named thread ("syslog", "journald") sends them. The caller never
//! waits: a full queue drops the event and counts it, and so does a send that fails. A receiver that goes
//! away therefore never stalls capture or output; TCP reconnects with back-off (0.5 s doubling to 10 s).

pub mod journald;
pub mod syslog;

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::capture::Backoff;
use crate::event::Event;
use crate::export::EventRow;
pub use syslog::SyslogTarget;

/// Messages waiting to be sent, at most; more are dropped and counted.
pub const QUEUE_MESSAGES: usize = 4096;
/// How long one send or TCP connect may take before it counts as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// Why forwarding could not start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("bad syslog URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot use {target}: {source}")]
    Io {
        target: String,
        #[source]
        source: io::Error,
    },
}

/// Where a `Forwarder` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Syslog(SyslogTarget),
    /// journald's native socket (normally `journald::DEFAULT_SOCKET`).
    Journald(PathBuf),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syslog(target) => target.fmt(f),
            Self::Journald(path) => write!(f, "journald ({})", path.display()),
        }
    }
}

/// What a forwarder has done so far; shared with metrics.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl ForwardCounters {
    /// Events handed to the socket (for UDP that is not a delivery receipt).
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Relaxed)
    }

    /// Events dropped: the queue was full, the receiver was gone or a send failed.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn add_dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }
}

/// The fields of an event as `(name, value)` pairs, present ones only, in a fixed order: syslog structured
/// data and journald entries both carry this set (names: lower-case ASCII, at most 14 characters).
#[must_use]
pub fn event_fields(event: &Event) -> Vec<(&'static str, Cow<'_, str>)> {
    let row = EventRow::from_event(event);
    let mut fields: Vec<(&'static str, Cow<'_, str>)> = Vec::with_capacity(20);
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            fields.push((name, Cow::Owned(value)));
        }
    };
    push("action", Some(row.verdict.to_owned()));
    push("rule", Some(row.rule.into_owned()));
    push("proto", Some(row.protocol));
    push("src", row.src_ip);
    push("sport", row.src_port.map(|p| p.to_string()));
    push("dst", row.dst_ip);
    push("dport", row.dst_port.map(|p| p.to_string()));
    push("dir", Some(row.direction.to_owned()));
    push("iface", Some(row.iface.into_owned()));
    push("len", Some(row.length.to_string()));
    push("flags", (!row.tcp_flags.is_empty()).then_some(row.tcp_flags));
    push("icmp_type", row.icmp_type.map(|t| t.to_string()));
    push("icmp_code", row.icmp_code.map(|c| c.to_string()));
    push("vlan", (row.vlan != 0).then(|| row.vlan.to_string()));
    push("alert", row.alert.map(str::to_owned));
    push("reason", row.alert_reason.map(Cow::into_owned));
    push("src_name", row.src_name.map(Cow::into_owned));
    push("dst_name", row.dst_name.map(Cow::into_owned));
    push("malformed", (!row.malformed.is_empty()).then_some(row.malformed));
    push("kernel_dropped", row.kernel_dropped.then(|| "true".to_owned()));
    fields
}

/// How the caller's thread turns an event into bytes for the queue.
#[derive(Debug)]
enum Format {
    Syslog {
        rfc5424: syslog::Rfc5424,
        octet_counting: bool,
    },
    Journald,
}

/// Sends denied and suspicious events to one destination from a thread of its own (see the module docs).
pub struct Forwarder {
    destination: Destination,
    format: Format,
    tx: Option<Sender<Vec<u8>>>,
    counters: Arc<ForwardCounters>,
    /// Set by `finish`: messages still queued after this instant are dropped instead of sent.
    give_up_at: Arc<OnceLock<Instant>>,
    thread: Option<JoinHandle<()>>,
    warning: Option<String>,
}

impl Forwarder {
    /// Opens the socket and starts the sending thread. For TCP a first connection is tried at once; if it
    /// fails, `warning` says so and the thread keeps trying with back-off.
    ///
    /// # Errors
    /// A unix socket path that is not a socket, or a local socket that cannot be created.
    pub fn start(destination: Destination) -> Result<Self, ForwardError> {
        let io_error = |source: io::Error| ForwardError::Io {
            target: destination.to_string(),
            source,
        };
        let (link, octet_counting, warning) = match &destination {
            Destination::Syslog(SyslogTarget::Udp(addr)) => {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0_u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).map_err(io_error)?;
                socket.connect(addr).map_err(io_error)?;
                socket.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_error)?;
                (Link::Udp(socket), false, None)
            }
            Destination::Syslog(SyslogTarget::Tcp(addr)) => {
                let mut link = TcpLink::new(*addr);
                let warning = link
                    .connect()
                    .err()
                    .map(|e| format!("{destination}: {e}; retrying with back-off, events dropped meanwhile"));
                (Link::Tcp(link), true, warning)
            }
            Destination::Syslog(SyslogTarget::Unix(path)) | Destination::Journald(path) => {
                if !journald::socket_exists(path) {
                    return Err(io_error(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no socket at that path",
                    )));
                }
                let socket = UnixDatagram::unbound().map_err(io_error)?;
                socket.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_error)?;
                (Link::Datagram(socket, path.clone()), false, None)
            }
        };
        let format = match destination {
            Destination::Syslog(_) => Format::Syslog {
                rfc5424: syslog::Rfc5424::default(),
                octet_counting,
            },
            Destination::Journald(_) => Format::Journald,
        };
        let (tx, rx) = bounded::<Vec<u8>>(QUEUE_MESSAGES);
        let counters = Arc::new(ForwardCounters::default());
        let give_up_at = Arc::new(OnceLock::new());
        let name = match &destination {
            Destination::Syslog(_) => "syslog",
            Destination::Journald(_) => "journald",
        };
        let thread = {
            let counters = Arc::clone(&counters);
            let give_up_at = Arc::clone(&give_up_at);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || send_loop(link, &rx, &counters, &give_up_at))
                .map_err(io_error)?
        };
        Ok(Self {
            destination,
            format,
            tx: Some(tx),
            counters,
            give_up_at,
            thread: Some(thread),
            warning,
        })
    }

    /// Where this forwarder sends.
    #[must_use]
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// A problem found at start that did not stop it (a TCP receiver not listening yet).
    #[must_use]
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// The counters, for metrics.
    #[must_use]
    pub fn counters(&self) -> Arc<ForwardCounters> {
        Arc::clone(&self.counters)
    }

    /// Queues `event` if it is denied or suspicious (`Event::is_notable`); others are ignored. Never
    /// waits: a full queue drops the event and counts it.
    pub fn offer(&self, event: &Event) {
        let Some(tx) = &self.tx else { return };
        if !event.is_notable() {
            return;
        }
        let message = match &self.format {
            Format::Syslog {
                rfc5424,
                octet_counting,
            } => {
                let text = rfc5424.format(event);
                if *octet_counting {
                    // RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG, the length in octets.
                    format!("{} {text}", text.len()).into_bytes()
                } else {
                    text.into_bytes()
                }
            }
            Format::Journald => journald::entry(event),
        };
        match tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.counters.add_dropped(),
        }
    }

    /// Stops taking events, sends what is queued for at most `grace` (what is left then is dropped and
    /// counted), waits for the thread and returns `(sent, dropped)`. Takes at most `grace` plus one send
    /// timeout (1 s).
    pub fn finish(mut self, grace: Duration) -> (u64, u64) {
        self.give_up_at.set(Instant::now() + grace).ok();
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
        (self.counters.sent(), self.counters.dropped())
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Dropped without `finish` (an early error): do not send what is left.
        self.give_up_at.set(Instant::now()).ok();
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// The sending side of one destination.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpLink),
    /// A local datagram socket (`/dev/log`, journald); addressed per send, so a restarted receiver that
    /// binds the same path again is found without reconnecting.
    Datagram(UnixDatagram, PathBuf),
}

impl Link {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        match self {
            Self::Udp(socket) => socket.send(message).map(drop),
            Self::Tcp(link) => link.send(message),
            Self::Datagram(socket, path) => socket.send_to(message, path).map(drop),
        }
    }
}

/// A TCP connection that is reopened with back-off after a failure.
struct TcpLink {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    retry_at: Instant,
    backoff: Backoff,
}

impl TcpLink {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            retry_at: Instant::now(),
            backoff: Backoff::default(),
        }
    }

    fn connect(&mut self) -> io::Result<()> {
        let opened = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).and_then(|stream| {
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            stream.set_nodelay(true)?;
            Ok(stream)
        });
        match opened {
            Ok(stream) => {
                self.stream = Some(stream);
                self.backoff.reset();
                Ok(())
            }
            Err(e) => {
                self.retry_at = Instant::now() + self.backoff.next_delay();
                Err(e)
            }
        }
    }

    /// Writes one framed message; while the receiver is away (waiting out the back-off) it fails at once.
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        if self.stream.is_none() {
            if Instant::now() < self.retry_at {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "waiting to reconnect",
                ));
            }
            self.connect()?;
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        };
        let written = stream.write_all(message);
        if written.is_err() {
            // After a failed or partial write the framing is lost: start a new connection.
            self.stream = None;
            self.retry_at = Instant::now() + self.backoff.next_delay();
        }
        written
    }
}

/// The forwarding thread: sends until the queue is closed and empty.
fn send_loop(
    mut link: Link,
    rx: &Receiver<Vec<u8>>,
    counters: &ForwardCounters,
    give_up_at: &OnceLock<Instant>,
) {
    for message in rx {
        if give_up_at.get().is_some_and(|at| Instant::now() >= *at) {
            counters.add_dropped();
            continue;
        }
        match link.send(&message) {
            Ok(()) => {
                counters.sent.fetch_add(1, Relaxed);
            }
            Err(_) => counters.add_dropped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;
    use crate::event::sample_event;

    #[test]
    fn fields_are_the_present_ones_in_order() {
        let event = sample_event();
        let names: Vec<&str> = event_fields(&event).iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "action", "rule", "proto", "src", "sport", "dst", "dport", "dir", "iface", "len", "flags"
            ]
        );
    }

    #[test]
    fn tcp_frames_with_octet_counts_and_allowed_events_are_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarder = Forwarder::start(Destination::Syslog(SyslogTarget::Tcp(addr))).unwrap();
        assert!(forwarder.warning().is_none());
        let (mut conn, _) = listener.accept().unwrap();
        let mut allowed = sample_event();
        allowed.verdict.action = crate::rules::Action::Allow;
        forwarder.offer(&allowed);
        forwarder.offer(&sample_event());
        forwarder.offer(&sample_event());
        assert_eq!(forwarder.finish(Duration::from_secs(5)), (2, 0));
        let mut stream = String::new();
        conn.read_to_string(&mut stream).unwrap();
        let mut rest = stream.as_str();
        let mut frames = 0;
        while !rest.is_empty() {
            let (len, after) = rest.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            let (frame, after) = after.split_at(len);
            assert!(frame.starts_with("<28>1 "), "{frame}");
            assert!(frame.ends_with("flags=S"), "{frame}");
            rest = after;
            frames += 1;
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn a_tcp_receiver_that_is_gone_drops_and_counts_without_waiting() {
        // Bind then close a listener: nothing listens on that port afterwards.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let forwarder = Forwarder::start(Destination::Syslog(SyslogTarget::Tcp(addr))).unwrap();
        assert!(forwarder.warning().is_some_and(|w| w.contains("retrying")));
        let event = sample_event();
        for _ in 0..(QUEUE_MESSAGES * 3) {
            forwarder.offer(&event);
        }
        let (sent, dropped) = forwarder.finish(Duration::from_secs(1));
        assert_eq!((sent, dropped), (0, QUEUE_MESSAGES as u64 * 3));
    }

    #[test]
    fn a_missing_unix_socket_is_an_error() {
        let err = Forwarder::start(Destination::Syslog(SyslogTarget::Unix("/nonexistent/log".into())))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unix:///nonexistent/log") && err.contains("no socket"),
            "{err}"
        );
    }

    #[test]
    fn unix_datagrams_reach_a_bound_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let forwarder = Forwarder::start(Destination::Journald(path)).unwrap();
        forwarder.offer(&sample_event());
        assert_eq!(forwarder.finish(Duration::from_secs(5)), (1, 0));
        let mut buf = vec![0; 4096];
        let n = receiver.recv(&mut buf).unwrap();
        let fields = journald::parse_entry(&buf[..n]).unwrap();
        assert!(
            fields
                .iter()
                .any(|(name, value)| name == "NETWARDEN_ACTION" && value == b"block")
        );
    }
}
