//! Finding the socket of a flow by its exact 5-tuple: netlink `sock_diag` (`INET_DIAG`, one exact request
//! per lookup, as `ss` does for a single socket), or the `/proc/net/{tcp,udp,tcp6,udp6}` tables when netlink
//! is not available. Both see the sockets of this process's network namespace only.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

/// IP protocol numbers we look sockets up for.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// A socket found for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketMatch {
    /// The socket's owner (the creator's uid; what `iptables -m owner --uid-owner` matches).
    pub uid: u32,
    /// The socket inode, as `/proc/PID/fd/N` links show it (`socket:[INODE]`); 0 for a socket no process
    /// holds any more (TCP `TIME_WAIT`).
    pub inode: u64,
    /// Found only by its local address and port (an unconnected UDP socket), not by the whole 5-tuple, so
    /// it may be a newer socket on the same port.
    pub wildcard: bool,
}

/// Looks sockets up by 5-tuple (the OS seam of attribution).
pub trait SocketLookup {
    /// The socket of protocol `protocol` (TCP or UDP) whose local end is `local` and whose peer is `remote`.
    /// `Ok(None)` when there is none.
    ///
    /// # Errors
    /// The lookup itself failed (netlink unavailable, unreadable table).
    fn find(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketMatch>>;
}

/// How long one netlink answer may take before the lookup counts as failed (the kernel answers an exact
/// request while `send` runs, so this is only a guard).
const NETLINK_TIMEOUT: Duration = Duration::from_millis(100);

/// Netlink `sock_diag`: one exact `INET_DIAG` request per lookup (the kernel's own lookup, so for UDP it
/// prefers a connected socket and falls back to the bound one like packet delivery does).
pub struct SockDiag {
    socket: netlink_sys::Socket,
    sequence: u32,
    buf: Vec<u8>,
}

impl SockDiag {
    /// Opens a `NETLINK_SOCK_DIAG` socket (no privilege needed).
    ///
    /// # Errors
    /// The socket cannot be created (a sandbox without netlink).
    pub fn open() -> io::Result<Self> {
        let mut socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        socket.set_non_blocking(true)?;
        Ok(Self {
            socket,
            sequence: 0,
            buf: vec![0; 16 * 1024],
        })
    }

    fn request(&mut self, protocol: u8, local: SocketAddr, remote: SocketAddr) -> io::Result<()> {
        let family = if local.is_ipv4() { AF_INET } else { AF_INET6 };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.sequence;
        let request = InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: local.port(),
                destination_port: remote.port(),
                source_address: local.ip(),
                destination_address: remote.ip(),
                interface_id: 0,
                // INET_DIAG_NOCOOKIE: any socket with this 5-tuple.
                cookie: [0xff; 8],
            },
        };
        let mut packet = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        Ok(())
    }

    /// Reads the answer to the current request, skipping stale answers of earlier (timed-out) ones.
    fn answer(&mut self) -> io::Result<Option<SocketMatch>> {
        let deadline = Instant::now() + NETLINK_TIMEOUT;
        loop {
            let size = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(size) => size,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "sock_diag did not answer",
                        ));
                    }
                    std::thread::sleep(Duration::from_micros(100));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut offset = 0;
            while let Some(bytes) = self.buf.get(offset..size).filter(|b| !b.is_empty()) {
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = message.header.length as usize;
                if message.header.sequence_number == self.sequence {
                    return Ok(match message.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                            let id = &response.header.socket_id;
                            Some(SocketMatch {
                                uid: response.header.uid,
                                inode: u64::from(response.header.inode),
                                wildcard: id.destination_port == 0 && id.destination_address.is_unspecified(),
                            })
                        }
                        NetlinkPayload::Error(e) if e.raw_code() == -libc::ENOENT => None,
                        NetlinkPayload::Error(e) => return Err(e.to_io()),
                        _ => None,
                    });
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

