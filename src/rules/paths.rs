//! Where the rules file is: the one lookup the CLI (`run`, `replay`, `check`) and the desktop app share, and
//! where the app saves an edited copy.
//!
//! Lookup order, first existing file wins:
//! 1. the file given with `--rules` (used whether or not it exists, so a typo is reported, never replaced
//!    by another file);
//! 2. `./rules.ron`;
//! 3. `$XDG_CONFIG_HOME/netwarden/rules.ron` (`~/.config/netwarden/rules.ron` when the variable is unset,
//!    empty or not absolute, as the XDG Base Directory specification says);
//! 4. `/etc/netwarden/rules.ron`, which the Debian package installs.
//!
//! The app never writes to `/etc` unless it runs as root: rules found there are saved to the per-user
//! file of step 3 on the first edit ([`LookupEnv::save_target`]), which the next start then finds first.

use std::path::{Path, PathBuf};

/// The name of a rules file in the working directory and in the configuration directories.
pub const FILE_NAME: &str = "rules.ron";

/// The system-wide rules file (a conffile of the Debian package).
pub const SYSTEM_RULES: &str = "/etc/netwarden/rules.ron";

/// Where a rules file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesOrigin {
    /// Given on the command line (`--rules`).
    Given,
    /// `./rules.ron` in the working directory.
    WorkingDir,
    /// The per-user file under `$XDG_CONFIG_HOME/netwarden/`.
    User,
    /// `/etc/netwarden/rules.ron`.
    System,
}

/// A rules file and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesLocation {
    /// The file.
    pub path: PathBuf,
    /// Which step of the lookup found it.
    pub origin: RulesOrigin,
}

/// No rules file in any of the places looked at (nothing was given with `--rules`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rules file found (looked for {})", list_paths(.searched))]
pub struct RulesNotFound {
    /// Every place looked at, in lookup order.
    pub searched: Vec<PathBuf>,
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the lookup depends on besides the file system: the process's environment and effective user, so
/// the rules are unit-tested without touching either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupEnv {
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<String>,
    /// `$HOME`.
    pub home: Option<String>,
    /// The effective user id (`None` when unknown, treated as not root).
    pub euid: Option<u32>,
}

impl LookupEnv {
    /// The environment of this process.
    #[must_use]
    pub fn from_process() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self {
            xdg_config_home: std::env::var("XDG_CONFIG_HOME").ok(),
            home: std::env::var("HOME").ok(),
            euid: crate::enforce::parse_privileges(&status).euid,
        }
    }

    /// The per-user configuration directory, `$XDG_CONFIG_HOME/netwarden` or `$HOME/.config/netwarden`;
    /// `None` without either (a relative `XDG_CONFIG_HOME` or `HOME` counts as unset).
    #[must_use]
    pub fn user_dir(&self) -> Option<PathBuf> {
        let absolute = |v: &Option<String>| {
            v.as_deref()
                .map(Path::new)
                .filter(|p| p.is_absolute())
                .map(Path::to_path_buf)
        };
        absolute(&self.xdg_config_home)
            .or_else(|| absolute(&self.home).map(|home| home.join(".config")))
            .map(|config| config.join("netwarden"))
    }

    /// The per-user rules file, `user_dir()/rules.ron`.
    #[must_use]
    pub fn user_rules(&self) -> Option<PathBuf> {
        self.user_dir().map(|dir| dir.join(FILE_NAME))
    }

    /// The places looked at when no file is given, in order.
    #[must_use]
    pub fn candidates(&self) -> Vec<RulesLocation> {
        let mut list = vec![RulesLocation {
            path: PathBuf::from(FILE_NAME),
            origin: RulesOrigin::WorkingDir,
        }];
        if let Some(path) = self.user_rules() {
            list.push(RulesLocation {
                path,
                origin: RulesOrigin::User,
            });
        }
        list.push(RulesLocation {
            path: PathBuf::from(SYSTEM_RULES),
            origin: RulesOrigin::System,
        });
        list
    }

    /// The rules file to use: `given` when there is one, else the first candidate `exists` accepts.
    ///
    /// # Errors
    /// Nothing given and no candidate exists; the error lists the candidates.
    pub fn find(
        &self,
        given: Option<&Path>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<RulesLocation, RulesNotFound> {
        if let Some(path) = given {
            return Ok(RulesLocation {
                path: path.to_path_buf(),
                origin: RulesOrigin::Given,
            });
        }
        let candidates = self.candidates();
        match candidates.iter().find(|c| exists(&c.path)) {
            Some(found) => Ok(found.clone()),
            None => Err(RulesNotFound {
                searched: candidates.into_iter().map(|c| c.path).collect(),
            }),
        }
    }

    /// Where an edit of the rules at `location` is saved: the same file, except that rules from `/etc`
    /// are saved to the per-user file unless this process runs as root (or there is no per-user
    /// directory, in which case saving reports the permission error).
    #[must_use]
    pub fn save_target(&self, location: &RulesLocation) -> PathBuf {
        if location.origin == RulesOrigin::System
            && self.euid != Some(0)
            && let Some(user) = self.user_rules()
        {
            return user;
        }
        location.path.clone()
    }
}

