//! The log viewer: denied and suspicious events from `firewall.log` and from the live session, filtered by
//! action, rule, address and time, exported as CSV, JSON lines or (live packets) pcap.

use std::path::PathBuf;

use chrono::{Duration, Utc};
use egui_extras::{Column, TableBuilder};

use super::dialog::{DialogKind, PathField};
use crate::audit::{LogRecord, read_log, record_of};
use crate::engine::RawStore;
use crate::event::Event;
use crate::export::{PcapWriter, export_log_csv, export_log_jsonl};

/// Records kept in the viewer at most.
const MAX_RECORDS: usize = 200_000;

/// One row: the record and, for live events, the sequence number of its packet.
struct Entry {
    record: LogRecord,
    seq: Option<u64>,
}

/// The viewer's state.
pub struct LogPanel {
    path: PathBuf,
    entries: Vec<Entry>,
    action: String,
    rule: String,
    address: String,
    minutes: String,
    export: PathField,
    message: Option<String>,
}

impl LogPanel {
    /// A viewer for the log at `path` (read now; a missing file is simply empty).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        let mut panel = Self {
            path,
            entries: Vec::new(),
            action: "any".into(),
            rule: String::new(),
            address: String::new(),
            minutes: String::new(),
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

    /// Re-reads the file (live entries are kept after it).
    pub fn reload(&mut self) {
        let live: Vec<Entry> = self.entries.drain(..).filter(|e| e.seq.is_some()).collect();
        match read_log(&self.path) {
            Ok((records, bad)) => {
                self.entries = records
                    .into_iter()
                    .map(|record| Entry { record, seq: None })
                    .collect();
                self.message =
                    (bad > 0).then(|| format!("{bad} lines of {} could not be read", self.path.display()));
            }
            Err(e) if self.path.exists() => self.message = Some(e.to_string()),
            Err(_) => {}
        }
        self.entries.extend(live);
        self.trim();
    }

    /// Adds the notable events of a live batch.
    pub fn push<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events.into_iter().filter(|e| e.is_notable()) {
            if let Some(record) = record_of(event) {
                self.entries.push(Entry {
                    record,
                    seq: Some(event.seq),
                });
            }
        }
        self.trim();
    }

    fn trim(&mut self) {
        let excess = self.entries.len().saturating_sub(MAX_RECORDS);
        self.entries.drain(..excess);
    }

    fn matches(&self, r: &LogRecord) -> bool {
        let action_ok = self.action == "any" || r.action == self.action;
        let rule_ok = self.rule.is_empty() || r.rule.to_lowercase().contains(&self.rule.to_lowercase());
        let address_ok = self.address.is_empty()
            || [r.src_ip, r.dst_ip]
                .iter()
                .flatten()
                .any(|ip| ip.to_string().contains(self.address.trim()));
        let time_ok = match self.minutes.trim().parse::<i64>() {
            Ok(m) if m > 0 => r.time >= Utc::now() - Duration::minutes(m),
            _ => true,
        };
        action_ok && rule_ok && address_ok && time_ok
    }

    fn shown(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| self.matches(&e.record)).collect()
    }

    /// Number of records held and shown.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.entries.len(), self.shown().len())
    }

    /// Writes the filtered view; the format follows the file extension (`.csv`, `.jsonl`/`.json`, `.pcap`).
    ///
    /// # Errors
    /// A readable sentence for the status line.
    pub fn export(&self, path: &std::path::Path, raw: &RawStore) -> Result<String, String> {
        let shown = self.shown();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let create =
            || std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()));
        let n = match ext.as_str() {
            "csv" => export_log_csv(shown.iter().map(|e| &e.record), create()?).map_err(|e| e.to_string())?,
            "json" | "jsonl" => {
                export_log_jsonl(shown.iter().map(|e| &e.record), create()?).map_err(|e| e.to_string())?
            }
            "pcap" => {
                let seqs: Vec<u64> = shown.iter().filter_map(|e| e.seq).collect();
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
            _ => return Err("use a .csv, .jsonl or .pcap file name".into()),
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
            let (held, shown) = self.counts();
            ui.label(format!("{shown} of {held} records"));
        });
        ui.horizontal(|ui| {
            self.export.ui(
                ui,
                "Export to",
                DialogKind::Save,
                ("CSV, JSON lines or pcap", &["csv", "jsonl", "pcap"]),
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
        let shown = self.shown();
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
                body.rows(18.0, shown.len(), |mut row| {
                    let Some(entry) = shown.get(row.index()) else {
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
                        ui.label(&r.rule);
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
                        ui.label(text);
                    });
                });
            });
    }
}
