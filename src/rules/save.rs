//! Writing rule files: readable RON, validated before it touches the disk, written atomically (a temp
//! file in the same directory, fsync, rename), so a failed save leaves the old file intact and a reader
//! never sees half a file.
//!
//! The editor saves with [`save_edited`]: only what the user changed is rewritten. Comments, blank lines
//! and the text of every untouched rule stay byte for byte; an edited rule is written on one line where
//! it was, with the comment above it; an added rule goes where the editor put it; a deleted rule leaves
//! with the comment lines just above it; a reordered rule moves with them. The result must read back as
//! exactly the edited rules, else (or when the file on disk is not the one the editor loaded) the whole
//! file is written from the model, as [`save_atomic`] does.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::locate::{FileLayout, layout};
use super::model::ron_options;
use super::{RuleError, RuleFile, RuleSet, RuleSpec};

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

impl RuleSpec {
    /// The rule as one line of RON (as `RuleFile::to_ron_string` writes each rule).
    fn to_ron_line(&self) -> Result<String, RuleError> {
        let file = RuleFile {
            rules: vec![self.clone()],
            ..RuleFile::default()
        };
        let text = file.to_ron_string()?;
        // The rule is the only line of the list: the one starting with `(` after the indent.
        text.lines()
            .map(str::trim)
            .find(|line| line.starts_with("(name:"))
            .map(|line| line.trim_end_matches(',').to_owned())
            .ok_or_else(|| RuleError::Serialize("a rule did not serialize to one line".into()))
    }
}

/// `new` written over `old_text` (the text of `old`), rewriting only what differs; `None` when the text
/// does not have the shape this knows (then the caller writes the whole file).
#[must_use]
pub fn rewrite_changed(old_text: &str, old: &RuleFile, new: &RuleFile) -> Option<String> {
    let layout = layout(old_text)?;
    if layout.rules.len() != old.rules.len() {
        return None;
    }
    let field = |name: &str| {
        layout
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, range)| range.clone())
    };
    // Top-level fields other than the rules: replaced in place when changed (and present).
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    if new.default_policy != old.default_policy {
        edits.push((field("default_policy")?, format!("{:?}", new.default_policy)));
    }
    let pretty = || ron::ser::PrettyConfig::new().indentor("    ").struct_names(false);
    if new.detection != old.detection {
        let text = ron_options().to_string_pretty(&new.detection, pretty()).ok()?;
        edits.push((field("detection")?, text));
    }
    if new.log != old.log {
        let text = ron_options().to_string_pretty(&new.log, pretty()).ok()?;
        edits.push((field("log")?, text));
    }
    edits.push((
        layout.list_open..layout.list_close,
        rules_text(old_text, &layout, old, new)?,
    ));
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(old_text.len() + 256);
    let mut at = 0;
    for (range, text) in edits {
        out.push_str(old_text.get(at..range.start)?);
        out.push_str(&text);
        at = range.end;
    }
    out.push_str(old_text.get(at..)?);
    (RuleFile::parse(&out).ok()? == *new).then_some(out)
}

