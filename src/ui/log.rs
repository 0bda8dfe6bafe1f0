//! The log viewer: denied and suspicious events from `firewall.log` and from the live session, filtered by
//! action, rule, address and time, exported as CSV, JSON (an array), JSON lines or (live packets) pcap.
//!
//! Per frame the viewer costs O(visible rows): the filtered view is a list of record indices, built once
//! when a filter changes (or, with "last minutes", when the cut-off second moves) and extended as live
//! records arrive; old records leave a deque from the front.

use std::collections::VecDeque;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use egui_extras::{Column, TableBuilder};

use super::dialog::{DialogKind, PathField};
use crate::audit::{LogRecord, read_log, record_of};
use crate::engine::RawStore;
use crate::event::Event;
use crate::export::{PcapWriter, export_log_csv, export_log_json, export_log_jsonl};

/// Records kept in the viewer at most.
const MAX_RECORDS: usize = 200_000;

/// One row: the record and, for live events, the sequence number of its packet.
struct Entry {
    record: LogRecord,
    seq: Option<u64>,
}

/// What the view was built for: the parsed filter fields and, for "last minutes", the cut-off time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ViewKey {
    action: String,
    rule_lower: String,
    address: String,
    /// Records older than this are hidden (whole seconds, so the view is rebuilt at most once a second).
    cutoff: Option<DateTime<Utc>>,
}

impl ViewKey {
    fn matches(&self, r: &LogRecord) -> bool {
        let action_ok = self.action == "any" || r.action == self.action;
        let rule_ok = self.rule_lower.is_empty() || r.rule.to_lowercase().contains(&self.rule_lower);
        let address_ok = self.address.is_empty()
            || [r.src_ip, r.dst_ip]
                .iter()
                .flatten()
                .any(|ip| ip.to_string().contains(&self.address));
        let time_ok = self.cutoff.is_none_or(|cutoff| r.time >= cutoff);
        action_ok && rule_ok && address_ok && time_ok
    }
}

/// Parses the "Last minutes" field: empty is no time filter; otherwise a positive number of minutes.
fn parse_minutes(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(m) if m.is_finite() && m > 0.0 => Ok(Some(m)),
        _ => Err(format!(
            "\"Last minutes\" must be a positive number (like 15 or 0.5), not {text:?}: time filter not applied"
        )),
    }
}

/// The viewer's state.
pub struct LogPanel {
    path: PathBuf,
    entries: VecDeque<Entry>,
    /// Absolute index of `entries[0]` (indices never change, so `view` survives trimming).
    first_index: u64,
    action: String,
    rule: String,
    address: String,
    minutes: String,
    minutes_error: Option<String>,
    /// Absolute indices of the records the filter shows, oldest first.
    view: VecDeque<u64>,
    view_key: Option<ViewKey>,
    /// This session's live events are also written to `path` (live capture with the audit log on), so a
    /// reload finds them in the file.
    session_logged: bool,
    /// Records kept at most (`MAX_RECORDS`).
    max_records: usize,
    export: PathField,
    message: Option<String>,
}

