//! Events in Elastic Common Schema (ECS) field names: `run --json --format ecs` and `replay --format ecs`.
//!
//! ECS is defined as nested JSON objects (`{"source":{"ip":..}}`), and that is what is written here, not
//! dotted keys (`{"source.ip":..}`): Elasticsearch and Filebeat read nested objects as the schema's fields
//! as they stand, while dotted keys need Filebeat's `expand_keys` or an ingest `dot_expander`; Vector's VRL
//! reaches nested fields as `.source.ip` (a dotted key would be `."source.ip"`); Loki's `json` parser turns
//! nested objects into `source_ip` labels. Fields without an ECS equivalent live under `netwarden.*`.
//! Absent values (no port on ICMP, no name learned) are left out, as ECS producers do.
//!
//! Field reference: ECS 8.11 (`@timestamp`, `event.*`, `source.*`, `destination.*`, `network.*`,
//! `observer.*`, `rule.name`).

use std::io::{self, Write};

use serde::Serialize;

use super::{EventRow, summary_line};
use crate::event::Event;
use crate::packet::{Direction, NetworkKind};
use crate::rules::Action;

/// The ECS version the field names follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// One event with ECS field names. Build it with `EcsEvent::from_event`; serialise it with serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsEvent<'a> {
    /// ISO-8601 UTC with microseconds: the packet's capture time.
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    /// The one-line text form (`block tcp 10.0.0.1:40000 -> 192.168.1.50:22 len=60 rule=".."`).
    pub message: String,
    pub ecs: EcsVersion,
    pub event: EcsEventFields<'a>,
    pub rule: EcsRule<'a>,
    pub source: EcsEndpoint<'a>,
    pub destination: EcsEndpoint<'a>,
    pub network: EcsNetwork,
    pub observer: EcsObserver<'a>,
    /// What ECS has no field for.
    pub netwarden: EcsNetwarden<'a>,
}

/// `ecs.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsVersion {
    pub version: &'static str,
}

/// `event.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsEventFields<'a> {
    /// `block`, `allow` or `log`: the verdict.
    pub action: &'static str,
    /// `alert` when detection raised one on this packet, else `event`.
    pub kind: &'static str,
    /// Always `["network"]`.
    pub category: [&'static str; 1],
    /// `["denied"]` for block, `["allowed"]` for allow and log.
    #[serde(rename = "type")]
    pub event_type: [&'static str; 1],
    pub module: &'static str,
    pub dataset: &'static str,
    /// The engine's sequence number of the packet within one run.
    pub sequence: u64,
    /// The alert's reason, when there is an alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// `rule.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsRule<'a> {
    /// The deciding rule, `default` for the default policy.
    pub name: &'a str,
}

/// `source.*` and `destination.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsEndpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The host name learned from DNS answers on the wire, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<&'a str>,
}

/// `network.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsNetwork {
    /// IANA keyword of the transport, lower case: `tcp`, `udp`, `icmp`, `ipv6-icmp`, ..
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The IANA protocol number as a string (ECS keyword), e.g. `"6"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iana_number: Option<String>,
    /// `ipv4`, `ipv6` or `arp`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub network_type: Option<&'static str>,
    /// From this host's point of view: `ingress`, `egress`, `internal` (both ends ours) or `unknown`.
    pub direction: &'static str,
    /// Bytes on the wire of this packet.
    pub bytes: u32,
    /// Always 1: one event per packet.
    pub packets: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<EcsVlan>,
}

/// `network.vlan.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsVlan {
    /// ECS keeps VLAN ids as keywords (strings).
    pub id: String,
}

/// `observer.*`: netwarden itself, and the interface the packet crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsObserver<'a> {
    pub product: &'static str,
    #[serde(rename = "type")]
    pub observer_type: &'static str,
    /// The interface, for packets coming in (and for those whose direction is not known or local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<EcsInterfaceOf<'a>>,
    /// The interface, for packets going out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<EcsInterfaceOf<'a>>,
}

/// `observer.ingress` / `observer.egress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsInterfaceOf<'a> {
    pub interface: EcsInterface<'a>,
}

/// `observer.*.interface.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsInterface<'a> {
    pub name: &'a str,
}

/// `netwarden.*`: the `--json` fields ECS has no place for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsNetwarden<'a> {
    /// Capture time in microseconds since the Unix epoch (exact; `@timestamp` is its text form).
    pub ts_micros: i64,
    /// Link type of the capture (`ethernet`, `linux_sll2`, ..).
    pub link: &'static str,
    /// Bytes present in the capture.
    pub caplen: u32,
    /// TCP flags as letters (`SA`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<EcsIcmp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<EcsAlert<'a>>,
    /// `truncated tcp`, `malformed ipv4`, ..
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
    /// The kernel drops this packet (enforced block list or kernel rule).
    pub kernel_dropped: bool,
}

