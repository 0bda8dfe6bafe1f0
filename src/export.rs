//! Export of events and audit-log records as CSV and JSON lines, and of packets as pcap files. Each function
//! takes an `io::Write` (or a path for pcap) so the CLI (stdout) and the GUI (a file) share them.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::LogRecord;
use crate::event::Event;
use crate::packet::LinkType;
use crate::text::{endpoint, escape, escape_quoted, iso_time};

pub mod ecs;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export failed: {0}")]
    Io(#[from] io::Error),
    #[error("writing CSV failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write pcap file {}: {detail}", path.display())]
    Pcap { path: PathBuf, detail: String },
}

/// One event as a flat row: the schema of `--json` lines, CSV columns and the GUI's exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow<'a> {
    /// ISO-8601 UTC with microseconds.
    pub time: String,
    pub ts_micros: i64,
    pub seq: u64,
    pub iface: Cow<'a, str>,
    pub direction: &'static str,
    pub link: &'static str,
    /// Bytes on the wire.
    pub length: u32,
    pub caplen: u32,
    pub protocol: String,
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
    /// TCP flags as letters (`SA`), empty when not TCP.
    pub tcp_flags: String,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// Outer VLAN id, 0 when untagged.
    pub vlan: u16,
    pub verdict: &'static str,
    /// Deciding rule name, `default` for the default policy.
    pub rule: Cow<'a, str>,
    pub alert: Option<&'static str>,
    pub alert_reason: Option<Cow<'a, str>>,
    pub src_name: Option<Cow<'a, str>>,
    pub dst_name: Option<Cow<'a, str>>,
    /// `truncated tcp`, `malformed ipv4`, .. or empty.
    pub malformed: String,
    /// The kernel drops this packet (enforced block list).
    pub kernel_dropped: bool,
    /// The program: its executable path, `unknown (REASON)`, `(offline)` for a replayed file; absent when
    /// attribution is off or the packet is in no tracked flow.
    pub program: Option<Cow<'a, str>>,
    /// The program's process id, when known.
    pub pid: Option<u32>,
    /// The user owning the socket (name, or uid when the system has no name for it), when known.
    pub user: Option<String>,
    /// The uid owning the socket, when known.
    pub uid: Option<u32>,
}

impl<'a> EventRow<'a> {
    /// Flattens an event.
    #[must_use]
    pub fn from_event(event: &'a Event) -> Self {
        let m = &event.meta;
        Self {
            time: iso_time(m.ts_micros),
            ts_micros: m.ts_micros,
            seq: event.seq,
            iface: Cow::Borrowed(&event.iface),
            direction: m.direction.name(),
            link: m.link.name(),
            length: m.wire_len,
            caplen: m.caplen,
            protocol: m.protocol_name(),
            src_ip: m.src_ip.map(|ip| ip.to_string()),
            src_port: m.src_port,
            dst_ip: m.dst_ip.map(|ip| ip.to_string()),
            dst_port: m.dst_port,
            tcp_flags: m.tcp_flags.map(|f| f.letters()).unwrap_or_default(),
            icmp_type: m.icmp_type_code.map(|(t, _)| t),
            icmp_code: m.icmp_type_code.map(|(_, c)| c),
            vlan: m.vlan_ids[0],
            verdict: event.verdict.action.name(),
            rule: Cow::Borrowed(event.rule_label()),
            alert: event.alert.as_ref().map(|a| a.kind.name()),
            alert_reason: event.alert.as_ref().map(|a| Cow::Borrowed(a.reason.as_str())),
            src_name: event.src_name.as_deref().map(Cow::Borrowed),
            dst_name: event.dst_name.as_deref().map(Cow::Borrowed),
            malformed: m.malformed.map(|x| x.describe()).unwrap_or_default(),
            kernel_dropped: event.kernel_dropped,
            program: program_label(event),
            pid: event.attribution().and_then(|a| a.process()).map(|p| p.pid),
            user: event
                .attribution()
                .and_then(|a| a.user())
                .map(ToString::to_string),
            uid: event.attribution().and_then(|a| a.user()).map(|u| u.uid),
        }
    }

    /// The row with every text a user or the network supplied escaped (`text::escape`): for CSV, where a
    /// cell must hold no raw control character. JSON escapes by itself.
    #[must_use]
    pub fn escaped(self) -> Self {
        let esc = |text: Cow<'a, str>| match escape(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(owned) => Cow::Owned(owned),
        };
        Self {
            iface: esc(self.iface),
            rule: esc(self.rule),
            alert_reason: self.alert_reason.map(esc),
            src_name: self.src_name.map(esc),
            dst_name: self.dst_name.map(esc),
            program: self.program.map(esc),
            user: self.user.map(|u| escape(&u).into_owned()),
            ..self
        }
    }
}

