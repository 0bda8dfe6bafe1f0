//! journald's native protocol: one datagram per entry to `/run/systemd/journal/socket`, each field
//! `NAME=value\n`, or `NAME\n` + the value's length (64-bit little endian) + value + `\n` when the value
//! holds a newline (systemd: "Native Journal Protocol", <https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>).
//!
//! An entry carries `MESSAGE` (the text line), `PRIORITY`, `SYSLOG_IDENTIFIER=netwarden`,
//! `SYSLOG_FACILITY` and each event field as `NETWARDEN_<NAME>` (`NETWARDEN_SRC`, `NETWARDEN_RULE`, ..),
//! so `journalctl NETWARDEN_ACTION=block` finds them. Entries larger than a datagram (journald then wants a
//! memfd) do not occur: an event's fields are a few hundred bytes.

use std::io;
use std::path::Path;

use crate::event::Event;
use crate::export::summary_line;

use super::event_fields;
use super::syslog::severity;

/// Where journald listens for native entries.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// Appends one field in the native format (binary-safe form when the value holds a newline).
fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// The native-protocol entry for `event` (one datagram).
#[must_use]
pub fn entry(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    push_field(&mut out, "MESSAGE", summary_line(event).as_bytes());
    push_field(&mut out, "PRIORITY", severity(event).to_string().as_bytes());
    push_field(&mut out, "SYSLOG_IDENTIFIER", b"netwarden");
    push_field(&mut out, "SYSLOG_FACILITY", b"3");
    for (name, value) in event_fields(event) {
        // Journal field names: upper-case letters, digits and `_` (names in `event_fields` are lower case).
        let name = format!("NETWARDEN_{}", name.to_ascii_uppercase());
        push_field(&mut out, &name, value.as_bytes());
    }
    out
}

/// True when this process's stderr is connected to the journal, as for a systemd service with the default
/// `StandardError=journal`: `$JOURNAL_STREAM` holds the device and inode of that stream, and systemd
/// documents comparing them with stderr's as the way for a service to switch to the native protocol
/// (systemd.exec(5), "$JOURNAL_STREAM").
#[must_use]
pub fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(expected) = expected.to_str() else {
        return false;
    };
    stderr_dev_ino().is_ok_and(|(dev, ino)| expected == format!("{dev}:{ino}"))
}

/// Device and inode of file descriptor 2 (fstat through a duplicate, so stderr itself stays open).
fn stderr_dev_ino() -> io::Result<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = io::stderr().as_fd().try_clone_to_owned()?;
    let meta = std::fs::File::from(fd).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

/// True when journald's socket exists at `path` (a socket, not some other file).
#[must_use]
pub fn socket_exists(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Parses a native-protocol datagram back into fields (tests and the journald test receiver).
///
/// # Errors
/// A field without `=` or a binary field whose length runs past the datagram.
pub fn parse_entry(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let line_end = data
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("field without newline")?;
        let (line, rest) = data.split_at(line_end);
        let rest = rest.get(1..).unwrap_or_default();
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (name, value) = line.split_at(eq);
            fields.push((
                String::from_utf8_lossy(name).into_owned(),
                value.get(1..).unwrap_or_default().to_vec(),
            ));
            data = rest;
        } else {
            let len_bytes: [u8; 8] = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or("binary field without length")?;
            let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|e| e.to_string())?;
            let value = rest.get(8..8 + len).ok_or("binary field runs past the end")?;
            if rest.get(8 + len) != Some(&b'\n') {
                return Err("binary field not followed by a newline".into());
            }
            fields.push((String::from_utf8_lossy(line).into_owned(), value.to_vec()));
            data = rest.get(9 + len..).unwrap_or_default();
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event;

    fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
        &fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn an_entry_carries_the_message_priority_and_event_fields() {
        let mut event = sample_event();
        event.rule_name = Some("two\nlines".into());
        let data = entry(&event);
        let fields = parse_entry(&data).unwrap();
        assert_eq!(field(&fields, "PRIORITY"), b"4");
        assert_eq!(field(&fields, "SYSLOG_IDENTIFIER"), b"netwarden");
        assert_eq!(field(&fields, "NETWARDEN_SRC"), b"10.0.0.1");
        assert_eq!(field(&fields, "NETWARDEN_DPORT"), b"22");
        // A newline in a value takes the binary-safe form and comes back unchanged.
        assert_eq!(field(&fields, "NETWARDEN_RULE"), b"two\nlines");
        let binary = b"NETWARDEN_RULE\n\x09\0\0\0\0\0\0\0two\nlines\n";
        assert!(data.windows(binary.len()).any(|w| w == binary));
        assert!(String::from_utf8_lossy(field(&fields, "MESSAGE")).starts_with("block tcp"));
        for (name, _) in &fields {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn broken_entries_are_errors() {
        assert!(parse_entry(b"NAME=value").is_err());
        assert!(parse_entry(b"NAME\n\x05\0\0\0\0\0\0\0ab\n").is_err());
        assert_eq!(parse_entry(b"").unwrap(), vec![]);
    }

    #[test]
    fn journal_stream_must_match_stderr() {
        // In the test harness stderr is whatever cargo gave; `JOURNAL_STREAM` unset means "not the
        // journal" (the positive case runs end to end in tests/pipelines.rs with a real file as stderr).
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert!(!stderr_is_journal());
        }
        assert!(!socket_exists(Path::new("/nonexistent/socket")));
    }
}