/// The text between `[` and `]` for the new rules. Each old rule owns the text before it back to the
/// previous rule's comma (its comment and indent, its "lead"); a kept rule keeps its lead and its text, an
/// edited one its lead with new text, an added one gets the indent of its neighbour.
fn rules_text(old_text: &str, layout: &FileLayout, old: &RuleFile, new: &RuleFile) -> Option<String> {
    let n = old.rules.len();
    // Lead of rule i: from after the previous comma (or `[`) to the rule.
    let mut leads = Vec::with_capacity(n);
    for (i, rule) in layout.rules.iter().enumerate() {
        let from = match i {
            0 => layout.list_open,
            _ => layout.commas.get(i - 1).copied().flatten()? + 1,
        };
        leads.push(old_text.get(from..rule.start)?);
    }
    let trailing_comma = layout.commas.last().copied().flatten().is_some();
    let tail_from = match (layout.rules.last(), layout.commas.last()) {
        (_, Some(Some(comma))) => comma + 1,
        (Some(rule), _) => rule.end,
        (None, _) => layout.list_open,
    };
    let tail = old_text.get(tail_from..layout.list_close)?;
    // Which old rule each new rule is: the same name, else (a rename) the unclaimed old rule at its place.
    let by_name: HashMap<&str, usize> = old
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut claimed = vec![false; n];
    let mut source: Vec<Option<usize>> = new
        .rules
        .iter()
        .map(|r| by_name.get(r.name.as_str()).copied())
        .collect();
    for i in source.iter().flatten() {
        claimed[*i] = true;
    }
    for (j, slot) in source.iter_mut().enumerate() {
        if slot.is_none() && j < n && !claimed[j] && !new.rules.iter().any(|r| r.name == old.rules[j].name) {
            claimed[j] = true;
            *slot = Some(j);
        }
    }
    let default_indent = leads
        .last()
        .and_then(|lead| lead.rsplit('\n').next())
        .filter(|indent| indent.chars().all(char::is_whitespace))
        .unwrap_or("        ")
        .to_owned();
    let mut out = String::new();
    let mut last_indent = default_indent;
    for (j, spec) in new.rules.iter().enumerate() {
        if j > 0 {
            out.push(',');
        }
        match source[j] {
            Some(i) => {
                let lead = leads.get(i)?;
                out.push_str(lead);
                if let Some(indent) = lead
                    .rsplit('\n')
                    .next()
                    .filter(|s| s.chars().all(char::is_whitespace))
                {
                    indent.clone_into(&mut last_indent);
                }
                if old.rules.get(i)? == spec {
                    out.push_str(old_text.get(layout.rules.get(i)?.clone())?);
                } else {
                    out.push_str(&spec.to_ron_line().ok()?);
                }
            }
            None => {
                out.push('\n');
                out.push_str(&last_indent);
                out.push_str(&spec.to_ron_line().ok()?);
            }
        }
    }
    if new.rules.is_empty() {
        // No rule left: keep only the tail's line break and indent.
        out.push_str(tail.trim_start_matches(|c: char| c != '\n'));
        return Some(out);
    }
    if trailing_comma {
        out.push(',');
    }
    out.push_str(tail);
    Some(out)
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
    write_atomic(&file.to_ron_string()?, path.as_ref())
}

/// Saves the editor's `new` rules over the file that held `old`, rewriting only what changed (see the
/// module docs); when the file on disk no longer holds `old` (edited by hand meanwhile) or its shape is
/// unknown, the whole file is written from `new`. Validated and atomic like [`save_atomic`].
pub fn save_edited(new: &RuleFile, old: &RuleFile, path: impl AsRef<Path>) -> Result<(), RuleError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .ok()
        .filter(|text| RuleFile::parse(text).is_ok_and(|on_disk| on_disk == *old))
        .and_then(|text| rewrite_changed(&text, old, new));
    match text {
        Some(text) => write_atomic(&text, path),
        None => save_atomic(new, path),
    }
}

