//! The systemd unit and the Flatpak or Snap app of a process, from its cgroup path (`/proc/PID/cgroup`).
//! Pure string work, unit-tested on real paths.

use super::App;

/// The systemd unit and sandboxed app named by a cgroup path such as
/// `/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.mozilla.firefox-2391.scope`:
/// the unit is the innermost `.service` or `.scope`; Flatpak scopes are `app-flatpak-ID-N.scope` (or
/// `flatpak-ID-N.scope`), Snap units `snap.NAME.APP[-UUID].scope|service`.
#[must_use]
pub fn unit_and_app(path: &str) -> (Option<String>, Option<App>) {
    let unit = path
        .rsplit('/')
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .filter(|c| *c != "init.scope" || path == "/init.scope");
    let app = path.rsplit('/').find_map(app_of);
    (unit.map(str::to_owned), app)
}

fn app_of(component: &str) -> Option<App> {
    let scope = component.strip_suffix(".scope");
    if let Some(rest) = scope.and_then(|s| {
        s.strip_prefix("app-flatpak-")
            .or_else(|| s.strip_prefix("flatpak-"))
    }) {
        // The id is everything before the last `-N` (ids themselves may contain `-`).
        let id = match rest.rsplit_once('-') {
            Some((id, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => id,
            _ => rest,
        };
        return (!id.is_empty()).then(|| App::Flatpak(id.to_owned()));
    }
    let unit = component
        .strip_suffix(".scope")
        .or_else(|| component.strip_suffix(".service"))?;
    let name = unit.strip_prefix("snap.")?.split('.').next()?;
    (!name.is_empty()).then(|| App::Snap(name.to_owned()))
}

/// The cgroup path to read units from: the unified (v2) hierarchy, else systemd's named v1 hierarchy.
/// Each item is (hierarchy id, controllers, path) as in `/proc/PID/cgroup`.
#[must_use]
pub fn systemd_path<'a>(groups: impl IntoIterator<Item = (u32, &'a [String], &'a str)>) -> Option<&'a str> {
    let mut named = None;
    for (hierarchy, controllers, path) in groups {
        if hierarchy == 0 && controllers.is_empty() {
            return Some(path);
        }
        if controllers.iter().any(|c| c == "name=systemd") {
            named = Some(path);
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_apps_from_real_paths() {
        let cases: [(&str, Option<&str>, Option<App>); 7] = [
            ("/system.slice/ssh.service", Some("ssh.service"), None),
            (
                "/user.slice/user-1000.slice/session-2.scope",
                Some("session-2.scope"),
                None,
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.mozilla.firefox-2391.scope",
                Some("app-flatpak-org.mozilla.firefox-2391.scope"),
                Some(App::Flatpak("org.mozilla.firefox".into())),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-1b2c3d.scope",
                Some("snap.firefox.firefox-1b2c3d.scope"),
                Some(App::Snap("firefox".into())),
            ),
            (
                "/system.slice/snap.lxd.daemon.service",
                Some("snap.lxd.daemon.service"),
                Some(App::Snap("lxd".into())),
            ),
            ("/", None, None),
            ("/init.scope", Some("init.scope"), None),
        ];
        for (path, unit, app) in cases {
            assert_eq!(unit_and_app(path), (unit.map(String::from), app), "{path}");
        }
    }

    #[test]
    fn unified_hierarchy_wins_over_systemd_v1() {
        let none: Vec<String> = Vec::new();
        let systemd = vec!["name=systemd".to_owned()];
        let cpu = vec!["cpu".to_owned()];
        let v1 = [
            (1, systemd.as_slice(), "/system.slice/a.service"),
            (2, cpu.as_slice(), "/"),
        ];
        assert_eq!(systemd_path(v1), Some("/system.slice/a.service"));
        let hybrid = [
            (1, systemd.as_slice(), "/x.service"),
            (0, none.as_slice(), "/system.slice/b.service"),
        ];
        assert_eq!(systemd_path(hybrid), Some("/system.slice/b.service"));
    }
}