/// The program column of an event: the attribution's label, `unknown (pending)` while the lookup runs,
/// `None` when the packet is not attributed at all.
#[must_use]
pub fn program_label(event: &Event) -> Option<Cow<'_, str>> {
    match event.attribution() {
        Some(a) => Some(a.program_label()),
        None if event.attribution_pending() => Some(Cow::Borrowed(crate::attrib::PENDING_LABEL)),
        None => None,
    }
}

/// Writes one event as one JSON object and a newline (`--json`).
///
/// # Errors
/// Writing failed.
pub fn write_json_line(event: &Event, w: &mut impl Write) -> io::Result<()> {
    // `io::Error::from` keeps the kind of an I/O failure (a closed pipe stays `BrokenPipe`).
    serde_json::to_writer(&mut *w, &EventRow::from_event(event)).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

/// Writes one text line for `event`:
/// `TIME ACTION PROTO SRC -> DST len=N rule="NAME" [flags] dir iface [alert] [malformed]`.
/// Rule, interface and host names are quoted and escaped (`crate::text::escape`) so packet data cannot
/// forge lines or reach the terminal as control sequences.
///
/// # Errors
/// Writing failed (for example a closed pipe).
pub fn write_text_line(event: &Event, w: &mut impl Write) -> io::Result<()> {
    write!(w, "{} ", iso_time(event.meta.ts_micros))?;
    write_summary(event, w)?;
    writeln!(w)
}

/// The text line without its time and newline (`ACTION PROTO SRC -> DST len=N rule="NAME" ..`): the message
/// of ECS events, syslog messages and journald entries, which carry the time in a field of their own.
#[must_use]
pub fn summary_line(event: &Event) -> String {
    let mut line = Vec::with_capacity(160);
    // Writing into a Vec cannot fail, and every piece written is UTF-8.
    write_summary(event, &mut line).ok();
    String::from_utf8(line).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_summary(event: &Event, w: &mut impl Write) -> io::Result<()> {
    let meta = &event.meta;
    write!(
        w,
        "{:<5} {:<6} {} -> {} len={} rule=\"{}\" dir={} iface={}",
        event.verdict.action.name(),
        meta.protocol_name(),
        endpoint(meta.src_ip, meta.src_port),
        endpoint(meta.dst_ip, meta.dst_port),
        meta.wire_len,
        escape_quoted(event.rule_label()),
        meta.direction.name(),
        escape(&event.iface),
    )?;
    if let Some(flags) = meta.tcp_flags {
        write!(w, " flags={}", flags.letters())?;
    }
    if let Some((t, c)) = meta.icmp_type_code {
        write!(w, " icmp={t}/{c}")?;
    }
    if let Some(name) = &event.src_name {
        write!(w, " src_name=\"{}\"", escape_quoted(name))?;
    }
    if let Some(name) = &event.dst_name {
        write!(w, " dst_name=\"{}\"", escape_quoted(name))?;
    }
    if event.kernel_dropped {
        write!(w, " kernel=dropped")?;
    }
    if let Some(program) = program_label(event) {
        write!(w, " program=\"{}\"", escape(&program))?;
    }
    if let Some(attribution) = event.attribution() {
        if let Some(process) = attribution.process() {
            write!(w, " pid={}", process.pid)?;
        }
        if let Some(user) = attribution.user() {
            write!(w, " user=\"{}\"", escape(&user.to_string()))?;
        }
    }
    if let Some(alert) = &event.alert {
        write!(
            w,
            " alert={} reason=\"{}\"",
            alert.kind.name(),
            escape_quoted(&alert.reason)
        )?;
    }
    if let Some(m) = meta.malformed {
        write!(w, " malformed=\"{}\"", escape_quoted(&m.describe()))?;
    }
    Ok(())
}

/// Writes serializable rows as CSV with a header row; returns the number of rows.
fn write_csv_rows<T: serde::Serialize>(
    rows: impl IntoIterator<Item = T>,
    w: impl Write,
) -> Result<usize, ExportError> {
    let mut writer = csv::Writer::from_writer(w);
    let mut n = 0;
    for row in rows {
        writer.serialize(row)?;
        n += 1;
    }
    writer.flush()?;
    Ok(n)
}

/// Writes serializable rows as JSON lines; returns the number of lines.
fn write_jsonl_rows<T: serde::Serialize>(
    rows: impl IntoIterator<Item = T>,
    mut w: impl Write,
) -> Result<usize, ExportError> {
    let mut n = 0;
    for row in rows {
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Writes serializable rows as one JSON array (one object per line inside it); returns the number of rows.
fn write_json_array_rows<T: serde::Serialize>(
    rows: impl IntoIterator<Item = T>,
    mut w: impl Write,
) -> Result<usize, ExportError> {
    let mut n = 0;
    w.write_all(b"[")?;
    for row in rows {
        w.write_all(if n == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut w, &row)?;
        n += 1;
    }
    w.write_all(b"\n]\n")?;
    w.flush()?;
    Ok(n)
}

/// Writes events as CSV with a header row; returns the number of rows.
///
/// # Errors
/// Writing failed.
pub fn export_csv<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_csv_rows(
        events
            .into_iter()
            .map(|event| EventRow::from_event(event).escaped()),
        w,
    )
}

/// Writes events as JSON lines (the `--json` schema); returns the number of lines.
///
/// # Errors
/// Writing failed.
pub fn export_jsonl<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_jsonl_rows(events.into_iter().map(EventRow::from_event), w)
}

/// One flow as a flat row: the schema of `connections --json` lines and flow exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRow<'a> {
    pub protocol: String,
    /// Who opened it: `out`, `in`, `local` or `unknown`.
    pub direction: &'static str,
    pub iface: &'a str,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_ip: String,
    pub remote_port: u16,
    /// The remote host's name from passive DNS.
    pub remote_name: Option<&'a str>,
    /// The program's executable path, `unknown (REASON)`, `(offline)`, or `unknown (pending)`.
    pub program: Cow<'a, str>,
    pub pid: Option<u32>,
    pub cmdline: Option<String>,
    /// The systemd unit.
    pub unit: Option<&'a str>,
    /// `flatpak:ID` or `snap:NAME`.
    pub app: Option<String>,
    pub user: Option<String>,
    pub uid: Option<u32>,
    /// ISO-8601 UTC times of the first and last packet.
    pub first_seen: String,
    pub last_seen: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Verdicts its packets got, comma-separated (`allow,block`).
    pub verdicts: String,
    /// The rule that decided its last packet (`default` for the default policy).
    pub rule: String,
    /// TCP state (`syn-sent`, `established`, `closing`, `closed`; empty for other protocols).
    pub tcp_state: &'static str,
}

impl<'a> FlowRow<'a> {
    /// Flattens a flow as it is now.
    #[must_use]
    pub fn from_flow(flow: &'a crate::flows::Flow) -> Self {
        let attribution = flow.attribution();
        let process = attribution.and_then(crate::attrib::Attribution::process);
        let user = attribution.and_then(crate::attrib::Attribution::user);
        let ((tx_packets, tx_bytes), (rx_packets, rx_bytes)) = (flow.tx(), flow.rx());
        Self {
            protocol: crate::packet::IpProto(flow.key.protocol).name().into_owned(),
            direction: flow.direction.name(),
            iface: &flow.iface,
            local_ip: flow.local.ip.to_string(),
            local_port: flow.local.port,
            remote_ip: flow.remote.ip.to_string(),
            remote_port: flow.remote.port,
            remote_name: flow.remote_name().map(|n| &**n),
            program: attribution.map_or(Cow::Borrowed(crate::attrib::PENDING_LABEL), |a| a.program_label()),
            pid: process.map(|p| p.pid),
            cmdline: process.map(crate::attrib::ProcessInfo::command_line),
            unit: process.and_then(|p| p.unit.as_deref()),
            app: process.and_then(|p| p.app.as_ref()).map(ToString::to_string),
            user: user.map(ToString::to_string),
            uid: user.map(|u| u.uid),
            first_seen: iso_time(flow.first_seen_micros),
            last_seen: iso_time(flow.last_seen_micros()),
            tx_packets,
            tx_bytes,
            rx_packets,
            rx_bytes,
            verdicts: flow
                .verdicts_seen()
                .into_iter()
                .map(crate::rules::Action::name)
                .collect::<Vec<_>>()
                .join(","),
            rule: flow
                .rule()
                .map_or_else(|| "default".to_owned(), |r| r.to_string()),
            tcp_state: flow.tcp_state().name(),
        }
    }
}

/// Writes flows as JSON lines (the `connections --json` schema); returns the number of lines.
///
/// # Errors
/// Writing failed.
pub fn export_flows_jsonl<'a>(
    flows: impl IntoIterator<Item = &'a crate::flows::Flow>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_jsonl_rows(flows.into_iter().map(FlowRow::from_flow), w)
}

