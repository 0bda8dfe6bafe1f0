//! Prometheus metrics: `--metrics ADDR` serves `/metrics` in the Prometheus text format (0.0.4), encoded by
//! the `prometheus-client` crate, from a small HTTP server on a thread of its own ("metrics").
//!
//! Nothing here touches the capture path: a scrape reads the engine's counters, which the capture thread
//! publishes to atomics once per tick (`EngineStats`), the rules' hit counters and the counters the front
//! end and the enforcement thread keep here. Every metric is `netwarden_*` with a `# HELP` line:
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `netwarden_packets_total`, `netwarden_bytes_total` | `verdict` (allow, block, log), `direction` (in, out, local, unknown) | packets and bytes seen |
//! | `netwarden_rule_hits_total` | `rule` (`default` = default policy) | packets each rule decided |
//! | `netwarden_alerts_total` | `kind` (port-scan, syn-flood, rate-exceeded, repeated-denied) | detection alerts |
//! | `netwarden_malformed_packets_total` | | frames that could not be fully parsed |
//! | `netwarden_capture_drops_total` | `source` (kernel, interface) | packets the capture lost (libpcap `ps_drop`, `ps_ifdrop`) |
//! | `netwarden_audit_write_errors_total` | | failed audit-log writes |
//! | `netwarden_output_dropped_events_total` | | events the output was too slow to take |
//! | `netwarden_forwarded_events_total`, `netwarden_forward_dropped_events_total` | `destination` | syslog / journald |
//! | `netwarden_active_bans` | | block-list entries the kernel enforces now |
//! | `netwarden_bans_total`, `netwarden_unbans_total` | | bans put in / lifted since start |
//! | `netwarden_capture_running` | | 1 while capture runs |
//!
//! Bans: whoever owns the `Enforcer` reports through `Metrics::set_active_bans`, `record_bans` and
//! `record_unbans` (today the `run --enforce` guard thread).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::engine::{
    ACTIONS, ALERT_KINDS, AlertCounts, DIRECTIONS, EngineStats, StatsSnapshot, VerdictDirection, rule_hits,
};
use crate::forward::ForwardCounters;
use crate::packet::Direction;
use crate::rules::SharedRules;

/// How long a client may take to send its request or read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Request heads longer than this are refused.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("bad --metrics address {text:?}: {why}")]
    BadAddress { text: String, why: String },
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Parses a `--metrics` address: `IP:PORT` (`127.0.0.1:9911`, `[::1]:9911`) or a bare `PORT` for
/// `127.0.0.1:PORT`. Host names are refused, so what is bound is exactly what was written.
///
/// # Errors
/// `MetricsError::BadAddress` with the reason.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, MetricsError> {
    let bad = |why: &str| MetricsError::BadAddress {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        if text
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_err())
        {
            bad("the port must be a number from 0 to 65535")
        } else {
            bad("expected IP:PORT (127.0.0.1:9911, [::1]:9911) or a port; host names are not accepted")
        }
    })
}

/// Where the run is.
const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;

/// Everything `/metrics` reports (see the module docs). Shared as `Arc<Metrics>` between the front end,
/// the enforcement thread and the server.
#[derive(Debug)]
pub struct Metrics {
    rules: SharedRules,
    engine: OnceLock<Arc<EngineStats>>,
    state: AtomicU8,
    active_bans: AtomicU64,
    bans: AtomicU64,
    unbans: AtomicU64,
    forwarders: Mutex<Vec<(String, Arc<ForwardCounters>)>>,
}

impl Metrics {
    /// Metrics over the rules in force (their hit counters are read at each scrape).
    #[must_use]
    pub fn new(rules: SharedRules) -> Arc<Self> {
        Arc::new(Self {
            rules,
            engine: OnceLock::new(),
            state: AtomicU8::new(STARTING),
            active_bans: AtomicU64::new(0),
            bans: AtomicU64::new(0),
            unbans: AtomicU64::new(0),
            forwarders: Mutex::new(Vec::new()),
        })
    }

    /// Reads packet counters from this engine from now on and marks capture as running. Only the first
    /// engine attached counts (one per process).
    pub fn attach_engine(&self, stats: Arc<EngineStats>) {
        self.engine.set(stats).ok();
        self.state.store(RUNNING, Relaxed);
    }

    /// Marks the run as over: call after the engine was joined, so the counters are final. From then on a
    /// scrape serves the final counts (`MetricsServer::wait_for_final_scrape`).
    pub fn finish(&self) {
        self.state.store(FINISHED, Relaxed);
    }

    /// Reports a forwarder's sent and dropped events under `destination` (its URL).
    pub fn add_forwarder(&self, destination: String, counters: Arc<ForwardCounters>) {
        if let Ok(mut list) = self.forwarders.lock() {
            list.push((destination, counters));
        }
    }

