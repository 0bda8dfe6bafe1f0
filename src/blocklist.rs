//! The block list: addresses and networks (IPv4/IPv6, host or CIDR) that the kernel should drop, each with a
//! reason, when it was added, an optional expiry and its enforcement state; plus the bounded ban history.
//!
//! This module is pure data and files: parsing user input (`parse_net`, `parse_duration`), persistence
//! (`blocklist.ron`, `history.ron`, saved atomically), and import/export (plain text, CSV). Putting the
//! entries into the kernel is `crate::enforce`'s job.

pub mod history;
pub mod io;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use history::{BanHistory, BanRecord, LiftReason};

/// File name of the saved block list inside the state directory.
pub const BLOCKLIST_FILE: &str = "blocklist.ron";
/// File name of the saved ban history inside the state directory.
pub const HISTORY_FILE: &str = "history.ron";

/// Errors of the block list: bad user input, unreadable or broken files.
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    /// The text is not an IP address or CIDR network we accept.
    #[error("bad address `{input}`: {reason}")]
    BadAddress { input: String, reason: String },
    /// The text is not a duration like `30s`, `10m`, `2h`, `1d`.
    #[error("bad duration `{input}`: {reason}")]
    BadDuration { input: String, reason: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A saved file is not valid RON for its type.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// One line or record of an import is wrong (1-based line number).
    #[error("line {line}: {message}")]
    Import { line: usize, message: String },
    /// Writing CSV failed.
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
}

/// Result alias of this module.
pub type Result<T, E = BlocklistError> = std::result::Result<T, E>;

/// Whether the kernel really drops an entry right now. Never says `Enforced` unless the last command that
/// put the entry into the kernel succeeded and no drift check found it missing since.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EntryState {
    /// The kernel drops this address.
    Enforced,
    /// Wanted, not (yet) confirmed in the kernel.
    #[default]
    Pending,
    /// The kernel command failed; the text says why (command and stderr).
    Failed(String),
    /// Enforcement is off (monitor-only mode, dry run or no privileges).
    NotEnforced,
    /// The entry is in the kernel set but the kernel does not drop it (a chain, jump or set rule of ours is
    /// missing); the text says what.
    Drifted(String),
}

impl EntryState {
    /// A short label for tables and the CLI (`enforced`, `pending`, `failed: ..`, `not enforced`).
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::Enforced => "enforced".to_owned(),
            Self::Pending => "pending".to_owned(),
            Self::Failed(why) => format!("failed: {why}"),
            Self::NotEnforced => "not enforced".to_owned(),
            Self::Drifted(why) => format!("NOT enforced: {why}"),
        }
    }
}

/// One blocked address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// The address (as a /32 or /128) or network, host bits cleared.
    pub net: IpNet,
    /// Why it is blocked (free text shown to the user).
    pub reason: String,
    /// When it was added.
    pub added: DateTime<Utc>,
    /// When the ban lifts by itself; `None` = until removed.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
    /// Last known enforcement state (re-checked against the kernel at start).
    #[serde(default)]
    pub state: EntryState,
}

impl BlockEntry {
    /// A new entry, state `Pending`.
    #[must_use]
    pub fn new(net: IpNet, reason: &str, added: DateTime<Utc>, expires: Option<DateTime<Utc>>) -> Self {
        Self {
            net,
            reason: reason.to_owned(),
            added,
            expires,
            state: EntryState::Pending,
        }
    }

    /// True once `now` reached the expiry.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// Seconds left until expiry at `now`, rounded up (at least 1) so a kernel timeout never ends before
    /// the entry expires; `None` = no expiry.
    #[must_use]
    pub fn remaining_secs(&self, now: DateTime<Utc>) -> Option<u64> {
        let at = self.expires?;
        let millis = (at - now).num_milliseconds().max(1);
        Some(u64::try_from(millis).unwrap_or(1).div_ceil(1000))
    }
}

/// The set of blocked entries, keyed and sorted by network: the same network can never appear twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockList {
    entries: BTreeMap<IpNet, BlockEntry>,
}

/// On-disk form of `BlockList` (`blocklist.ron`).
#[derive(Debug, Serialize, Deserialize)]
struct BlockListFile {
    version: u32,
    entries: Vec<BlockEntry>,
}

