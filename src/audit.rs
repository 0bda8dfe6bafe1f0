//! The audit log (`firewall.log`): one escaped line per denied or suspicious packet, size-based rotation and
//! suppression of identical floods.
//!
//! A line: `2026-11-25T06:28:09.123456Z action=block rule="no ssh" reason="rule no ssh" proto=tcp
//! src=10.0.0.1:40000 dst=192.168.1.50:22 len=60 dir=in iface="eth0" flags=S`, then optional `alert=`,
//! `src_name=`, `dst_name=`, `malformed=` and, for a burst summary, `repeated=N` (N identical events after
//! the line before it). Text fields are quoted and escaped with `crate::text::escape` (`\\`, `\"`, `\n`,
//! `\r`, `\t`, `\u{1b}` for control, bidi and format characters; printable non-ASCII stays UTF-8), the
//! escaping every writer of netwarden uses, so packet data can never start a new line or field nor reach a
//! terminal as a control sequence. `parse_line` reads lines back for the log viewer (also the `\xNN`
//! escapes of older logs).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::detect::{Alert, AlertKind};
use crate::event::Event;
use crate::packet::{PacketMeta, TcpFlags};
use crate::rules::{Action, RuleSet, Verdict};

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
    rule: Option<Arc<str>>,
    src_ip: Option<IpAddr>,
    dst_ip: Option<IpAddr>,
    dst_port: Option<u16>,
    protocol: Option<crate::packet::IpProto>,
    alert: Option<AlertKind>,
}

impl RepeatKey {
    fn of(line: &LineView<'_>) -> Self {
        Self {
            action: line.verdict.action,
            rule: line.rule_name.cloned(),
            src_ip: line.meta.src_ip,
            dst_ip: line.meta.dst_ip,
            dst_port: line.meta.dst_port,
            protocol: line.meta.protocol,
            alert: line.alert.map(|a| a.kind),
        }
    }

    /// Becomes the key of `line`, in place; the rule name is kept when it is the same `Arc` (it usually
    /// is), which spares two atomic reference count updates per line.
    fn set(&mut self, line: &LineView<'_>) {
        let same_rule = match (&self.rule, line.rule_name) {
            (Some(kept), Some(name)) => Arc::ptr_eq(kept, name),
            (None, None) => true,
            _ => false,
        };
        if !same_rule {
            self.rule = line.rule_name.cloned();
        }
        self.action = line.verdict.action;
        self.src_ip = line.meta.src_ip;
        self.dst_ip = line.meta.dst_ip;
        self.dst_port = line.meta.dst_port;
        self.protocol = line.meta.protocol;
        self.alert = line.alert.map(|a| a.kind);
    }

    /// Compares without building a key (no reference-count traffic per packet).
    fn matches(&self, line: &LineView<'_>) -> bool {
        self.action == line.verdict.action
            && self.src_ip == line.meta.src_ip
            && self.dst_ip == line.meta.dst_ip
            && self.dst_port == line.meta.dst_port
            && self.protocol == line.meta.protocol
            && self.alert == line.alert.map(|a| a.kind)
            && self.rule.as_deref() == line.rule_name.map(|n| &**n)
    }
}

/// One denied or suspicious packet as the engine hands it to the audit thread: only what a log line needs.
/// The rule name and the interface name travel once per batch (`AuditLog::record_entry`), so the capture
/// thread neither copies a whole `Event` nor touches shared reference counts per packet.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    pub(crate) meta: PacketMeta,
    pub(crate) verdict: Verdict,
    /// Boxed: alerts are rare, and an inline `Alert` would double the entry's size.
    pub(crate) alert: Option<Box<Alert>>,
    pub(crate) src_name: Option<Arc<str>>,
    pub(crate) dst_name: Option<Arc<str>>,
}

/// The fields of one log line, borrowed from an `Event` or from an `AuditEntry` and its batch.
struct LineView<'a> {
    meta: &'a PacketMeta,
    verdict: Verdict,
    /// Name of the deciding rule at evaluation time (`None` = default policy).
    rule_name: Option<&'a Arc<str>>,
    iface: &'a Arc<str>,
    alert: Option<&'a Alert>,
    src_name: Option<&'a Arc<str>>,
    dst_name: Option<&'a Arc<str>>,
}

impl<'a> LineView<'a> {
    fn of_event(event: &'a Event) -> Self {
        Self {
            meta: &event.meta,
            verdict: event.verdict,
            rule_name: event.rule_name.as_ref(),
            iface: &event.iface,
            alert: event.alert.as_ref(),
            src_name: event.src_name.as_ref(),
            dst_name: event.dst_name.as_ref(),
        }
    }

