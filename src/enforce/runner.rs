//! Running external commands (iptables, ipset) as argument vectors with a timeout, optionally inside a
//! network namespace (`ip netns exec NS ...`, which the tests use so they never touch the host's tables).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a command failed; every variant names the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "`{program}` is not installed (apt-get install iptables ipset); netwarden runs in monitor-only mode"
    )]
    Missing { program: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {after_secs} s and was killed")]
    Timeout { command: String, after_secs: u64 },
    #[error("`{command}` could not be run: {detail}")]
    Io { command: String, detail: String },
}

/// Executes commands. `SystemRunner` is the real one; tests may wrap it.
pub trait CommandRunner: Send + Sync {
    /// Runs `argv` with `stdin` fed to it; returns its standard output.
    ///
    /// # Errors
    /// The program is missing, exits non-zero, or outlives the timeout.
    fn run(&self, argv: &[&str], stdin: Option<&str>) -> Result<String, CommandError>;

    /// The command line as it would run (for `--dry-run` and messages).
    fn describe(&self, argv: &[&str]) -> String;
}

/// Runs commands on this machine, optionally inside a network namespace.
#[derive(Debug, Clone)]
pub struct SystemRunner {
    netns: Option<String>,
    timeout: Duration,
}

impl Default for SystemRunner {
    fn default() -> Self {
        Self {
            netns: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl SystemRunner {
    /// Runs every command inside network namespace `name` (`ip netns exec`).
    #[must_use]
    pub fn in_netns(name: &str) -> Self {
        Self {
            netns: Some(name.to_owned()),
            ..Self::default()
        }
    }

    /// Kills commands that run longer than `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn full_argv<'a>(&'a self, argv: &[&'a str]) -> Vec<&'a str> {
        match &self.netns {
            Some(ns) => ["ip", "netns", "exec", ns.as_str()]
                .into_iter()
                .chain(argv.iter().copied())
                .collect(),
            None => argv.to_vec(),
        }
    }
}

/// Quotes an argument for display only (commands never go through a shell).
fn display_arg(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

impl CommandRunner for SystemRunner {
    fn describe(&self, argv: &[&str]) -> String {
        self.full_argv(argv)
            .iter()
            .map(|a| display_arg(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn run(&self, argv: &[&str], stdin: Option<&str>) -> Result<String, CommandError> {
        let full = self.full_argv(argv);
        let command = self.describe(argv);
        let (program, args) = full.split_first().ok_or_else(|| CommandError::Io {
            command: command.clone(),
            detail: "empty command".into(),
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    CommandError::Missing {
                        program: (*program).to_owned(),
                    }
                } else {
                    CommandError::Io {
                        command: command.clone(),
                        detail: e.to_string(),
                    }
                }
            })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that exits early closes its stdin; its exit status tells what went wrong.
            pipe.write_all(input.as_bytes()).ok();
        }
        // Read output on helper threads so a chatty command cannot block on a full pipe.
        let mut stdout_pipe = child.stdout.take();
        let mut stderr_pipe = child.stderr.take();
        let stdout_reader = std::thread::Builder::new()
            .name("cmd-stdout".into())
            .spawn(move || {
                let mut out = String::new();
                if let Some(pipe) = stdout_pipe.as_mut() {
                    std::io::Read::read_to_string(pipe, &mut out).ok();
                }
                out
            });
        let stderr_reader = std::thread::Builder::new()
            .name("cmd-stderr".into())
            .spawn(move || {
                let mut out = String::new();
                if let Some(pipe) = stderr_pipe.as_mut() {
                    std::io::Read::read_to_string(pipe, &mut out).ok();
                }
                out
            });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= self.timeout => {
                    child.kill().ok();
                    child.wait().ok();
                    return Err(CommandError::Timeout {
                        command,
                        after_secs: self.timeout.as_secs(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    return Err(CommandError::Io {
                        command,
                        detail: e.to_string(),
                    });
                }
            }
        };
        let stdout = stdout_reader.ok().and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = stderr_reader.ok().and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            Err(CommandError::Failed {
                command,
                status: status.to_string(),
                stderr: stderr.trim().to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_and_timeout_are_reported() {
        let runner = SystemRunner::default().with_timeout(Duration::from_millis(300));
        let err = runner.run(&["nw-no-such-program"], None).unwrap_err();
        assert!(matches!(err, CommandError::Missing { .. }), "{err}");
        let start = Instant::now();
        let err = runner.run(&["sleep", "30"], None).unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the hung command was killed"
        );
        let err = runner
            .run(&["sh", "-c", "echo oops >&2; exit 3"], None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo oops >&2; exit 3'` failed (exit status: 3): oops"
        );
        assert_eq!(runner.run(&["cat"], Some("fed")).unwrap(), "fed");
    }

    #[test]
    fn netns_prefix_is_an_argument_vector() {
        let runner = SystemRunner::in_netns("nwtest");
        assert_eq!(
            runner.describe(&["ipset", "list", "-n"]),
            "ip netns exec nwtest ipset list -n"
        );
        assert_eq!(
            runner.describe(&["echo", "1.2.3.4;reboot"]),
            "ip netns exec nwtest echo '1.2.3.4;reboot'"
        );
    }
}
