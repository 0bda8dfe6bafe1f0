//! The privileged copy of the binary, as Wireshark does it for dumpcap: the Debian package installs
//! `/usr/lib/netwarden/netwarden-priv`, owned `root:netwarden`, mode 0750, with the file capabilities
//! `cap_net_raw,cap_net_admin`; `/usr/bin/netwarden` itself has none. When `netwarden` starts without
//! those capabilities it re-executes the privileged copy with the same arguments. The kernel decides who
//! may: members of the group `netwarden` (and root); for everyone else `exec` fails with "permission
//! denied" and netwarden goes on unprivileged (demo, replay, what the user may see).
//!
//! The copy is found relative to this executable (`PREFIX/bin/netwarden` -> `PREFIX/lib/netwarden/`), so a
//! source checkout (`target/release/netwarden`) has none and never re-executes. An environment variable
//! set for the copy guards against a loop when the copy itself lacks the capabilities (`setcap` failed).

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the environment of the re-executed copy: it never re-executes again.
pub const GUARD_ENV: &str = "NETWARDEN_PRIVILEGED_EXEC";

/// The privileged copy, relative to the installation prefix (`/usr`).
pub const HELPER: &str = "lib/netwarden/netwarden-priv";

/// The group whose members may run the privileged copy.
pub const GROUP: &str = "netwarden";

/// Why this process goes on as it is (`hand_over` returns only when there was no re-execution).
#[derive(Debug)]
pub enum Handover {
    /// The process has the capabilities (root, or the copy itself), or is the re-executed copy.
    NotNeeded,
    /// No privileged copy is installed next to this binary.
    NoHelper,
    /// The copy exists but could not be executed: `PermissionDenied` for users outside the group.
    Refused {
        /// The privileged copy.
        helper: PathBuf,
        /// What `exec` said.
        error: io::Error,
    },
}

impl Handover {
    /// A hint for a command that failed for lack of privilege: how to join the group, when not being in it
    /// is why the privileged copy was refused.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Refused { helper, error } if error.kind() == io::ErrorKind::PermissionDenied => {
                Some(format!(
                    "only members of the group `{GROUP}` may run {} (capture and firewall changes): \
                 `sudo usermod -aG {GROUP} $USER`, then log in again",
                    helper.display()
                ))
            }
            Self::Refused { helper, error } => Some(format!("cannot run {}: {error}", helper.display())),
            Self::NotNeeded | Self::NoHelper => None,
        }
    }
}

/// The privileged copy that belongs to the executable at `exe` (`PREFIX/bin/x` -> `PREFIX/` + [`HELPER`]).
#[must_use]
pub fn helper_for(exe: &Path) -> Option<PathBuf> {
    exe.parent()?.parent().map(|prefix| prefix.join(HELPER))
}

/// True when this process may capture and change the firewall: `CAP_NET_RAW` and `CAP_NET_ADMIN` in its
/// permitted set (root has every capability; a binary with file capabilities has them there).
fn has_capabilities() -> bool {
    use caps::{CapSet, Capability};
    [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN]
        .into_iter()
        .all(|cap| caps::has_cap(None, CapSet::Permitted, cap).unwrap_or(false))
}

/// Re-executes the privileged copy with this process's arguments when this process lacks the
/// capabilities and a copy is installed. Call first in `main`, before any thread starts. Returns only when
/// this process goes on itself, and says why.
#[must_use]
pub fn hand_over() -> Handover {
    if std::env::var_os(GUARD_ENV).is_some() || has_capabilities() {
        return Handover::NotNeeded;
    }
    let Some(exe) = std::env::current_exe().ok() else {
        return Handover::NoHelper;
    };
    let Some(helper) = helper_for(&exe).filter(|h| h.exists()) else {
        return Handover::NoHelper;
    };
    // The copy run directly (its capabilities were not granted): nothing better to hand over to.
    if std::fs::canonicalize(&helper).ok() == std::fs::canonicalize(&exe).ok() {
        return Handover::NotNeeded;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("netwarden"));
    // `exec` returns only on failure; on success the copy replaces this process.
    let error = Command::new(&helper)
        .arg0(arg0)
        .args(args)
        .env(GUARD_ENV, "1")
        .exec();
    Handover::Refused { helper, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_is_under_the_prefix_lib_dir() {
        assert_eq!(
            helper_for(Path::new("/usr/bin/netwarden")),
            Some(PathBuf::from("/usr/lib/netwarden/netwarden-priv"))
        );
        assert_eq!(
            helper_for(Path::new("/opt/nw/bin/netwarden")),
            Some(PathBuf::from("/opt/nw/lib/netwarden/netwarden-priv"))
        );
        assert_eq!(helper_for(Path::new("/netwarden")), None);
    }

    #[test]
    fn only_a_refused_helper_gives_a_hint() {
        let refused = Handover::Refused {
            helper: "/usr/lib/netwarden/netwarden-priv".into(),
            error: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let hint = refused.hint().unwrap();
        assert!(
            hint.contains("group `netwarden`") && hint.contains("sudo usermod -aG netwarden $USER"),
            "{hint}"
        );
        assert_eq!(Handover::NoHelper.hint(), None);
        assert_eq!(Handover::NotNeeded.hint(), None);
    }
}
