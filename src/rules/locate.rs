//! Finding where a value sits in `rules.ron`, so validation errors point at line:column.
//!
//! serde gives us the values but not their positions, so after a successful parse a small tokenizer walks
//! the same text (skipping comments and strings properly) and records, for each rule of the `rules` list,
//! where the rule starts, where each field name and value starts and where each string literal of a list
//! value starts. Anything it does not understand makes it return `None`; callers then fall back to a
//! coarser position (the rule) or none. `layout` gives the same walk in bytes (each rule's text, the
//! commas, the top-level values), so the editor can rewrite only the rules the user changed.

/// A 1-based line and column (columns count characters, as ron does).
pub(crate) type Pos = (usize, usize);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open(char),
    Close(char),
    Colon,
    Comma,
    Ident(String),
    Str,
    Other,
}

fn tokenize(text: &str) -> Vec<(Tok, Pos)> {
    tokenize_spans(text)
        .into_iter()
        .map(|(tok, pos, _)| (tok, pos))
        .collect()
}

/// The tokens with their position and their byte range in `text`.
fn tokenize_spans(text: &str) -> Vec<(Tok, Pos, std::ops::Range<usize>)> {
    let chars: Vec<char> = text.chars().collect();
    // Byte offset of each character, and of the end.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte = |k: usize| bytes.get(k).copied().unwrap_or(text.len());
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // Advances over `n` characters, keeping line and column right.
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if let Some(&c) = chars.get(*i) {
                if c == '\n' {
                    *line += 1;
                    *col = 1;
                } else {
                    *col += 1;
                }
            }
            *i += 1;
        }
    };
    let at = |k: usize| chars.get(k).copied();
    while let Some(c) = at(i) {
        let pos = (line, col);
        let start = i;
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
        } else if c == '/' && at(i + 1) == Some('/') {
            while at(i).is_some_and(|c| c != '\n') {
                advance(&mut i, &mut line, &mut col, 1);
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            let mut depth = 0usize;
            while at(i).is_some() {
                if at(i) == Some('/') && at(i + 1) == Some('*') {
                    depth += 1;
                    advance(&mut i, &mut line, &mut col, 2);
                } else if at(i) == Some('*') && at(i + 1) == Some('/') {
                    depth = depth.saturating_sub(1);
                    advance(&mut i, &mut line, &mut col, 2);
                    if depth == 0 {
                        break;
                    }
                } else {
                    advance(&mut i, &mut line, &mut col, 1);
                }
            }
        } else if c == '"' || (c == 'b' && at(i + 1) == Some('"')) {
            if c == 'b' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            advance(&mut i, &mut line, &mut col, 1);
            while let Some(c) = at(i) {
                if c == '\\' {
                    advance(&mut i, &mut line, &mut col, 2);
                } else {
                    advance(&mut i, &mut line, &mut col, 1);
                    if c == '"' {
                        break;
                    }
                }
            }
            out.push((Tok::Str, pos, byte(start)..byte(i)));
        } else if (c == 'r' || (c == 'b' && at(i + 1) == Some('r')))
            && matches!(at(i + usize::from(c == 'b') + 1), Some('"' | '#'))
            && raw_string_hashes(&chars, i + usize::from(c == 'b') + 1).is_some()
        {
            let start = i + usize::from(c == 'b') + 1;
            let hashes = raw_string_hashes(&chars, start).unwrap_or(0);
            let skip = start - i + hashes + 1;
            advance(&mut i, &mut line, &mut col, skip);
            loop {
                match at(i) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| at(i + k) == Some('#')) => {
                        advance(&mut i, &mut line, &mut col, hashes + 1);
                        break;
                    }
                    Some(_) => advance(&mut i, &mut line, &mut col, 1),
                }
            }
            out.push((Tok::Str, pos, byte(start)..byte(i)));
        } else if c == '\'' {
            advance(&mut i, &mut line, &mut col, 1);
            while let Some(c) = at(i) {
                if c == '\\' {
                    advance(&mut i, &mut line, &mut col, 2);
                } else {
                    advance(&mut i, &mut line, &mut col, 1);
                    if c == '\'' {
                        break;
                    }
                }
            }
            out.push((Tok::Other, pos, byte(start)..byte(i)));
        } else if c.is_alphabetic() || c == '_' {
            let mut ident = String::new();
            while let Some(c) = at(i).filter(|c| c.is_alphanumeric() || *c == '_') {
                ident.push(c);
                advance(&mut i, &mut line, &mut col, 1);
            }
            out.push((Tok::Ident(ident), pos, byte(start)..byte(i)));
        } else {
            let tok = match c {
                '(' | '[' | '{' => Tok::Open(c),
                ')' | ']' | '}' => Tok::Close(c),
                ':' => Tok::Colon,
                ',' => Tok::Comma,
                _ => Tok::Other,
            };
            advance(&mut i, &mut line, &mut col, 1);
            out.push((tok, pos, byte(start)..byte(i)));
        }
    }
    out
}