/// `netwarden.icmp.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EcsIcmp {
    #[serde(rename = "type")]
    pub icmp_type: u8,
    pub code: u8,
}

/// `netwarden.alert.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsAlert<'a> {
    /// `port-scan`, `syn-flood`, `rate-exceeded` or `repeated-denied`.
    pub kind: &'static str,
    pub reason: &'a str,
}

/// ECS `network.direction` for a host-based observer (ECS: "populate this field from the host's point of
/// view, using the values ingress or egress").
fn ecs_direction(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "ingress",
        Direction::Out => "egress",
        Direction::Local => "internal",
        Direction::Unknown => "unknown",
    }
}

/// ECS `network.transport`: the IANA protocol keyword, lower case (IANA calls ICMPv6 `ipv6-icmp`).
fn ecs_transport(protocol: u8) -> Option<String> {
    Some(
        match protocol {
            1 => "icmp",
            2 => "igmp",
            6 => "tcp",
            17 => "udp",
            47 => "gre",
            50 => "esp",
            58 => "ipv6-icmp",
            132 => "sctp",
            _ => return None,
        }
        .to_owned(),
    )
}

impl<'a> EcsEvent<'a> {
    /// Maps an event to ECS field names (see the module docs).
    #[must_use]
    pub fn from_event(event: &'a Event) -> Self {
        let row = EventRow::from_event(event);
        let meta = &event.meta;
        let protocol = meta.protocol.map(|p| p.0);
        let interface = Some(EcsInterfaceOf {
            interface: EcsInterface { name: &event.iface },
        });
        let outgoing = meta.direction == Direction::Out;
        Self {
            timestamp: row.time,
            message: summary_line(event),
            ecs: EcsVersion { version: ECS_VERSION },
            event: EcsEventFields {
                action: row.verdict,
                kind: if row.alert.is_some() { "alert" } else { "event" },
                category: ["network"],
                event_type: [if event.verdict.action == Action::Block {
                    "denied"
                } else {
                    "allowed"
                }],
                module: "netwarden",
                dataset: "netwarden.packet",
                sequence: row.seq,
                reason: event.alert.as_ref().map(|a| a.reason.as_str()),
            },
            rule: EcsRule {
                name: event.rule_label(),
            },
            source: EcsEndpoint {
                ip: row.src_ip,
                port: row.src_port,
                domain: event.src_name.as_deref(),
            },
            destination: EcsEndpoint {
                ip: row.dst_ip,
                port: row.dst_port,
                domain: event.dst_name.as_deref(),
            },
            network: EcsNetwork {
                transport: protocol.and_then(ecs_transport),
                iana_number: protocol.map(|p| p.to_string()),
                network_type: match meta.network {
                    NetworkKind::Ipv4 => Some("ipv4"),
                    NetworkKind::Ipv6 => Some("ipv6"),
                    NetworkKind::Arp => Some("arp"),
                    NetworkKind::OtherEtherType(_) | NetworkKind::Unknown => None,
                },
                direction: ecs_direction(meta.direction),
                bytes: row.length,
                packets: 1,
                vlan: (row.vlan != 0).then(|| EcsVlan {
                    id: row.vlan.to_string(),
                }),
            },
            observer: EcsObserver {
                product: "netwarden",
                observer_type: "firewall",
                ingress: if outgoing { None } else { interface.clone() },
                egress: if outgoing { interface } else { None },
            },
            netwarden: EcsNetwarden {
                ts_micros: row.ts_micros,
                link: row.link,
                caplen: row.caplen,
                tcp_flags: (!row.tcp_flags.is_empty()).then_some(row.tcp_flags),
                icmp: row
                    .icmp_type
                    .zip(row.icmp_code)
                    .map(|(icmp_type, code)| EcsIcmp { icmp_type, code }),
                alert: row.alert.map(|kind| EcsAlert {
                    kind,
                    reason: event.alert.as_ref().map_or("", |a| a.reason.as_str()),
                }),
                malformed: (!row.malformed.is_empty()).then_some(row.malformed),
                kernel_dropped: row.kernel_dropped,
            },
        }
    }
}

