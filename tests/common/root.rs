//! Tests that need root (network namespaces, setcap, setpriv) start with
//! `common::root::require_root!("what needs it");`.
//!
//! As root (CI) they run. As a normal user they are skipped, never failed: the test says so on stderr and,
//! when `make test` set `NETWARDEN_ROOT_TESTS_FILE`, appends its test binary and name to that file.
//! `make test` then runs every test listed there through one `sudo` (one password prompt), or, where sudo
//! is not available, reports them as skipped with the reason and their count (`scripts/root-tests.sh`).

use std::io::Write;

/// The file `make test` collects the skipped root-only tests in (`EXE<TAB>TEST NAME` per line).
pub const LIST_ENV: &str = "NETWARDEN_ROOT_TESTS_FILE";

/// True when this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Returns from the calling test unless it runs as root ([`may_run`]). `$why` names what needs root.
#[allow(unused_macros)]
macro_rules! require_root {
    ($why:expr) => {
        if !$crate::common::root::may_run($why) {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require_root;

/// True when the calling test may go on (running as root). Otherwise records the test for the root pass
/// of `make test` and returns false. `why` names what needs root.
pub fn may_run(why: &str) -> bool {
    if is_root() {
        return true;
    }
    // libtest runs each test on a thread named after it.
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let exe = std::env::current_exe().unwrap();
    eprintln!("skipped: {test} needs root ({why}); `make test` runs it through sudo");
    if let Some(list) = std::env::var_os(LIST_ENV) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(list)
            .unwrap();
        // One write per line: parallel tests append whole lines.
        file.write_all(format!("{}\t{test}\n", exe.display()).as_bytes())
            .unwrap();
    }
    false
}