/// For a raw string starting at `k` (just after `r`): the number of `#` before the opening quote.
fn raw_string_hashes(chars: &[char], k: usize) -> Option<usize> {
    let mut n = 0;
    loop {
        match chars.get(k + n) {
            Some('#') => n += 1,
            Some('"') => return Some(n),
            _ => return None,
        }
    }
}

/// Positions of one field of a rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSpan {
    pub name: String,
    pub name_pos: Pos,
    pub value_pos: Option<Pos>,
    /// Start of each string literal in the value, in order (the items of a list of strings).
    pub strings: Vec<Pos>,
}

/// Positions of one rule of the `rules` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSpan {
    pub start: Pos,
    pub fields: Vec<FieldSpan>,
}

impl RuleSpan {
    fn field(&self, name: &str) -> Option<&FieldSpan> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Where the field's name is, else the rule.
    pub fn field_pos(&self, name: &str) -> Pos {
        self.field(name).map_or(self.start, |f| f.name_pos)
    }

    /// Where the field's value is, else the rule.
    pub fn value_pos(&self, name: &str) -> Pos {
        self.field(name).and_then(|f| f.value_pos).unwrap_or(self.start)
    }

    /// Where the `item`-th string of the field's list is, else the field, else the rule.
    pub fn item_pos(&self, name: &str, item: usize) -> Pos {
        match self.field(name) {
            Some(f) => f.strings.get(item).copied().or(f.value_pos).unwrap_or(f.name_pos),
            None => self.start,
        }
    }
}

/// Positions of the top-level fields and of each rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSpans {
    pub rules: Vec<RuleSpan>,
}

/// Walks the text and records rule and field positions. Returns an empty `rules` list when the `rules`
/// field cannot be found.
pub(crate) fn scan(text: &str) -> FileSpans {
    let toks = tokenize(text);
    let mut spans = FileSpans::default();
    // Find `rules : [` at depth 1 (inside the top-level struct).
    let mut depth = 0usize;
    let mut list_start = None;
    for (k, (tok, _)) in toks.iter().enumerate() {
        match tok {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth = depth.saturating_sub(1),
            Tok::Ident(name)
                if depth == 1
                    && name == "rules"
                    && toks.get(k + 1).map(|t| &t.0) == Some(&Tok::Colon)
                    && toks.get(k + 2).map(|t| &t.0) == Some(&Tok::Open('[')) =>
            {
                list_start = Some(k + 3);
                break;
            }
            _ => {}
        }
    }
    let Some(mut k) = list_start else { return spans };
    // Each element: optional struct name, then `( field: value, .. )`.
    while let Some((tok, pos)) = toks.get(k) {
        match tok {
            Tok::Close(_) => break,
            Tok::Comma => k += 1,
            Tok::Ident(_) if toks.get(k + 1).map(|t| &t.0) == Some(&Tok::Open('(')) => {
                let (rule, next) = scan_rule(&toks, k + 1, *pos);
                spans.rules.push(rule);
                k = next;
            }
            Tok::Open('(') => {
                let (rule, next) = scan_rule(&toks, k, *pos);
                spans.rules.push(rule);
                k = next;
            }
            _ => return spans,
        }
    }
    spans
}

/// Scans one rule struct whose `(` is at `open`; returns it and the index after its `)`.
fn scan_rule(toks: &[(Tok, Pos)], open: usize, start: Pos) -> (RuleSpan, usize) {
    let mut rule = RuleSpan {
        start,
        fields: Vec::new(),
    };
    let mut depth = 0usize;
    let mut k = open;
    let mut current: Option<FieldSpan> = None;
    let mut expect_value = false;
    while let Some((tok, pos)) = toks.get(k) {
        match tok {
            Tok::Open(_) => {
                depth += 1;
                if depth > 1 && expect_value {
                    set_value(&mut current, *pos, &mut expect_value);
                }
            }
            Tok::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    rule.fields.extend(current.take());
                    return (rule, k + 1);
                }
            }
            Tok::Ident(name) if depth == 1 && toks.get(k + 1).map(|t| &t.0) == Some(&Tok::Colon) => {
                rule.fields.extend(current.take());
                current = Some(FieldSpan {
                    name: name.clone(),
                    name_pos: *pos,
                    ..FieldSpan::default()
                });
                expect_value = true;
                k += 2;
                continue;
            }
            Tok::Comma if depth == 1 => {
                rule.fields.extend(current.take());
            }
            Tok::Str => {
                if expect_value {
                    set_value(&mut current, *pos, &mut expect_value);
                }
                if let Some(f) = current.as_mut() {
                    f.strings.push(*pos);
                }
            }
            Tok::Ident(_) | Tok::Other | Tok::Colon | Tok::Comma => {
                if expect_value {
                    set_value(&mut current, *pos, &mut expect_value);
                }
            }
        }
        k += 1;
    }
    rule.fields.extend(current.take());
    (rule, k)
}

fn set_value(current: &mut Option<FieldSpan>, pos: Pos, expect_value: &mut bool) {
    if let Some(f) = current.as_mut() {
        f.value_pos = Some(pos);
    }
    *expect_value = false;
}

