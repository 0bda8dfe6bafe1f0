//! The OS seam of enforcement: a `CommandRunner` executes one external command (argument vector, optional
//! stdin) and returns its output. `SystemRunner` runs it for real with a timeout (spawn, poll `try_wait`,
//! kill on timeout), optionally inside a network namespace (`ip netns exec NAME ..`) so tests never touch
//! the host; `RecordingRunner` only records (dry run, unit tests).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::EnforceError;

/// One external command: program, arguments, and text fed to its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Program name (looked up in `PATH`), e.g. `iptables-restore`.
    pub program: String,
    /// Arguments, never joined into a shell string.
    pub args: Vec<String>,
    /// Text written to stdin (restore scripts); `None` = empty stdin.
    pub stdin: Option<String>,
}

impl Cmd {
    /// A command with arguments and no stdin.
    #[must_use]
    pub fn new(program: &str, args: &[&str]) -> Self {
        Self {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdin: None,
        }
    }

    /// The same command with `stdin` as input.
    #[must_use]
    pub fn with_stdin(mut self, stdin: String) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// The command line for messages and dry runs (`iptables-restore --noflush -w 5`); arguments with spaces
    /// are quoted for reading, this string is never executed.
    #[must_use]
    pub fn display(&self) -> String {
        let mut line = self.program.clone();
        for arg in &self.args {
            line.push(' ');
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                line.push_str(&format!("'{arg}'"));
            } else {
                line.push_str(arg);
            }
        }
        line
    }
}

/// What a finished command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// Executes commands. Implementations must return `Missing` when the program does not exist, `Timeout`
/// when it ran too long (after killing it) and `Command` on a non-zero exit, keeping stderr.
pub trait CommandRunner: Send + Sync {
    /// Runs `cmd` to completion.
    ///
    /// # Errors
    /// `Missing`, `Timeout`, `Command` or `Io`.
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, EnforceError>;

    /// True when commands are only recorded, not executed (dry run): the enforcer then assumes an empty
    /// kernel and marks entries `NotEnforced`.
    fn is_dry_run(&self) -> bool {
        false
    }
}

/// Runs commands for real, each with a timeout, optionally inside a network namespace.
#[derive(Debug, Clone)]
pub struct SystemRunner {
    netns: Option<String>,
    timeout: Duration,
    programs: HashMap<String, String>,
    env: Vec<(OsString, OsString)>,
}

impl Default for SystemRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRunner {
    /// Default timeout for one command.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Runs in the current network namespace with the default timeout.
    #[must_use]
    pub fn new() -> Self {
        Self {
            netns: None,
            timeout: Self::DEFAULT_TIMEOUT,
            programs: HashMap::new(),
            env: Vec::new(),
        }
    }

    /// Runs every command as `ip netns exec NAME <cmd>` (tests, benches).
    #[must_use]
    pub fn in_netns(name: &str) -> Self {
        Self {
            netns: Some(name.to_owned()),
            ..Self::new()
        }
    }

    /// Sets the timeout for each command.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `replacement` whenever `program` is asked for (e.g. `iptables-legacy-restore` for
    /// `iptables-restore`, or a missing name to simulate a missing tool).
    #[must_use]
    pub fn with_program(mut self, program: &str, replacement: &str) -> Self {
        self.programs.insert(program.to_owned(), replacement.to_owned());
        self
    }

