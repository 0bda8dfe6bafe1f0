//! `netwarden check RULES`: validate a rules file and lint it.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::anyhow;

use super::{CliError, CliResult, load_rules, require_rules};
use netwarden::rules::lint;

/// `netwarden check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Rules file to validate (default: ./rules.ron, else $XDG_CONFIG_HOME/netwarden/rules.ron, else
    /// /etc/netwarden/rules.ron).
    pub rules: Option<PathBuf>,
    /// Exit with status 2 when lint finds anything, not only on errors.
    #[arg(long)]
    pub strict: bool,
}

/// Validates and lints; prints one line per warning.
///
/// # Errors
/// The file is invalid (exit 2), or `--strict` and lint found warnings (exit 2).
pub fn check(args: &CheckArgs) -> CliResult {
    let location = require_rules(args.rules.as_deref())?;
    let path = &location.path;
    let rules = load_rules(path)?;
    let mut warnings: Vec<String> = lint(&rules).into_iter().map(|w| w.message).collect();
    // `enforce: true` rules the kernel could not take: `run --enforce` would refuse to start with them.
    let (_, refused) = netwarden::enforce::iptables::kernel_rules_of(&rules);
    warnings.extend(
        refused
            .iter()
            .map(|e| format!("not enforceable in the kernel: {e}")),
    );
    // Rules by program are judged by the monitor only; say so for those not already refused above.
    let notes: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| r.enabled && !r.enforce)
        .filter_map(|r| {
            let program = r.program.as_ref()?;
            Some(format!(
                "rule {:?} (program {}) is monitor-only: iptables cannot match a program path, so even with \
                 `enforce: true` the kernel would not drop its traffic",
                r.name.as_ref(),
                program.text
            ))
        })
        .collect();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    // Rule names and the path are the user's text: printed escaped.
    let path = netwarden::text::escape(&path.display().to_string()).into_owned();
    let write = |out: &mut io::StdoutLock<'_>| -> io::Result<()> {
        for warning in &warnings {
            writeln!(out, "{path}: warning: {}", netwarden::text::escape(warning))?;
        }
        for note in &notes {
            writeln!(out, "{path}: note: {}", netwarden::text::escape(note))?;
        }
        writeln!(
            out,
            "{path}: {} rules, default policy {}, {} warnings",
            rules.rules().len(),
            rules.default_policy().name(),
            warnings.len()
        )
    };
    write(&mut out).map_err(|e| CliError::Runtime(anyhow!(e)))?;
    if args.strict && !warnings.is_empty() {
        return Err(CliError::BadInput(anyhow!(
            "{} lint warnings (--strict)",
            warnings.len()
        )));
    }
    Ok(())
}