/// Writes flows as CSV with a header row; returns the number of rows.
///
/// # Errors
/// Writing failed.
pub fn export_flows_csv<'a>(
    flows: impl IntoIterator<Item = &'a crate::flows::Flow>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_csv_rows(flows.into_iter().map(FlowRow::from_flow), w)
}

/// Writes audit-log records as CSV with a header row.
///
/// # Errors
/// Writing failed.
pub fn export_log_csv<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_csv_rows(records.into_iter().map(LogRecord::escaped), w)
}

/// Writes audit-log records as one JSON array (a `.json` file any JSON parser reads whole).
///
/// # Errors
/// Writing failed.
pub fn export_log_json<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_json_array_rows(records, w)
}

/// Writes audit-log records as JSON lines.
///
/// # Errors
/// Writing failed.
pub fn export_log_jsonl<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_jsonl_rows(records, w)
}

/// Writes packets to a classic pcap file through libpcap's savefile.
pub struct PcapWriter {
    savefile: pcap::Savefile,
    path: PathBuf,
}

impl PcapWriter {
    /// Creates `path` for frames of `link`.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path, link: LinkType) -> Result<Self, ExportError> {
        let pcap_error = |e: pcap::Error| ExportError::Pcap {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let dead = pcap::Capture::dead(pcap::Linktype(link.to_linktype())).map_err(pcap_error)?;
        let savefile = dead.savefile(path).map_err(pcap_error)?;
        Ok(Self {
            savefile,
            path: path.to_path_buf(),
        })
    }

