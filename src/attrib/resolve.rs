//! The attribution decision for one flow: socket by 5-tuple, holders from the index, each holder verified
//! on its pinned process, and "unknown" rather than a guess whenever a step cannot be trusted.

use std::net::SocketAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::fdindex::{FdIndex, HolderError, Holders, ProcessSource};
use super::socket::{SocketLookup, SocketMatch, TCP, UDP};
use super::users::UserNames;
use super::{Attribution, ProcessInfo, UnknownReason, UserId};
use crate::flows::{Flow, FlowDirection};

/// What the resolver needs of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub protocol: u8,
    /// This host's end.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub direction: FlowDirection,
    /// Capture time of the flow's first packet (microseconds since the Unix epoch).
    pub first_seen_micros: i64,
}

impl Query {
    /// The query for a flow.
    #[must_use]
    pub fn of(flow: &Flow) -> Self {
        Self {
            protocol: flow.key.protocol,
            local: SocketAddr::new(flow.local.ip, flow.local.port),
            remote: SocketAddr::new(flow.remote.ip, flow.remote.port),
            direction: flow.direction,
            first_seen_micros: flow.first_seen_micros,
        }
    }
}

/// One try's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Final: set it on the flow.
    Done(Attribution),
    /// Not found yet; try again later (the caller decides when and how often).
    Retry,
}

/// Process details kept at most, shared by flows of the same process instance.
const PROCESS_CACHE: usize = 4_096;

/// Socket lookup, index and process reads for the attribution thread.
pub struct Resolver<S, P> {
    sockets: S,
    processes: P,
    index: FdIndex,
    users: UserNames,
    /// (pid, start time) -> the details last read, so flows of one process share one `Arc`.
    processes_seen: FxHashMap<(u32, u64), Arc<ProcessInfo>>,
    /// Wall clock in microseconds since the epoch (a seam for tests).
    now_micros: fn() -> i64,
}

