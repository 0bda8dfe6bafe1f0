//! Text shown to people: the one escaping function every writer uses for user- or network-supplied strings
//! (reasons, rule names, DNS names, interface names, file paths), and the time and endpoint formats shared by
//! the CLI, the GUI, the exports and the audit log.
//!
//! Escaping keeps printable text as it is (also non-ASCII letters) and writes everything that could move a
//! cursor, end a line or a field, recolour a terminal or reorder text as a visible escape: `\\`, `\n`,
//! `\r`, `\t`, `\u{1b}` (and `\"` inside a quoted field: `escape_quoted`). So a reason like
//! `"x\n192.0.2.99/32 enforced"` stays on its own line, and `unescape` gives the original text back.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};

/// True for a character that is written as an escape: `\`, control characters (C0, DEL, C1),
/// Unicode format and bidirectional controls (which reorder what a terminal shows, CVE-2021-42574), line
/// and paragraph separators, and private/unassigned marks that some terminals act on.
#[must_use]
pub fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// Appends `text` to `out` with every character of `needs_escape` escaped (see the module docs), and `"`
/// too when `quoted` (the text goes between quotes).
pub fn escape_into(out: &mut String, text: &str, quoted: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' if quoted => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                // Writing into a String cannot fail.
                write!(out, "\\u{{{:x}}}", u32::from(c)).ok();
            }
            c => out.push(c),
        }
    }
}

/// `text` with every character of `needs_escape` escaped; borrowed when nothing needed escaping (the usual
/// case, so callers can escape everything they print).
#[must_use]
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_as(text, false)
}

/// `escape` for text written between double quotes (the audit log's fields, `rule="..."` in text lines):
/// `"` is escaped too.
#[must_use]
pub fn escape_quoted(text: &str) -> Cow<'_, str> {
    escape_as(text, true)
}

fn escape_as(text: &str, quoted: bool) -> Cow<'_, str> {
    if text.chars().any(|c| needs_escape(c) || (quoted && c == '"')) {
        let mut out = String::with_capacity(text.len() + 8);
        escape_into(&mut out, text, quoted);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Undoes `escape` (and the audit log's older `\xNN` byte escapes). Unknown or cut-off escapes are kept
/// as they stand, so any input gives some text back.
#[must_use]
pub fn unescape(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        bytes.extend_from_slice(rest.get(..at).unwrap_or_default().as_bytes());
        let after = rest.get(at + 1..).unwrap_or_default();
        let mut chars = after.chars();
        let consumed = match chars.next() {
            Some('n') => Some((vec![b'\n'], 1)),
            Some('r') => Some((vec![b'\r'], 1)),
            Some('t') => Some((vec![b'\t'], 1)),
            Some('\\') => Some((vec![b'\\'], 1)),
            Some('"') => Some((vec![b'"'], 1)),
            Some('x') => after
                .get(1..3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .map(|b| (vec![b], 3)),
            Some('u') => after.strip_prefix("u{").and_then(|tail| {
                let end = tail.find('}')?;
                let code = u32::from_str_radix(tail.get(..end)?, 16).ok()?;
                let c = char::from_u32(code)?;
                Some((c.to_string().into_bytes(), end + 3))
            }),
            _ => None,
        };
        match consumed {
            Some((decoded, len)) => {
                bytes.extend_from_slice(&decoded);
                rest = after.get(len..).unwrap_or_default();
            }
            None => {
                bytes.push(b'\\');
                rest = after;
            }
        }
    }
    bytes.extend_from_slice(rest.as_bytes());
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// ISO-8601 UTC time with microseconds for a capture timestamp (microseconds since the Unix epoch).
#[must_use]
pub fn iso_time(ts_micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts_micros).map_or_else(
        || ts_micros.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Micros, true),
    )
}

/// `addr:port`, bracketing IPv6 addresses when a port follows; `-` without an address.
#[must_use]
pub fn endpoint(ip: Option<IpAddr>, port: Option<u16>) -> String {
    match (ip, port) {
        (Some(IpAddr::V6(v6)), Some(p)) => format!("[{v6}]:{p}"),
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hostile_text_is_made_visible() {
        assert_eq!(escape("brute force"), "brute force");
        assert!(matches!(escape("Müller"), Cow::Borrowed(_)));
        assert_eq!(
            escape("x\n192.0.2.99/32\tenforced\x1b[31m"),
            "x\\n192.0.2.99/32\\tenforced\\u{1b}[31m"
        );
        assert_eq!(escape("a\"b\\c"), "a\"b\\\\c");
        assert_eq!(escape_quoted("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("\u{85}\u{9b}1m"), "\\u{85}\\u{9b}1m");
        assert_eq!(unescape("old \\xc3\\xbc log"), "old ü log");
        assert_eq!(unescape("cut \\u{1b"), "cut \\u{1b");
        assert_eq!(unescape("end\\"), "end\\");
    }

    #[test]
    fn endpoints_and_times() {
        assert_eq!(endpoint(Some("::1".parse().unwrap()), Some(22)), "[::1]:22");
        assert_eq!(
            endpoint(Some("10.0.0.1".parse().unwrap()), Some(22)),
            "10.0.0.1:22"
        );
        assert_eq!(endpoint(None, Some(1)), "-");
        assert_eq!(iso_time(1_700_000_000_000_001), "2023-11-14T22:13:20.000001Z");
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_control_and_round_trips(text in any::<String>()) {
            let escaped = escape(&text);
            prop_assert!(!escaped.chars().any(|c| c.is_control()), "{escaped:?}");
            prop_assert!(!escaped.chars().any(|c| c != '\\' && needs_escape(c)), "{escaped:?}");
            prop_assert_eq!(unescape(&escaped), text.clone());
            let quoted = escape_quoted(&text);
            // Inside quotes no unescaped `"` can end the field early.
            let bare_quotes = quoted
                .char_indices()
                .filter(|(i, c)| *c == '"' && !quoted[..*i].ends_with('\\'))
                .count();
            prop_assert_eq!(bare_quotes, 0, "{}", quoted);
            prop_assert_eq!(unescape(&quoted), text);
        }

        #[test]
        fn unescape_never_panics(text in "[\\\\a-z{}0-9u x]{0,40}") {
            let _ = unescape(&text);
        }
    }
}