/// Writes one event as one ECS JSON object and a newline (`--format ecs`).
///
/// # Errors
/// Writing failed.
pub fn write_ecs_line(event: &Event, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &EcsEvent::from_event(event)).map_err(io::Error::from)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::detect::{Alert, AlertKind};
    use crate::event::sample_event;

    fn ecs_json(event: &Event) -> Value {
        let mut line = Vec::new();
        write_ecs_line(event, &mut line).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        serde_json::from_slice(&line).unwrap()
    }

    #[test]
    fn a_denied_tcp_packet_carries_the_ecs_fields_nested() {
        let event = sample_event();
        let v = ecs_json(&event);
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(v["ecs"]["version"], ECS_VERSION);
        assert_eq!(v["source"], json!({"ip": "10.0.0.1", "port": 40000}));
        assert_eq!(v["destination"], json!({"ip": "192.168.1.50", "port": 22}));
        assert_eq!(
            v["network"],
            json!({"transport": "tcp", "iana_number": "6", "type": "ipv4", "direction": "ingress",
                   "bytes": 60, "packets": 1})
        );
        assert_eq!(v["event"]["action"], "block");
        assert_eq!(v["event"]["kind"], "event");
        assert_eq!(v["event"]["type"], json!(["denied"]));
        assert_eq!(v["event"]["category"], json!(["network"]));
        assert_eq!(v["event"]["sequence"], 7);
        assert_eq!(v["rule"]["name"], "no ssh");
        assert_eq!(v["observer"]["ingress"]["interface"]["name"], "eth0");
        assert!(v["observer"].get("egress").is_none());
        assert_eq!(v["netwarden"]["tcp_flags"], "S");
        assert_eq!(v["netwarden"]["ts_micros"], 1_700_000_000_000_001_i64);
        assert_eq!(v["netwarden"]["kernel_dropped"], false);
        assert!(v["netwarden"].get("alert").is_none());
        assert_eq!(
            v["message"],
            "block tcp    10.0.0.1:40000 -> 192.168.1.50:22 len=60 rule=\"no ssh\" dir=in iface=eth0 flags=S"
        );
        // No dotted keys anywhere: every level is an object.
        fn no_dots(v: &Value) {
            if let Value::Object(map) = v {
                for (key, value) in map {
                    assert!(!key.contains('.'), "dotted key {key}");
                    no_dots(value);
                }
            }
        }
        no_dots(&v);
    }

    #[test]
    fn alerts_names_outbound_icmpv6_and_vlan_map_to_their_fields() {
        let mut event = sample_event();
        event.meta.direction = Direction::Out;
        event.meta.protocol = Some(crate::packet::IpProto::ICMPV6);
        event.meta.network = NetworkKind::Ipv6;
        event.meta.src_ip = Some("2001:db8::1".parse().unwrap());
        event.meta.dst_ip = Some("2001:db8::2".parse().unwrap());
        event.meta.src_port = None;
        event.meta.dst_port = None;
        event.meta.tcp_flags = None;
        event.meta.icmp_type_code = Some((128, 0));
        event.meta.vlan_ids = [42, 0];
        event.verdict.action = Action::Log;
        event.dst_name = Some("example.org".into());
        event.alert = Some(Alert {
            kind: AlertKind::PortScan,
            src_ip: "2001:db8::1".parse().unwrap(),
            ts_micros: 0,
            reason: "touched 25 ports".into(),
        });
        let v = ecs_json(&event);
        assert_eq!(v["network"]["transport"], "ipv6-icmp");
        assert_eq!(v["network"]["type"], "ipv6");
        assert_eq!(v["network"]["direction"], "egress");
        assert_eq!(v["network"]["vlan"]["id"], "42");
        assert_eq!(v["source"], json!({"ip": "2001:db8::1"}));
        assert_eq!(
            v["destination"],
            json!({"ip": "2001:db8::2", "domain": "example.org"})
        );
        assert_eq!(v["event"]["kind"], "alert");
        assert_eq!(v["event"]["type"], json!(["allowed"]));
        assert_eq!(v["event"]["action"], "log");
        assert_eq!(v["event"]["reason"], "touched 25 ports");
        assert_eq!(
            v["netwarden"]["alert"],
            json!({"kind": "port-scan", "reason": "touched 25 ports"})
        );
        assert_eq!(v["netwarden"]["icmp"], json!({"type": 128, "code": 0}));
        assert!(v["netwarden"].get("tcp_flags").is_none());
        assert_eq!(v["observer"]["egress"]["interface"]["name"], "eth0");
        assert!(v["observer"].get("ingress").is_none());
    }

    #[test]
    fn directions_follow_the_host_view() {
        assert_eq!(ecs_direction(Direction::In), "ingress");
        assert_eq!(ecs_direction(Direction::Out), "egress");
        assert_eq!(ecs_direction(Direction::Local), "internal");
        assert_eq!(ecs_direction(Direction::Unknown), "unknown");
        assert_eq!(ecs_transport(200), None);
    }
}