impl BlockList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is blocked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for exactly this network.
    #[must_use]
    pub fn get(&self, net: &IpNet) -> Option<&BlockEntry> {
        self.entries.get(net)
    }

    /// Mutable access to the entry for exactly this network (to update its state).
    pub fn get_mut(&mut self, net: &IpNet) -> Option<&mut BlockEntry> {
        self.entries.get_mut(net)
    }

    /// Adds or replaces the entry for its network; returns the replaced one.
    pub fn insert(&mut self, entry: BlockEntry) -> Option<BlockEntry> {
        self.entries.insert(entry.net, entry)
    }

    /// Removes the entry for exactly this network.
    pub fn remove(&mut self, net: &IpNet) -> Option<BlockEntry> {
        self.entries.remove(net)
    }

    /// Removes every entry and returns them, sorted by network.
    pub fn clear(&mut self) -> Vec<BlockEntry> {
        std::mem::take(&mut self.entries).into_values().collect()
    }

    /// Entries sorted by network.
    pub fn iter(&self) -> impl Iterator<Item = &BlockEntry> {
        self.entries.values()
    }

    /// Mutable entries sorted by network.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut BlockEntry> {
        self.entries.values_mut()
    }

    /// Networks whose expiry is at or before `now`, sorted.
    #[must_use]
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<IpNet> {
        self.iter().filter(|e| e.is_expired(now)).map(|e| e.net).collect()
    }

    /// Reads a saved list; a missing file is an empty list, a broken one an error with line:column.
    ///
    /// # Errors
    /// `Io` when the file cannot be read, `Parse` when it is not a valid block list.
    pub fn load(path: &Path) -> Result<Self> {
        let Some(text) = read_optional(path)? else {
            return Ok(Self::new());
        };
        let file: BlockListFile = parse_ron(path, &text)?;
        let mut list = Self::new();
        for mut entry in file.entries {
            // Host bits or an IPv4-mapped IPv6 form in a hand-edited (or older) file would make two keys for
            // one network, or an entry the kernel could never match.
            entry.net = normalize_net(entry.net);
            list.insert(entry);
        }
        Ok(list)
    }

    /// Saves the list atomically (temp file in the same directory, then rename).
    ///
    /// # Errors
    /// `Io` when the directory or file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_ron_text(path)?)
    }

    /// The list as `save` writes it (`path` only names the file in errors).
    pub(crate) fn to_ron_text(&self, path: &Path) -> Result<String> {
        let file = BlockListFile {
            version: 1,
            entries: self.iter().cloned().collect(),
        };
        to_ron_text(path, &file)
    }
}

/// The system-wide state directory: the one block list of this host's kernel.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/netwarden";

/// The default state directory for a user (`euid`), from `XDG_STATE_HOME` / `HOME`. Root, and a process
/// that may change the firewall and write `SYSTEM_STATE_DIR` (`system_usable`: a member of the group
/// `netwarden` of the Debian package, or `make run`'s user), share the system directory: the kernel's sets
/// are one per host, so one list and one lock must own them, or two lists would each remove the other's
/// entries as strays.
#[must_use]
pub fn default_state_dir(
    euid: Option<u32>,
    system_usable: bool,
    xdg_state_home: Option<&str>,
    home: Option<&str>,
) -> PathBuf {
    if euid == Some(0) || system_usable {
        return PathBuf::from(SYSTEM_STATE_DIR);
    }
    match (xdg_state_home.filter(|v| !v.is_empty()), home) {
        (Some(xdg), _) => Path::new(xdg).join("netwarden"),
        (None, Some(home)) => Path::new(home).join(".local/state/netwarden"),
        (None, None) => PathBuf::from(".netwarden"),
    }
}

/// The default state directory of the process: see `default_state_dir`.
#[must_use]
pub fn default_user_state_dir() -> PathBuf {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let privileges = crate::enforce::parse_privileges(&status);
    let system_usable = privileges.euid != Some(0)
        && privileges.cap_net_admin
        && tempfile::tempfile_in(SYSTEM_STATE_DIR).is_ok();
    let xdg = std::env::var("XDG_STATE_HOME").ok();
    let home = std::env::var("HOME").ok();
    default_state_dir(privileges.euid, system_usable, xdg.as_deref(), home.as_deref())
}

/// True when `dir` is shared by a group (the setgid bit, as the Debian package and `make run` create
/// `SYSTEM_STATE_DIR`): files written there are made group-readable and -writable.
#[must_use]
pub fn is_group_shared(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o2000 != 0)
}

