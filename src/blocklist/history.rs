//! The ban history: who was banned, when, why, for how long and when the ban was lifted. Bounded (oldest
//! first out), persisted in `history.ron`, exportable as CSV.

use std::collections::VecDeque;
use std::path::Path;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Result, parse_ron, read_optional, save_ron};

/// Why a ban ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LiftReason {
    /// Its expiry passed.
    Expired,
    /// A user removed it.
    Manual,
    /// Everything was flushed.
    Flush,
    /// A pending change was not confirmed in time and was rolled back.
    RolledBack,
}

/// One ban, open (`lifted_at == None`) or closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanRecord {
    /// Who: the banned address or network.
    pub net: IpNet,
    /// Why.
    pub reason: String,
    /// When the ban started.
    pub banned_at: DateTime<Utc>,
    /// Planned length in seconds; `None` = until removed.
    pub ban_secs: Option<u64>,
    /// When the ban ended.
    pub lifted_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub lifted_by: Option<LiftReason>,
}

/// A CSV row of the history export.
#[derive(Serialize)]
struct BanRow<'a> {
    address: String,
    reason: std::borrow::Cow<'a, str>,
    banned_at: String,
    ban_secs: String,
    lifted_at: String,
    lifted_by: &'static str,
}

/// The bounded list of bans, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanHistory {
    records: VecDeque<BanRecord>,
    capacity: usize,
}

impl Default for BanHistory {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl BanHistory {
    /// Records kept by default before the oldest are dropped.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// An empty history keeping at most `capacity` records (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &BanRecord> {
        self.records.iter()
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Opens a new ban record, dropping the oldest when full.
    pub fn record_ban(&mut self, net: IpNet, reason: &str, banned_at: DateTime<Utc>, ban_secs: Option<u64>) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(BanRecord {
            net,
            reason: reason.to_owned(),
            banned_at,
            ban_secs,
            lifted_at: None,
            lifted_by: None,
        });
    }

    /// Updates the newest open record of `net` after its reason or length changed (a ban extended by a repeat
    /// offence, a reason corrected); opens a record when there is none.
    pub fn record_change(&mut self, net: IpNet, reason: &str, at: DateTime<Utc>, ban_secs: Option<u64>) {
        let open = self
            .records
            .iter_mut()
            .rev()
            .find(|r| r.net == net && r.lifted_at.is_none());
        match open {
            Some(record) => {
                reason.clone_into(&mut record.reason);
                // The planned length counts from the original ban.
                let since = u64::try_from((at - record.banned_at).num_seconds()).unwrap_or(0);
                record.ban_secs = ban_secs.map(|secs| secs.saturating_add(since));
            }
            None => self.record_ban(net, reason, at, ban_secs),
        }
    }

    /// Closes the newest open record of `net`; returns false when there was none.
    pub fn record_lift(&mut self, net: IpNet, lifted_at: DateTime<Utc>, why: LiftReason) -> bool {
        let open = self
            .records
            .iter_mut()
            .rev()
            .find(|r| r.net == net && r.lifted_at.is_none());
        let Some(record) = open else { return false };
        record.lifted_at = Some(lifted_at);
        record.lifted_by = Some(why);
        true
    }

    /// Reads a saved history (missing file = empty) keeping at most `capacity` newest records.
    ///
    /// # Errors
    /// `Io` or `Parse` (with line:column).
    pub fn load(path: &Path, capacity: usize) -> Result<Self> {
        let mut history = Self::with_capacity(capacity);
        if let Some(text) = read_optional(path)? {
            let records: Vec<BanRecord> = parse_ron(path, &text)?;
            let skip = records.len().saturating_sub(history.capacity);
            history.records = records.into_iter().skip(skip).collect();
        }
        Ok(history)
    }

    /// Saves atomically.
    ///
    /// # Errors
    /// `Io` when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_ron(path, &self.records)
    }

    /// The history as `save` writes it (`path` only names the file in errors).
    pub(crate) fn to_ron_text(&self, path: &Path) -> Result<String> {
        super::to_ron_text(path, &self.records)
    }

    /// Writes the history as CSV with a header row (`address,reason,banned_at,ban_secs,lifted_at,lifted_by`).
    ///
    /// # Errors
    /// `Csv` when writing fails.
    pub fn export_csv(&self, out: impl std::io::Write) -> Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        for record in &self.records {
            writer.serialize(BanRow {
                address: record.net.to_string(),
                reason: crate::text::escape(&record.reason),
                banned_at: record.banned_at.to_rfc3339(),
                ban_secs: record.ban_secs.map(|s| s.to_string()).unwrap_or_default(),
                lifted_at: record.lifted_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                lifted_by: match record.lifted_by {
                    None => "",
                    Some(LiftReason::Expired) => "expired",
                    Some(LiftReason::Manual) => "manual",
                    Some(LiftReason::Flush) => "flush",
                    Some(LiftReason::RolledBack) => "rolled-back",
                },
            })?;
        }
        writer.flush().map_err(csv::Error::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::parse_net;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn bounded_and_lifts_newest_open_record() {
        let mut history = BanHistory::with_capacity(2);
        let net = parse_net("192.0.2.1").unwrap();
        history.record_ban(parse_net("192.0.2.9").unwrap(), "old", at(0), None);
        history.record_ban(net, "first", at(1), Some(60));
        history.record_ban(net, "second", at(2), Some(120));
        assert_eq!(history.len(), 2);
        assert!(history.record_lift(net, at(3), LiftReason::Manual));
        let reasons: Vec<_> = history.iter().map(|r| (r.reason.as_str(), r.lifted_by)).collect();
        assert_eq!(
            reasons,
            vec![("first", None), ("second", Some(LiftReason::Manual))]
        );
        assert!(!history.record_lift(parse_net("192.0.2.9").unwrap(), at(4), LiftReason::Manual));
    }

    #[test]
    fn csv_export_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.ron");
        let mut history = BanHistory::default();
        history.record_ban(parse_net("2001:db8::1").unwrap(), "scan, twice", at(0), Some(600));
        history.record_lift(parse_net("2001:db8::1").unwrap(), at(600), LiftReason::Expired);
        history.save(&path).unwrap();
        assert_eq!(BanHistory::load(&path, 10).unwrap(), {
            let mut h = history.clone();
            h.capacity = 10;
            h
        });
        let mut out = Vec::new();
        history.export_csv(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "address,reason,banned_at,ban_secs,lifted_at,lifted_by\n\
             2001:db8::1/128,\"scan, twice\",2023-11-14T22:13:20+00:00,600,2023-11-14T22:23:20+00:00,expired\n"
        );
    }
}