    fn of_entry(entry: &'a AuditEntry, rule_name: Option<&'a Arc<str>>, iface: &'a Arc<str>) -> Self {
        Self {
            meta: &entry.meta,
            verdict: entry.verdict,
            rule_name,
            iface,
            alert: entry.alert.as_deref(),
            src_name: entry.src_name.as_ref(),
            dst_name: entry.dst_name.as_ref(),
        }
    }

    /// The rule name for display: the rule's name or `default`.
    fn rule_label(&self) -> &str {
        self.rule_name.map_or("default", |n| n)
    }
}

/// The last event of a burst, kept to write its summary line.
struct BurstLast {
    entry: AuditEntry,
    rule_name: Option<Arc<str>>,
    iface: Arc<str>,
}

impl BurstLast {
    fn view(&self) -> LineView<'_> {
        LineView::of_entry(&self.entry, self.rule_name.as_ref(), &self.iface)
    }
}

/// A burst of identical events being summarised. Kept after it ends (`active` false) and reset in place
/// for the next one, so a line does not build and move a new one.
struct Burst {
    active: bool,
    key: RepeatKey,
    first_ts_micros: i64,
    /// Events after the first that were not written.
    suppressed: u64,
    /// Boxed: a burst starts with every line written, and moving it inline would copy a whole entry.
    last: Option<Box<BurstLast>>,
}

/// The `firewall.log` writer. One line per event; see the module docs for the format.
pub struct AuditLog {
    path: PathBuf,
    config: AuditConfig,
    file: File,
    /// Lines formatted but not yet written: lines are formatted straight into it and written in large
    /// blocks (no per-line copy into a separate write buffer).
    pending: Vec<u8>,
    /// Bytes in the current file, `pending` included.
    size: u64,
    burst: Option<Burst>,
    /// Where a line is built before it joins `pending`; boxed, as it is a kilobyte.
    line: Box<LineBuf>,
    cache: LineCache,
}

/// `pending` is written out once it holds this much.
const WRITE_BLOCK: usize = 1 << 17;

/// Caches the formatted `YYYY-MM-DDTHH:MM:SS.` of the last second seen: most lines share it.
#[derive(Default)]
struct TimePrefix {
    second: Option<i64>,
    prefix: Piece,
}

impl TimePrefix {
    fn push(&mut self, out: &mut impl Sink, ts_micros: i64) {
        let second = ts_micros.div_euclid(1_000_000);
        if self.second != Some(second) {
            self.second = Some(second);
            let text = DateTime::<Utc>::from_timestamp(second, 0).map_or_else(
                || second.to_string(),
                |t| t.format("%Y-%m-%dT%H:%M:%S.").to_string(),
            );
            self.prefix = Piece::new(text.into_bytes());
        }
        self.prefix.put(out);
        // Below 1,000,000: three pairs of digits.
        let micros = ts_micros.rem_euclid(1_000_000).unsigned_abs() as usize;
        let pairs = [micros / 10_000, micros / 100 % 100, micros % 100].map(|p| p * 2);
        out.put_all(&[
            DIGIT_PAIRS[pairs[0]],
            DIGIT_PAIRS[pairs[0] + 1],
            DIGIT_PAIRS[pairs[1]],
            DIGIT_PAIRS[pairs[1] + 1],
            DIGIT_PAIRS[pairs[2]],
            DIGIT_PAIRS[pairs[2] + 1],
            b'Z',
        ]);
    }
}

/// Parts of a line that repeat from one line to the next, formatted once: the time up to the second, the
/// rule and reason fields of the last rule seen, and the interface field.
#[derive(Default)]
struct LineCache {
    clock: TimePrefix,
    /// ` rule=".." reason=".."` for lines without an alert, with the rule name (by pointer) and whether a
    /// rule decided, that each was made for; a few rules decide most lines.
    rules: Vec<(Option<Arc<str>>, bool, Piece)>,
    /// ` iface=".."` and the interface name (by pointer) it was made for.
    iface: Option<(Arc<str>, Piece)>,
}

/// A cached piece of a line, also kept padded so that a short one is appended with a fixed-size copy.
struct Piece {
    text: Vec<u8>,
    padded: [u8; 64],
}

impl Default for Piece {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Piece {
    fn new(text: Vec<u8>) -> Self {
        let mut padded = [0; 64];
        if let Some(start) = padded.get_mut(..text.len()) {
            start.copy_from_slice(&text);
        }
        Self { text, padded }
    }

