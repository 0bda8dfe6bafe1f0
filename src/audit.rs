//! The audit log (`firewall.log`): one escaped line per denied or suspicious packet, size-based rotation and
//! suppression of identical floods.
//!
//! A line: `2026-11-25T06:28:09.123456Z action=block rule="no ssh" reason="rule no ssh" proto=tcp
//! src=10.0.0.1:40000 dst=192.168.1.50:22 len=60 dir=in iface="eth0" flags=S`, then optional `alert=`,
//! `src_name=`, `dst_name=`, `malformed=` and, for a burst summary, `repeated=N` (N identical events after
//! the line before it). Text fields are quoted with `\\`, `\"`, `\n`, `\r`, `\t` and `\xNN` escapes, so a
//! line holds only printable ASCII and packet data can never start a new line or field. `parse_line`
//! reads lines back for the log viewer.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::detect::AlertKind;
use crate::event::Event;
use crate::rules::Action;

/// Audit log settings, the `log` section of `rules.ron` (the CLI's `--log` overrides `path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`firewall.log.1` .. `.N`).
    pub keep_files: u32,
    /// Identical events (same action, rule, source, destination, protocol) within this many seconds are
    /// summarised as one `repeated N times` line.
    pub repeat_window_secs: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("firewall.log"),
            max_bytes: 10 * 1024 * 1024,
            keep_files: 5,
            repeat_window_secs: 5,
        }
    }
}

/// Why the audit log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: the directory {} does not exist (create it or set `log.path` in the rules file)", path.display(), dir.display())]
    MissingDir { path: PathBuf, dir: PathBuf },
    #[error("audit log {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

type Result<T, E = AuditError> = std::result::Result<T, E>;

/// What makes two events "the same" for flood suppression.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RepeatKey {
    action: Action,
    rule: Option<std::sync::Arc<str>>,
    src_ip: Option<IpAddr>,
    dst_ip: Option<IpAddr>,
    dst_port: Option<u16>,
    protocol: Option<crate::packet::IpProto>,
    alert: Option<AlertKind>,
}

impl RepeatKey {
    fn of(event: &Event) -> Self {
        Self {
            action: event.verdict.action,
            rule: event.rule_name.clone(),
            src_ip: event.meta.src_ip,
            dst_ip: event.meta.dst_ip,
            dst_port: event.meta.dst_port,
            protocol: event.meta.protocol,
            alert: event.alert.as_ref().map(|a| a.kind),
        }
    }
}

/// A burst of identical events being summarised.
struct Burst {
    key: RepeatKey,
    first_ts_micros: i64,
    /// Events after the first that were not written.
    suppressed: u64,
    last: Option<Event>,
}

/// The `firewall.log` writer. One line per event; see the module docs for the format.
pub struct AuditLog {
    path: PathBuf,
    config: AuditConfig,
    out: BufWriter<File>,
    size: u64,
    burst: Option<Burst>,
    line: String,
    clock: TimePrefix,
}

/// Caches the formatted `YYYY-MM-DDTHH:MM:SS.` of the last second seen: most lines share it.
#[derive(Default)]
struct TimePrefix {
    second: Option<i64>,
    prefix: String,
}

impl TimePrefix {
    fn push(&mut self, out: &mut String, ts_micros: i64) {
        let second = ts_micros.div_euclid(1_000_000);
        if self.second != Some(second) {
            self.second = Some(second);
            self.prefix = DateTime::<Utc>::from_timestamp(second, 0).map_or_else(
                || second.to_string(),
                |t| t.format("%Y-%m-%dT%H:%M:%S.").to_string(),
            );
        }
        out.push_str(&self.prefix);
        let micros = ts_micros.rem_euclid(1_000_000).unsigned_abs();
        let mut divisor = 100_000;
        while divisor > 0 {
            out.push(char::from(b'0' + ((micros / divisor) % 10) as u8));
            divisor /= 10;
        }
        out.push('Z');
    }
}