    /// Adds an environment variable for every command (e.g. `XTABLES_LOCKFILE`, `PATH`).
    #[must_use]
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn build(&self, cmd: &Cmd) -> (Command, Cmd) {
        let program = self
            .programs
            .get(&cmd.program)
            .cloned()
            .unwrap_or_else(|| cmd.program.clone());
        let shown = Cmd {
            program: program.clone(),
            args: cmd.args.clone(),
            stdin: None,
        };
        // Messages show the name; the process gets the path, also when a normal user's PATH lacks sbin.
        let path = resolve_program(&program, std::env::var_os("PATH").as_deref());
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new(resolve_program("ip", std::env::var_os("PATH").as_deref()));
                command.args(["netns", "exec", ns.as_str()]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        command.args(&cmd.args);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        (command, shown)
    }
}

/// Where `program` is: as given when it holds a `/`, else the first match in `path` (the `PATH` value),
/// then in `/usr/sbin` and `/sbin`, where iptables, ipset and ip live but a normal user's `PATH` (for a
/// binary granted capabilities with setcap) often does not look. Not found: the name, so running it
/// reports the program as missing.
#[must_use]
pub fn resolve_program(program: &str, path: Option<&std::ffi::OsStr>) -> std::path::PathBuf {
    if program.contains('/') {
        return program.into();
    }
    let dirs = path.map(std::env::split_paths).into_iter().flatten();
    dirs.chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.into())
}

fn spawn_reader(
    name: &str,
    mut source: impl Read + Send + 'static,
) -> Option<std::thread::JoinHandle<Vec<u8>>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut buf = Vec::new();
            // A read error just ends the captured text; the exit status still tells success.
            source.read_to_end(&mut buf).ok();
            buf
        })
        .ok()
}

impl CommandRunner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, EnforceError> {
        let (mut command, shown) = self.build(cmd);
        let command_line = shown.display();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(EnforceError::Missing {
                    program: shown.program,
                });
            }
            Err(err) => {
                return Err(EnforceError::Io {
                    command: command_line,
                    source: err,
                });
            }
        };
        // Stdin, stdout and stderr are served by their own threads so a large script cannot deadlock
        // against a child that fills its output pipe before reading all its input.
        let stdin_text = cmd.stdin.clone().unwrap_or_default();
        let writer = child.stdin.take().and_then(|mut pipe| {
            std::thread::Builder::new()
                .name("enforce-stdin".to_owned())
                .spawn(move || {
                    // A closed pipe means the child exited early; its status reports why.
                    pipe.write_all(stdin_text.as_bytes()).ok();
                })
                .ok()
        });
        let out_reader = child
            .stdout
            .take()
            .and_then(|p| spawn_reader("enforce-stdout", p));
        let err_reader = child
            .stderr
            .take()
            .and_then(|p| spawn_reader("enforce-stderr", p));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    // Kill and reap; the reader threads end when the pipes close (not joined, in case a
                    // grandchild keeps them open).
                    child.kill().ok();
                    child.wait().ok();
                    return Err(EnforceError::Timeout {
                        command: command_line,
                        after: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(err) => {
                    return Err(EnforceError::Io {
                        command: command_line,
                        source: err,
                    });
                }
            }
        };
        if let Some(writer) = writer {
            writer.join().ok();
        }
        let join = |handle: Option<std::thread::JoinHandle<Vec<u8>>>| {
            handle
                .and_then(|h| h.join().ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let stdout = join(out_reader);
        let stderr = join(err_reader);
        // `ip netns exec` prints `exec of "PROG" failed: No such file or directory` when the program is
        // missing; report that as a missing program.
        if self.netns.is_some()
            && !status.success()
            && stderr.starts_with("exec of \"")
            && stderr.contains("No such file or directory")
        {
            return Err(EnforceError::Missing {
                program: shown.program,
            });
        }
        if !status.success() {
            return Err(EnforceError::Command {
                command: command_line,
                status: status.code(),
                stderr: stderr.trim().to_owned(),
            });
        }
        Ok(CmdOutput { stdout, stderr })
    }
}

/// Records commands instead of running them (dry run and unit tests); answers with canned outputs.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    commands: Mutex<Vec<Cmd>>,
    answers: Mutex<HashMap<String, Result<String, String>>>,
    dry_run: bool,
}

impl RecordingRunner {
    /// A runner for `--dry-run`: records, returns empty output, reports `is_dry_run`.
    #[must_use]
    pub fn dry_run() -> Self {
        Self {
            dry_run: true,
            ..Self::default()
        }
    }

