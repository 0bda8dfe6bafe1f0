//! Addresses we refuse to block unless forced, because blocking them would cut the user off: loopback,
//! this host's own addresses, the default gateways and the current SSH peer. Parsers are pure; `detect`
//! reads the facts through the runner (so inside a test namespace they are that namespace's facts).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::runner::{Cmd, CommandRunner};

/// The protected addresses, each with why it is protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    /// (address, why) pairs, e.g. (`10.0.0.1`, "own address").
    pub addrs: Vec<(IpAddr, String)>,
}

impl Protected {
    /// Why blocking `net` is refused (it is or contains loopback or a protected address), or `None`.
    #[must_use]
    pub fn refusal(&self, net: &IpNet) -> Option<String> {
        let net = &crate::blocklist::normalize_net(*net);
        let loopback: [IpNet; 2] = [
            IpNet::from(ipnet::Ipv4Net::new(Ipv4Addr::LOCALHOST, 8).unwrap_or_default()),
            IpNet::from(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        ];
        if loopback.iter().any(|lo| lo.contains(net) || net.contains(lo)) {
            return Some("loopback".to_owned());
        }
        self.addrs
            .iter()
            .find(|(addr, _)| net.contains(&crate::blocklist::normalize_ip(*addr)))
            .map(|(addr, why)| format!("{why} {addr}"))
    }

    /// Refuses the first request without `force` that would block a protected address.
    ///
    /// # Errors
    /// `Refused` naming the network and what it covers.
    pub fn check(&self, requests: &[super::BlockRequest]) -> Result<(), super::EnforceError> {
        for request in requests.iter().filter(|r| !r.force) {
            if let Some(why) = self.refusal(&request.net) {
                return Err(super::EnforceError::Refused {
                    addr: request.net,
                    why,
                });
            }
        }
        Ok(())
    }

    /// Reads own addresses (`ip -o addr show`), default gateways (`/proc/net/route`,
    /// `ip -6 route show default`) through `runner`, plus the SSH peer from `ssh_connection` (the value of
    /// `SSH_CONNECTION`). A fact that cannot be read is skipped: the loopback check still applies.
    #[must_use]
    pub fn detect(runner: &dyn CommandRunner, ssh_connection: Option<&str>) -> Self {
        let mut addrs = Vec::new();
        let read = |cmd: Cmd| runner.run(&cmd).map(|out| out.stdout).unwrap_or_default();
        for addr in parse_ip_addr(&read(Cmd::new("ip", &["-o", "addr", "show"]))) {
            addrs.push((addr, "own address".to_owned()));
        }
        for addr in parse_proc_net_route(&read(Cmd::new("cat", &["/proc/net/route"]))) {
            addrs.push((IpAddr::V4(addr), "default gateway".to_owned()));
        }
        for addr in parse_ip_route_default(&read(Cmd::new("ip", &["-6", "route", "show", "default"]))) {
            addrs.push((addr, "default gateway".to_owned()));
        }
        if let Some(peer) = ssh_connection.and_then(parse_ssh_connection) {
            addrs.push((peer, "current SSH peer".to_owned()));
        }
        Self { addrs }
    }
}

/// Addresses from `ip -o addr show` (`2: eth0    inet 10.0.0.1/24 brd ..`).
#[must_use]
pub fn parse_ip_addr(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if let [kind, value] = pair
                && (*kind == "inet" || *kind == "inet6")
                && let Ok(net) = value.parse::<IpNet>()
            {
                out.push(net.addr());
            }
        }
    }
    out
}

/// Gateways of IPv4 default routes in `/proc/net/route` (destination `00000000`, gateway in hex as the
/// kernel's native-endian u32 of the network-order address).
#[must_use]
pub fn parse_proc_net_route(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(dest), Some(gateway)) = (cols.get(1), cols.get(2)) else {
                return None;
            };
            if *dest != "00000000" {
                return None;
            }
            let value = u32::from_str_radix(gateway, 16).ok().filter(|v| *v != 0)?;
            Some(Ipv4Addr::from(value.to_ne_bytes()))
        })
        .collect()
}

/// Gateways (`via ADDR`) in `ip route show default` output.
#[must_use]
pub fn parse_ip_route_default(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "via")?;
            words.get(at + 1)?.parse().ok()
        })
        .collect()
}

/// The client address of `SSH_CONNECTION` (`client_ip client_port server_ip server_port`).
#[must_use]
pub fn parse_ssh_connection(value: &str) -> Option<IpAddr> {
    value.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_ip_addr(
                "1: lo    inet 127.0.0.1/8 scope host lo\n2: veth0    inet6 fd00::1/64 scope global nodad\n"
            ),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap(), "fd00::1".parse().unwrap()]
        );
        let route = "Iface\tDestination\tGateway \tFlags\nveth0\t00000000\t0300000A\t0003\nveth0\t0000000A\t00000000\t0001\n";
        if cfg!(target_endian = "little") {
            assert_eq!(parse_proc_net_route(route), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        }
        assert_eq!(
            parse_ip_route_default("default via fe80::1 dev eth0 proto ra metric 1024\n"),
            vec!["fe80::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            parse_ssh_connection("192.0.2.5 50000 10.0.0.1 22"),
            Some("192.0.2.5".parse().unwrap())
        );
        assert_eq!(parse_ssh_connection("junk"), None);
    }

    #[test]
    fn refusals() {
        let protected = Protected {
            addrs: vec![("10.0.0.1".parse().unwrap(), "own address".to_owned())],
        };
        assert_eq!(
            protected.refusal(&"127.0.0.5/32".parse().unwrap()).as_deref(),
            Some("loopback")
        );
        assert_eq!(
            protected.refusal(&"::1/128".parse().unwrap()).as_deref(),
            Some("loopback")
        );
        assert_eq!(
            protected.refusal(&"64.0.0.0/2".parse().unwrap()).as_deref(),
            Some("loopback")
        );
        assert_eq!(
            protected.refusal(&"10.0.0.0/24".parse().unwrap()).as_deref(),
            Some("own address 10.0.0.1")
        );
        assert_eq!(protected.refusal(&"10.0.0.2/32".parse().unwrap()), None);
        assert_eq!(
            protected
                .refusal(&"::ffff:127.0.0.1/128".parse().unwrap())
                .as_deref(),
            Some("loopback")
        );
        assert_eq!(
            protected
                .refusal(&"::ffff:10.0.0.1/128".parse().unwrap())
                .as_deref(),
            Some("own address 10.0.0.1")
        );
    }
}