impl AuditLog {
    /// Opens (appends to) the log at `config.path`.
    ///
    /// # Errors
    /// The directory is missing or the file cannot be opened.
    pub fn open(config: &AuditConfig) -> Result<Self> {
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(AuditError::MissingDir {
                path: path.clone(),
                dir: dir.to_path_buf(),
            });
        }
        let file = Self::open_file(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            out: BufWriter::with_capacity(1 << 16, file),
            path,
            config: config.clone(),
            size,
            burst: None,
            line: String::with_capacity(256),
            clock: TimePrefix::default(),
        })
    }

    fn open_file(path: &Path) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    fn io(&self, source: std::io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Records one event (the engine passes denied, `Log`-matched and alerting packets). Identical events
    /// within `repeat_window_secs` of the first are counted, not written, and summarised by one line
    /// `... repeated=N` when the burst ends.
    ///
    /// # Errors
    /// Writing or rotating failed.
    pub fn record(&mut self, event: &Event) -> Result<()> {
        let key = RepeatKey::of(event);
        let window = i64::from(self.config.repeat_window_secs) * 1_000_000;
        if let Some(burst) = self.burst.as_mut()
            && burst.key == key
            && event.meta.ts_micros.saturating_sub(burst.first_ts_micros) < window
        {
            burst.suppressed += 1;
            burst.last = Some(event.clone());
            return Ok(());
        }
        self.end_burst()?;
        self.write_event(event, None)?;
        if window > 0 {
            self.burst = Some(Burst {
                key,
                first_ts_micros: event.meta.ts_micros,
                suppressed: 0,
                last: None,
            });
        }
        Ok(())
    }

    fn end_burst(&mut self) -> Result<()> {
        if let Some(burst) = self.burst.take()
            && burst.suppressed > 0
            && let Some(last) = burst.last
        {
            self.write_event(&last, Some(burst.suppressed))?;
        }
        Ok(())
    }

    fn write_event(&mut self, event: &Event, repeated: Option<u64>) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        format_line(event, repeated, &mut line, &mut self.clock);
        let len = line.len() as u64;
        if self.config.max_bytes > 0 && self.size > 0 && self.size + len > self.config.max_bytes {
            self.rotate()?;
        }
        let written = self.out.write_all(line.as_bytes());
        self.line = line;
        written.map_err(|e| self.io(e))?;
        self.size += len;
        Ok(())
    }

    /// `firewall.log` -> `.1` -> `.2` .. `.keep_files` (the oldest is removed).
    fn rotate(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.io(e))?;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.config.keep_files == 0 {
            std::fs::remove_file(&self.path).map_err(|e| self.io(e))?;
        } else {
            // A missing older file is normal (fewer rotations so far).
            std::fs::remove_file(numbered(self.config.keep_files)).ok();
            for n in (1..self.config.keep_files).rev() {
                std::fs::rename(numbered(n), numbered(n + 1)).ok();
            }
            std::fs::rename(&self.path, numbered(1)).map_err(|e| self.io(e))?;
        }
        self.out = BufWriter::with_capacity(1 << 16, Self::open_file(&self.path)?);
        self.size = 0;
        Ok(())
    }

    /// Ends any burst summary and flushes to the file.
    ///
    /// # Errors
    /// Writing failed.
    pub fn flush(&mut self) -> Result<()> {
        self.end_burst()?;
        self.out.flush().map_err(|e| self.io(e))
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Errors were reported by earlier writes; nothing more can be done while dropping.
        self.flush().ok();
    }
}

/// Appends `value` quoted, escaping `\`, `"`, control characters and non-ASCII bytes (`\xNN`), so that
/// nothing a packet carries can end a line or a field.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    push_escaped(out, value);
    out.push('"');
}

fn push_escaped(out: &mut String, value: &str) {
    // Fast path: most names need no escaping.
    if value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(value);
        return;
    }
    for byte in value.bytes() {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(byte)),
            other => {
                let _ = write!(out, "\\x{other:02x}");
            }
        }
    }
}

/// Appends a decimal number without `core::fmt` (formatting dominated the cost of a log line).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[at..] {
        out.push(char::from(*d));
    }
}

fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_endpoint(out: &mut String, ip: Option<IpAddr>, port: Option<u16>) {
    match (ip, port) {
        (Some(ip @ IpAddr::V6(_)), Some(p)) => {
            out.push('[');
            push_ip(out, ip);
            out.push_str("]:");
            push_u64(out, u64::from(p));
        }
        (Some(ip), Some(p)) => {
            push_ip(out, ip);
            out.push(':');
            push_u64(out, u64::from(p));
        }
        (Some(ip), None) => push_ip(out, ip),
        (None, _) => out.push('-'),
    }
}

