//! The text of Suricata rules: splitting a rule file into rules (comments, blank lines,
//! `\` continuations), and one rule into its header and options, with Suricata's escaping.
//! Errors carry the column where the problem is.

use std::fmt;

/// A parse error inside one rule, at a 1-based column of the rule's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// 1-based column in the rule text (after joining continuation lines).
    pub column: usize,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// Why a `content` string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// A `|...|` block whose digits do not pair up; the digits collected.
    #[error("odd number of hex digits in |{0}|")]
    OddHex(String),
    /// A character inside `|...|` that is neither a hex digit nor whitespace.
    #[error("{0:?} is not a hex digit inside |...|")]
    NotHex(char),
    /// A `|` without its closing `|`.
    #[error("a |hex| block is not closed")]
    Unclosed,
    /// Two hex digits that do not make a byte (cannot happen after the digit check).
    #[error("{0}")]
    Byte(std::num::ParseIntError),
}

fn err(column: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        column,
        message: message.into(),
    }
}

/// One rule as written: the header's seven fields and the options in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRule {
    /// `alert`, `drop`, `pass`, `reject`, …
    pub action: String,
    /// `tcp`, `http`, `tcp-pkt`, …
    pub proto: String,
    /// Source address expression.
    pub src: String,
    /// Source port expression.
    pub sport: String,
    /// `->` or `<>`.
    pub direction: String,
    /// Destination address expression.
    pub dst: String,
    /// Destination port expression.
    pub dport: String,
    /// `(name, value, column)`: the value is unescaped-as-written (quotes kept), trimmed.
    pub options: Vec<(String, Option<String>, usize)>,
}

/// A rule's text with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleText {
    /// 1-based line of the first line of the rule.
    pub line: usize,
    /// The text, continuation lines joined.
    pub text: String,
}

/// Splits a rule file into rules: skips blank lines and `#` comments, joins lines ending in
/// `\` with the next.
pub fn split_rules(text: &str) -> Vec<RuleText> {
    let mut out = Vec::new();
    let mut current: Option<RuleText> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        match current.as_mut() {
            Some(rule) => rule.text.push_str(body),
            None => {
                let t = body.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                current = Some(RuleText {
                    line: i + 1,
                    text: t.to_string(),
                });
            }
        }
        if !continues {
            if let Some(rule) = current.take() {
                out.push(rule);
            }
        }
    }
    if let Some(rule) = current {
        out.push(rule);
    }
    out
}

/// Parses one rule's text.
pub fn parse_rule(text: &str) -> Result<RawRule, RuleError> {
    let open = text.find('(').ok_or_else(|| {
        err(
            text.len() + 1,
            "no option list: a rule ends with (msg:\"...\"; sid:N;)",
        )
    })?;
    let header: Vec<(usize, &str)> = fields(&text[..open]);
    if header.len() != 7 {
        let col = header.get(7).map(|(c, _)| *c).unwrap_or(open + 1);
        return Err(err(
            col,
            format!(
                "the header has {} fields; it needs 7: action protocol source port direction destination port",
                header.len()
            ),
        ));
    }
    let direction = header[4].1;
    if direction != "->" && direction != "<>" {
        return Err(err(
            header[4].0,
            format!("direction {direction:?} must be -> or <>"),
        ));
    }
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| err(text.len() + 1, "the option list is not closed with )"))?;
    if !text[close + 1..].trim().is_empty() {
        return Err(err(
            close + 2,
            "text after the closing ) of the option list",
        ));
    }
    let options = split_options(&text[open + 1..close], open + 2)?;
    Ok(RawRule {
        action: header[0].1.to_string(),
        proto: header[1].1.to_string(),
        src: header[2].1.to_string(),
        sport: header[3].1.to_string(),
        direction: direction.to_string(),
        dst: header[5].1.to_string(),
        dport: header[6].1.to_string(),
        options,
    })
}

/// Whitespace-separated fields with their 1-based columns; `[...]` groups may hold spaces.
fn fields(s: &str) -> Vec<(usize, &str)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let mut depth = 0i32;
        while i < bytes.len() && (depth > 0 || !bytes[i].is_ascii_whitespace()) {
            match bytes[i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        out.push((start + 1, &s[start..i]));
    }
    out
}

