//! Pure builders of the `ipset restore` and `iptables-restore` inputs: data in, text out, tested without
//! root.

use ipnet::IpNet;

/// Our chain in the `filter` table (IPv4 and IPv6).
pub const CHAIN: &str = "NETWARDEN";
/// Our ipset sets.
pub const SET_V4: &str = "netwarden4";
pub const SET_V6: &str = "netwarden6";
/// Built-in chains that jump to ours.
pub const HOOKS: [&str; 3] = ["INPUT", "OUTPUT", "FORWARD"];

/// The set an entry belongs in.
#[must_use]
pub fn set_for(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => SET_V4,
        IpNet::V6(_) => SET_V6,
    }
}

/// `ipset restore -exist` input creating both sets (per-entry timeouts allowed: `timeout 0`).
#[must_use]
pub fn create_sets() -> String {
    format!(
        "create {SET_V4} hash:net family inet hashsize 1024 maxelem 1048576 timeout 0\n\
         create {SET_V6} hash:net family inet6 hashsize 1024 maxelem 1048576 timeout 0\n"
    )
}

/// `ipset restore -exist` input adding entries (with a timeout in seconds where given) and deleting others.
#[must_use]
pub fn set_changes(adds: &[(IpNet, Option<u64>)], deletes: &[IpNet]) -> String {
    let mut out = String::new();
    for (net, timeout) in adds {
        // An entry already present is replaced, so a new timeout takes effect.
        out.push_str(&format!("del {} {net}\n", set_for(net)));
        match timeout {
            Some(secs) => out.push_str(&format!(
                "add {} {net} timeout {}\n",
                set_for(net),
                (*secs).max(1)
            )),
            None => out.push_str(&format!("add {} {net}\n", set_for(net))),
        }
    }
    for net in deletes {
        out.push_str(&format!("del {} {net}\n", set_for(net)));
    }
    out
}

/// `iptables-restore --noflush` input (one family) that (re)writes our chain: drop packets from and to the
/// set's members. Declaring the chain flushes only our chain; `missing_hooks` get a jump inserted at the top.
#[must_use]
pub fn chain_rules(set: &str, missing_hooks: &[&str]) -> String {
    let mut out = format!("*filter\n:{CHAIN} - [0:0]\n");
    for hook in missing_hooks {
        out.push_str(&format!("-I {hook} 1 -j {CHAIN}\n"));
    }
    out.push_str(&format!("-A {CHAIN} -m set --match-set {set} src -j DROP\n"));
    out.push_str(&format!("-A {CHAIN} -m set --match-set {set} dst -j DROP\n"));
    out.push_str("COMMIT\n");
    out
}

/// Parses `ipset save` output into the entries of our sets, with their remaining timeouts.
#[must_use]
pub fn parse_saved(text: &str) -> Vec<(IpNet, Option<u64>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("add") {
            continue;
        }
        let (Some(set), Some(entry)) = (words.next(), words.next()) else {
            continue;
        };
        if set != SET_V4 && set != SET_V6 {
            continue;
        }
        let net = entry
            .parse::<IpNet>()
            .ok()
            .or_else(|| entry.parse::<std::net::IpAddr>().ok().map(IpNet::from));
        let Some(net) = net else { continue };
        let mut timeout = None;
        while let Some(word) = words.next() {
            if word == "timeout" {
                timeout = words.next().and_then(|t| t.parse().ok()).filter(|t| *t > 0);
            }
        }
        out.push((net, timeout));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn set_changes_are_exact() {
        let text = set_changes(
            &[(net("10.0.0.1/32"), None), (net("2001:db8::/48"), Some(600))],
            &[net("10.9.0.0/16")],
        );
        assert_eq!(
            text,
            "del netwarden4 10.0.0.1/32\nadd netwarden4 10.0.0.1/32\n\
             del netwarden6 2001:db8::/48\nadd netwarden6 2001:db8::/48 timeout 600\n\
             del netwarden4 10.9.0.0/16\n"
        );
    }

    #[test]
    fn chain_rules_touch_only_our_chain() {
        let text = chain_rules(SET_V4, &["INPUT"]);
        assert_eq!(
            text,
            "*filter\n:NETWARDEN - [0:0]\n-I INPUT 1 -j NETWARDEN\n\
             -A NETWARDEN -m set --match-set netwarden4 src -j DROP\n\
             -A NETWARDEN -m set --match-set netwarden4 dst -j DROP\nCOMMIT\n"
        );
    }

    #[test]
    fn saved_sets_parse_with_timeouts_and_ignore_others() {
        let saved = "create netwarden4 hash:net family inet hashsize 1024 maxelem 1048576 timeout 0\n\
                     add netwarden4 10.0.0.1 timeout 57\nadd netwarden4 192.0.2.0/24 timeout 0\n\
                     add other 10.0.0.2\nadd netwarden6 2001:db8::1\n";
        assert_eq!(
            parse_saved(saved),
            vec![
                (net("10.0.0.1/32"), Some(57)),
                (net("192.0.2.0/24"), None),
                (net("2001:db8::1/128"), None)
            ]
        );
    }
}