/// Formats one log line (with its newline) into `out`.
fn format_line(event: &Event, repeated: Option<u64>, out: &mut String, clock: &mut TimePrefix) {
    let m = &event.meta;
    clock.push(out, m.ts_micros);
    out.push_str(" action=");
    out.push_str(event.verdict.action.name());
    out.push_str(" rule=");
    push_quoted(out, event.rule_label());
    out.push_str(" reason=");
    match &event.alert {
        Some(alert) => push_quoted(out, &alert.reason),
        None if event.verdict.rule.is_some() => {
            out.push_str("\"rule ");
            push_escaped(out, event.rule_label());
            out.push('"');
        }
        None => push_quoted(out, "default policy"),
    }
    out.push_str(" proto=");
    match (m.protocol, m.network) {
        (Some(p), _) => out.push_str(&p.name()),
        (None, crate::packet::NetworkKind::OtherEtherType(t)) => {
            let _ = write!(out, "ethertype_0x{t:04x}");
        }
        (None, _) => out.push_str(&m.protocol_name()),
    }
    out.push_str(" src=");
    push_endpoint(out, m.src_ip, m.src_port);
    out.push_str(" dst=");
    push_endpoint(out, m.dst_ip, m.dst_port);
    out.push_str(" len=");
    push_u64(out, u64::from(m.wire_len));
    out.push_str(" dir=");
    out.push_str(m.direction.name());
    out.push_str(" iface=");
    push_quoted(out, &event.iface);
    if let Some(flags) = m.tcp_flags {
        out.push_str(" flags=");
        out.push_str(&flags.letters());
    }
    if let Some(alert) = &event.alert {
        let _ = write!(out, " alert={}", alert.kind.name());
    }
    if let Some(name) = &event.src_name {
        out.push_str(" src_name=");
        push_quoted(out, name);
    }
    if let Some(name) = &event.dst_name {
        out.push_str(" dst_name=");
        push_quoted(out, name);
    }
    if let Some(mark) = m.malformed {
        out.push_str(" malformed=");
        push_quoted(out, &mark.describe());
    }
    if let Some(n) = repeated {
        let _ = write!(out, " repeated={n}");
    }
    out.push('\n');
}

/// One line of `firewall.log`, read back for the log viewer and exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    pub time: DateTime<Utc>,
    pub action: String,
    pub rule: String,
    pub reason: String,
    pub proto: String,
    pub src_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub len: u32,
    pub dir: String,
    pub iface: String,
    pub flags: Option<String>,
    pub alert: Option<String>,
    pub src_name: Option<String>,
    pub dst_name: Option<String>,
    pub malformed: Option<String>,
    /// For a burst summary: how many identical events the line stands for beyond the first.
    pub repeated: Option<u64>,
}

/// Splits `key=value` fields, un-escaping quoted values; `None` on a line the writer did not produce.
fn fields(rest: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while bytes.get(i).is_some_and(|b| *b != b'=') {
            i += 1;
        }
        let key = rest.get(key_start..i)?.to_owned();
        i += 1; // '='
        let mut value = Vec::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match *bytes.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        let escaped = *bytes.get(i + 1)?;
                        i += 2;
                        match escaped {
                            b'n' => value.push(b'\n'),
                            b'r' => value.push(b'\r'),
                            b't' => value.push(b'\t'),
                            b'x' => {
                                let hex = rest.get(i..i + 2)?;
                                value.push(u8::from_str_radix(hex, 16).ok()?);
                                i += 2;
                            }
                            other => value.push(other),
                        }
                    }
                    other => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
        } else {
            while bytes.get(i).is_some_and(|b| *b != b' ') {
                value.push(bytes[i]);
                i += 1;
            }
        }
        out.push((key, String::from_utf8(value).ok()?));
    }
    Some(out)
}