impl SocketLookup for SockDiag {
    fn find(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketMatch>> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Ok(None);
        }
        // The kernel's UDP exact lookup (`udp_dump_one`, as since Linux 3.3) takes `id.src` as the packet's
        // source and `id.dst` as the bound (local) end, the reverse of TCP's `inet_diag_find_one_icsk`.
        // Asking the other way round would find a socket bound to the *remote* end: on loopback, the peer.
        // The answer describes the socket itself either way (its `src` is its local end).
        if protocol == UDP {
            self.request(protocol, remote, local)?;
        } else {
            self.request(protocol, local, remote)?;
        }
        self.answer()
    }
}

/// One row of a `/proc/net` socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub uid: u32,
    pub inode: u64,
    /// TCP `LISTEN` (state 0x0A): matched by local port for inbound flows.
    pub listening: bool,
}

/// The best row for a flow: the exact 5-tuple; else (UDP, or a TCP listener for inbound) a socket bound to
/// the local port with no peer, on the local address or a wildcard one. Pure, so it is unit-tested.
#[must_use]
pub fn best_row(
    rows: &[TableRow],
    protocol: u8,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<SocketMatch> {
    if let Some(row) = rows.iter().find(|r| r.local == local && r.remote == remote) {
        return Some(SocketMatch {
            uid: row.uid,
            inode: row.inode,
            wildcard: false,
        });
    }
    let unbound = |ip: IpAddr| ip.is_unspecified();
    rows.iter()
        .filter(|r| {
            r.local.port() == local.port()
                && (r.local.ip() == local.ip() || unbound(r.local.ip()))
                && unbound(r.remote.ip())
                && r.remote.port() == 0
                && (protocol == UDP || r.listening)
        })
        // A socket on the exact address wins over one on the wildcard address, as in the kernel.
        .max_by_key(|r| r.local.ip() == local.ip())
        .map(|row| SocketMatch {
            uid: row.uid,
            inode: row.inode,
            wildcard: protocol == UDP,
        })
}

/// The `/proc/net/{tcp,udp,tcp6,udp6}` tables: the fallback when netlink is not available. Reads the whole
/// table per lookup, so it is slower than netlink with many sockets.
#[derive(Debug, Default)]
pub struct ProcNet;

impl ProcNet {
    fn rows(protocol: u8, v4: bool) -> io::Result<Vec<TableRow>> {
        let io_error = |e: procfs::ProcError| io::Error::other(e.to_string());
        Ok(match (protocol, v4) {
            (TCP, true) | (TCP, false) => {
                let entries = if v4 {
                    procfs::net::tcp()
                } else {
                    procfs::net::tcp6()
                }
                .map_err(io_error)?;
                entries
                    .into_iter()
                    .map(|e| TableRow {
                        local: e.local_address,
                        remote: e.remote_address,
                        uid: e.uid,
                        inode: e.inode,
                        listening: e.state == procfs::net::TcpState::Listen,
                    })
                    .collect()
            }
            _ => {
                let entries = if v4 {
                    procfs::net::udp()
                } else {
                    procfs::net::udp6()
                }
                .map_err(io_error)?;
                entries
                    .into_iter()
                    .map(|e| TableRow {
                        local: e.local_address,
                        remote: e.remote_address,
                        uid: e.uid,
                        inode: e.inode,
                        listening: false,
                    })
                    .collect()
            }
        })
    }
}

impl SocketLookup for ProcNet {
    fn find(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketMatch>> {
        let rows = Self::rows(protocol, local.is_ipv4())?;
        Ok(best_row(&rows, protocol, local, remote))
    }
}

/// Netlink when it works, else `/proc/net` (a failed netlink lookup falls back for that lookup too).
pub struct SystemSockets {
    netlink: Option<SockDiag>,
    proc_net: ProcNet,
}

impl SystemSockets {
    /// Opens netlink `sock_diag`; without it every lookup reads `/proc/net`.
    #[must_use]
    pub fn open() -> Self {
        Self {
            netlink: SockDiag::open().ok(),
            proc_net: ProcNet,
        }
    }

    /// True when lookups go through netlink.
    #[must_use]
    pub fn uses_netlink(&self) -> bool {
        self.netlink.is_some()
    }
}

impl SocketLookup for SystemSockets {
    fn find(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketMatch>> {
        if let Some(netlink) = &mut self.netlink {
            match netlink.find(protocol, local, remote) {
                Ok(found) => return Ok(found),
                // A broken netlink socket is replaced by the tables for good; one failed answer only for now.
                Err(e) if e.kind() != io::ErrorKind::TimedOut => self.netlink = None,
                Err(_) => {}
            }
        }
        self.proc_net.find(protocol, local, remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn row(local: &str, remote: &str, inode: u64, listening: bool) -> TableRow {
        TableRow {
            local: addr(local),
            remote: addr(remote),
            uid: 1000,
            inode,
            listening,
        }
    }

    #[test]
    fn exact_tuple_wins_then_bound_sockets() {
        let rows = [
            row("0.0.0.0:5353", "0.0.0.0:0", 1, false),
            row("10.0.0.1:5353", "0.0.0.0:0", 2, false),
            row("10.0.0.1:5353", "10.0.0.9:53", 3, false),
            row("0.0.0.0:22", "0.0.0.0:0", 4, true),
        ];
        let local = addr("10.0.0.1:5353");
        let found = |remote: &str, protocol| {
            best_row(&rows, protocol, local, addr(remote)).map(|m| (m.inode, m.wildcard))
        };
        assert_eq!(found("10.0.0.9:53", UDP), Some((3, false)));
        // Another peer: the socket bound to the exact address beats the wildcard one.
        assert_eq!(found("10.0.0.7:53", UDP), Some((2, true)));
        // TCP needs the exact tuple or a listener.
        assert_eq!(found("10.0.0.7:53", TCP), None);
        let ssh = best_row(&rows, TCP, addr("10.0.0.1:22"), addr("192.0.2.1:40000"));
        assert_eq!(ssh.map(|m| (m.inode, m.wildcard)), Some((4, false)));
        assert_eq!(
            best_row(&rows, UDP, addr("10.0.0.1:9"), addr("10.0.0.9:53")),
            None
        );
    }

    #[test]
    fn netlink_finds_a_real_listening_socket_and_not_a_closed_port() {
        // A real socket of this test process, on loopback only.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let client_addr = client.local_addr().unwrap();
        let mut diag = SockDiag::open().unwrap();
        let found = diag.find(TCP, client_addr, local).unwrap().unwrap();
        assert!(found.inode > 0);
        assert!(!found.wildcard);
        let uid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap();
        assert_eq!(found.uid, uid);
        // The same socket in the /proc/net table.
        let table = ProcNet.find(TCP, client_addr, local).unwrap().unwrap();
        assert_eq!(table.inode, found.inode);
        drop(listener);
        let nothing = diag.find(TCP, addr("127.0.0.1:1"), addr("127.0.0.1:2")).unwrap();
        assert_eq!(nothing, None);
    }

    #[test]
    fn netlink_udp_lookups_find_this_end_and_never_the_peer() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        let mut diag = SockDiag::open().unwrap();
        let from_client = diag.find(UDP, c, s).unwrap().unwrap();
        let at_server = diag.find(UDP, s, c).unwrap().unwrap();
        assert!(!from_client.wildcard, "the connected client matches exactly");
        assert!(at_server.wildcard, "the server is unconnected");
        assert_ne!(from_client.inode, at_server.inode);
        drop(client);
        // With the client gone, its end has no socket; the server's socket must not stand in for it.
        assert_eq!(diag.find(UDP, c, s).unwrap(), None);
    }

    #[test]
    fn netlink_finds_an_unconnected_udp_socket_by_its_port() {
        let socket = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let local = socket.local_addr().unwrap();
        let mut diag = SockDiag::open().unwrap();
        let found = diag.find(UDP, local, addr("[::1]:53")).unwrap().unwrap();
        assert!(found.wildcard);
        assert!(found.inode > 0);
    }
}