impl LogPanel {
    /// A viewer for the log at `path` (read now; a missing file is simply empty).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        let mut panel = Self {
            path,
            entries: VecDeque::new(),
            first_index: 0,
            action: "any".into(),
            rule: String::new(),
            address: String::new(),
            minutes: String::new(),
            minutes_error: None,
            view: VecDeque::new(),
            view_key: None,
            session_logged: false,
            max_records: MAX_RECORDS,
            export: PathField::new("netwarden-log.csv"),
            message: None,
        };
        panel.reload();
        panel
    }

    /// Sets the export path field (as typing it would).
    pub fn set_export_path(&mut self, path: &std::path::Path) {
        self.export.text = path.display().to_string();
    }

    /// Says whether the live events pushed from now on are also written to the log file (live capture
    /// with the audit log) or not (demo mode, no audit log). A reload then keeps them only where the file
    /// does not have them yet.
    pub fn set_session_logged(&mut self, logged: bool) {
        self.session_logged = logged;
    }

    /// Re-reads the file. Live entries the file already holds are not kept twice: when this session's
    /// events are logged to the file, only those newer than its newest record stay (the audit writer may
    /// not have written them yet); otherwise (demo) all live entries stay, after the file's records.
    pub fn reload(&mut self) {
        let live: Vec<Entry> = self.entries.drain(..).filter(|e| e.seq.is_some()).collect();
        let mut records = Vec::new();
        match read_log(&self.path) {
            Ok((read, bad)) => {
                records = read;
                self.message =
                    (bad > 0).then(|| format!("{bad} lines of {} could not be read", self.path.display()));
            }
            Err(e) if self.path.exists() => self.message = Some(e.to_string()),
            Err(_) => {}
        }
        let newest_in_file = records.iter().map(|r| r.time).max();
        let keep_live = |e: &Entry| match newest_in_file {
            Some(newest) if self.session_logged => e.record.time > newest,
            _ => true,
        };
        let live: Vec<Entry> = live.into_iter().filter(keep_live).collect();
        // New indices for everything: the old view is rebuilt below.
        self.first_index += (self.entries.len() + records.len() + live.len()) as u64;
        self.entries = records
            .into_iter()
            .map(|record| Entry { record, seq: None })
            .chain(live)
            .collect();
        self.view_key = None;
        self.trim();
    }

    /// Adds the notable events of a live batch (O(batch)).
    pub fn push<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events.into_iter().filter(|e| e.is_notable()) {
            if let Some(record) = record_of(event) {
                let index = self.first_index + self.entries.len() as u64;
                if self.view_key.as_ref().is_some_and(|key| key.matches(&record)) {
                    self.view.push_back(index);
                }
                self.entries.push_back(Entry {
                    record,
                    seq: Some(event.seq),
                });
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        let excess = self.entries.len().saturating_sub(self.max_records);
        if excess > 0 {
            self.entries.drain(..excess);
            self.first_index += excess as u64;
            while self.view.front().is_some_and(|i| *i < self.first_index) {
                self.view.pop_front();
            }
        }
    }

    /// The filter as the fields say now; flags a "last minutes" value that is not a number.
    fn current_key(&mut self, now: DateTime<Utc>) -> ViewKey {
        let cutoff = match parse_minutes(&self.minutes) {
            Ok(minutes) => {
                self.minutes_error = None;
                minutes.and_then(|m| {
                    #[expect(clippy::cast_possible_truncation, reason = "minutes to whole milliseconds")]
                    let millis = (m * 60_000.0).min(1e15) as i64;
                    let cutoff = now - chrono::Duration::milliseconds(millis);
                    DateTime::from_timestamp(cutoff.timestamp(), 0)
                })
            }
            Err(e) => {
                self.minutes_error = Some(e);
                None
            }
        };
        ViewKey {
            action: self.action.clone(),
            rule_lower: self.rule.to_lowercase(),
            address: self.address.trim().to_owned(),
            cutoff,
        }
    }

    /// Rebuilds the view when the filter (or the "last minutes" cut-off second) changed since it was built.
    fn refresh_view(&mut self) {
        let key = self.current_key(Utc::now());
        if self.view_key.as_ref() == Some(&key) {
            return;
        }
        let first = self.first_index;
        self.view = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| key.matches(&e.record))
            .map(|(k, _)| first + k as u64)
            .collect();
        self.view_key = Some(key);
    }

    fn entry(&self, index: u64) -> Option<&Entry> {
        let k = usize::try_from(index.checked_sub(self.first_index)?).ok()?;
        self.entries.get(k)
    }

    fn shown(&self) -> impl Iterator<Item = &Entry> {
        self.view.iter().filter_map(|i| self.entry(*i))
    }

    /// True when the view depends on the clock ("last minutes" is set), so it needs a redraw each second.
    #[must_use]
    pub fn shows_time_window(&self) -> bool {
        matches!(parse_minutes(&self.minutes), Ok(Some(_)))
    }

    /// The "last minutes" problem shown under the filters, if any.
    #[must_use]
    pub fn minutes_error(&self) -> Option<&str> {
        self.minutes_error.as_deref()
    }

    /// Number of records held and shown (as of the last frame or export).
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.entries.len(), self.view.len())
    }

    /// Writes the filtered view; the format follows the file extension: `.csv`, `.json` (one JSON array),
    /// `.jsonl` (JSON lines) or `.pcap`.
    ///
    /// # Errors
    /// A readable sentence for the status line.
    pub fn export(&mut self, path: &std::path::Path, raw: &RawStore) -> Result<String, String> {
        self.refresh_view();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let create =
            || std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()));
        let records = || self.shown().map(|e| &e.record);
        let n = match ext.as_str() {
            "csv" => export_log_csv(records(), create()?).map_err(|e| e.to_string())?,
            "json" => export_log_json(records(), create()?).map_err(|e| e.to_string())?,
            "jsonl" => export_log_jsonl(records(), create()?).map_err(|e| e.to_string())?,
            "pcap" => {
                let seqs: Vec<u64> = self.shown().filter_map(|e| e.seq).collect();
                let frames = raw.get_many(&seqs);
                let Some(first) = frames.first() else {
                    return Err(
                        "no packet bytes held for these rows (only recent live packets can be saved as pcap)"
                            .into(),
                    );
                };
                let mut writer = PcapWriter::create(path, first.link).map_err(|e| e.to_string())?;
                for f in frames.iter().filter(|f| f.link == first.link) {
                    writer.write(f.ts_micros, f.wire_len, &f.data);
                }
                writer.finish().map_err(|e| e.to_string())?;
                frames.len()
            }
            _ => return Err("use a .csv, .json, .jsonl or .pcap file name".into()),
        };
        Ok(format!("exported {n} records to {}", path.display()))
    }

    /// Shows the viewer.
    pub fn ui(&mut self, ui: &mut egui::Ui, raw: &RawStore) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Action:");
            egui::ComboBox::from_id_salt("log-action")
                .selected_text(self.action.clone())
                .show_ui(ui, |ui| {
                    for a in ["any", "block", "log", "allow"] {
                        ui.selectable_value(&mut self.action, a.to_owned(), a);
                    }
                })
                .response
                .labelled_by(label.id);
            for (name, value, width) in [
                ("Rule:", &mut self.rule, 120.0),
                ("Address:", &mut self.address, 140.0),
                ("Last minutes:", &mut self.minutes, 50.0),
            ] {
                let label = ui.label(name);
                ui.add(egui::TextEdit::singleline(value).desired_width(width))
                    .labelled_by(label.id);
            }
            if ui.button("Reload log file").clicked() {
                self.reload();
            }
            self.refresh_view();
            let (held, shown) = self.counts();
            ui.label(format!("{shown} of {held} records"));
        });
        if let Some(error) = &self.minutes_error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        ui.horizontal(|ui| {
            self.export.ui(
                ui,
                "Export to",
                DialogKind::Save,
                ("CSV, JSON, JSON lines or pcap", &["csv", "json", "jsonl", "pcap"]),
            );
            if ui.button("Export view").clicked() {
                self.message = Some(match self.export.path() {
                    Some(path) => self.export(&path, raw).unwrap_or_else(|e| e),
                    None => "type or pick a file to export to".into(),
                });
            }
        });
        if let Some(message) = &self.message {
            ui.label(message);
        }
        let view = &self.view;
        let entry = |index: u64| {
            let k = usize::try_from(index.checked_sub(self.first_index)?).ok()?;
            self.entries.get(k)
        };
        TableBuilder::new(ui)
            .striped(true)
            .stick_to_bottom(true)
            .column(Column::initial(200.0))
            .column(Column::initial(50.0))
            .column(Column::initial(120.0))
            .column(Column::initial(50.0))
            .column(Column::initial(190.0))
            .column(Column::initial(190.0))
            .column(Column::initial(60.0))
            .column(Column::remainder())
            .header(20.0, |mut header| {
                for title in [
                    "Time",
                    "Action",
                    "Rule",
                    "Proto",
                    "Source",
                    "Destination",
                    "Repeated",
                    "Reason",
                ] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, view.len(), |mut row| {
                    let Some(entry) = view.get(row.index()).and_then(|i| entry(*i)) else {
                        return;
                    };
                    let r = &entry.record;
                    let endpoint =
                        |ip: Option<std::net::IpAddr>, port: Option<u16>| crate::text::endpoint(ip, port);
                    row.col(|ui| {
                        ui.label(r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                    });
                    row.col(|ui| {
                        ui.label(&r.action);
                    });
                    row.col(|ui| {
                        ui.label(crate::text::escape(&r.rule));
                    });
                    row.col(|ui| {
                        ui.label(&r.proto);
                    });
                    row.col(|ui| {
                        ui.label(endpoint(r.src_ip, r.src_port));
                    });
                    row.col(|ui| {
                        ui.label(endpoint(r.dst_ip, r.dst_port));
                    });
                    row.col(|ui| {
                        ui.label(r.repeated.map(|n| n.to_string()).unwrap_or_default());
                    });
                    row.col(|ui| {
                        let mut text = r.reason.clone();
                        if let Some(alert) = &r.alert {
                            text = format!("[{alert}] {text}");
                        }
                        ui.label(crate::text::escape(&text));
                    });
                });
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditConfig, AuditLog};

    /// A denied packet from its own source port, `secs` after a fixed time.
    fn denied(seq: u64, secs: i64) -> Event {
        crate::event::testing::ssh_probe(
            seq,
            1_764_000_000_000_000 + secs * 1_000_000,
            30_000 + u16::try_from(seq).unwrap(),
        )
    }

    fn write_log(path: &std::path::Path, events: &[Event]) {
        let config = AuditConfig {
            path: path.to_path_buf(),
            repeat_window_secs: 0,
            ..AuditConfig::default()
        };
        let mut log = AuditLog::open(&config).unwrap();
        for e in events {
            log.record(e).unwrap();
        }
        log.flush().unwrap();
    }

    #[test]
    fn reload_does_not_duplicate_this_sessions_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firewall.log");
        let before: Vec<Event> = (1..=3).map(|i| denied(i, i64::try_from(i).unwrap())).collect();
        write_log(&path, &before);
        let mut panel = LogPanel::new(path.clone());
        panel.set_session_logged(true);
        // This session: 12 denied packets, shown live; the audit thread wrote the first 9 so far.
        let session: Vec<Event> = (10..22).map(|i| denied(i, i64::try_from(i).unwrap())).collect();
        panel.push(&session);
        write_log(&path, &session[..9]);
        panel.reload();
        panel.refresh_view();
        assert_eq!(panel.counts(), (15, 15));
        let ports: Vec<u16> = panel.shown().filter_map(|e| e.record.src_port).collect();
        let expected: Vec<u16> = (1..=3).chain(10..22).map(|i| 30_000 + i).collect();
        assert_eq!(ports, expected, "each event once, in order");
        panel.reload();
        panel.refresh_view();
        assert_eq!(panel.counts().0, 15, "a second reload changes nothing");
    }

    #[test]
    fn reload_keeps_live_events_the_file_does_not_get() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firewall.log");
        write_log(&path, &[denied(1, 500)]);
        let mut panel = LogPanel::new(path);
        // Demo mode: the made-up traffic is not logged, and its times can be older than the file's.
        panel.set_session_logged(false);
        panel.push(&[denied(2, 1), denied(3, 2)]);
        panel.reload();
        panel.refresh_view();
        assert_eq!(panel.counts(), (3, 3));
    }

    #[test]
    fn last_minutes_must_be_a_positive_number() {
        assert_eq!(parse_minutes(""), Ok(None));
        assert_eq!(parse_minutes(" 15 "), Ok(Some(15.0)));
        assert_eq!(parse_minutes("0.5"), Ok(Some(0.5)));
        for bad in ["abc", "-3", "0", "NaN", "inf", "1e400"] {
            let e = parse_minutes(bad).unwrap_err();
            assert!(e.contains("not applied"), "{bad}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut panel = LogPanel::new(dir.path().join("missing.log"));
        panel.push(&[denied(1, 0)]);
        panel.minutes = "abc".into();
        panel.refresh_view();
        assert!(panel.minutes_error().is_some());
        assert!(!panel.shows_time_window());
        assert_eq!(panel.counts(), (1, 1), "a bad value filters nothing and says so");
        panel.minutes = "10".into();
        panel.refresh_view();
        assert!(panel.minutes_error().is_none());
        assert_eq!(
            panel.counts(),
            (1, 0),
            "the packet is from 2025, older than 10 minutes"
        );
    }

    #[test]
    fn old_records_leave_from_the_front_and_the_view_follows() {
        let dir = tempfile::tempdir().unwrap();
        let mut panel = LogPanel::new(dir.path().join("missing.log"));
        panel.max_records = 100;
        panel.refresh_view();
        let batch: Vec<Event> = (0..110).map(|i| denied(i, 0)).collect();
        panel.push(&batch);
        assert_eq!(panel.counts(), (100, 100));
        assert_eq!(panel.shown().next().unwrap().seq, Some(10));
    }
}
