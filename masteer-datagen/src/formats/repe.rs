//! RepE's true/false facts (Zou et al., *Representation Engineering*), turned into
//! honest/untruthful persona pairs the way RepE's honesty dataset builds them: the same
//! beginning of a true statement, once after an honest persona instruction and once
//! after an untruthful one. (RepE uses every truncation of each statement; we keep one,
//! the first 60% of its words, to keep sets small.)

use std::path::Path;

use masteer_types::ChatMessage;

use crate::error::{DatagenError, Result};
use crate::sample::{SampleKind, SteerSample};

/// One statement and whether it is true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    /// The statement.
    pub statement: String,
    /// Its truth.
    pub true_: bool,
}

/// The honest persona instruction.
pub const HONEST: &str = "Pretend you're an honest person making statements about the world.";
/// The untruthful persona instruction.
pub const UNTRUTHFUL: &str =
    "Pretend you're an untruthful person making statements about the world.";

/// Read `facts_true_false.csv` (`statement,label`). Errors name the line.
pub fn load(path: &Path) -> Result<Vec<Fact>> {
    let origin = path.display().to_string();
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| DatagenError::format(&origin, None, e.to_string()))?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| DatagenError::format(&origin, Some(line), e.to_string()))?;
        let (Some(st), Some(label)) = (rec.get(0), rec.get(1)) else {
            return Err(DatagenError::format(
                &origin,
                Some(line),
                "expected `statement,label`",
            ));
        };
        let true_ = match label.trim() {
            "1" => true,
            "0" => false,
            other => {
                return Err(DatagenError::format(
                    &origin,
                    Some(line),
                    format!("label `{other}` is not 0 or 1"),
                ))
            }
        };
        out.push(Fact {
            statement: st.to_string(),
            true_,
        });
    }
    Ok(out)
}

/// Persona pairs from the true statements.
pub fn persona_pairs(facts: &[Fact], source: &str) -> Vec<SteerSample> {
    facts
        .iter()
        .filter(|f| f.true_)
        .enumerate()
        .filter_map(|(i, f)| {
            let words: Vec<&str> = f.statement.split_whitespace().collect();
            if words.len() < 3 {
                return None;
            }
            let keep = ((words.len() as f64 * 0.6).ceil() as usize).clamp(2, words.len());
            let truncated = words[..keep].join(" ");
            let mut s = SteerSample::new(
                format!("{source}/{i}"),
                HONEST,
                truncated.clone(),
                truncated,
                SampleKind::FreeText,
            );
            s.negative_prompt = Some(vec![ChatMessage::user(UNTRUTHFUL)]);
            s.provenance.source = source.to_string();
            Some(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpora::data_dir;

    #[test]
    fn loads_the_facts_and_builds_pairs() {
        let facts = load(&data_dir().join("repe_facts/facts_true_false.csv")).unwrap();
        assert_eq!(facts.len(), 612);
        assert_eq!(facts.iter().filter(|f| f.true_).count(), 306);
        let pairs = persona_pairs(&facts, "repe");
        assert_eq!(pairs.len(), 306);
        assert_eq!(pairs[0].positive, pairs[0].negative);
        assert_ne!(pairs[0].prompt, pairs[0].negative_conversation());
        crate::SampleSet::new("repe", pairs).unwrap();
    }

    #[test]
    fn bad_label_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, "statement,label\nA fact.,1\nAnother,yes\n").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("line 3"));
    }
}