/// Where the parts of a rules file are, in bytes, for rewriting only what changed (`rules::save`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileLayout {
    /// The value of each top-level field (`default_policy`, `rules`, `detection`, `log`), by name.
    pub fields: Vec<(String, std::ops::Range<usize>)>,
    /// Just after the `[` of the rules list.
    pub list_open: usize,
    /// At the `]` of the rules list.
    pub list_close: usize,
    /// Each rule, from its first token (a struct name or `(`) to just after its `)`.
    pub rules: Vec<std::ops::Range<usize>>,
    /// Where the comma after each rule is, if it has one.
    pub commas: Vec<Option<usize>>,
}

/// The byte layout of a rules file: `None` when the text is not the shape the writer knows (one top-level
/// struct with a `rules: [ .. ]` list of structs); callers then rewrite the whole file.
pub(crate) fn layout(text: &str) -> Option<FileLayout> {
    let toks = tokenize_spans(text);
    let mut out = FileLayout::default();
    // The top-level struct: an optional name, then `(`.
    let mut k = match toks.first()? {
        (Tok::Open('('), ..) => 1,
        (Tok::Ident(_), ..) if matches!(toks.get(1), Some((Tok::Open('('), ..))) => 2,
        _ => return None,
    };
    let mut found_list = false;
    loop {
        match toks.get(k)? {
            (Tok::Close(')'), ..) => break,
            (Tok::Comma, ..) => k += 1,
            (Tok::Ident(name), ..) if matches!(toks.get(k + 1), Some((Tok::Colon, ..))) => {
                let value_start = toks.get(k + 2)?.2.start;
                // The value ends before the comma or `)` at this depth.
                let mut depth = 0usize;
                let mut end = k + 2;
                loop {
                    match toks.get(end)? {
                        (Tok::Open(_), ..) => depth += 1,
                        (Tok::Close(_), ..) if depth == 0 => break,
                        (Tok::Close(_), ..) => depth -= 1,
                        (Tok::Comma, ..) if depth == 0 => break,
                        _ => {}
                    }
                    end += 1;
                }
                let value_end = toks.get(end - 1)?.2.end;
                if name == "rules" {
                    found_list = true;
                    rules_layout(&toks[k + 2..end], &mut out)?;
                }
                out.fields.push((name.clone(), value_start..value_end));
                k = end;
            }
            _ => return None,
        }
    }
    found_list.then_some(out)
}

/// The rules list `[ (..), Name(..), .. ]`: each rule's bytes and the commas between them.
fn rules_layout(toks: &[(Tok, Pos, std::ops::Range<usize>)], out: &mut FileLayout) -> Option<()> {
    let (Tok::Open('['), _, open) = toks.first()? else {
        return None;
    };
    let (Tok::Close(']'), _, close) = toks.last()? else {
        return None;
    };
    out.list_open = open.end;
    out.list_close = close.start;
    let mut k = 1;
    while k + 1 < toks.len() {
        let start = toks.get(k)?.2.start;
        if matches!(toks.get(k)?.0, Tok::Ident(_)) {
            k += 1;
        }
        if !matches!(toks.get(k)?.0, Tok::Open('(')) {
            return None;
        }
        let mut depth = 0usize;
        loop {
            match toks.get(k)?.0 {
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        out.rules.push(start..toks.get(k)?.2.end);
        k += 1;
        match toks.get(k)? {
            (Tok::Comma, _, comma) => {
                out.commas.push(Some(comma.start));
                k += 1;
            }
            (Tok::Close(']'), ..) => out.commas.push(None),
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r##"// header "not a string" (
(
    default_policy: Allow, /* rules: [ nested /* comment */ ] */
    rules: [
        (name: "a,)", action: Allow, src: ["10.0.0.1", r#"::1"#]),
        RuleSpec(
            action: Block,
            name: "b",
            dst_ports: [
                "22",
                "90-80",
            ],
        ),
    ],
)
"##;

    #[test]
    fn finds_rules_fields_and_list_items() {
        let s = scan(TEXT);
        assert_eq!(s.rules.len(), 2);
        let a = &s.rules[0];
        assert_eq!(a.start, (5, 9));
        assert_eq!(a.value_pos("name"), (5, 16));
        assert_eq!(a.field_pos("action"), (5, 23));
        assert_eq!(a.item_pos("src", 0), (5, 44));
        assert_eq!(a.item_pos("src", 1), (5, 56));
        let b = &s.rules[1];
        assert_eq!(b.start, (6, 9));
        assert_eq!(b.value_pos("name"), (8, 19));
        assert_eq!(b.item_pos("dst_ports", 1), (11, 17));
        assert_eq!(b.value_pos("dst_ports"), (9, 24));
        // Missing fields fall back to the rule.
        assert_eq!(b.field_pos("enforce"), (6, 9));
        assert_eq!(b.item_pos("src", 3), (6, 9));
    }

    #[test]
    fn garbage_does_not_panic() {
        for t in [
            "",
            "(",
            "(rules: [",
            "(rules: [(name: \"",
            "(rules: [ 5 ])",
            "r###",
            "'",
            "/* /*",
        ] {
            let _ = scan(t);
        }
    }
}
