//! Writing rule files: readable RON, validated before it touches the disk, written atomically (a temp
//! file in the same directory, fsync, rename), so a failed save leaves the old file intact and a reader
//! never sees half a file.
//!
//! Comments in the original file are not preserved: the editor rewrites the file from the model.

use std::io::Write;
use std::path::Path;

use super::model::ron_options;
use super::{RuleError, RuleFile, RuleSet};

impl RuleFile {
    /// The file as pretty RON: one line per rule, fields at their defaults left out.
    pub fn to_ron_string(&self) -> Result<String, RuleError> {
        let config = ron::ser::PrettyConfig::new()
            .depth_limit(2)
            .indentor("    ")
            .struct_names(false);
        let mut text = ron_options()
            .to_string_pretty(self, config)
            .map_err(|e| RuleError::Serialize(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RuleError + '_ {
    move |source| RuleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Validates `file` (by compiling it), then replaces `path` atomically with its RON text. On any error the
/// old file is left as it was. The new file keeps the old file's permissions when there was one.
pub fn save_atomic(file: &RuleFile, path: impl AsRef<Path>) -> Result<(), RuleError> {
    let path = path.as_ref();
    let text = file.to_ron_string()?;
    // Validate what will be read back, with positions in the text being written.
    RuleSet::compile(RuleFile::parse(&text)?, Some(&text)).map_err(|e| e.with_path(path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rules-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(text.as_bytes()).map_err(io(tmp.path()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(io(tmp.path()))?;
    }
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    tmp.persist(path).map_err(|e| RuleError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    // Make the rename itself durable.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Action, Protocol, RuleSpec};

    #[test]
    fn pretty_output_is_one_line_per_rule_and_round_trips() {
        let file = RuleFile {
            default_policy: Action::Allow,
            rules: vec![
                RuleSpec {
                    name: "router".into(),
                    action: Action::Allow,
                    src: vec!["192.168.1.1".into()],
                    ..RuleSpec::default()
                },
                RuleSpec {
                    name: "no ssh".into(),
                    action: Action::Block,
                    protocol: Protocol::Tcp,
                    dst_ports: vec!["22".into()],
                    interface: Some("eth0".into()),
                    enabled: false,
                    ..RuleSpec::default()
                },
            ],
            ..RuleFile::default()
        };
        let text = file.to_ron_string().unwrap();
        assert!(
            text.contains("\n        (name: \"router\", action: Allow, src: [\"192.168.1.1\"]),\n"),
            "{text}"
        );
        assert!(
            text.contains("(name: \"no ssh\", enabled: false, action: Block, protocol: Tcp, dst_ports: [\"22\"], interface: \"eth0\")"),
            "{text}"
        );
        assert_eq!(RuleFile::parse(&text).unwrap(), file);
    }
}