/// Reads a file, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BlocklistError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses RON, mapping errors to `Parse` with line and column.
pub(crate) fn parse_ron<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    ron::from_str(text).map_err(|err| BlocklistError::Parse {
        path: path.to_owned(),
        line: err.span.start.line,
        column: err.span.start.col,
        message: err.code.to_string(),
    })
}

/// Writes `value` as pretty RON to `path` atomically.
pub(crate) fn save_ron<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, &to_ron_text(path, value)?)
}

/// `value` as pretty RON, as `save_ron` writes it.
pub(crate) fn to_ron_text<T: Serialize>(path: &Path, value: &T) -> Result<String> {
    ron::ser::to_string_pretty(value, ron::ser::PrettyConfig::default()).map_err(|err| BlocklistError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(err.to_string()),
    })
}

/// Writes `text` to `path` atomically (a temp file in the same directory, synced, then renamed over it).
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let io_err = |source| BlocklistError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io_err)?;
    if is_group_shared(dir) {
        // Other members of the group (and the service, root without CAP_DAC_OVERRIDE) read and replace it.
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o660))
            .map_err(io_err)?;
    }
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(path).map_err(|err| io_err(err.error))?;
    Ok(())
}

/// The one form of a network netwarden stores, compares and hands to the kernel: host bits cleared, and an
/// IPv4-mapped IPv6 network (`::ffff:192.0.2.2/128`, `::ffff:10.0.0.0/104`) written as the IPv4 network it
/// stands for (`192.0.2.2/32`, `10.0.0.0/8`). An IPv4 packet never matches an IPv6 set entry, so keeping the
/// mapped form would report a block that drops nothing, and would slip past the loopback check.
#[must_use]
pub fn normalize_net(net: IpNet) -> IpNet {
    unmap_net(net).trunc()
}

/// An IPv4-mapped IPv6 network as the IPv4 network it stands for, host bits kept (rules keep what the
/// user wrote, so lint can point at host bits); anything else unchanged.
#[must_use]
pub fn unmap_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    net
}