fn wall_clock_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl<S: SocketLookup, P: ProcessSource> Resolver<S, P> {
    #[must_use]
    pub fn new(sockets: S, processes: P) -> Self {
        Self {
            sockets,
            processes,
            index: FdIndex::default(),
            users: UserNames::default(),
            processes_seen: FxHashMap::default(),
            now_micros: wall_clock_micros,
        }
    }

    /// The index (for work counters).
    #[must_use]
    pub fn index(&self) -> &FdIndex {
        &self.index
    }

    /// One try at a flow. `last` turns "not found yet" into a final unknown.
    pub fn resolve(&mut self, query: &Query, last: bool) -> Step {
        match self.socket_of(query, last) {
            Ok(socket) => self.owner_of(query, socket, last),
            Err(step) => step,
        }
    }

    /// The first half of a try, the cheap one that must come first because sockets vanish: the flow's
    /// socket. `Err` is the step to take when there is none (final, or a retry).
    ///
    /// # Errors
    /// No socket: `Err(Step::Retry)`, or `Err(Step::Done(..))` when final.
    pub fn socket_of(&mut self, query: &Query, last: bool) -> Result<SocketMatch, Step> {
        if query.protocol != TCP && query.protocol != UDP {
            return Err(Step::Done(unknown(UnknownReason::NotTcpUdp, None)));
        }
        if query.direction == FlowDirection::Unknown {
            return Err(Step::Done(unknown(UnknownReason::OtherNamespace, None)));
        }
        let mut ends = vec![(query.local, query.remote)];
        if query.direction == FlowDirection::Local {
            // Both ends are ours: the side that sent the first packet, else the other.
            ends.push((query.remote, query.local));
        }
        let mut closed_socket_uid = None;
        for (side, (local, remote)) in ends.into_iter().enumerate() {
            match self.sockets.find(query.protocol, local, remote) {
                // The other end of a local flow counts only as the exact socket of this connection: an
                // unconnected UDP socket merely bound to the port is the receiver, not the sender the row
                // shows (its sender may have exited), and naming it would be wrong.
                Ok(Some(found)) if found.inode != 0 && side > 0 && found.wildcard => {}
                Ok(Some(found)) if found.inode != 0 => return Ok(found),
                Ok(Some(closed)) => closed_socket_uid = Some(closed.uid),
                Ok(None) | Err(_) => {}
            }
        }
        if !last {
            return Err(Step::Retry);
        }
        let user = closed_socket_uid.map(|uid| self.users.user(uid));
        let reason = if query.direction == FlowDirection::Inbound && user.is_none() {
            UnknownReason::NoSocket
        } else {
            UnknownReason::Exited
        };
        Err(Step::Done(unknown(reason, user)))
    }

    /// The second half of a try: the process holding `socket`, verified.
    pub fn owner_of(&mut self, query: &Query, socket: SocketMatch, last: bool) -> Step {
        let user = self.users.user(socket.uid);
        let denied = match self
            .index
            .find(&mut self.processes, socket.inode, socket.uid, last)
        {
            Holders::Found(holders) => match self.verified_holder(&holders, socket.inode) {
                Ok(process) => return Step::Done(self.judge(query, socket, process, user)),
                Err(denied) => denied,
            },
            Holders::NotFound { denied } => denied,
        };
        if !last {
            return Step::Retry;
        }
        let reason = if denied {
            UnknownReason::NoPermission
        } else {
            UnknownReason::Exited
        };
        Step::Done(unknown(reason, Some(user)))
    }

    /// The youngest holder that proves, on its pinned process, to hold the socket. `Err(denied)` when none
    /// does; stale index entries are dropped on the way.
    fn verified_holder(&mut self, holders: &[(u32, u32)], inode: u64) -> Result<Arc<ProcessInfo>, bool> {
        let mut best: Option<ProcessInfo> = None;
        let mut denied = false;
        for &(pid, fd) in holders {
            match self.processes.read_holder(pid, fd, inode) {
                Ok(info) => {
                    if best.as_ref().is_none_or(|b| info.start_ticks > b.start_ticks) {
                        best = Some(info);
                    }
                }
                Err(HolderError::NoPermission) => denied = true,
                Err(HolderError::Gone | HolderError::NotHolding) => self.index.forget(pid, inode),
            }
        }
        let info = best.ok_or(denied)?;
        self.index.note_owner(info.pid);
        let key = (info.pid, info.start_ticks);
        if let Some(seen) = self.processes_seen.get(&key).filter(|seen| ***seen == info) {
            return Ok(Arc::clone(seen));
        }
        if self.processes_seen.len() >= PROCESS_CACHE {
            self.processes_seen.clear();
        }
        let info = Arc::new(info);
        self.processes_seen.insert(key, Arc::clone(&info));
        Ok(info)
    }

    /// The final word on a verified holder. A socket found only by its local port (unconnected UDP) may be
    /// a newer one on the same port: if its process started after the flow's first packet, that process
    /// did not send it.
    fn judge(
        &mut self,
        query: &Query,
        socket: SocketMatch,
        process: Arc<ProcessInfo>,
        user: UserId,
    ) -> Attribution {
        if socket.wildcard && self.born_after_packet(&process, query.first_seen_micros) {
            return unknown(UnknownReason::Exited, Some(user));
        }
        Attribution::Process { process, user }
    }

    fn born_after_packet(&mut self, process: &ProcessInfo, first_seen_micros: i64) -> bool {
        let Some((now_ticks, hz)) = self.processes.now_ticks().filter(|(_, hz)| *hz > 0) else {
            return false;
        };
        let process_age_micros =
            i128::from(now_ticks.saturating_sub(process.start_ticks)) * 1_000_000 / i128::from(hz);
        let packet_age_micros = i128::from((self.now_micros)().saturating_sub(first_seen_micros));
        // Start times count in clock ticks: allow two of them.
        let tolerance = 2 * 1_000_000 / i128::from(hz);
        process_age_micros + tolerance < packet_age_micros
    }
}