    fn put(&self, out: &mut impl Sink) {
        if self.text.len() <= self.padded.len() {
            out.put_first(&self.padded, self.text.len());
        } else {
            out.put_all(&self.text);
        }
    }
}

impl LineCache {
    fn push_rule_and_reason(&mut self, out: &mut impl Sink, line: &LineView<'_>) {
        /// Cached rules at most; past it the cache starts over (memory stays flat with 10,000 rules).
        const MAX_RULES: usize = 64;
        let decided = line.verdict.rule.is_some();
        let same = |(name, cached_decided, _): &&(Option<Arc<str>>, bool, Piece)| {
            *cached_decided == decided
                && match (name, line.rule_name) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
        };
        if let Some((_, _, piece)) = self.rules.iter().find(same) {
            piece.put(out);
            return;
        }
        if self.rules.len() >= MAX_RULES {
            self.rules.clear();
        }
        let mut text = Vec::new();
        push_rule_and_reason(&mut text, line);
        out.put_all(&text);
        self.rules
            .push((line.rule_name.cloned(), decided, Piece::new(text)));
    }

    fn push_iface(&mut self, out: &mut impl Sink, iface: &Arc<str>) {
        if !self
            .iface
            .as_ref()
            .is_some_and(|(cached, _)| Arc::ptr_eq(cached, iface))
        {
            let mut text = b" iface=".to_vec();
            push_quoted(&mut text, iface);
            self.iface = Some((Arc::clone(iface), Piece::new(text)));
        }
        if let Some((_, piece)) = &self.iface {
            piece.put(out);
        }
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
            file,
            pending: Vec::with_capacity(WRITE_BLOCK + 4096),
            path,
            config: config.clone(),
            size,
            burst: None,
            line: Box::new(LineBuf::new()),
            cache: LineCache::default(),
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
        let line = LineView::of_event(event);
        if self.absorb(&line) {
            self.set_burst_last(BurstLast {
                entry: AuditEntry {
                    meta: event.meta.clone(),
                    verdict: event.verdict,
                    alert: event.alert.clone().map(Box::new),
                    src_name: event.src_name.clone(),
                    dst_name: event.dst_name.clone(),
                },
                rule_name: event.rule_name.clone(),
                iface: Arc::clone(&event.iface),
            });
            return Ok(());
        }
        self.start_burst(&line)
    }

    /// Records one engine entry, as `record` does an `Event`. `rules` is the rule set the entry was
    /// evaluated with (for the rule name) and `iface` the capture interface.
    ///
    /// # Errors
    /// Writing or rotating failed.
    pub(crate) fn record_entry(
        &mut self,
        entry: &AuditEntry,
        rules: &RuleSet,
        iface: &Arc<str>,
    ) -> Result<()> {
        let rule_name = entry.verdict.rule.and_then(|id| rules.rule_name(id));
        let line = LineView::of_entry(entry, rule_name, iface);
        if self.absorb(&line) {
            let rule_name = rule_name.cloned();
            self.set_burst_last(BurstLast {
                entry: entry.clone(),
                rule_name,
                iface: Arc::clone(iface),
            });
            return Ok(());
        }
        self.start_burst(&line)
    }

    fn repeat_window_micros(&self) -> i64 {
        i64::from(self.config.repeat_window_secs) * 1_000_000
    }

    /// Counts `line` into the running burst when it repeats it within the window.
    fn absorb(&mut self, line: &LineView<'_>) -> bool {
        let window = self.repeat_window_micros();
        match self.burst.as_mut() {
            Some(burst)
                if burst.active
                    && burst.key.matches(line)
                    && line.meta.ts_micros.saturating_sub(burst.first_ts_micros) < window =>
            {
                burst.suppressed += 1;
                true
            }
            _ => false,
        }
    }

    fn set_burst_last(&mut self, last: BurstLast) {
        if let Some(burst) = self.burst.as_mut().filter(|b| b.active) {
            burst.last = Some(Box::new(last));
        }
    }

    /// Ends the running burst, writes `line` and starts a new burst with it.
    fn start_burst(&mut self, line: &LineView<'_>) -> Result<()> {
        self.end_burst()?;
        self.write_line(line, None)?;
        if self.repeat_window_micros() > 0 {
            match &mut self.burst {
                Some(burst) => {
                    burst.active = true;
                    burst.key.set(line);
                    burst.first_ts_micros = line.meta.ts_micros;
                    burst.suppressed = 0;
                    burst.last = None;
                }
                None => {
                    self.burst = Some(Burst {
                        active: true,
                        key: RepeatKey::of(line),
                        first_ts_micros: line.meta.ts_micros,
                        suppressed: 0,
                        last: None,
                    });
                }
            }
        }
        Ok(())
    }

