//! Import and export of the block list: plain text (one address or network per line, `#` comments) and
//! CSV (`address,reason,added,expires`). Imports are all-or-nothing: the first bad line is an error naming
//! its line number, and nothing is returned.

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{BlockList, BlocklistError, Result, parse_net};

/// One imported address with its optional reason and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedEntry {
    /// The parsed network.
    pub net: IpNet,
    /// Reason from the file (text imports use the comment after the address, if any).
    pub reason: Option<String>,
    /// Expiry from the file (CSV only).
    pub expires: Option<DateTime<Utc>>,
}

/// Parses a plain text list: one IP or CIDR per line; blank lines and `#` comments (whole line or after the
/// address) are skipped; a trailing comment becomes the reason.
///
/// # Errors
/// `Import` with the 1-based line number of the first bad address.
pub fn import_text(text: &str) -> Result<Vec<ImportedEntry>> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let (addr, comment) = match line.split_once('#') {
            Some((addr, comment)) => (addr.trim(), Some(comment.trim())),
            None => (line.trim(), None),
        };
        if addr.is_empty() {
            continue;
        }
        let net = parse_net(addr).map_err(|err| BlocklistError::Import {
            line: index + 1,
            message: err.to_string(),
        })?;
        out.push(ImportedEntry {
            net,
            reason: comment.filter(|c| !c.is_empty()).map(crate::text::unescape),
            expires: None,
        });
    }
    Ok(out)
}

/// Writes the list as plain text: a header comment, then one network per line with its reason as a comment.
///
/// # Errors
/// `Io`-kind errors of the writer, as `Csv` never; returned as `std::io::Error`.
pub fn export_text(list: &BlockList, mut out: impl std::io::Write) -> std::io::Result<()> {
    writeln!(out, "# netwarden block list: one address or network per line")?;
    for entry in list.iter() {
        // Escaped: a newline in a reason would start a new (address) line on import, and control characters
        // would reach whoever reads the file in a terminal. `import_text` un-escapes.
        let reason = crate::text::escape(&entry.reason);
        if reason.is_empty() {
            writeln!(out, "{}", entry.net)?;
        } else {
            writeln!(out, "{} # {reason}", entry.net)?;
        }
    }
    Ok(())
}

/// CSV row of the block list.
#[derive(Debug, Serialize, Deserialize)]
struct EntryRow {
    address: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    added: String,
    #[serde(default)]
    expires: String,
}

/// Writes the list as CSV with a header (`address,reason,added,expires`, RFC 3339 times, empty = none).
///
/// # Errors
/// `Csv` when writing fails.
pub fn export_csv(list: &BlockList, out: impl std::io::Write) -> Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for entry in list.iter() {
        writer.serialize(EntryRow {
            address: entry.net.to_string(),
            // No raw control characters in a cell (a terminal or spreadsheet would act on them).
            reason: crate::text::escape(&entry.reason).into_owned(),
            added: entry.added.to_rfc3339(),
            expires: entry.expires.map(|t| t.to_rfc3339()).unwrap_or_default(),
        })?;
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(())
}

/// Reads CSV written by `export_csv` (header required; `reason`, `added`, `expires` may be empty).
///
/// # Errors
/// `Import` with the line number of the first bad record.
pub fn import_csv(input: impl std::io::Read) -> Result<Vec<ImportedEntry>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let mut out = Vec::new();
    for record in reader.deserialize::<EntryRow>() {
        let record_err = |line: usize, message: String| BlocklistError::Import { line, message };
        let row = match record {
            Ok(row) => row,
            Err(err) => {
                let line = err
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                return Err(record_err(line, err.to_string()));
            }
        };
        let line = out.len() + 2;
        let net = parse_net(&row.address).map_err(|err| record_err(line, err.to_string()))?;
        let expires = if row.expires.is_empty() {
            None
        } else {
            let at = DateTime::parse_from_rfc3339(&row.expires)
                .map_err(|err| record_err(line, format!("bad expires `{}`: {err}", row.expires)))?;
            Some(at.with_timezone(&Utc))
        };
        out.push(ImportedEntry {
            net,
            reason: Some(crate::text::unescape(&row.reason)).filter(|r| !r.is_empty()),
            expires,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::BlockEntry;

    #[test]
    fn text_import_skips_comments_and_reports_bad_line() {
        let got = import_text("# list\n192.0.2.1\n\n2001:db8::/48 # scanner\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].net.to_string(), "2001:db8::/48");
        assert_eq!(got[1].reason.as_deref(), Some("scanner"));
        let err = import_text("192.0.2.1\n1.2.3.4;reboot\n").unwrap_err();
        assert!(matches!(err, BlocklistError::Import { line: 2, .. }), "{err}");
    }

    #[test]
    fn csv_and_text_round_trip() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut list = BlockList::new();
        list.insert(BlockEntry::new(
            parse_net("192.0.2.1").unwrap(),
            "a, \"quoted\"",
            now,
            Some(now),
        ));
        list.insert(BlockEntry::new(
            parse_net("10.1.0.0/16").unwrap(),
            "line\nbreak",
            now,
            None,
        ));
        let mut csv_out = Vec::new();
        export_csv(&list, &mut csv_out).unwrap();
        let back = import_csv(csv_out.as_slice()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].reason.as_deref(), Some("a, \"quoted\""));
        assert_eq!(back[1].expires, Some(now));
        let mut text_out = Vec::new();
        export_text(&list, &mut text_out).unwrap();
        let text = String::from_utf8(text_out).unwrap();
        assert_eq!(
            text,
            "# netwarden block list: one address or network per line\n10.1.0.0/16 # line\\nbreak\n192.0.2.1/32 # a, \"quoted\"\n"
        );
        let back = import_text(&text).unwrap();
        assert_eq!(back[0].reason.as_deref(), Some("line\nbreak"));
        assert_eq!(back[1].reason.as_deref(), Some("a, \"quoted\""));
        assert!(String::from_utf8(csv_out).unwrap().contains("line\\nbreak"));
        let err = import_csv("address,reason\n192.0.2.1,x\nnope,y\n".as_bytes()).unwrap_err();
        assert!(matches!(err, BlocklistError::Import { line: 3, .. }), "{err}");
    }
}