/// Splits `name:value;` options, honouring quotes and `\` escapes; `base` is the column of
/// the list's first character.
fn split_options(s: &str, base: usize) -> Result<Vec<(String, Option<String>, usize)>, RuleError> {
    // As in Suricata, options end at every `;` that is not escaped (`\;`), inside quotes
    // or not: a quote inside a PCRE such as `["']` is no delimiter.
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b';' => {
                push_option(&s[start..i], base + start, &mut out)?;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let tail = &s[start.min(s.len())..];
    let rest = tail.trim();
    if !rest.is_empty() {
        let lead = tail.len() - tail.trim_start().len();
        return Err(err(
            base + start + lead,
            format!("option {rest:?} is not ended with ;"),
        ));
    }
    Ok(out)
}

fn push_option(
    raw: &str,
    column: usize,
    out: &mut Vec<(String, Option<String>, usize)>,
) -> Result<(), RuleError> {
    let lead = raw.len() - raw.trim_start().len();
    let t = raw.trim();
    if t.is_empty() {
        return Ok(());
    }
    let (name, value) = match t.find(':') {
        Some(c) => (t[..c].trim(), Some(t[c + 1..].trim().to_string())),
        None => (t, None),
    };
    if let Some(v) = &value {
        let v = v.strip_prefix('!').unwrap_or(v).trim_start();
        if v.starts_with('"') && (v.len() < 2 || !v.ends_with('"')) {
            return Err(err(
                column + lead,
                format!("the quoted value of {name} is not closed"),
            ));
        }
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(err(
            column + lead,
            format!("{name:?} is not an option name"),
        ));
    }
    out.push((name.to_ascii_lowercase(), value, column + lead));
    Ok(())
}

/// Removes the surrounding quotes of a value, if any, and Suricata's escapes `\"`, `\;`,
/// `\\` and `\:`.
pub fn unquote(value: &str) -> String {
    let v = value.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v);
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | ';' | '\\' | ':')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a content string: `|41 42|` hex blocks mixed with text, after unquoting.
pub fn content_bytes(value: &str) -> Result<Vec<u8>, ContentError> {
    let v = unquote(value);
    let mut out = Vec::with_capacity(v.len());
    let mut in_hex = false;
    let mut hex = String::new();
    for c in v.chars() {
        if c == '|' {
            if in_hex {
                if !hex.trim().is_empty() {
                    return Err(ContentError::OddHex(hex));
                }
                hex.clear();
            }
            in_hex = !in_hex;
            continue;
        }
        if in_hex {
            if c.is_ascii_whitespace() {
                continue;
            }
            if !c.is_ascii_hexdigit() {
                return Err(ContentError::NotHex(c));
            }
            hex.push(c);
            if hex.len() == 2 {
                out.push(u8::from_str_radix(&hex, 16).map_err(ContentError::Byte)?);
                hex.clear();
            }
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    if in_hex {
        return Err(ContentError::Unclosed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_files_into_rules() {
        let text = "# comment\n\nalert tcp any any -> any any (msg:\"a\"; \\\n  sid:1;)\n  # indented comment\nalert udp any any -> any 53 (sid:2;)\n";
        let rules = split_rules(text);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].line, 3);
        assert_eq!(
            rules[0].text,
            "alert tcp any any -> any any (msg:\"a\";   sid:1;)"
        );
        assert_eq!(rules[1].line, 6);
    }

    #[test]
    fn parses_header_and_options() {
        let r = parse_rule(r#"alert http [$HOME_NET, !10.0.0.1] any -> $EXTERNAL_NET [80,8080] (msg:"semi\;colon \"q\""; content:"a|3b|b"; nocase; sid:5; rev:2;)"#)
            .expect("parse");
        assert_eq!(r.action, "alert");
        assert_eq!(r.proto, "http");
        assert_eq!(r.src, "[$HOME_NET, !10.0.0.1]");
        assert_eq!(r.dport, "[80,8080]");
        let names: Vec<&str> = r.options.iter().map(|o| o.0.as_str()).collect();
        assert_eq!(names, ["msg", "content", "nocase", "sid", "rev"]);
        assert_eq!(
            unquote(r.options[0].1.as_deref().expect("msg")),
            "semi;colon \"q\""
        );
        assert_eq!(
            content_bytes(r.options[1].1.as_deref().expect("content")).expect("bytes"),
            b"a;b"
        );
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse_rule("alert tcp any any => any any (sid:1;)").expect_err("direction");
        assert_eq!(e.column, 19);
        assert!(e.message.contains("->"), "{e}");
        let e = parse_rule("alert tcp any any -> any any (msg:\"open; sid:1;)").expect_err("quote");
        assert!(e.message.contains("not closed"), "{e}");
        let e = parse_rule("alert tcp any any -> any any sid:1;").expect_err("no parens");
        assert!(e.message.contains("option list"), "{e}");
        let e = parse_rule("alert tcp any -> any any (sid:1;)").expect_err("six fields");
        assert!(e.message.contains("7"), "{e}");
        let e = parse_rule("alert tcp any any -> any any (msg:\"x\"; sid:1)").expect_err("no ;");
        assert!(e.message.contains("not ended"), "{e}");
        assert_eq!(e.column, 40, "the column of `sid`");
    }

    #[test]
    fn content_hex_and_errors() {
        assert_eq!(
            content_bytes("\"|00 01|AB|ff|\"").expect("ok"),
            vec![0, 1, b'A', b'B', 0xff]
        );
        assert!(content_bytes("\"|0|\"").is_err());
        assert!(content_bytes("\"|zz|\"").is_err());
        assert!(content_bytes("\"|00\"").is_err());
    }
}
