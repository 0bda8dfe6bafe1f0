//! Passive host names: A and AAAA answers in DNS (and mDNS) responses seen on the wire are remembered, so
//! tables and logs can show a name next to an address. netwarden never sends a lookup.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::packet::{IpProto, PacketMeta};

/// Longest name kept (RFC 1035 limits names to 255 bytes).
const MAX_NAME_LEN: usize = 255;

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// Reads a possibly compressed name starting at `at`; returns it (lower-case, dot-separated) and the offset
/// just after it in the original position. Compression pointers are followed at most 16 times.
fn read_name(msg: &[u8], at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut pos = at;
    let mut end_after: Option<usize> = None;
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some((name, end_after.unwrap_or(pos + 1)));
                }
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                if !name.is_empty() {
                    name.push('.');
                }
                // Names come from the network: keep printable ASCII only, so they cannot forge log lines.
                name.extend(label.iter().map(|b| {
                    let c = char::from(*b);
                    if c.is_ascii_graphic() {
                        c.to_ascii_lowercase()
                    } else {
                        '?'
                    }
                }));
                if name.len() > MAX_NAME_LEN {
                    return None;
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(be16(msg, pos)? & 0x3fff);
                end_after.get_or_insert(pos + 2);
                if target >= pos {
                    return None; // Pointers must point backwards; this also stops loops.
                }
                pos = target;
            }
            _ => return None,
        }
    }
    None
}

/// Parses a DNS response and returns `(address, name)` for each A/AAAA answer, attributed to the question
/// name (so CNAME chains name the address by what was asked). Anything that is not a well-formed response
/// gives an empty list.
#[must_use]
pub fn parse_dns_answers(msg: &[u8]) -> Vec<(IpAddr, String)> {
    let mut out = Vec::new();
    let (Some(flags), Some(questions), Some(answers)) = (be16(msg, 2), be16(msg, 4), be16(msg, 6)) else {
        return out;
    };
    if flags & 0x8000 == 0 || flags & 0x000f != 0 {
        return out; // A query, or an error response.
    }
    let mut pos = 12;
    let mut question_name: Option<String> = None;
    for _ in 0..questions.min(16) {
        let Some((name, next)) = read_name(msg, pos) else {
            return out;
        };
        question_name.get_or_insert(name);
        pos = next + 4;
    }
    for _ in 0..answers.min(64) {
        let Some((owner, next)) = read_name(msg, pos) else {
            return out;
        };
        let (Some(rtype), Some(rdlen)) = (be16(msg, next), be16(msg, next + 8)) else {
            return out;
        };
        let rdata_at = next + 10;
        let Some(rdata) = msg.get(rdata_at..rdata_at + usize::from(rdlen)) else {
            return out;
        };
        let ip = match (rtype, rdata.len()) {
            (1, 4) => Some(IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))),
            (28, 16) => <[u8; 16]>::try_from(rdata)
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        };
        if let Some(ip) = ip {
            let name = question_name.clone().unwrap_or(owner);
            if !name.is_empty() {
                out.push((ip, name));
            }
        }
        pos = rdata_at + usize::from(rdlen);
    }
    out
}

/// Names learned from DNS answers, at most `capacity` of them; the oldest learned is forgotten first.
#[derive(Debug, Default)]
pub struct NameCache {
    capacity: usize,
    names: HashMap<IpAddr, Arc<str>>,
    order: VecDeque<IpAddr>,
}

impl NameCache {
    /// An empty cache holding at most `capacity` names.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            names: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers `name` for `ip` (replacing an older name for it).
    pub fn insert(&mut self, ip: IpAddr, name: &str) {
        if self.capacity == 0 {
            return;
        }
        if let Some(existing) = self.names.get_mut(&ip) {
            if &**existing != name {
                *existing = Arc::from(name);
            }
            return;
        }
        while self.names.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else { break };
            self.names.remove(&old);
        }
        self.names.insert(ip, Arc::from(name));
        self.order.push_back(ip);
    }

    /// The name learned for `ip`, if any.
    #[must_use]
    pub fn get(&self, ip: &IpAddr) -> Option<Arc<str>> {
        self.names.get(ip).cloned()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Learns from a UDP packet from port 53 (DNS) or 5353 (mDNS); `data` is the captured frame.
    pub fn observe(&mut self, meta: &PacketMeta, data: &[u8]) {
        if meta.protocol != Some(IpProto::UDP) || !matches!(meta.src_port, Some(53 | 5353)) {
            return;
        }
        let Some(payload) = meta.payload_offset.and_then(|o| data.get(usize::from(o)..)) else {
            return;
        };
        for (ip, name) in parse_dns_answers(payload) {
            self.insert(ip, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `www.example.org` with a CNAME to `edge.example.net` and one A and one AAAA record,
    /// using compression pointers.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend(b"\x03www\x07example\x03org\x00");
        m.extend([0, 1, 0, 1]);
        // CNAME: owner = pointer to the question name (offset 12).
        m.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 18]);
        let cname_at = m.len();
        m.extend(b"\x04edge\x07example\x03net\x00");
        let ptr = u8::try_from(cname_at).unwrap();
        m.extend([0xc0, ptr, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        m.extend([0xc0, ptr, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        m.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x34]);
        m
    }

    #[test]
    fn answers_are_named_by_the_question() {
        let answers = parse_dns_answers(&response());
        assert_eq!(
            answers,
            vec![
                ("93.184.216.34".parse().unwrap(), "www.example.org".to_owned()),
                ("2001:db8::34".parse().unwrap(), "www.example.org".to_owned()),
            ]
        );
    }

    #[test]
    fn queries_loops_and_garbage_give_nothing() {
        let mut query = response();
        query[2] = 0x01;
        assert!(parse_dns_answers(&query).is_empty());
        let mut looped = response();
        looped[12] = 0xc0;
        looped[13] = 12;
        assert!(parse_dns_answers(&looped).is_empty());
        assert!(parse_dns_answers(&[]).is_empty());
    }

    #[test]
    fn cache_is_bounded_and_forgets_the_oldest() {
        let mut cache = NameCache::new(2);
        cache.insert("10.0.0.1".parse().unwrap(), "a");
        cache.insert("10.0.0.2".parse().unwrap(), "b");
        cache.insert("10.0.0.1".parse().unwrap(), "a2");
        cache.insert("10.0.0.3".parse().unwrap(), "c");
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&"10.0.0.1".parse().unwrap()).is_none());
        assert_eq!(cache.get(&"10.0.0.3".parse().unwrap()).as_deref(), Some("c"));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_dns_answers(&bytes);
        }
    }
}