/// Validates `text` as a rules file, then replaces `path` with it atomically.
fn write_atomic(text: &str, path: &Path) -> Result<(), RuleError> {
    // Validate what will be read back, with positions in the text being written.
    RuleSet::compile(RuleFile::parse(text)?, Some(text)).map_err(|e| e.with_path(path))?;
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

    /// The rules file shipped with netwarden: its comments document every field.
    const SHIPPED: &str = include_str!("../../rules.ron");

    /// The lines of `a` and `b` that differ: (removed, added), in order, from a plain line diff (the
    /// common prefix and suffix cut, which is all these edits need).
    fn changed_lines(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
        let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let suffix = a[prefix..]
            .iter()
            .rev()
            .zip(b[prefix..].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        (
            owned(&a[prefix..a.len() - suffix]),
            owned(&b[prefix..b.len() - suffix]),
        )
    }

    fn shipped() -> RuleFile {
        RuleFile::parse(SHIPPED).unwrap()
    }

    fn rewrite(new: &RuleFile) -> String {
        let text = rewrite_changed(SHIPPED, &shipped(), new).expect("the shipped file can be patched");
        assert_eq!(&RuleFile::parse(&text).unwrap(), new);
        text
    }

    #[test]
    fn unchanged_rules_are_written_byte_for_byte() {
        assert_eq!(rewrite(&shipped()), SHIPPED);
    }

    #[test]
    fn editing_one_rule_changes_only_that_rule() {
        let mut new = shipped();
        new.rules[2].dst_ports = vec!["22".into(), "2222".into()];
        let (removed, added) = changed_lines(SHIPPED, &rewrite(&new));
        assert_eq!(
            removed,
            ["        (name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\"]),"]
        );
        assert_eq!(
            added,
            ["        (name: \"no ssh\", action: Block, protocol: Tcp, dst_ports: [\"22\", \"2222\"]),"]
        );
        // A rule written over several lines becomes one line where it was; the comment above it stays.
        let mut new = shipped();
        new.rules[4].enabled = true;
        let text = rewrite(&new);
        let (removed, added) = changed_lines(SHIPPED, &text);
        assert_eq!(removed.len(), 10, "{removed:#?}");
        assert_eq!(added.len(), 1, "{added:#?}");
        assert!(added[0].starts_with("        (name: \"no telnet in (kernel)\", action: Block"));
        assert!(text.contains(
            "        // More examples, disabled: set `enabled: true` to use them.\n        (name: \"no telnet"
        ));
    }

    #[test]
    fn adding_deleting_and_reordering_keep_every_other_line() {
        // Add at the end: one new line after the last rule, with its indent.
        let mut new = shipped();
        new.rules.push(RuleSpec {
            name: "no smb".into(),
            action: Action::Block,
            protocol: Protocol::Tcp,
            dst_ports: vec!["445".into()],
            ..RuleSpec::default()
        });
        let (removed, added) = changed_lines(SHIPPED, &rewrite(&new));
        assert!(removed.is_empty(), "{removed:#?}");
        assert_eq!(
            added,
            ["        (name: \"no smb\", action: Block, protocol: Tcp, dst_ports: [\"445\"]),"]
        );
        // Delete: the rule goes with the comment lines that introduce it, nothing else.
        let mut new = shipped();
        new.rules.remove(3);
        let (removed, added) = changed_lines(SHIPPED, &rewrite(&new));
        assert_eq!(
            removed,
            ["        (name: \"no http\", action: Block, protocol: Tcp, dst_ports: [\"80\"]),"]
        );
        assert!(added.is_empty());
        // Reorder: the two rules swap, each with its own text and the comment just above it.
        let mut new = shipped();
        new.rules.swap(0, 1);
        let text = rewrite(&new);
        let (removed, added) = changed_lines(SHIPPED, &text);
        assert_eq!(removed.len(), 3, "{removed:#?}");
        assert!(removed[0].contains("// Trusted hosts first"));
        assert_eq!(
            added,
            [removed[2].clone(), removed[0].clone(), removed[1].clone()]
        );
        // Renaming is an edit in place; a new default policy changes one word.
        let mut new = shipped();
        new.rules[0].name = "gateway".into();
        new.default_policy = Action::Block;
        let text = rewrite(&new);
        assert_eq!(text.lines().count(), SHIPPED.lines().count());
        let differing: Vec<(&str, &str)> = SHIPPED
            .lines()
            .zip(text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(differing.len(), 2, "{differing:#?}");
        assert_eq!(differing[0].1, "    default_policy: Block,");
        assert!(differing[1].1.starts_with("        (name: \"gateway\""));
        // Every comment of the file is still there whatever the edit.
        for line in SHIPPED.lines().filter(|l| l.trim_start().starts_with("//")) {
            assert!(rewrite(&new).contains(line), "{line}");
        }
    }

    #[test]
    fn deleting_every_rule_and_adding_to_an_empty_list() {
        let mut new = shipped();
        new.rules.clear();
        let text = rewrite(&new);
        assert!(text.contains("    rules: [\n    ],"), "{text}");
        let empty = "(\n    // policy\n    default_policy: Allow,\n    rules: [],\n)\n";
        let mut new = RuleFile::parse(empty).unwrap();
        new.rules.push(RuleSpec {
            name: "a".into(),
            action: Action::Block,
            ..RuleSpec::default()
        });
        let text = rewrite_changed(empty, &RuleFile::parse(empty).unwrap(), &new).unwrap();
        assert!(text.starts_with("(\n    // policy\n"), "{text}");
        assert_eq!(RuleFile::parse(&text).unwrap(), new);
    }

    #[test]
    fn save_edited_keeps_comments_and_falls_back_when_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.ron");
        std::fs::write(&path, SHIPPED).unwrap();
        let mut new = shipped();
        new.rules[3].enabled = false;
        save_edited(&new, &shipped(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(changed_lines(SHIPPED, &text).0.len(), 1);
        // The file was edited by hand since the editor loaded it: it is written whole from the model.
        std::fs::write(&path, "(default_policy: Block, rules: [])").unwrap();
        save_edited(&new, &shipped(), &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(RuleFile::parse(&text).unwrap(), new);
        assert!(!text.contains("//"));
    }

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