fn parse_endpoint(text: &str) -> (Option<IpAddr>, Option<u16>) {
    if text == "-" {
        return (None, None);
    }
    if let Some(rest) = text.strip_prefix('[')
        && let Some((ip, port)) = rest.split_once("]:")
    {
        return (ip.parse().ok(), port.parse().ok());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return (Some(ip), None);
    }
    match text.rsplit_once(':') {
        Some((ip, port)) => (ip.parse().ok(), port.parse().ok()),
        None => (None, None),
    }
}

/// Parses one line written by `AuditLog`.
#[must_use]
pub fn parse_line(line: &str) -> Option<LogRecord> {
    let (time, rest) = line.trim_end_matches(['\n', '\r']).split_once(' ')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let mut record = LogRecord {
        time,
        action: String::new(),
        rule: String::new(),
        reason: String::new(),
        proto: String::new(),
        src_ip: None,
        src_port: None,
        dst_ip: None,
        dst_port: None,
        len: 0,
        dir: String::new(),
        iface: String::new(),
        flags: None,
        alert: None,
        src_name: None,
        dst_name: None,
        malformed: None,
        repeated: None,
    };
    for (key, value) in fields(rest)? {
        match key.as_str() {
            "action" => record.action = value,
            "rule" => record.rule = value,
            "reason" => record.reason = value,
            "proto" => record.proto = value,
            "src" => (record.src_ip, record.src_port) = parse_endpoint(&value),
            "dst" => (record.dst_ip, record.dst_port) = parse_endpoint(&value),
            "len" => record.len = value.parse().ok()?,
            "dir" => record.dir = value,
            "iface" => record.iface = value,
            "flags" => record.flags = Some(value),
            "alert" => record.alert = Some(value),
            "src_name" => record.src_name = Some(value),
            "dst_name" => record.dst_name = Some(value),
            "malformed" => record.malformed = Some(value),
            "repeated" => record.repeated = Some(value.parse().ok()?),
            _ => {}
        }
    }
    (!record.action.is_empty()).then_some(record)
}

/// The record `event` would have in the log (one code path with the writer, so the viewer shows live
/// events exactly as the file will hold them).
#[must_use]
pub fn record_of(event: &Event) -> Option<LogRecord> {
    let mut line = String::with_capacity(256);
    format_line(event, None, &mut line, &mut TimePrefix::default());
    parse_line(&line)
}