/// [`LookupEnv::find`] for this process, with the real file system (a path that exists, even one that
/// cannot be read, is taken: loading it then says why it cannot be used).
///
/// # Errors
/// Nothing given and no rules file in any of the places looked at.
pub fn find_rules(given: Option<&Path>) -> Result<RulesLocation, RulesNotFound> {
    LookupEnv::from_process().find(given, |path| path.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(xdg: Option<&str>, home: Option<&str>, euid: u32) -> LookupEnv {
        LookupEnv {
            xdg_config_home: xdg.map(str::to_owned),
            home: home.map(str::to_owned),
            euid: Some(euid),
        }
    }

    #[test]
    fn user_dir_prefers_absolute_xdg_config_home_then_home() {
        let cases = [
            (Some("/x/cfg"), Some("/home/u"), Some("/x/cfg/netwarden")),
            (None, Some("/home/u"), Some("/home/u/.config/netwarden")),
            (Some(""), Some("/home/u"), Some("/home/u/.config/netwarden")),
            (
                Some("rel/cfg"),
                Some("/home/u"),
                Some("/home/u/.config/netwarden"),
            ),
            (None, None, None),
            (None, Some("relative"), None),
        ];
        for (xdg, home, want) in cases {
            assert_eq!(
                user(xdg, home, 1000).user_dir(),
                want.map(PathBuf::from),
                "{xdg:?} {home:?}"
            );
        }
    }

    #[test]
    fn lookup_order_is_given_cwd_user_system() {
        let env = user(None, Some("/home/u"), 1000);
        let all = |_: &Path| true;
        assert_eq!(
            env.find(Some(Path::new("mine.ron")), |_| false).unwrap(),
            RulesLocation {
                path: "mine.ron".into(),
                origin: RulesOrigin::Given
            }
        );
        assert_eq!(env.find(None, all).unwrap().origin, RulesOrigin::WorkingDir);
        let found = env.find(None, |p| p != Path::new("rules.ron")).unwrap();
        assert_eq!(
            (found.path.as_path(), found.origin),
            (
                Path::new("/home/u/.config/netwarden/rules.ron"),
                RulesOrigin::User
            )
        );
        let found = env.find(None, |p| p == Path::new(SYSTEM_RULES)).unwrap();
        assert_eq!(found.origin, RulesOrigin::System);
    }

    #[test]
    fn nothing_found_lists_every_place_looked_at() {
        let err = user(Some("/x/cfg"), None, 1000)
            .find(None, |_| false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no rules file found (looked for rules.ron, /x/cfg/netwarden/rules.ron, /etc/netwarden/rules.ron)"
        );
    }

    #[test]
    fn system_rules_are_saved_to_a_user_copy_unless_root() {
        let system = RulesLocation {
            path: SYSTEM_RULES.into(),
            origin: RulesOrigin::System,
        };
        assert_eq!(
            user(None, Some("/home/u"), 1000).save_target(&system),
            Path::new("/home/u/.config/netwarden/rules.ron")
        );
        assert_eq!(
            user(None, Some("/root"), 0).save_target(&system),
            Path::new(SYSTEM_RULES)
        );
        // Without a home there is no user copy: the save names /etc and the permission error.
        assert_eq!(
            user(None, None, 1000).save_target(&system),
            Path::new(SYSTEM_RULES)
        );
        let cwd = RulesLocation {
            path: "rules.ron".into(),
            origin: RulesOrigin::WorkingDir,
        };
        assert_eq!(
            user(None, Some("/home/u"), 1000).save_target(&cwd),
            Path::new("rules.ron")
        );
    }
}