    fn end_burst(&mut self) -> Result<()> {
        if let Some(burst) = self.burst.as_mut().filter(|b| b.active) {
            burst.active = false;
            let suppressed = burst.suppressed;
            if suppressed > 0
                && let Some(last) = burst.last.take()
            {
                self.write_line(&last.view(), Some(suppressed))?;
            }
        }
        Ok(())
    }

    fn write_line(&mut self, view: &LineView<'_>, repeated: Option<u64>) -> Result<()> {
        let start = self.pending.len();
        self.line.clear();
        format_line(view, repeated, &mut *self.line, &mut self.cache);
        if self.line.overflow {
            format_line(view, repeated, &mut self.pending, &mut self.cache);
        } else {
            self.pending.extend_from_slice(self.line.as_bytes());
        }
        let len = (self.pending.len() - start) as u64;
        if self.config.max_bytes > 0 && self.size > 0 && self.size + len > self.config.max_bytes {
            // The lines before this one end the current file; this one starts the next.
            let written = self.file.write_all(&self.pending[..start]);
            self.pending.drain(..start);
            written.map_err(|e| self.io(e))?;
            self.rotate()?;
        }
        self.size += len;
        if self.pending.len() >= WRITE_BLOCK {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes the formatted lines to the file. On failure they are dropped (the error is reported), so a
    /// full disk cannot make memory grow.
    fn write_pending(&mut self) -> Result<()> {
        let written = self.file.write_all(&self.pending);
        self.pending.clear();
        written.map_err(|e| self.io(e))
    }

    /// `firewall.log` -> `.1` -> `.2` .. `.keep_files` (the oldest is removed).
    fn rotate(&mut self) -> Result<()> {
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
        self.file = Self::open_file(&self.path)?;
        self.size = 0;
        Ok(())
    }

    /// Ends any burst summary and flushes to the file.
    ///
    /// # Errors
    /// Writing failed.
    pub fn flush(&mut self) -> Result<()> {
        self.end_burst()?;
        self.write_pending()
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

/// Appends `value` quoted and escaped (`crate::text::escape`), so that nothing a packet carries can end a
/// line or a field.
fn push_quoted(out: &mut impl Sink, value: &str) {
    out.put(b'"');
    push_escaped(out, value);
    out.put(b'"');
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn push_escaped(out: &mut impl Sink, value: &str) {
    // Fast path: most names need no escaping.
    if value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        out.put_all(value.as_bytes());
        return;
    }
    out.put_all(crate::text::escape_quoted(value).as_bytes());
}

/// Where the formatters below write: a `LineBuf` on the stack, or the output itself.
trait Sink {
    fn put(&mut self, byte: u8);
    fn put_all(&mut self, bytes: &[u8]);
    /// Appends the first `n` (at most `N`) of `bytes`. A `LineBuf` copies all `N` (a fixed-size copy is a
    /// move or two; one of a run-time length is a `memcpy` call) and keeps `n`.
    fn put_first<const N: usize>(&mut self, bytes: &[u8; N], n: usize);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, byte: u8) {
        self.push(byte);
    }

    #[inline]
    fn put_all(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_first<const N: usize>(&mut self, bytes: &[u8; N], n: usize) {
        self.extend_from_slice(bytes.get(..n).unwrap_or(bytes));
    }
}

/// Bytes a `LineBuf` holds: every usual line fits; a longer one (long names) is formatted again straight
/// into the output.
const LINE_BUF: usize = 1024;

/// One line built on the stack and appended to the output at once. Appending to the `Vec` piece by piece
/// loads, checks and stores its length and capacity each time and copies each piece through a `memcpy`
/// call; here the length stays in a register and constant pieces are a move or two (formatting was most of
/// the audit thread's time).
struct LineBuf {
    bytes: [u8; LINE_BUF],
    len: usize,
    /// Something did not fit: the line must be formatted another way.
    overflow: bool,
}

impl LineBuf {
    fn new() -> Self {
        Self {
            bytes: [0; LINE_BUF],
            len: 0,
            overflow: false,
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Sink for LineBuf {
    #[inline]
    fn put(&mut self, byte: u8) {
        match self.bytes.get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    #[inline]
    fn put_all(&mut self, bytes: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + bytes.len()) {
            Some(dest) => {
                dest.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflow = true,
        }
    }

    #[inline]
    fn put_first<const N: usize>(&mut self, bytes: &[u8; N], n: usize) {
        match self.bytes.get_mut(self.len..self.len + N) {
            Some(dest) => {
                dest.copy_from_slice(bytes);
                self.len += n.min(N);
            }
            None => self.overflow = true,
        }
    }
}

/// `00`, `01` .. `99`: two decimal digits per table lookup.
const DIGIT_PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Appends a decimal number without `core::fmt` (formatting dominated the cost of a log line): the digit
/// count first, then two digits at a time into place, then one fixed-size copy.
#[inline]
fn push_u64(out: &mut impl Sink, n: u64) {
    let count = n.checked_ilog10().map_or(1, |log| log as usize + 1);
    // 32 bytes for at most 20 digits: indexes masked with 31 need no bounds checks.
    let mut digits = [b'0'; 32];
    let mut value = n;
    let mut at = count;
    while at >= 2 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        at -= 2;
        digits[at & 31] = DIGIT_PAIRS[pair];
        digits[(at + 1) & 31] = DIGIT_PAIRS[pair + 1];
    }
    if at == 1 {
        digits[0] = b'0' + value as u8;
    }
    out.put_first(&digits, count);
}

/// Appends a 16-bit value in lower-case hex without leading zeros (as `{:x}` does).
#[inline]
fn push_hex_u16(out: &mut impl Sink, value: u16) {
    let mut started = false;
    for shift in [12u16, 8, 4, 0] {
        let digit = (value >> shift) & 0x0f;
        if digit != 0 || started || shift == 0 {
            out.put(HEX_DIGITS[usize::from(digit)]);
            started = true;
        }
    }
}

fn push_hex_segments(out: &mut impl Sink, segments: &[u16]) {
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.put(b':');
        }
        push_hex_u16(out, *segment);
    }
}

/// 0..=255 in decimal, left-aligned in three bytes, with the digit count.
const BYTE_DECIMALS: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        #[expect(clippy::cast_possible_truncation, reason = "n < 256")]
        let v = n as u8;
        table[n] = if v >= 100 {
            ([b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10], 3)
        } else if v >= 10 {
            ([b'0' + v / 10, b'0' + v % 10, 0], 2)
        } else {
            ([b'0' + v, 0, 0], 1)
        };
        n += 1;
    }
    table
};

/// Appends 0..=255 in decimal.
#[inline]
fn push_u8(out: &mut impl Sink, n: u8) {
    let (digits, len) = BYTE_DECIMALS[usize::from(n)];
    out.put_first(&digits, usize::from(len));
}

fn push_ipv4(out: &mut impl Sink, ip: Ipv4Addr) {
    let [a, b, c, d] = ip.octets();
    push_u8(out, a);
    out.put(b'.');
    push_u8(out, b);
    out.put(b'.');
    push_u8(out, c);
    out.put(b'.');
    push_u8(out, d);
}

/// Appends an IPv6 address exactly as `Ipv6Addr`'s `Display` does (RFC 5952: IPv4-mapped addresses as
/// `::ffff:a.b.c.d`, the first longest run of two or more zero groups as `::`), without `core::fmt`.
fn push_ipv6(out: &mut impl Sink, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.put_all(b"::ffff:");
        push_ipv4(out, v4);
        return;
    }
    let segments = ip.segments();
    let (mut best_start, mut best_len, mut run_start, mut run_len) = (0, 0, 0, 0);
    for (i, segment) in segments.iter().enumerate() {
        if *segment == 0 {
            if run_len == 0 {
                run_start = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best_start, best_len) = (run_start, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    if best_len > 1 {
        let (head, rest) = segments.split_at(best_start);
        push_hex_segments(out, head);
        out.put_all(b"::");
        push_hex_segments(out, rest.get(best_len..).unwrap_or_default());
    } else {
        push_hex_segments(out, &segments);
    }
}

fn push_ip(out: &mut impl Sink, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => push_ipv6(out, v6),
    }
}

fn push_endpoint(out: &mut impl Sink, ip: Option<IpAddr>, port: Option<u16>) {
    match (ip, port) {
        (Some(ip @ IpAddr::V6(_)), Some(p)) => {
            out.put(b'[');
            push_ip(out, ip);
            out.put_all(b"]:");
            push_u64(out, u64::from(p));
        }
        (Some(ip), Some(p)) => {
            push_ip(out, ip);
            out.put(b':');
            push_u64(out, u64::from(p));
        }
        (Some(ip), None) => push_ip(out, ip),
        (None, _) => out.put(b'-'),
    }
}

/// Appends TCP flags as `TcpFlags::letters` spells them, without allocating.
fn push_flag_letters(out: &mut impl Sink, flags: TcpFlags) {
    const NAMES: [(u8, u8); 8] = [
        (TcpFlags::FIN, b'F'),
        (TcpFlags::SYN, b'S'),
        (TcpFlags::RST, b'R'),
        (TcpFlags::PSH, b'P'),
        (TcpFlags::ACK, b'A'),
        (TcpFlags::URG, b'U'),
        (TcpFlags::ECE, b'E'),
        (TcpFlags::CWR, b'C'),
    ];
    for (bit, letter) in NAMES {
        if flags.0 & bit != 0 {
            out.put(letter);
        }
    }
}

/// Appends ` rule=".." reason=".."`.
fn push_rule_and_reason(out: &mut impl Sink, line: &LineView<'_>) {
    out.put_all(b" rule=");
    push_quoted(out, line.rule_label());
    out.put_all(b" reason=");
    match line.alert {
        Some(alert) => push_quoted(out, &alert.reason),
        None if line.verdict.rule.is_some() => {
            out.put_all(b"\"rule ");
            push_escaped(out, line.rule_label());
            out.put(b'"');
        }
        None => push_quoted(out, "default policy"),
    }
}

/// Formats one log line (with its newline) into `out`; every byte is printable ASCII but the newline.
fn format_line(line: &LineView<'_>, repeated: Option<u64>, out: &mut impl Sink, cache: &mut LineCache) {
    let m = line.meta;
    cache.clock.push(out, m.ts_micros);
    out.put_all(b" action=");
    out.put_all(line.verdict.action.name().as_bytes());
    if line.alert.is_some() {
        push_rule_and_reason(out, line);
    } else {
        cache.push_rule_and_reason(out, line);
    }
    match (m.protocol, m.network) {
        (Some(p), _) => {
            out.put_all(b" proto=");
            out.put_all(p.name().as_bytes());
        }
        (None, crate::packet::NetworkKind::OtherEtherType(t)) => {
            out.put_all(b" proto=ethertype_0x");
            for shift in [12u16, 8, 4, 0] {
                out.put(HEX_DIGITS[usize::from((t >> shift) & 0x0f)]);
            }
        }
        (None, _) => {
            out.put_all(b" proto=");
            out.put_all(m.protocol_name().as_bytes());
        }
    }
    out.put_all(b" src=");
    push_endpoint(out, m.src_ip, m.src_port);
    out.put_all(b" dst=");
    push_endpoint(out, m.dst_ip, m.dst_port);
    out.put_all(b" len=");
    push_u64(out, u64::from(m.wire_len));
    out.put_all(b" dir=");
    out.put_all(m.direction.name().as_bytes());
    cache.push_iface(out, line.iface);
    if let Some(flags) = m.tcp_flags {
        out.put_all(b" flags=");
        push_flag_letters(out, flags);
    }
    if let Some(alert) = line.alert {
        out.put_all(b" alert=");
        out.put_all(alert.kind.name().as_bytes());
    }
    if let Some(name) = line.src_name {
        out.put_all(b" src_name=");
        push_quoted(out, name);
    }
    if let Some(name) = line.dst_name {
        out.put_all(b" dst_name=");
        push_quoted(out, name);
    }
    if let Some(mark) = m.malformed {
        out.put_all(b" malformed=");
        push_quoted(out, &mark.describe());
    }
    if let Some(n) = repeated {
        out.put_all(b" repeated=");
        push_u64(out, n);
    }
    out.put(b'\n');
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

impl LogRecord {
    /// The record with every text a user or the network supplied escaped (`text::escape`), for CSV.
    #[must_use]
    pub fn escaped(&self) -> Self {
        let esc = |text: &str| crate::text::escape(text).into_owned();
        let esc_opt = |text: &Option<String>| text.as_deref().map(esc);
        Self {
            rule: esc(&self.rule),
            reason: esc(&self.reason),
            iface: esc(&self.iface),
            flags: esc_opt(&self.flags),
            alert: esc_opt(&self.alert),
            src_name: esc_opt(&self.src_name),
            dst_name: esc_opt(&self.dst_name),
            malformed: esc_opt(&self.malformed),
            ..self.clone()
        }
    }
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
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let start = i;
            loop {
                match *bytes.get(i)? {
                    b'"' => break,
                    b'\\' => i += 2,
                    _ => i += 1,
                }
            }
            let raw = rest.get(start..i)?;
            i += 1;
            crate::text::unescape(raw)
        } else {
            let start = i;
            while bytes.get(i).is_some_and(|b| *b != b' ') {
                i += 1;
            }
            rest.get(start..i)?.to_owned()
        };
        out.push((key, value));
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
    let mut line = Vec::with_capacity(256);
    format_line(
        &LineView::of_event(event),
        None,
        &mut line,
        &mut LineCache::default(),
    );
    parse_line(std::str::from_utf8(&line).ok()?)
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
            origin: crate::event::Origin::Untracked,
            rules_version: 0,
        }
    }

    fn line_of(event: &Event, repeated: Option<u64>) -> String {
        let mut line = Vec::new();
        format_line(
            &LineView::of_event(event),
            repeated,
            &mut line,
            &mut LineCache::default(),
        );
        String::from_utf8(line).unwrap()
    }

    fn config(dir: &Path) -> AuditConfig {
        AuditConfig {
            path: dir.join("firewall.log"),
            ..AuditConfig::default()
        }
    }

    #[test]
    fn line_format_is_exact() {
        let line = line_of(&event(1_764_052_089_123_456, "10.0.0.1", "no ssh"), None);
        assert_eq!(
            line,
            "2025-11-25T06:28:09.123456Z action=block rule=\"no ssh\" reason=\"rule no ssh\" proto=tcp \
             src=10.0.0.1:40000 dst=192.168.1.50:22 len=60 dir=in iface=\"eth0\" flags=S\n"
        );
    }

    #[test]
    fn a_full_disk_is_reported_and_memory_stays_flat() {
        let cfg = AuditConfig {
            path: PathBuf::from("/dev/full"),
            max_bytes: 0,
            keep_files: 0,
            repeat_window_secs: 0,
        };
        let mut log = AuditLog::open(&cfg).unwrap();
        let mut errors = 0;
        for i in 0..20_000 {
            let src = format!("10.0.{}.{}", i / 250 % 250, i % 250);
            if let Err(e) = log.record(&event(i, &src, "r")) {
                assert!(e.to_string().contains("/dev/full"), "{e}");
                errors += 1;
            }
            assert!(log.pending.len() < WRITE_BLOCK + 1024, "unwritten lines pile up");
        }
        assert!(errors > 0);
        log.record(&event(30_000, "10.9.9.9", "r")).unwrap();
        assert!(log.flush().is_err());
    }

    #[test]
    fn the_longest_fixed_fields_are_written_whole() {
        // Every fixed-shape field at its widest: the stack buffer they are built in must hold them all.
        let mut e = event(
            253_402_300_799_999_999,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            "r",
        );
        e.meta.dst_ip = Some("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap());
        e.meta.src_port = Some(65_535);
        e.meta.dst_port = Some(65_534);
        e.meta.wire_len = u32::MAX;
        e.meta.protocol = Some(IpProto(253));
        e.meta.tcp_flags = Some(TcpFlags(0xff));
        e.meta.direction = Direction::Local;
        e.verdict.action = Action::Allow;
        let line = line_of(&e, Some(u64::MAX));
        assert_eq!(
            line,
            "9999-12-31T23:59:59.999999Z action=allow rule=\"r\" reason=\"rule r\" proto=253 \
             src=[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535 dst=[fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65534 \
             len=4294967295 dir=local iface=\"eth0\" flags=FSRPAUEC repeated=18446744073709551615\n"
        );
        let mut e = event(-1, "0.0.0.0", "r");
        e.meta.protocol = None;
        e.meta.network = crate::packet::NetworkKind::OtherEtherType(0x88cc);
        e.meta.src_port = None;
        e.meta.dst_port = None;
        e.meta.tcp_flags = None;
        assert!(
            line_of(&e, None).starts_with(
                "1969-12-31T23:59:59.999999Z action=block rule=\"r\" reason=\"rule r\" proto=ethertype_0x88cc \
                 src=0.0.0.0 dst=192.168.1.50 len=60 dir=in"
            ),
            "{}",
            line_of(&e, None)
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
        let line = line_of(&e, Some(7));
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

    #[test]
    fn decimal_text_matches_display() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            255,
            999,
            1_000,
            65_535,
            1_000_000,
            12_345_678_901,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        for n in 0..=u8::MAX {
            let mut out = Vec::new();
            push_u8(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn cached_fields_follow_the_rule_and_interface() {
        let mut cache = LineCache::default();
        let mut lines = Vec::new();
        let mut e = event(0, "10.0.0.1", "no ssh");
        for (rule, iface) in [("no ssh", "eth0"), ("no ssh", "eth0"), ("other", "eth1")] {
            e.rule_name = Some(Arc::from(rule));
            e.iface = Arc::from(iface);
            let mut line = Vec::new();
            format_line(&LineView::of_event(&e), None, &mut line, &mut cache);
            lines.push(String::from_utf8(line).unwrap());
        }
        e.verdict.rule = None;
        e.rule_name = None;
        let mut line = Vec::new();
        format_line(&LineView::of_event(&e), None, &mut line, &mut cache);
        lines.push(String::from_utf8(line).unwrap());
        assert!(
            lines[1].contains(" rule=\"no ssh\" reason=\"rule no ssh\" ")
                && lines[1].contains(" iface=\"eth0\"")
        );
        assert!(
            lines[2].contains(" rule=\"other\" reason=\"rule other\" ")
                && lines[2].contains(" iface=\"eth1\"")
        );
        assert!(
            lines[3].contains(" rule=\"default\" reason=\"default policy\" "),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn ipv6_text_matches_display() {
        for text in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "fe80::1:0:0:0",
            "1:0:2:0:3:0:4:0",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "64:ff9b::c000:201",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: Ipv6Addr = text.parse().unwrap();
            let mut out = Vec::new();
            push_ipv6(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn engine_entries_log_the_same_lines_as_events() {
        let rules = RuleSet::from_ron(
            "(default_policy: Block, rules: [(name: \"a\", action: Allow, src: [\"10.9.9.9\"]), \
             (name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\"])])",
        )
        .unwrap();
        let iface: Arc<str> = Arc::from("eth0");
        let mut events: Vec<Event> = (0..6)
            .map(|i| event(i * 1_000, &format!("10.0.0.{}", i / 2), "no ssh"))
            .collect();
        for e in &mut events {
            e.verdict.rule = Some(RuleId(1));
        }
        events[1].alert = Some(Alert {
            kind: AlertKind::SynFlood,
            src_ip: "10.0.0.0".parse().unwrap(),
            ts_micros: 1_000,
            reason: "SYN flood: 200 SYN/s".into(),
        });
        events[5].verdict.rule = None;
        events[5].rule_name = None;
        events[4].dst_name = Some(Arc::from("host.example"));
        let dir = tempfile::tempdir().unwrap();
        let by_event = dir.path().join("event.log");
        let by_entry = dir.path().join("entry.log");
        let mut log = AuditLog::open(&AuditConfig {
            path: by_event.clone(),
            ..AuditConfig::default()
        })
        .unwrap();
        for e in &events {
            log.record(e).unwrap();
        }
        drop(log);
        let mut log = AuditLog::open(&AuditConfig {
            path: by_entry.clone(),
            ..AuditConfig::default()
        })
        .unwrap();
        for e in &events {
            let entry = AuditEntry {
                meta: e.meta.clone(),
                verdict: e.verdict,
                alert: e.alert.clone().map(Box::new),
                src_name: e.src_name.clone(),
                dst_name: e.dst_name.clone(),
            };
            log.record_entry(&entry, &rules, &iface).unwrap();
        }
        drop(log);
        let text = std::fs::read_to_string(&by_event).unwrap();
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(text.contains(" repeated=1\n"), "{text}");
        assert_eq!(std::fs::read_to_string(&by_entry).unwrap(), text);
    }

    proptest::proptest! {
        #[test]
        fn any_ipv6_text_matches_display(segments in proptest::array::uniform8(proptest::sample::select(vec![0u16, 0, 0, 1, 0xffff, 0x0db8, 0x2001, 0xabc]))) {
            let ip = Ipv6Addr::from(segments);
            let mut out = Vec::new();
            push_ipv6(&mut out, ip);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }

        #[test]
        fn any_rule_or_name_round_trips_on_one_line(rule in ".{0,40}", name in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let mut e = event(5, "10.0.0.1", &rule);
            let name = String::from_utf8_lossy(&name).into_owned();
            e.dst_name = Some(Arc::from(name.as_str()));
            let line = line_of(&e, None);
            proptest::prop_assert_eq!(line.matches('\n').count(), 1);
            let r = parse_line(&line).unwrap();
            proptest::prop_assert_eq!(r.rule, rule);
            proptest::prop_assert_eq!(r.dst_name, Some(name));
        }
    }
}
