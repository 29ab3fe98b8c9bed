//! Safety sets: XSTest (Röttger et al.; safe prompts that look unsafe, and unsafe
//! ones), AdvBench (Zou et al.; harmful behaviours) and ToxiGen's seed sentences
//! (Hartvigsen et al.; hateful and neutral statements per target group).

use std::path::Path;

use crate::error::{DatagenError, Result};
use crate::sample::SteerSample;

/// One XSTest prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XsTestPrompt {
    /// The prompt.
    pub prompt: String,
    /// Its category (`homonyms`, `contrast_homonyms`...).
    pub category: String,
    /// Whether a model should comply (label `safe`).
    pub safe: bool,
}

/// One AdvBench harmful behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HarmfulRequest {
    /// The request.
    pub goal: String,
    /// The compliant answer's opening the benchmark targets.
    pub target: String,
}

/// One ToxiGen seed sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToxigenSentence {
    /// Target group (file name stem without `hate_`/`neutral_` and `_sentences`).
    pub group: String,
    /// Whether the sentence is hateful.
    pub hateful: bool,
    /// The sentence.
    pub text: String,
}

/// A CSV file's header names and its rows, each with its 1-based line number.
type Records = (Vec<String>, Vec<(usize, csv::StringRecord)>);

fn records(path: &Path) -> Result<Records> {
    let origin = path.display().to_string();
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| DatagenError::format(&origin, None, e.to_string()))?;
    let headers = r
        .headers()
        .map_err(|e| DatagenError::format(&origin, Some(1), e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        out.push((
            i + 2,
            rec.map_err(|e| DatagenError::format(&origin, Some(i + 2), e.to_string()))?,
        ));
    }
    Ok((headers, out))
}

fn column(headers: &[String], name: &str, origin: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| DatagenError::format(origin, Some(1), format!("missing column `{name}`")))
}

/// Read `xstest_prompts.csv`.
pub fn load_xstest(path: &Path) -> Result<Vec<XsTestPrompt>> {
    let origin = path.display().to_string();
    let (h, rows) = records(path)?;
    let (p, t, l) = (
        column(&h, "prompt", &origin)?,
        column(&h, "type", &origin)?,
        column(&h, "label", &origin)?,
    );
    rows.into_iter()
        .map(|(line, r)| {
            let safe = match r.get(l) {
                Some("safe") => true,
                Some("unsafe") => false,
                other => {
                    return Err(DatagenError::format(
                        &origin,
                        Some(line),
                        format!("label {other:?} is not safe/unsafe"),
                    ))
                }
            };
            Ok(XsTestPrompt {
                prompt: r.get(p).unwrap_or_default().to_string(),
                category: r.get(t).unwrap_or_default().to_string(),
                safe,
            })
        })
        .collect()
}

/// Read AdvBench's `harmful_behaviors.csv` (`goal,target`).
pub fn load_advbench(path: &Path) -> Result<Vec<HarmfulRequest>> {
    let origin = path.display().to_string();
    let (h, rows) = records(path)?;
    let (g, t) = (column(&h, "goal", &origin)?, column(&h, "target", &origin)?);
    rows.into_iter()
        .map(|(line, r)| match (r.get(g), r.get(t)) {
            (Some(goal), Some(target)) if !goal.trim().is_empty() => Ok(HarmfulRequest {
                goal: goal.to_string(),
                target: target.to_string(),
            }),
            _ => Err(DatagenError::format(&origin, Some(line), "empty goal")),
        })
        .collect()
}

/// Read every ToxiGen demonstration file under `dir` (recursively), sorted by path.
pub fn load_toxigen(dir: &Path) -> Result<Vec<ToxigenSentence>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| DatagenError::io("listing", &d, e))? {
            let p = e.map_err(|e| DatagenError::io("listing", &d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "txt") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let (hateful, rest) = if let Some(r) = stem.strip_prefix("hate_") {
            (true, r)
        } else if let Some(r) = stem.strip_prefix("neutral_") {
            (false, r)
        } else {
            continue;
        };
        let group = rest.trim_end_matches("_sentences").to_string();
        let text = std::fs::read_to_string(&f).map_err(|e| DatagenError::io("reading", &f, e))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            out.push(ToxigenSentence {
                group: group.clone(),
                hateful,
                text: line.trim_start_matches("- ").to_string(),
            });
        }
    }
    Ok(out)
}

/// The refusal every harmful-request pair wants.
pub const REFUSAL: &str = "I can't help with that. It could cause real harm.";
/// The compliant opening every safe-request pair wants.
pub const COMPLIANCE: &str = "Sure, here is an answer.";

/// Free-text pairs for the harmful-request issue: AdvBench requests are the trigger
/// side (wanted: a refusal; unwanted: AdvBench's compliant target), XSTest's safe
/// prompts that look unsafe ("How do I kill a Python process?") the control side
/// (wanted: an answer; unwanted: a refusal). Ids are `advbench/{i}` and `xstest/{i}`.
pub fn harmful_pairs(harmful: &[HarmfulRequest], xstest: &[XsTestPrompt]) -> Vec<SteerSample> {
    let mut out: Vec<SteerSample> = harmful
        .iter()
        .enumerate()
        .map(|(i, h)| {
            SteerSample::free_text_pair(
                format!("advbench/{i}"),
                h.goal.clone(),
                REFUSAL,
                h.target.clone(),
                "advbench",
                true,
            )
        })
        .collect();
    out.extend(
        xstest
            .iter()
            .enumerate()
            .filter(|(_, x)| x.safe)
            .map(|(i, x)| {
                SteerSample::free_text_pair(
                    format!("xstest/{i}"),
                    x.prompt.clone(),
                    COMPLIANCE,
                    REFUSAL,
                    "xstest",
                    false,
                )
            }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpora::data_dir;

    #[test]
    fn real_files_load_with_their_row_counts() {
        let x = load_xstest(&data_dir().join("xstest/xstest_prompts.csv")).unwrap();
        assert_eq!(x.len(), 450);
        assert_eq!(x.iter().filter(|p| p.safe).count(), 250);
        assert_eq!(
            load_advbench(&data_dir().join("advbench/harmful_behaviors.csv"))
                .unwrap()
                .len(),
            520
        );
        let t = load_toxigen(&data_dir().join("toxigen/demonstrations")).unwrap();
        assert!(t.iter().any(|s| s.hateful) && t.iter().any(|s| !s.hateful));
        assert!(t.iter().any(|s| s.group == "black"));
    }

    #[test]
    fn bad_labels_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "id,prompt,type,label\n1,hi,t,safe\n2,yo,t,maybe\n").unwrap();
        assert!(load_xstest(&p).unwrap_err().to_string().contains("line 3"));
    }
}
