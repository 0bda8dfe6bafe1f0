//! Event output for the terminal: one human-readable line, or one JSON object, per event.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::event::Event;

/// ISO-8601 UTC time with microseconds for a capture timestamp.
#[must_use]
pub fn iso_time(ts_micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts_micros).map_or_else(
        || ts_micros.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Micros, true),
    )
}

/// `addr:port`, bracketing IPv6 addresses when a port follows.
#[must_use]
pub fn endpoint(ip: Option<std::net::IpAddr>, port: Option<u16>) -> String {
    match (ip, port) {
        (Some(std::net::IpAddr::V6(v6)), Some(p)) => format!("[{v6}]:{p}"),
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "-".to_owned(),
    }
}

/// Writes one text line for `event`:
/// `TIME ACTION PROTO SRC -> DST len=N rule="NAME" [flags] dir iface [alert] [malformed]`.
/// Rule and host names are printed with Rust's debug escaping so packet data cannot forge lines.
///
/// # Errors
/// Writing failed (for example a closed pipe).
pub fn write_text_line(event: &Event, w: &mut impl Write) -> io::Result<()> {
    let meta = &event.meta;
    write!(
        w,
        "{} {:<5} {:<6} {} -> {} len={} rule={:?} dir={} iface={}",
        iso_time(meta.ts_micros),
        event.verdict.action.name(),
        meta.protocol_name(),
        endpoint(meta.src_ip, meta.src_port),
        endpoint(meta.dst_ip, meta.dst_port),
        meta.wire_len,
        event.rule_label(),
        meta.direction.name(),
        event.iface,
    )?;
    if let Some(flags) = meta.tcp_flags {
        write!(w, " flags={}", flags.letters())?;
    }
    if let Some((t, c)) = meta.icmp_type_code {
        write!(w, " icmp={t}/{c}")?;
    }
    if let Some(name) = &event.src_name {
        write!(w, " src_name={name:?}")?;
    }
    if let Some(name) = &event.dst_name {
        write!(w, " dst_name={name:?}")?;
    }
    if event.kernel_dropped {
        write!(w, " kernel=dropped")?;
    }
    if let Some(alert) = &event.alert {
        write!(w, " alert={} reason={:?}", alert.kind.name(), alert.reason)?;
    }
    if let Some(m) = meta.malformed {
        write!(w, " malformed={:?}", m.describe())?;
    }
    writeln!(w)
}
