//! [`ProcessSource`] over the real `/proc`.
//!
//! Scanning a process's descriptors is one `readdir` of `/proc/PID/fd` and one `readlink` per descriptor
//! (plain `std::fs`, the cheapest way). Reading the holder of a socket goes through `procfs::process::Process`,
//! which keeps `/proc/PID` open as a directory: every later read (descriptor link, `stat`, `exe`,
//! `cmdline`, `cgroup`) is relative to that one process instance, so a pid reused meanwhile cannot answer
//! for it. The descriptor is checked to still be the socket before and after the details are read.

use std::io;
use std::os::unix::fs::MetadataExt;

use procfs::ProcError;
use procfs::process::{FDTarget, Process};

use super::fdindex::{HolderError, ProcessSource};
use super::{ProcessInfo, cgroup};

/// The real process table.
#[derive(Debug)]
pub struct ProcFs {
    ticks_per_second: u64,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcFs {
    #[must_use]
    pub fn new() -> Self {
        Self {
            ticks_per_second: procfs::ticks_per_second(),
        }
    }
}

/// The inode of a `socket:[INODE]` link target.
#[must_use]
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn holder_error(e: &ProcError) -> HolderError {
    match e {
        ProcError::PermissionDenied(_) => HolderError::NoPermission,
        ProcError::Io(io, _) if io.kind() == io::ErrorKind::PermissionDenied => HolderError::NoPermission,
        _ => HolderError::Gone,
    }
}

/// Checks that the pinned process still holds socket `inode` at `fd`.
fn holds(process: &Process, fd: u32, inode: u64) -> Result<(), HolderError> {
    let fd = i32::try_from(fd).map_err(|_| HolderError::NotHolding)?;
    match process.fd_from_fd(fd) {
        Ok(info) if matches!(info.target, FDTarget::Socket(i) if i == inode) => Ok(()),
        Ok(_) => Err(HolderError::NotHolding),
        Err(ProcError::NotFound(_)) => Err(HolderError::NotHolding),
        Err(e) => Err(holder_error(&e)),
    }
}

impl ProcessSource for ProcFs {
    fn pids(&mut self) -> io::Result<Vec<u32>> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc")? {
            let Ok(entry) = entry else { continue };
            if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    fn sockets(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>> {
        let mut sockets = Vec::new();
        let mut denied = false;
        for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
            let Ok(entry) = entry else { continue };
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let target = match std::fs::read_link(entry.path()) {
                Ok(target) => target,
                // Root without CAP_SYS_PTRACE may list another user's descriptors but not read them: the
                // socket may well be there, so this is "no permission", not "exited".
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    denied = true;
                    continue;
                }
                // A descriptor closed since the listing is simply not there any more.
                Err(_) => continue,
            };
            if let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) {
                sockets.push((fd, inode));
            }
        }
        if denied && sockets.is_empty() {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        Ok(sockets)
    }

    fn uid(&mut self, pid: u32) -> Option<u32> {
        std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
    }

    fn read_holder(&mut self, pid: u32, fd: u32, inode: u64) -> Result<ProcessInfo, HolderError> {
        let pid_i32 = i32::try_from(pid).map_err(|_| HolderError::Gone)?;
        let process = Process::new(pid_i32).map_err(|e| holder_error(&e))?;
        holds(&process, fd, inode)?;
        let stat = process.stat().map_err(|e| holder_error(&e))?;
        let exe = process.exe().map_err(|e| holder_error(&e))?;
        // A zombie has no command line left; the executable is what matters.
        let cmdline = process.cmdline().unwrap_or_default();
        let (unit, app) = process
            .cgroups()
            .ok()
            .and_then(|groups| {
                let path = cgroup::systemd_path(
                    groups
                        .0
                        .iter()
                        .map(|g| (g.hierarchy, g.controllers.as_slice(), g.pathname.as_str())),
                )?;
                Some(cgroup::unit_and_app(path))
            })
            .unwrap_or_default();
        holds(&process, fd, inode)?;
        Ok(ProcessInfo {
            pid,
            exe: exe.to_string_lossy().into_owned(),
            cmdline,
            start_ticks: stat.starttime,
            unit,
            app,
        })
    }

    fn now_ticks(&mut self) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/uptime").ok()?;
        let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
        // Uptime is non-negative and far below 2^53 ticks; the cast only drops the fraction of a tick.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "uptime in ticks fits easily"
        )]
        let ticks = (secs * self.ticks_per_second as f64) as u64;
        Some((ticks, self.ticks_per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_users_descriptors_without_cap_sys_ptrace_are_no_permission_not_gone() {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
        if !root {
            eprintln!("skipped: needs root to run a process as another user");
            return;
        }
        // A process of another user holding a socket (a UDP socket of python, held 10 s).
        let mut child = std::process::Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
            ])
            .arg("import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); time.sleep(10)")
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let pid = child.id();
        // This thread, as root without CAP_SYS_PTRACE (capabilities are per thread).
        let answer = std::thread::Builder::new()
            .name("no-ptrace".into())
            .spawn(move || {
                caps::drop(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_PTRACE).unwrap();
                ProcFs::new().sockets(pid).map_err(|e| e.kind())
            })
            .unwrap()
            .join()
            .unwrap();
        let with_ptrace = ProcFs::new().sockets(pid).unwrap();
        child.kill().ok();
        child.wait().ok();
        assert_eq!(answer, Err(io::ErrorKind::PermissionDenied));
        assert!(!with_ptrace.is_empty(), "with the capability the socket is seen");
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn this_process_holds_its_own_socket_and_reads_as_itself() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pid = std::process::id();
        let mut procs = ProcFs::new();
        let sockets = procs.sockets(pid).unwrap();
        assert!(!sockets.is_empty());
        // Find our socket's descriptor through its link.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let fd = u32::try_from(fd).unwrap();
        let (_, inode) = *sockets.iter().find(|(f, _)| *f == fd).unwrap();
        let info = procs.read_holder(pid, fd, inode).unwrap();
        assert_eq!(info.pid, pid);
        assert_eq!(info.exe, std::env::current_exe().unwrap().to_string_lossy());
        assert_eq!(
            procs.read_holder(pid, fd, inode + 1),
            Err(HolderError::NotHolding)
        );
        assert!(procs.pids().unwrap().contains(&pid));
        let (now, hz) = procs.now_ticks().unwrap();
        assert!(hz > 0 && now >= info.start_ticks);
    }
}