fn unknown(reason: UnknownReason, user: Option<UserId>) -> Attribution {
    Attribution::Unknown { reason, user }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io;

    use super::super::fdindex::fake::FakeProcs;
    use super::*;

    /// Scripted sockets: (protocol, local, remote) -> match.
    #[derive(Default)]
    struct FakeSockets(HashMap<(u8, SocketAddr, SocketAddr), SocketMatch>);

    impl SocketLookup for FakeSockets {
        fn find(
            &mut self,
            protocol: u8,
            local: SocketAddr,
            remote: SocketAddr,
        ) -> io::Result<Option<SocketMatch>> {
            Ok(self.0.get(&(protocol, local, remote)).copied())
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const NOW: i64 = 1_700_000_000_000_000;

    fn query(protocol: u8, local: &str, remote: &str, direction: FlowDirection) -> Query {
        Query {
            protocol,
            local: addr(local),
            remote: addr(remote),
            direction,
            first_seen_micros: NOW - 1_000,
        }
    }

    fn resolver(sockets: FakeSockets, procs: FakeProcs) -> Resolver<FakeSockets, FakeProcs> {
        let mut r = Resolver::new(sockets, procs);
        r.now_micros = || NOW;
        r
    }

    fn socket(uid: u32, inode: u64, wildcard: bool) -> SocketMatch {
        SocketMatch { uid, inode, wildcard }
    }

    fn program(step: &Step) -> String {
        match step {
            Step::Done(a) => a.program_label().into_owned(),
            Step::Retry => "retry".into(),
        }
    }

    #[test]
    fn an_outbound_flow_names_its_program_and_the_socket_user() {
        let q = query(TCP, "10.0.0.1:40000", "192.0.2.9:443", FlowDirection::Outbound);
        let mut sockets = FakeSockets::default();
        sockets.0.insert((TCP, q.local, q.remote), socket(0, 42, false));
        let mut procs = FakeProcs::default();
        procs.add(10, 0, "/usr/bin/curl", &[(3, 42)]);
        let step = resolver(sockets, procs).resolve(&q, false);
        let Step::Done(Attribution::Process { process, user }) = step else {
            panic!("{step:?}")
        };
        assert_eq!((process.pid, process.exe.as_str()), (10, "/usr/bin/curl"));
        assert_eq!(user.to_string(), "root");
    }

    #[test]
    fn a_process_gone_between_index_and_read_is_retried_then_exited_never_another_program() {
        let q = query(UDP, "10.0.0.1:5000", "10.0.0.2:53", FlowDirection::Outbound);
        let mut sockets = FakeSockets::default();
        sockets
            .0
            .insert((UDP, q.local, q.remote), socket(1000, 42, false));
        let mut procs = FakeProcs::default();
        procs.add(10, 1000, "/tmp/short-lived", &[(3, 42)]);
        // It exits just before its details are read; pid 10 is reused at once by another program that
        // holds a socket of its own.
        procs.before_read = Some(|procs| {
            procs.remove(&10);
            procs.insert(
                10,
                super::super::fdindex::fake::FakeProcess {
                    uid: 1000,
                    exe: "/usr/bin/wrong".into(),
                    sockets: vec![(3, 99)],
                    start_ticks: 200,
                    readable: true,
                },
            );
        });
        let mut r = resolver(sockets, procs);
        assert_eq!(r.resolve(&q, false), Step::Retry);
        let last = r.resolve(&q, true);
        assert_eq!(program(&last), "unknown (exited)");
        let Step::Done(a) = last else { panic!() };
        assert_eq!(
            a.user().map(|u| u.uid),
            Some(1000),
            "the socket still names the user"
        );
    }

    #[test]
    fn unreadable_processes_say_no_permission() {
        let q = query(TCP, "10.0.0.1:40000", "192.0.2.9:443", FlowDirection::Outbound);
        let mut sockets = FakeSockets::default();
        sockets
            .0
            .insert((TCP, q.local, q.remote), socket(1001, 42, false));
        let mut procs = FakeProcs::default();
        procs.add(10, 1001, "/usr/bin/secret", &[(3, 42)]);
        procs.procs.get_mut(&10).unwrap().readable = false;
        let step = resolver(sockets, procs).resolve(&q, true);
        assert_eq!(program(&step), "unknown (no permission)");
    }

    #[test]
    fn other_namespaces_closed_ports_and_non_tcp_udp_are_named() {
        let mut r = resolver(FakeSockets::default(), FakeProcs::default());
        let other = query(TCP, "10.9.0.1:1", "10.9.0.2:2", FlowDirection::Unknown);
        assert_eq!(program(&r.resolve(&other, false)), "unknown (other namespace)");
        let closed = query(TCP, "10.0.0.1:23", "192.0.2.9:40000", FlowDirection::Inbound);
        assert_eq!(r.resolve(&closed, false), Step::Retry);
        assert_eq!(program(&r.resolve(&closed, true)), "unknown (no socket)");
        let icmp = query(1, "10.0.0.1:0", "192.0.2.9:0", FlowDirection::Outbound);
        assert_eq!(program(&r.resolve(&icmp, false)), "unknown (not tcp/udp)");
    }

    #[test]
    fn a_loopback_flow_falls_back_to_the_other_end() {
        let q = query(TCP, "127.0.0.1:40000", "127.0.0.1:8080", FlowDirection::Local);
        let mut sockets = FakeSockets::default();
        sockets.0.insert((TCP, q.remote, q.local), socket(0, 7, false));
        let mut procs = FakeProcs::default();
        procs.add(20, 0, "/usr/bin/server", &[(4, 7)]);
        assert_eq!(
            program(&resolver(sockets, procs).resolve(&q, false)),
            "/usr/bin/server"
        );
    }

    #[test]
    fn a_loopback_udp_flow_never_names_the_receiver_bound_to_the_port() {
        // The sender exited; the receiver's unconnected socket matches only by its bound port.
        let q = query(UDP, "127.0.0.1:40000", "127.0.0.1:5353", FlowDirection::Local);
        let mut sockets = FakeSockets::default();
        sockets.0.insert((UDP, q.remote, q.local), socket(0, 7, true));
        let mut procs = FakeProcs::default();
        procs.add(20, 0, "/usr/bin/receiver", &[(4, 7)]);
        let answer = program(&resolver(sockets, procs).resolve(&q, true));
        assert_ne!(answer, "/usr/bin/receiver");
        assert!(answer.starts_with("unknown"), "{answer}");
    }

    #[test]
    fn a_port_reused_by_a_process_born_after_the_packet_is_not_blamed() {
        let q = query(UDP, "10.0.0.1:5000", "10.0.0.2:53", FlowDirection::Outbound);
        let mut sockets = FakeSockets::default();
        sockets.0.insert((UDP, q.local, q.remote), socket(0, 42, true));
        let mut procs = FakeProcs::default();
        procs.add(10, 0, "/usr/bin/newcomer", &[(3, 42)]);
        // The packet is 1 s old (NOW - first_seen = 1 ms is overridden below); the process 0.1 s.
        procs.now_ticks = 10_000;
        procs.procs.get_mut(&10).unwrap().start_ticks = 9_990;
        let mut r = resolver(sockets, procs);
        let old = Query {
            first_seen_micros: NOW - 1_000_000,
            ..q
        };
        assert_eq!(program(&r.resolve(&old, false)), "unknown (exited)");
        // The same socket for a packet sent after the process started is its own.
        let fresh = Query {
            first_seen_micros: NOW - 50_000,
            ..q
        };
        assert_eq!(program(&r.resolve(&fresh, false)), "/usr/bin/newcomer");
    }

    #[test]
    fn flows_of_one_process_share_its_details() {
        let mut sockets = FakeSockets::default();
        let mut procs = FakeProcs::default();
        procs.add(10, 0, "/usr/bin/browser", &[(3, 1), (4, 2)]);
        let a = query(TCP, "10.0.0.1:1", "192.0.2.9:443", FlowDirection::Outbound);
        let b = query(TCP, "10.0.0.1:2", "192.0.2.9:443", FlowDirection::Outbound);
        sockets.0.insert((TCP, a.local, a.remote), socket(0, 1, false));
        sockets.0.insert((TCP, b.local, b.remote), socket(0, 2, false));
        let mut r = resolver(sockets, procs);
        let (Step::Done(x), Step::Done(y)) = (r.resolve(&a, false), r.resolve(&b, false)) else {
            panic!()
        };
        let (Attribution::Process { process: x, .. }, Attribution::Process { process: y, .. }) = (x, y)
        else {
            panic!()
        };
        assert!(Arc::ptr_eq(&x, &y));
    }
}
