//! Syslog: where to (`udp://`, `tcp://`, `unix://` URLs) and the RFC 5424 message of an event.
//!
//! A message is `<PRI>1 TIMESTAMP HOSTNAME netwarden PID MSGID [netwarden@32473 key="value" ..] TEXT`:
//! facility `daemon`, severity `warning` for denied packets and alerts and `notice` for `Log` matches, the
//! MSGID the verdict, the event's fields as structured data and the one-line text form as the message.
//! 32473 is the private enterprise number RFC 5612 reserves for documentation and examples; netwarden has
//! none of its own, and RFC 5424 (section 7.2.2) requires one in a custom SD-ID.

use std::fmt;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::event::Event;
use crate::export::summary_line;
use crate::rules::Action;

use super::{ForwardError, event_fields};

/// The SD-ID of netwarden's structured data element.
pub const SD_ID: &str = "netwarden@32473";
/// The port `udp://` and `tcp://` URLs use when they name none (RFC 5426 for UDP; TCP receivers use the
/// same by convention).
pub const DEFAULT_PORT: u16 = 514;
/// Syslog facility `daemon` (RFC 5424, table 1).
const FACILITY_DAEMON: u8 = 3;

/// Where syslog messages go, from a `--syslog` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// `udp://HOST[:PORT]`: one datagram per message (RFC 5426).
    Udp(SocketAddr),
    /// `tcp://HOST[:PORT]`: a stream with octet-counting framing (RFC 6587, section 3.4.1).
    Tcp(SocketAddr),
    /// `unix:///PATH` (usually `/dev/log`): one datagram per message to a local socket.
    Unix(PathBuf),
}

impl SyslogTarget {
    /// Parses `udp://HOST[:PORT]`, `tcp://HOST[:PORT]` (port 514 when left out; `[v6]:port` for IPv6) or
    /// `unix:///absolute/path`. A host name is resolved once, here.
    ///
    /// # Errors
    /// `ForwardError::BadUrl` naming what is wrong: scheme, missing host, bad port, a path on a network URL,
    /// a relative socket path, or a host that does not resolve.
    pub fn parse(url: &str) -> Result<Self, ForwardError> {
        let bad = |why: &str| ForwardError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "udp" => Ok(Self::Udp(parse_host_port(rest).map_err(|why| bad(&why))?)),
            "tcp" => Ok(Self::Tcp(parse_host_port(rest).map_err(|why| bad(&why))?)),
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(bad("a unix socket path must be absolute (unix:///dev/log)"));
                }
                if rest.contains('\0') {
                    return Err(bad("the path holds a NUL byte"));
                }
                Ok(Self::Unix(PathBuf::from(rest)))
            }
            other => Err(bad(&format!("unknown scheme {other:?} (udp, tcp or unix)"))),
        }
    }
}

/// `HOST[:PORT]` (an optional trailing `/`) to one socket address.
fn parse_host_port(authority: &str) -> Result<SocketAddr, String> {
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.is_empty() {
        return Err("no host given".into());
    }
    if authority.contains(['/', '?', '#', '@']) {
        return Err("only HOST:PORT may follow the scheme (no path, query or user)".into());
    }
    // `[v6]:port`, `[v6]`, `host:port`, `host`.
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("expected :PORT after ]")?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err("write an IPv6 address in brackets: [2001:db8::1]:514".into());
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host given".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(text) => match text.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("bad port {text:?} (1-65535)")),
            Ok(port) => port,
        },
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp(addr) => write!(f, "udp://{addr}"),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Syslog severity of an event (RFC 5424, table 2): `warning` (4) for denied packets and alerts, `notice`
/// (5) for packets a `Log` rule matched.
#[must_use]
pub fn severity(event: &Event) -> u8 {
    if event.verdict.action == Action::Log && event.alert.is_none() {
        5
    } else {
        4
    }
}

/// Escapes an SD-PARAM value (RFC 5424, section 6.3.3): `"`, `\` and `]` get a backslash. Nothing else
/// changes, so a receiver that undoes those three gets the value back exactly.
#[must_use]
pub fn sd_escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['"', '\\', ']']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// Formats events as RFC 5424 messages for this host and process.
#[derive(Debug, Clone)]
pub struct Rfc5424 {
    hostname: String,
    procid: String,
}

impl Default for Rfc5424 {
    fn default() -> Self {
        Self::new(&system_hostname(), std::process::id())
    }
}