/// An address as netwarden compares it: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as plain IPv4.
#[must_use]
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Parses an IP address (`192.0.2.7`, `2001:db8::1`) or CIDR network (`198.51.100.0/24`) typed by a user or
/// read from a file. Host bits are cleared (`10.0.0.5/24` -> `10.0.0.0/24`) and IPv4-mapped IPv6 becomes IPv4
/// (`normalize_net`: `::ffff:127.0.0.1` is `127.0.0.1/32`, and refused as loopback). Anything else - including shell
/// tricks like `1.2.3.4;reboot` - is refused, and so is a `/0` prefix (the kernel set type cannot hold it
/// and it would cut off everything).
///
/// # Errors
/// `BadAddress` naming the input and why.
pub fn parse_net(input: &str) -> Result<IpNet> {
    let text = input.trim();
    let bad = |reason: &str| BlocklistError::BadAddress {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    let net = if let Ok(net) = text.parse::<IpNet>() {
        normalize_net(net)
    } else if let Ok(addr) = text.parse::<IpAddr>() {
        normalize_net(IpNet::from(addr))
    } else {
        return Err(bad("not an IP address or CIDR network"));
    };
    if net.prefix_len() == 0 {
        return Err(bad("a /0 prefix would block every address"));
    }
    Ok(net)
}

/// Parses a ban length: a whole number followed by `s`, `m`, `h` or `d` (`30s`, `10m`, `2h`, `1d`).
///
/// # Errors
/// `BadDuration` when the unit is missing or unknown, the number is not a positive integer, or the result
/// is over 10 years.
pub fn parse_duration(input: &str) -> Result<Duration> {
    let text = input.trim();
    let bad = |reason: &str| BlocklistError::BadDuration {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(unit) = text.chars().last() else {
        return Err(bad("empty"));
    };
    let unit_secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad("expected a number followed by s, m, h or d (e.g. 10m)")),
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a whole number before the unit"));
    }
    let count: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    if count == 0 {
        return Err(bad("must be longer than zero"));
    }
    let secs = count
        .checked_mul(unit_secs)
        .filter(|secs| *secs <= 10 * 365 * 86_400)
        .ok_or_else(|| bad("longer than 10 years"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_defaults() {
        assert_eq!(
            default_state_dir(Some(0), false, Some("/x"), Some("/h")),
            PathBuf::from("/var/lib/netwarden")
        );
        assert_eq!(
            default_state_dir(Some(1000), false, Some("/x"), Some("/h")),
            PathBuf::from("/x/netwarden")
        );
        assert_eq!(
            default_state_dir(Some(1000), false, None, Some("/h")),
            PathBuf::from("/h/.local/state/netwarden")
        );
        assert_eq!(
            default_state_dir(Some(1000), true, Some("/x"), Some("/h")),
            PathBuf::from(SYSTEM_STATE_DIR),
            "a firewall administrator shares the host's list"
        );
    }

    #[test]
    fn parse_net_accepts_hosts_and_networks() {
        assert_eq!(parse_net("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_net(" 10.0.0.5/24 ").unwrap().to_string(), "10.0.0.0/24");
        assert_eq!(parse_net("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(parse_net("2001:db8::/48").unwrap().to_string(), "2001:db8::/48");
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        assert_eq!(parse_net("::ffff:192.0.2.2").unwrap().to_string(), "192.0.2.2/32");
        assert_eq!(
            parse_net("::FFFF:10.1.2.3/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_net("::ffff:127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        // Wider than the mapped range: stays IPv6 (it covers more than IPv4 addresses).
        assert_eq!(parse_net("::ffff:0:0/95").unwrap().to_string(), "::fffe:0:0/95");
        assert!(parse_net("::ffff:0.0.0.0/96").is_err(), "all of IPv4 is a /0");
        assert_eq!(parse_net("64:ff9b::1").unwrap().to_string(), "64:ff9b::1/128");
        assert_eq!(
            normalize_ip("::ffff:203.0.113.9".parse().unwrap()),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn parse_net_refuses_junk_and_injection() {
        for input in [
            "",
            "1.2.3.4;reboot",
            "1.2.3.4 && rm -rf /",
            "$(id)",
            "1.2.3",
            "0.0.0.0/0",
            "::/0",
            "a.b.c.d",
            "1.2.3.4/33",
        ] {
            let err = parse_net(input).unwrap_err();
            assert!(matches!(err, BlocklistError::BadAddress { .. }), "{input}: {err}");
        }
    }

    #[test]
    fn parse_duration_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7_200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        for bad in [
            "",
            "10",
            "m",
            "-5m",
            "0s",
            "1.5h",
            "10x",
            "99999999999999999999d",
            "5000d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_save_load_round_trip_and_no_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BLOCKLIST_FILE);
        let now = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut list = BlockList::new();
        list.insert(BlockEntry::new(
            parse_net("192.0.2.7").unwrap(),
            "scan",
            now,
            None,
        ));
        list.insert(BlockEntry::new(
            parse_net("192.0.2.7").unwrap(),
            "again",
            now,
            None,
        ));
        list.insert(BlockEntry::new(
            parse_net("2001:db8::/48").unwrap(),
            "x",
            now,
            Some(now + chrono::Duration::seconds(60)),
        ));
        assert_eq!(list.len(), 2);
        list.save(&path).unwrap();
        let loaded = BlockList::load(&path).unwrap();
        assert_eq!(loaded, list);
        assert_eq!(
            loaded.get(&parse_net("192.0.2.7").unwrap()).unwrap().reason,
            "again"
        );
        assert_eq!(
            loaded.expired(now + chrono::Duration::seconds(60)),
            vec![parse_net("2001:db8::/48").unwrap()]
        );
    }

    #[test]
    fn broken_file_reports_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BLOCKLIST_FILE);
        std::fs::write(&path, "(version: 1,\n entries: [oops])").unwrap();
        let err = BlockList::load(&path).unwrap_err();
        assert!(matches!(err, BlocklistError::Parse { line: 2, .. }), "{err}");
        assert!(
            BlockList::load(&dir.path().join("missing.ron"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn remaining_secs_rounds_up_to_one() {
        let now = Utc::now();
        let entry = BlockEntry::new(
            parse_net("192.0.2.1").unwrap(),
            "",
            now,
            Some(now + chrono::Duration::milliseconds(1_300)),
        );
        assert_eq!(entry.remaining_secs(now), Some(2));
        assert!(!entry.is_expired(now));
    }
}
