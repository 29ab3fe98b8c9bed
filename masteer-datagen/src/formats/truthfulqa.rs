//! TruthfulQA (Lin et al.): the multiple-choice JSON (`mc1_targets`, `mc2_targets`)
//! and the CSV of the generation task, in both the classic 817-question set (`v1/`)
//! and the 2025 790-question revision.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{DatagenError, Result};
use crate::sample::{SampleKind, SteerSample};

/// One multiple-choice question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McQuestion {
    /// The question.
    pub question: String,
    /// MC1: exactly one true answer among the choices.
    pub mc1: Vec<(String, bool)>,
    /// MC2: several true and false answers.
    pub mc2: Vec<(String, bool)>,
}

#[derive(Deserialize)]
struct McRaw {
    question: String,
    mc1_targets: BTreeMap<String, u8>,
    mc2_targets: BTreeMap<String, u8>,
}

/// Parse `mc_task.json`. Answers keep the file's order of keys sorted alphabetically
/// (JSON objects carry no order); each question must have exactly one MC1 truth and
/// at least one true and one false MC2 answer.
pub fn parse_mc(text: &str, origin: &str) -> Result<Vec<McQuestion>> {
    let raw: Vec<McRaw> = serde_json::from_str(text).map_err(|e| {
        DatagenError::format(
            origin,
            Some(e.line()),
            format!("not a TruthfulQA MC list: {e}"),
        )
    })?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let conv = |m: BTreeMap<String, u8>| {
                m.into_iter().map(|(k, v)| (k, v == 1)).collect::<Vec<_>>()
            };
            let q = McQuestion {
                question: r.question,
                mc1: conv(r.mc1_targets),
                mc2: conv(r.mc2_targets),
            };
            if q.mc1.iter().filter(|c| c.1).count() != 1 {
                return Err(DatagenError::format(
                    origin,
                    None,
                    format!("question {i}: MC1 needs exactly one true answer"),
                ));
            }
            if !q.mc2.iter().any(|c| c.1) || !q.mc2.iter().any(|c| !c.1) {
                return Err(DatagenError::format(
                    origin,
                    None,
                    format!("question {i}: MC2 needs true and false answers"),
                ));
            }
            Ok(q)
        })
        .collect()
}

/// Read `mc_task.json`.
pub fn load_mc(path: &Path) -> Result<Vec<McQuestion>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatagenError::io("reading", path, e))?;
    parse_mc(&text, &path.display().to_string())
}

/// One row of `TruthfulQA.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRow {
    /// Adversarial or Non-Adversarial.
    pub kind: String,
    /// Category (Misconceptions, ...).
    pub category: String,
    /// The question.
    pub question: String,
    /// The best true answer.
    pub best_answer: String,
    /// The best false answer (the 2025 file has it; for v1 the first incorrect answer).
    pub best_incorrect: String,
    /// All true answers.
    pub correct: Vec<String>,
    /// All false answers.
    pub incorrect: Vec<String>,
}

/// Read `TruthfulQA.csv` (either version). Errors name the line.
pub fn load_csv(path: &Path) -> Result<Vec<CsvRow>> {
    let file = std::fs::File::open(path).map_err(|e| DatagenError::io("reading", path, e))?;
    read_csv(file, &path.display().to_string())
}

/// Parse TruthfulQA CSV text from any reader; `origin` names it in errors, which name
/// the line.
pub fn read_csv(reader: impl std::io::Read, origin: &str) -> Result<Vec<CsvRow>> {
    let origin = origin.to_string();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| DatagenError::format(&origin, Some(1), e.to_string()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            DatagenError::format(&origin, Some(1), format!("missing column `{name}`"))
        })
    };
    let (ty, cat, q, best, cor, inc) = (
        need("Type")?,
        need("Category")?,
        need("Question")?,
        need("Best Answer")?,
        need("Correct Answers")?,
        need("Incorrect Answers")?,
    );
    let best_inc = col("Best Incorrect Answer");
    let split = |s: &str| {
        s.split(';')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(i + 2);
            DatagenError::format(&origin, Some(line), e.to_string())
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(i + 2);
        let get = |c: usize| {
            rec.get(c).map(str::to_string).ok_or_else(|| {
                DatagenError::format(&origin, Some(line), format!("row has {} fields", rec.len()))
            })
        };
        let incorrect = split(&get(inc)?);
        let best_incorrect = match best_inc {
            Some(c) => get(c)?,
            None => incorrect.first().cloned().unwrap_or_default(),
        };
        let row = CsvRow {
            kind: get(ty)?,
            category: get(cat)?,
            question: get(q)?,
            best_answer: get(best)?,
            best_incorrect,
            correct: split(&get(cor)?),
            incorrect,
        };
        if row.question.trim().is_empty()
            || row.best_answer.trim().is_empty()
            || row.best_incorrect.trim().is_empty()
        {
            return Err(DatagenError::format(
                &origin,
                Some(line),
                "empty question or answer",
            ));
        }
        out.push(row);
    }
    Ok(out)
}

/// Free-text truthfulness pairs: the question, the best true answer (positive) and
/// the best false answer (negative).
pub fn to_samples(rows: &[CsvRow], source: &str) -> Vec<SteerSample> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut s = SteerSample::new(
                format!("{source}/{i}"),
                r.question.clone(),
                r.best_answer.clone(),
                r.best_incorrect.clone(),
                SampleKind::FreeText,
            );
            s.provenance.source = source.to_string();
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpora::data_dir;

    #[test]
    fn both_versions_load_with_their_row_counts() {
        let d = data_dir().join("truthfulqa");
        assert_eq!(load_mc(&d.join("v1/mc_task.json")).unwrap().len(), 817);
        assert_eq!(load_mc(&d.join("mc_task.json")).unwrap().len(), 790);
        let v1 = load_csv(&d.join("v1/TruthfulQA.csv")).unwrap();
        assert_eq!(v1.len(), 817);
        assert_eq!(
            v1[0].question,
            "What happens to you if you eat watermelon seeds?"
        );
        assert_eq!(load_csv(&d.join("TruthfulQA.csv")).unwrap().len(), 790);
        let s = to_samples(&v1, "tqa");
        assert_ne!(s[0].positive, s[0].negative);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\nA,B,Q?,yes,yes,no,s\nA,B,,x,x,y,s\n").unwrap();
        let e = load_csv(&p).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&p, "Type,Question\nA,B\n").unwrap();
        assert!(load_csv(&p)
            .unwrap_err()
            .to_string()
            .contains("missing column"));
        assert!(parse_mc(
            "[{\"question\": \"q\", \"mc1_targets\": {\"a\": 0}, \"mc2_targets\": {}}]",
            "x"
        )
        .is_err());
    }
}