    /// Makes commands whose display line starts with `prefix` answer `stdout` (Ok) or fail with stderr (Err).
    pub fn answer(&self, prefix: &str, answer: Result<&str, &str>) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(
                prefix.to_owned(),
                answer.map(str::to_owned).map_err(str::to_owned),
            );
        }
    }

    /// Every command run so far, in order.
    #[must_use]
    pub fn commands(&self) -> Vec<Cmd> {
        self.commands.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl CommandRunner for RecordingRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, EnforceError> {
        if let Ok(mut commands) = self.commands.lock() {
            commands.push(cmd.clone());
        }
        let line = cmd.display();
        let answers = self.answers.lock().map(|a| a.clone()).unwrap_or_default();
        let mut best: Option<(&String, &Result<String, String>)> = None;
        for (prefix, answer) in &answers {
            if line.starts_with(prefix.as_str()) && best.is_none_or(|(p, _)| prefix.len() > p.len()) {
                best = Some((prefix, answer));
            }
        }
        match best {
            Some((_, Ok(stdout))) => Ok(CmdOutput {
                stdout: stdout.clone(),
                stderr: String::new(),
            }),
            Some((_, Err(stderr))) => Err(EnforceError::Command {
                command: line,
                status: Some(1),
                stderr: stderr.clone(),
            }),
            None => Ok(CmdOutput::default()),
        }
    }

    fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn programs_are_found_in_sbin_without_it_on_path() {
        let user_path = std::ffi::OsString::from("/nonexistent-netwarden-dir");
        assert_eq!(
            resolve_program("iptables", Some(&user_path)),
            std::path::PathBuf::from("/usr/sbin/iptables")
        );
        assert_eq!(
            resolve_program("netwarden-no-such-tool", Some(&user_path)),
            std::path::PathBuf::from("netwarden-no-such-tool")
        );
        assert_eq!(
            resolve_program("./hang.sh", None),
            std::path::PathBuf::from("./hang.sh")
        );
    }

    use super::*;

    #[test]
    fn display_quotes_spaces() {
        let cmd = Cmd::new("iptables", &["-m", "comment", "--comment", "a b"]);
        assert_eq!(cmd.display(), "iptables -m comment --comment 'a b'");
    }

    #[test]
    fn system_runner_reports_missing_timeout_and_failure() {
        let runner = SystemRunner::new().with_timeout(Duration::from_millis(300));
        let err = runner
            .run(&Cmd::new("netwarden-no-such-program", &[]))
            .unwrap_err();
        assert!(
            matches!(err, EnforceError::Missing { ref program } if program == "netwarden-no-such-program"),
            "{err}"
        );
        let err = runner.run(&Cmd::new("sleep", &["100"])).unwrap_err();
        assert!(
            matches!(err, EnforceError::Timeout { ref command, .. } if command == "sleep 100"),
            "{err}"
        );
        let err = runner
            .run(&Cmd::new("sh", &["-c", "echo oops >&2; exit 3"]))
            .unwrap_err();
        assert!(
            matches!(err, EnforceError::Command { status: Some(3), ref stderr, .. } if stderr == "oops"),
            "{err}"
        );
        let big = "x".repeat(1 << 20);
        let out = runner.run(&Cmd::new("wc", &["-c"]).with_stdin(big)).unwrap();
        assert_eq!(out.stdout.trim(), "1048576");
    }

    #[test]
    fn recording_runner_answers_by_longest_prefix() {
        let runner = RecordingRunner::default();
        runner.answer("ipset", Ok("a"));
        runner.answer("ipset save", Err("boom"));
        assert_eq!(runner.run(&Cmd::new("ipset", &["list"])).unwrap().stdout, "a");
        assert!(runner.run(&Cmd::new("ipset", &["save", "x"])).is_err());
        assert_eq!(runner.commands().len(), 2);
    }
}