    /// Appends one frame.
    pub fn write(&mut self, ts_micros: i64, wire_len: u32, data: &[u8]) {
        let header = pcap::PacketHeader {
            ts: libc_timeval(ts_micros),
            caplen: u32::try_from(data.len()).unwrap_or(u32::MAX),
            len: wire_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX)),
        };
        self.savefile.write(&pcap::Packet::new(&header, data));
    }

    /// Flushes and closes the file.
    ///
    /// # Errors
    /// The final flush failed.
    pub fn finish(mut self) -> Result<(), ExportError> {
        self.savefile.flush().map_err(|e| ExportError::Pcap {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }
}

/// The `timeval` libpcap's packet header holds (64-bit Linux: both fields are i64).
fn libc_timeval(ts_micros: i64) -> libc::timeval {
    libc::timeval {
        tv_sec: ts_micros.div_euclid(1_000_000),
        tv_usec: ts_micros.rem_euclid(1_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rule: &str) -> LogRecord {
        let mut event = crate::event::testing::ssh_probe(1, 1_764_000_000_000_000, 40_000);
        event.rule_name = Some(std::sync::Arc::from(rule));
        crate::audit::record_of(&event).unwrap()
    }

    #[test]
    fn csv_cells_hold_no_control_characters_and_json_keeps_the_text() {
        let hostile = "evil\n10.0.0.1,allow\u{1b}[31m";
        let mut event = crate::event::testing::ssh_probe(1, 1_764_000_000_000_000, 40_000);
        event.rule_name = Some(std::sync::Arc::from(hostile));
        event.dst_name = Some(std::sync::Arc::from("x\u{202e}gro.elpmaxe"));
        let mut csv = Vec::new();
        export_csv([&event], &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 2, "a header and one row: {csv:?}");
        assert!(!csv.contains('\u{1b}') && !csv.contains('\u{202e}'), "{csv:?}");
        assert!(csv.contains("evil\\n10.0.0.1,allow\\u{1b}[31m"), "{csv}");
        let mut log_csv = Vec::new();
        export_log_csv([&record(hostile)], &mut log_csv).unwrap();
        let log_csv = String::from_utf8(log_csv).unwrap();
        assert_eq!(log_csv.lines().count(), 2, "{log_csv:?}");
        let mut json = Vec::new();
        export_jsonl([&event], &mut json).unwrap();
        let row: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(row["rule"], hostile, "JSON escapes by itself and keeps the text");
    }

    #[test]
    fn json_is_one_array_and_jsonl_one_object_per_line() {
        let records = [record("no ssh"), record("no \"http\"")];
        let mut json = Vec::new();
        assert_eq!(export_log_json(&records, &mut json).unwrap(), 2);
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let array = parsed.as_array().unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(array[1]["rule"], "no \"http\"");
        let mut empty = Vec::new();
        export_log_json(&[], &mut empty).unwrap();
        assert_eq!(
            serde_json::from_slice::<Vec<serde_json::Value>>(&empty)
                .unwrap()
                .len(),
            0
        );
        let mut lines = Vec::new();
        assert_eq!(export_log_jsonl(&records, &mut lines).unwrap(), 2);
        let text = String::from_utf8(lines).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "lines are not one document"
        );
        for line in text.lines() {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(line).unwrap()["dst_port"],
                22
            );
        }
    }
}