/// Reads a whole log: the records and the number of lines that could not be parsed.
///
/// # Errors
/// The file cannot be read.
pub fn read_log(path: &Path) -> Result<(Vec<LogRecord>, usize)> {
    let text = std::fs::read(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some(r) => records.push(r),
            None => bad += 1,
        }
    }
    Ok((records, bad))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detect::Alert;
    use crate::packet::{Direction, IpProto, LinkType, Malformed, PacketMeta, TcpFlags};
    use crate::rules::{RuleId, Verdict};

    fn event(ts: i64, src: &str, rule: &str) -> Event {
        let mut meta = PacketMeta::new(ts, 60, 60, LinkType::Ethernet);
        meta.src_ip = Some(src.parse().unwrap());
        meta.dst_ip = Some("192.168.1.50".parse().unwrap());
        meta.protocol = Some(IpProto::TCP);
        meta.src_port = Some(40_000);
        meta.dst_port = Some(22);
        meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
        meta.direction = Direction::In;
        Event {
            seq: 1,
            meta,
            verdict: Verdict {
                action: Action::Block,
                rule: Some(RuleId(2)),
            },
            rule_name: Some(Arc::from(rule)),
            iface: Arc::from("eth0"),
            alert: None,
            src_name: None,
            dst_name: None,
            kernel_dropped: false,
        }
    }

    fn config(dir: &Path) -> AuditConfig {
        AuditConfig {
            path: dir.join("firewall.log"),
            ..AuditConfig::default()
        }
    }

    #[test]
    fn line_format_is_exact() {
        let mut line = String::new();
        format_line(
            &event(1_764_052_089_123_456, "10.0.0.1", "no ssh"),
            None,
            &mut line,
            &mut TimePrefix::default(),
        );
        assert_eq!(
            line,
            "2025-11-25T06:28:09.123456Z action=block rule=\"no ssh\" reason=\"rule no ssh\" proto=tcp \
             src=10.0.0.1:40000 dst=192.168.1.50:22 len=60 dir=in iface=\"eth0\" flags=S\n"
        );
    }

    #[test]
    fn hostile_names_cannot_forge_lines_and_round_trip() {
        let mut e = event(0, "2001:db8::1", "evil\"\nrule x=1\\");
        e.src_name = Some(Arc::from("a\r\n2025-01-01T00:00:00Z action=allow é"));
        e.alert = Some(Alert {
            kind: AlertKind::PortScan,
            src_ip: "2001:db8::1".parse().unwrap(),
            ts_micros: 0,
            reason: "touched 25 ports\tin 10 s".into(),
        });
        e.meta.malformed = Some(Malformed::Truncated(crate::packet::Layer::Tcp));
        let mut line = String::new();
        format_line(&e, Some(7), &mut line, &mut TimePrefix::default());
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let r = parse_line(&line).unwrap();
        assert_eq!(r.rule, "evil\"\nrule x=1\\");
        assert_eq!(
            r.src_name.as_deref(),
            Some("a\r\n2025-01-01T00:00:00Z action=allow é")
        );
        assert_eq!(r.reason, "touched 25 ports\tin 10 s");
        assert_eq!(r.alert.as_deref(), Some("port-scan"));
        assert_eq!(r.src_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(r.src_port, Some(40_000));
        assert_eq!(r.malformed.as_deref(), Some("truncated tcp"));
        assert_eq!(r.repeated, Some(7));
    }

    #[test]
    fn a_flood_of_identical_events_is_two_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(&config(dir.path())).unwrap();
        for i in 0..10_000 {
            log.record(&event(1_000_000 + i, "10.0.0.1", "no ssh")).unwrap();
        }
        log.record(&event(2_000_000, "10.0.0.2", "no ssh")).unwrap();
        log.flush().unwrap();
        let (records, bad) = read_log(&dir.path().join("firewall.log")).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].repeated, None);
        assert_eq!(records[1].repeated, Some(9_999));
        assert_eq!(records[1].src_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(records[2].src_ip, Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn repeats_after_the_window_start_a_new_burst() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(&config(dir.path())).unwrap();
        log.record(&event(0, "10.0.0.1", "r")).unwrap();
        log.record(&event(1_000_000, "10.0.0.1", "r")).unwrap();
        log.record(&event(6_000_000, "10.0.0.1", "r")).unwrap();
        log.flush().unwrap();
        let (records, _) = read_log(&dir.path().join("firewall.log")).unwrap();
        let repeats: Vec<Option<u64>> = records.iter().map(|r| r.repeated).collect();
        assert_eq!(repeats, vec![None, Some(1), None]);
    }

    #[test]
    fn rotation_keeps_files_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_bytes = 1_000;
        cfg.keep_files = 2;
        cfg.repeat_window_secs = 0;
        let mut log = AuditLog::open(&cfg).unwrap();
        for i in 0..100 {
            log.record(&event(i, &format!("10.0.0.{}", i % 250), "r"))
                .unwrap();
        }
        log.flush().unwrap();
        for name in ["firewall.log", "firewall.log.1", "firewall.log.2"] {
            let size = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(size <= 1_000 && size > 0, "{name}: {size}");
        }
        assert!(!dir.path().join("firewall.log.3").exists());
    }

    #[test]
    fn missing_directory_is_named() {
        let cfg = AuditConfig {
            path: PathBuf::from("/nonexistent-dir/firewall.log"),
            ..AuditConfig::default()
        };
        let err = AuditLog::open(&cfg).err().unwrap();
        assert!(
            err.to_string()
                .contains("the directory /nonexistent-dir does not exist"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_rule_or_name_round_trips_on_one_line(rule in ".{0,40}", name in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let mut e = event(5, "10.0.0.1", &rule);
            let name = String::from_utf8_lossy(&name).into_owned();
            e.dst_name = Some(Arc::from(name.as_str()));
            let mut line = String::new();
            format_line(&e, None, &mut line, &mut TimePrefix::default());
            proptest::prop_assert_eq!(line.matches('\n').count(), 1);
            let r = parse_line(&line).unwrap();
            proptest::prop_assert_eq!(r.rule, rule);
            proptest::prop_assert_eq!(r.dst_name, Some(name));
        }
    }
}