    /// Block-list entries the kernel enforces now (`netwarden_active_bans`).
    pub fn set_active_bans(&self, entries: u64) {
        self.active_bans.store(entries, Relaxed);
    }

    /// `n` bans were put in force (`netwarden_bans_total`).
    pub fn record_bans(&self, n: u64) {
        self.bans.fetch_add(n, Relaxed);
    }

    /// `n` bans were lifted, by expiry or by hand (`netwarden_unbans_total`).
    pub fn record_unbans(&self, n: u64) {
        self.unbans.fetch_add(n, Relaxed);
    }

    /// The metrics in the Prometheus text format (0.0.4), and whether they are the run's final counts.
    #[must_use]
    pub fn encode(&self) -> (String, bool) {
        let scrape = self.scrape();
        let finished = scrape.state == FINISHED;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut text = String::with_capacity(4096);
        // Encoding into a String fails only if a collector fails, and ours do not.
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).ok();
        (text, finished)
    }

    /// Reads every counter once (the state first, so a finished state comes with final counts).
    fn scrape(&self) -> Scrape {
        let state = self.state.load(Relaxed);
        let engine = self.engine.get();
        let forwarders = self.forwarders.lock().map_or_else(
            |_| Vec::new(),
            |list| {
                list.iter()
                    .map(|(name, c)| (name.clone(), c.sent(), c.dropped()))
                    .collect()
            },
        );
        Scrape {
            state,
            by_verdict_direction: engine.map(|e| e.by_verdict_direction()).unwrap_or_default(),
            alerts: engine.map(|e| e.alerts_by_kind()).unwrap_or_default(),
            stats: engine.map(|e| e.snapshot()).unwrap_or_default(),
            rule_hits: merge_duplicates(rule_hits(&self.rules.load())),
            active_bans: self.active_bans.load(Relaxed),
            bans: self.bans.load(Relaxed),
            unbans: self.unbans.load(Relaxed),
            forwarders,
        }
    }
}

/// Sums entries with the same name (a user rule called `default` next to the default policy), so every
/// label set appears once, as the exposition format requires.
fn merge_duplicates(hits: Vec<(String, u64)>) -> Vec<(String, u64)> {
    let mut seen = std::collections::HashMap::<String, usize>::with_capacity(hits.len());
    let mut out: Vec<(String, u64)> = Vec::with_capacity(hits.len());
    for (name, count) in hits {
        if let Some(&at) = seen.get(&name) {
            if let Some(entry) = out.get_mut(at) {
                entry.1 += count;
            }
        } else {
            seen.insert(name.clone(), out.len());
            out.push((name, count));
        }
    }
    out
}

/// One reading of every counter, encoded by prometheus-client as a collector.
#[derive(Debug)]
struct Scrape {
    state: u8,
    by_verdict_direction: VerdictDirection<u64>,
    alerts: AlertCounts<u64>,
    stats: StatsSnapshot,
    rule_hits: Vec<(String, u64)>,
    active_bans: u64,
    bans: u64,
    unbans: u64,
    /// `(destination, sent, dropped)`.
    forwarders: Vec<(String, u64, u64)>,
}