impl Rfc5424 {
    /// A formatter naming `hostname` (cut to what RFC 5424 allows: printable ASCII, at most 255) and `pid`.
    #[must_use]
    pub fn new(hostname: &str, pid: u32) -> Self {
        let hostname: String = hostname
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        Self {
            hostname: if hostname.is_empty() { "-".into() } else { hostname },
            procid: pid.to_string(),
        }
    }

    /// The message for `event`, without framing or trailing newline.
    #[must_use]
    pub fn format(&self, event: &Event) -> String {
        let pri = FACILITY_DAEMON * 8 + severity(event);
        let mut out = String::with_capacity(400);
        // Writing into a String cannot fail.
        write!(
            out,
            "<{pri}>1 {} {} netwarden {} {} [{SD_ID}",
            crate::text::iso_time(event.meta.ts_micros),
            self.hostname,
            self.procid,
            event.verdict.action.name(),
        )
        .ok();
        for (name, value) in event_fields(event) {
            write!(out, " {name}=\"{}\"", sd_escape(&value)).ok();
        }
        out.push_str("] ");
        out.push_str(&summary_line(event));
        out
    }
}

/// This host's name (`/proc/sys/kernel/hostname`), or `-` (RFC 5424's nil value) when it cannot be read.
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event;

    #[test]
    fn urls_parse_to_targets() {
        assert_eq!(
            SyslogTarget::parse("udp://127.0.0.1:5514").unwrap(),
            SyslogTarget::Udp("127.0.0.1:5514".parse().unwrap())
        );
        assert_eq!(
            SyslogTarget::parse("TCP://[::1]:601/").unwrap(),
            SyslogTarget::Tcp("[::1]:601".parse().unwrap())
        );
        assert_eq!(
            SyslogTarget::parse("udp://127.0.0.1").unwrap(),
            SyslogTarget::Udp("127.0.0.1:514".parse().unwrap())
        );
        assert_eq!(
            SyslogTarget::parse("unix:///dev/log").unwrap(),
            SyslogTarget::Unix("/dev/log".into())
        );
        assert_eq!(
            SyslogTarget::parse("udp://127.0.0.1:5514").unwrap().to_string(),
            "udp://127.0.0.1:5514"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let cases = [
            ("127.0.0.1:514", "expected udp://"),
            ("http://127.0.0.1:514", "unknown scheme"),
            ("udp://", "no host"),
            ("udp://:514", "no host"),
            ("tcp://127.0.0.1:0", "bad port"),
            ("tcp://127.0.0.1:70000", "bad port"),
            ("tcp://127.0.0.1:x", "bad port"),
            ("udp://127.0.0.1:514/path", "no path"),
            ("udp://::1:514", "brackets"),
            ("udp://[::1", "closing ]"),
            ("unix://dev/log", "absolute"),
            ("udp://no-such-host.invalid:514", "cannot resolve"),
        ];
        for (url, expected) in cases {
            let err = SyslogTarget::parse(url).unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
            assert!(err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn sd_values_escape_quote_backslash_and_bracket_only() {
        assert_eq!(sd_escape("plain"), "plain");
        assert_eq!(sd_escape(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(sd_escape("new\nline"), "new\nline");
    }

    #[test]
    fn a_denied_event_is_an_rfc5424_message() {
        let mut event = sample_event();
        event.rule_name = Some(r#"odd "name" ] \ here"#.into());
        let line = Rfc5424::new("host one", 42).format(&event);
        assert_eq!(
            line,
            "<28>1 2023-11-14T22:13:20.000001Z hostone netwarden 42 block [netwarden@32473 \
             action=\"block\" rule=\"odd \\\"name\\\" \\] \\\\ here\" proto=\"tcp\" src=\"10.0.0.1\" \
             sport=\"40000\" dst=\"192.168.1.50\" dport=\"22\" dir=\"in\" iface=\"eth0\" len=\"60\" \
             flags=\"S\"] block tcp    10.0.0.1:40000 -> 192.168.1.50:22 len=60 \
             rule=\"odd \\\"name\\\" ] \\\\ here\" dir=in iface=eth0 flags=S"
        );
        event.verdict.action = Action::Log;
        assert!(Rfc5424::new("h", 1).format(&event).starts_with("<29>1 "));
        assert!(
            Rfc5424::new("", 1)
                .format(&event)
                .contains("Z - netwarden 1 log [")
        );
    }
}
