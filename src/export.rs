//! Export of events and audit-log records as CSV and JSON lines, and of packets as pcap files. Each function
//! takes an `io::Write` (or a path for pcap) so the CLI (stdout) and the GUI (a file) share them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::LogRecord;
use crate::event::Event;
use crate::packet::LinkType;
use crate::text::{endpoint, escape, iso_time};

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
    pub iface: &'a str,
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
    pub rule: &'a str,
    pub alert: Option<&'static str>,
    pub alert_reason: Option<&'a str>,
    pub src_name: Option<&'a str>,
    pub dst_name: Option<&'a str>,
    /// `truncated tcp`, `malformed ipv4`, .. or empty.
    pub malformed: String,
    /// The kernel drops this packet (enforced block list).
    pub kernel_dropped: bool,
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
            iface: &event.iface,
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
            rule: event.rule_label(),
            alert: event.alert.as_ref().map(|a| a.kind.name()),
            alert_reason: event.alert.as_ref().map(|a| a.reason.as_str()),
            src_name: event.src_name.as_deref(),
            dst_name: event.dst_name.as_deref(),
            malformed: m.malformed.map(|x| x.describe()).unwrap_or_default(),
            kernel_dropped: event.kernel_dropped,
        }
    }
}

/// Writes one event as one JSON object and a newline (`--json`).
///
/// # Errors
/// Writing failed.
pub fn write_json_line(event: &Event, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &EventRow::from_event(event)).map_err(io::Error::other)?;
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
    let meta = &event.meta;
    write!(
        w,
        "{} {:<5} {:<6} {} -> {} len={} rule=\"{}\" dir={} iface={}",
        iso_time(meta.ts_micros),
        event.verdict.action.name(),
        meta.protocol_name(),
        endpoint(meta.src_ip, meta.src_port),
        endpoint(meta.dst_ip, meta.dst_port),
        meta.wire_len,
        escape(event.rule_label()),
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
        write!(w, " src_name=\"{}\"", escape(name))?;
    }
    if let Some(name) = &event.dst_name {
        write!(w, " dst_name=\"{}\"", escape(name))?;
    }
    if event.kernel_dropped {
        write!(w, " kernel=dropped")?;
    }
    if let Some(alert) = &event.alert {
        write!(
            w,
            " alert={} reason=\"{}\"",
            alert.kind.name(),
            escape(&alert.reason)
        )?;
    }
    if let Some(m) = meta.malformed {
        write!(w, " malformed=\"{}\"", escape(&m.describe()))?;
    }
    writeln!(w)
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
    write_csv_rows(events.into_iter().map(EventRow::from_event), w)
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

/// Writes audit-log records as CSV with a header row.
///
/// # Errors
/// Writing failed.
pub fn export_log_csv<'a>(
    records: impl IntoIterator<Item = &'a LogRecord>,
    w: impl Write,
) -> Result<usize, ExportError> {
    write_csv_rows(records, w)
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