/// The label value of a direction (`Direction::name` says `?` for unknown, which reads badly in a query).
fn direction_label(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "in",
        Direction::Out => "out",
        Direction::Local => "local",
        Direction::Unknown => "unknown",
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels<'_>, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family =
        encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric =
        encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric =
        encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let cells = || {
            ACTIONS
                .iter()
                .zip(&self.by_verdict_direction)
                .flat_map(|(action, row)| {
                    DIRECTIONS
                        .iter()
                        .zip(row)
                        .map(move |(direction, cell)| (action.name(), direction_label(*direction), *cell))
                })
        };
        let packets: Vec<_> = cells()
            .map(|(verdict, direction, (packets, _))| {
                (vec![("verdict", verdict), ("direction", direction)], packets)
            })
            .collect();
        let bytes: Vec<_> = cells()
            .map(|(verdict, direction, (_, bytes))| {
                (vec![("verdict", verdict), ("direction", direction)], bytes)
            })
            .collect();
        counter_family(
            &mut encoder,
            "netwarden_packets",
            "Packets seen, by verdict (allow, block, log) and direction from this host's view",
            &packets,
        )?;
        counter_family(
            &mut encoder,
            "netwarden_bytes",
            "Bytes on the wire of the packets seen, by verdict and direction",
            &bytes,
        )?;
        let hits: Vec<_> = self
            .rule_hits
            .iter()
            .map(|(rule, hits)| (vec![("rule", rule.as_str())], *hits))
            .collect();
        counter_family(
            &mut encoder,
            "netwarden_rule_hits",
            "Packets each rule decided (rule=\"default\": the default policy); restarts at 0 for a rule added by a reload",
            &hits,
        )?;
        let alerts: Vec<_> = ALERT_KINDS
            .iter()
            .zip(&self.alerts)
            .map(|(kind, n)| (vec![("kind", kind.name())], *n))
            .collect();
        counter_family(
            &mut encoder,
            "netwarden_alerts",
            "Detection alerts, by kind",
            &alerts,
        )?;
        counter(
            &mut encoder,
            "netwarden_malformed_packets",
            "Frames that could not be fully parsed (still counted and evaluated)",
            self.stats.malformed,
        )?;
        counter_family(
            &mut encoder,
            "netwarden_capture_drops",
            "Packets the capture lost before netwarden saw them: source=kernel (capture buffer full) or interface (dropped by the interface or driver), as libpcap reports them",
            &[
                (vec![("source", "kernel")], self.stats.kernel_dropped),
                (vec![("source", "interface")], self.stats.kernel_if_dropped),
            ],
        )?;
        counter(
            &mut encoder,
            "netwarden_audit_write_errors",
            "Audit-log writes that failed",
            self.stats.audit_errors,
        )?;
        counter(
            &mut encoder,
            "netwarden_output_dropped_events",
            "Events the output (terminal, pipe) was too slow to take; still counted, logged and forwarded",
            self.stats.display_dropped,
        )?;
        let sent: Vec<_> = self
            .forwarders
            .iter()
            .map(|(name, sent, _)| (vec![("destination", name.as_str())], *sent))
            .collect();
        let dropped: Vec<_> = self
            .forwarders
            .iter()
            .map(|(name, _, dropped)| (vec![("destination", name.as_str())], *dropped))
            .collect();
        counter_family(
            &mut encoder,
            "netwarden_forwarded_events",
            "Denied and suspicious events handed to syslog or journald",
            &sent,
        )?;
        counter_family(
            &mut encoder,
            "netwarden_forward_dropped_events",
            "Denied and suspicious events not forwarded: queue full, receiver gone or send failed",
            &dropped,
        )?;
        gauge(
            &mut encoder,
            "netwarden_active_bans",
            "Block-list entries the kernel enforces now",
            self.active_bans,
        )?;
        counter(
            &mut encoder,
            "netwarden_bans",
            "Bans put in force since start",
            self.bans,
        )?;
        counter(
            &mut encoder,
            "netwarden_unbans",
            "Bans lifted since start (expired or removed)",
            self.unbans,
        )?;
        gauge(
            &mut encoder,
            "netwarden_capture_running",
            "1 while capture runs, 0 before it starts and after it ended",
            u64::from(self.state == RUNNING),
        )
    }
}

/// The HTTP server behind `--metrics`: `GET /metrics` (and `HEAD`), one request per connection, on a
/// thread of its own; a slow client waits at most 2 s and only delays other scrapes.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Scrapes answered with the run's final counts.
    final_served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and starts serving `metrics`.
    ///
    /// # Errors
    /// The address cannot be bound (in use, not an address of this host, no permission).
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Self, MetricsError> {
        let bind_error = |source| MetricsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_error)?;
        // Accept polls, so the thread sees `stop` without a connection to wake it.
        listener.set_nonblocking(true).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let final_served = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let final_served = Arc::clone(&final_served);
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || accept_loop(&listener, &metrics, &stop, &final_served))
                .map_err(bind_error)?
        };
        Ok(Self {
            addr: bound,
            stop,
            final_served,
            thread: Some(thread),
        })
    }

    /// The address really bound (port 0 becomes the port the kernel chose).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// After `Metrics::finish`: waits until a scrape has been answered with the final counts, for at most
    /// `timeout`. Returns whether one was.
    #[must_use]
    pub fn wait_for_final_scrape(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.final_served.load(Relaxed) > 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, metrics: &Metrics, stop: &AtomicBool, final_served: &AtomicU64) {
    while !stop.load(Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A client that misbehaves only loses its own answer.
                if let Ok(true) = serve(stream, metrics) {
                    final_served.fetch_add(1, Relaxed);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            // Out of descriptors and the like: wait a little rather than spin.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Answers one request; returns whether it served the run's final counts.
fn serve(mut stream: TcpStream, metrics: &Metrics) -> io::Result<bool> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0_u8; 1024];
    while !head_complete(&head) {
        if head.len() > MAX_REQUEST_HEAD {
            respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
                false,
            )?;
            return Ok(false);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let head_only = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let (body, finished) = metrics.encode();
            respond(
                &mut stream,
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body.as_bytes(),
                head_only,
            )?;
            Ok(finished && !head_only)
        }
        ("GET" | "HEAD", "/") => {
            respond(
                &mut stream,
                "200 OK",
                "text/plain; charset=utf-8",
                b"netwarden: see /metrics\n",
                head_only,
            )?;
            Ok(false)
        }
        ("GET" | "HEAD", _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain; charset=utf-8",
                b"not found: try /metrics\n",
                head_only,
            )?;
            Ok(false)
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain; charset=utf-8",
                b"only GET and HEAD\n",
                false,
            )?;
            Ok(false)
        }
    }
}

fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )
    .into_bytes();
    if status.starts_with("405") {
        response.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    response.extend_from_slice(b"\r\n");
    if !head_only {
        response.extend_from_slice(body);
    }
    stream.write_all(&response)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleSet, shared};

    fn metrics() -> Arc<Metrics> {
        Metrics::new(shared(
            RuleSet::from_ron(
                r#"(default_policy: Allow, rules: [(name: "no ssh", action: Block, dst_ports: ["22"])])"#,
            )
            .unwrap(),
        ))
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn addresses_parse_or_say_why_not() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:9911").unwrap(),
            "127.0.0.1:9911".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("[::1]:9911").unwrap(),
            "[::1]:9911".parse().unwrap()
        );
        assert_eq!(
            parse_listen_addr("9911").unwrap(),
            "127.0.0.1:9911".parse().unwrap()
        );
        for (text, why) in [
            ("localhost:9911", "host names are not accepted"),
            ("127.0.0.1", "expected IP:PORT"),
            ("127.0.0.1:99999", "port must be a number"),
            ("", "expected IP:PORT"),
            ("::1:9911", "expected IP:PORT"),
        ] {
            let err = parse_listen_addr(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn every_metric_has_help_and_the_ban_api_counts() {
        let metrics = metrics();
        metrics.set_active_bans(3);
        metrics.record_bans(2);
        metrics.record_unbans(1);
        metrics.add_forwarder("udp://127.0.0.1:514".into(), Arc::new(ForwardCounters::default()));
        let (text, finished) = metrics.encode();
        assert!(!finished);
        for line in [
            "netwarden_active_bans 3",
            "netwarden_bans_total 2",
            "netwarden_unbans_total 1",
            "netwarden_capture_running 0",
            "netwarden_packets_total{verdict=\"block\",direction=\"in\"} 0",
            "netwarden_rule_hits_total{rule=\"no ssh\"} 0",
            "netwarden_rule_hits_total{rule=\"default\"} 0",
            "netwarden_alerts_total{kind=\"syn-flood\"} 0",
            "netwarden_capture_drops_total{source=\"interface\"} 0",
            "netwarden_forward_dropped_events_total{destination=\"udp://127.0.0.1:514\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let names: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        assert_eq!(names.len(), 14, "{names:?}");
        for name in names {
            assert!(name.starts_with("netwarden_"), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
            assert!(text.contains(&format!("# TYPE {name} ")), "no TYPE for {name}");
        }
        metrics.attach_engine(Arc::new(EngineStats::default()));
        assert!(metrics.encode().0.contains("netwarden_capture_running 1"));
        metrics.finish();
        assert!(metrics.encode().1);
    }

    #[test]
    fn duplicate_rule_labels_are_summed() {
        assert_eq!(
            merge_duplicates(vec![
                ("default".into(), 2),
                ("a".into(), 1),
                ("default".into(), 3)
            ]),
            vec![("default".to_owned(), 5), ("a".to_owned(), 1)]
        );
    }

    #[test]
    fn the_server_answers_metrics_404_405_and_counts_final_scrapes() {
        let metrics = metrics();
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&metrics)).unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"), "{ok}");
        let body = ok.split_once("\r\n\r\n").unwrap().1;
        assert!(
            ok.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{ok}"
        );
        assert!(body.contains("# HELP netwarden_packets_total"), "{body}");
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let head = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert!(!server.wait_for_final_scrape(Duration::from_millis(50)));
        metrics.finish();
        get(addr, "GET /metrics HTTP/1.0\n\n");
        assert!(server.wait_for_final_scrape(Duration::from_secs(5)));
        server.stop();
        assert!(TcpStream::connect(addr).is_err(), "stopped server still accepts");
    }

    #[test]
    fn a_client_that_sends_nothing_does_not_hold_the_server_forever() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics()).unwrap();
        let addr = server.local_addr();
        let _silent = TcpStream::connect(addr).unwrap();
        // Served after the silent client's 2 s read timeout at the latest.
        let ok = get(addr, "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
}
