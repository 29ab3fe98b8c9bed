//! The roles' prompt templates: built-in defaults (`prompts/*.txt` in this crate),
//! overridable by files of the same names in a directory the user chooses.

use std::path::Path;

use crate::error::{DatagenError, Result};

/// The templates of the LLM roles. Placeholders are `{name}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompts {
    /// Analyst: `{description}`.
    pub analyst: String,
    /// Writer, user message: `{scenario}`, `{example}`.
    pub writer: String,
    /// Writer, one reply: `{user}`, `{behaviour}`.
    pub reply: String,
    /// Consistency judge: `{good}`, `{user}`, `{first}`, `{second}`.
    pub judge: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            analyst: include_str!("../prompts/analyst.txt").to_string(),
            writer: include_str!("../prompts/writer.txt").to_string(),
            reply: include_str!("../prompts/reply.txt").to_string(),
            judge: include_str!("../prompts/judge.txt").to_string(),
        }
    }
}

impl Prompts {
    /// Defaults, with `analyst.txt`, `writer.txt`, `reply.txt` or `judge.txt` from `dir`
    /// where present.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut p = Self::default();
        for (name, slot) in [
            ("analyst.txt", &mut p.analyst),
            ("writer.txt", &mut p.writer),
            ("reply.txt", &mut p.reply),
            ("judge.txt", &mut p.judge),
        ] {
            let path = dir.join(name);
            if path.exists() {
                *slot = std::fs::read_to_string(&path)
                    .map_err(|e| DatagenError::io("reading", &path, e))?;
            }
        }
        Ok(p)
    }
}

/// Fill `{key}` placeholders.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in values {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// Value of the first line starting with `KEY:` (case-insensitive), trimmed.
pub fn field(reply: &str, key: &str) -> Option<String> {
    fields(reply, key).into_iter().next()
}

/// Values of every line starting with `KEY:`.
pub fn fields(reply: &str, key: &str) -> Vec<String> {
    let k = format!("{}:", key.to_lowercase());
    reply
        .lines()
        .map(|l| l.trim().trim_start_matches(['-', '*', ' ']).trim())
        .filter(|l| l.to_lowercase().starts_with(&k))
        .map(|l| l[k.len()..].trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The first sentence or line of a free reply, without quotes or labels; `None` when
/// nothing usable is left (too short, or a copy of the instructions).
pub fn first_sentence(reply: &str, max_chars: usize) -> Option<String> {
    let line = reply.lines().map(|l| l.trim()).find(|l| !l.is_empty())?;
    let line = match line.split_once(':') {
        Some((label, rest)) if label.len() <= 12 && !label.contains(' ') => rest.trim(),
        _ => line,
    };
    let line = line.trim_matches(|c: char| c == '"' || c == '\'' || c == '“' || c == '”');
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if matches!(c, '.' | '!' | '?') && i > 10 {
            end = i + c.len_utf8();
            break;
        }
    }
    let s: String = line[..end].chars().take(max_chars).collect();
    let s = s.trim().to_string();
    let lower = s.to_lowercase();
    let copied = [
        "write only",
        "one-sentence",
        "the assistant",
        "a user could send",
        "example of",
    ]
    .iter()
    .any(|p| lower.contains(p));
    (s.split_whitespace().count() >= 2 && !copied).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_cleans_replies() {
        assert_eq!(
            first_sentence("Reply: \"No, 2+2 is 4.\" I hope that helps.", 200).as_deref(),
            Some("No, 2+2 is 4.")
        );
        assert_eq!(
            first_sentence("\n\nI think the sky is green. Is it?", 200).as_deref(),
            Some("I think the sky is green.")
        );
        assert_eq!(first_sentence("Write only the reply.", 200), None);
        assert_eq!(first_sentence("Ok", 200), None);
        assert_eq!(
            fields("GOOD: a\nSCENARIO: b\n- SCENARIO: c", "scenario"),
            vec!["b", "c"]
        );
    }
}
