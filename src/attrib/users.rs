//! User names and uids through the system's user database (`getpwuid_r` / `getpwnam_r` via `nix`, so NSS
//! sources such as LDAP count too), with a cache for the attribution thread.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::UserId;

/// The name of `uid`, when the system knows it.
#[must_use]
pub fn name_of(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The uid of user `name`.
///
/// # Errors
/// No such user (`Ok(None)` is never returned for a name the database lacks: that is the error), or the
/// user database failed; the message says which.
pub fn uid_of(name: &str) -> Result<u32, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!("unknown user {name:?} (no such user on this system)")),
        Err(e) => Err(format!("cannot look up user {name:?}: {e}")),
    }
}

/// Uid-to-name answers kept for the life of the thread (names rarely change; a new user shows as its uid
/// until restart at worst).
#[derive(Debug, Default)]
pub struct UserNames {
    cache: FxHashMap<u32, Option<Arc<str>>>,
}

impl UserNames {
    /// The user `uid`, named when possible.
    pub fn user(&mut self, uid: u32) -> UserId {
        let name = self
            .cache
            .entry(uid)
            .or_insert_with(|| name_of(uid).map(Arc::from))
            .clone();
        UserId { uid, name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_both_ways_and_unknown_names() {
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert_eq!(uid_of("root"), Ok(0));
        let e = uid_of("no-such-user-netwarden").unwrap_err();
        assert!(e.contains("unknown user \"no-such-user-netwarden\""), "{e}");
        let mut names = UserNames::default();
        assert_eq!(names.user(0).to_string(), "root");
        assert_eq!(names.user(4_000_000).to_string(), "4000000");
    }
}
