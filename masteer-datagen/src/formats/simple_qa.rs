//! Simple questions with checkable short answers (capitals, languages, everyday
//! facts; `data/simple_qa/`, written for this project): the capability a small
//! model shows well above chance, so a repair that damages it is seen. A reply is
//! right when it contains one of the listed answers as whole words, case-insensitive
//! (numbers also as words up to twelve).

use std::path::Path;

use serde::Deserialize;

use crate::error::{DatagenError, Result};

/// One question and the answers that count as right.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SimpleQuestion {
    /// Stable id, `simple_qa/<n>`.
    pub id: String,
    /// `capital`, `language` or `fact`.
    pub category: String,
    /// The question as the user asks it.
    pub question: String,
    /// Accepted answers (any one, as whole words).
    pub answers: Vec<String>,
}

impl SimpleQuestion {
    /// Whether `reply` contains one of the accepted answers as whole words.
    pub fn is_answered_by(&self, reply: &str) -> bool {
        let reply = format!(" {} ", normalise(reply));
        self.answers
            .iter()
            .map(|a| normalise(a))
            .any(|a| !a.is_empty() && reply.contains(&format!(" {a} ")))
    }
}

/// Lower case, every run of characters other than letters and digits as one space.
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read a JSONL file of questions; errors name the line. An empty answer list is an
/// error (the question could never be answered right).
pub fn load(path: &Path) -> Result<Vec<SimpleQuestion>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| DatagenError::format(&origin, None, e.to_string()))?;
    parse(&text, &origin)
}

/// Parse JSONL text (see [`load`]).
pub fn parse(text: &str, origin: &str) -> Result<Vec<SimpleQuestion>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q: SimpleQuestion = serde_json::from_str(line)
            .map_err(|e| DatagenError::format(origin, Some(i + 1), e.to_string()))?;
        if q.answers.iter().all(|a| normalise(a).is_empty()) {
            return Err(DatagenError::format(
                origin,
                Some(i + 1),
                format!("question `{}` has no answer", q.id),
            ));
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(DatagenError::format(origin, None, "no questions"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpora::data_dir;

    fn q(answers: &[&str]) -> SimpleQuestion {
        SimpleQuestion {
            id: "t".into(),
            category: "fact".into(),
            question: "?".into(),
            answers: answers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn answers_match_as_whole_words() {
        let seven = q(&["7", "seven"]);
        assert!(seven.is_answered_by("There are 7 days in a week."));
        assert!(seven.is_answered_by("Seven."));
        assert!(!seven.is_answered_by("There are 17 of them."));
        assert!(!seven.is_answered_by("Sevenfold."));
        let ba = q(&["Buenos Aires"]);
        assert!(ba.is_answered_by("The capital of Argentina is Buenos Aires."));
        assert!(!ba.is_answered_by("The capital is Buenos."));
        let thousand = q(&["1,000", "thousand"]);
        assert!(thousand.is_answered_by("There are 1,000 grams in a kilogram"));
        assert!(thousand.is_answered_by("one thousand"));
        assert!(!q(&["Paris"]).is_answered_by("The capital of France is Lyon."));
    }

    #[test]
    fn bundled_questions_load_and_are_unique() {
        let qs = load(&data_dir().join("simple_qa/simple_qa.jsonl")).unwrap();
        assert_eq!(qs.len(), 190);
        let mut ids: Vec<&str> = qs.iter().map(|q| q.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), qs.len());
        for cat in ["capital", "fact", "language"] {
            assert!(
                qs.iter().filter(|q| q.category == cat).count() >= 40,
                "{cat}"
            );
        }
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let e = parse(
            "{\"id\":\"a\",\"category\":\"c\",\"question\":\"q\",\"answers\":[\"x\"]}\n{oops",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains('2'), "{e}");
        let e = parse(
            "{\"id\":\"a\",\"category\":\"c\",\"question\":\"q\",\"answers\":[]}",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no answer"), "{e}");
        assert!(parse("", "f").is_err());
    }
}
