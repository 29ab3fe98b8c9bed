//! `SampleSet`: samples with seeded train / validation / test splits, stored as JSONL
//! (atomic writes) and identified by a content hash.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DatagenError, Result};
use crate::sample::{SampleKind, SteerSample};

/// Format version written in the header line of a sample-set file.
pub const SAMPLE_SET_VERSION: u32 = 1;

/// Which split a sample belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Fitting steering vectors.
    Train,
    /// Choosing layers and coefficients, calibrating anchors.
    Validation,
    /// Reporting.
    Test,
}

/// Share of samples in each split (normalised when split).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Train share.
    pub train: f64,
    /// Validation share.
    pub validation: f64,
    /// Test share.
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.6,
            validation: 0.2,
            test: 0.2,
        }
    }
}

/// A named set of samples, each assigned to a split.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleSet {
    /// Name (the issue or dataset it serves).
    pub name: String,
    /// Seed used for the split.
    pub seed: u64,
    samples: Vec<SteerSample>,
    splits: Vec<Split>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    masteer_sample_set: u32,
    name: String,
    seed: u64,
    count: usize,
}

#[derive(Serialize, Deserialize)]
struct Line {
    split: Split,
    #[serde(flatten)]
    sample: SteerSample,
}

impl SampleSet {
    /// A set with every sample in `train`; errors on an empty set, duplicate ids, or a
    /// sample whose positive and negative answers are equal or empty.
    pub fn new(name: impl Into<String>, samples: Vec<SteerSample>) -> Result<Self> {
        let n = samples.len();
        let set = SampleSet {
            name: name.into(),
            seed: 0,
            samples,
            splits: vec![Split::Train; n],
        };
        set.validate()?;
        Ok(set)
    }

    fn validate(&self) -> Result<()> {
        if self.samples.is_empty() {
            return Err(DatagenError::InvalidSet(format!(
                "`{}` has no samples",
                self.name
            )));
        }
        let mut seen = HashSet::new();
        for s in &self.samples {
            if !seen.insert(s.id.as_str()) {
                return Err(DatagenError::InvalidSet(format!(
                    "duplicate sample id `{}`",
                    s.id
                )));
            }
            if s.positive.trim().is_empty() || s.negative.trim().is_empty() {
                return Err(DatagenError::InvalidSet(format!(
                    "sample `{}` has an empty answer (one-sided)",
                    s.id
                )));
            }
            if s.positive == s.negative && s.negative_conversation() == s.prompt.as_slice() {
                return Err(DatagenError::InvalidSet(format!(
                    "sample `{}` has the same positive and negative answer",
                    s.id
                )));
            }
            if s.prompt.is_empty() {
                return Err(DatagenError::InvalidSet(format!(
                    "sample `{}` has no prompt",
                    s.id
                )));
            }
        }
        Ok(())
    }

    /// Assign splits by a seeded shuffle, stratified by answer form: samples are grouped
    /// by kind and positive answer (so A/B letters stay balanced across splits), each
    /// group is shuffled, and its first `train` share goes to train, the next
    /// `validation` share to validation, the rest to test.
    pub fn split(mut self, fractions: SplitFractions, seed: u64) -> Result<Self> {
        let total = fractions.train + fractions.validation + fractions.test;
        if !(total.is_finite() && total > 0.0)
            || [fractions.train, fractions.validation, fractions.test]
                .iter()
                .any(|f| *f < 0.0)
        {
            return Err(DatagenError::InvalidSet(format!(
                "invalid split fractions {fractions:?}"
            )));
        }
        let mut strata: std::collections::BTreeMap<(u8, String), Vec<usize>> =
            std::collections::BTreeMap::new();
        for (i, s) in self.samples.iter().enumerate() {
            let key = match s.kind {
                SampleKind::AbChoice => (
                    0,
                    SteerSample::letter(&s.positive)
                        .map(String::from)
                        .unwrap_or_default(),
                ),
                SampleKind::FreeText => (1, String::new()),
            };
            strata.entry(key).or_default().push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (_, mut members) in strata {
            members.shuffle(&mut rng);
            let n = members.len();
            let n_train = ((fractions.train / total) * n as f64).round() as usize;
            let n_val = (((fractions.validation / total) * n as f64).round() as usize)
                .min(n - n_train.min(n));
            for (rank, &i) in members.iter().enumerate() {
                self.splits[i] = if rank < n_train {
                    Split::Train
                } else if rank < n_train + n_val {
                    Split::Validation
                } else {
                    Split::Test
                };
            }
        }
        self.seed = seed;
        Ok(self)
    }

    /// Put every sample in one split.
    pub fn all_in(mut self, split: Split) -> Self {
        self.splits.iter_mut().for_each(|s| *s = split);
        self
    }

    /// Append samples to a split; errors on duplicate ids.
    pub fn extend(&mut self, samples: Vec<SteerSample>, split: Split) -> Result<()> {
        let n = samples.len();
        self.samples.extend(samples);
        self.splits.extend(std::iter::repeat_n(split, n));
        self.validate()
    }

    /// All samples.
    pub fn samples(&self) -> &[SteerSample] {
        &self.samples
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the set is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The split of each sample, in sample order.
    pub fn splits(&self) -> &[Split] {
        &self.splits
    }

    /// Samples of one split.
    pub fn of(&self, split: Split) -> Vec<&SteerSample> {
        self.samples
            .iter()
            .zip(&self.splits)
            .filter(|(_, s)| **s == split)
            .map(|(x, _)| x)
            .collect()
    }

    /// SHA-256 of the canonical JSONL form (samples, splits, name, seed).
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        // Serialising these plain structs cannot fail.
        h.update(self.to_jsonl().unwrap_or_default().as_bytes());
        hex::encode(h.finalize())
    }

    /// The JSONL text: a header line, then one sample per line with its split.
    pub fn to_jsonl(&self) -> Result<String> {
        let mut out = String::new();
        let header = Header {
            masteer_sample_set: SAMPLE_SET_VERSION,
            name: self.name.clone(),
            seed: self.seed,
            count: self.samples.len(),
        };
        let enc = |e: serde_json::Error| DatagenError::InvalidSet(format!("cannot encode: {e}"));
        out.push_str(&serde_json::to_string(&header).map_err(enc)?);
        out.push('\n');
        for (sample, split) in self.samples.iter().zip(&self.splits) {
            let line = Line {
                split: *split,
                sample: sample.clone(),
            };
            out.push_str(&serde_json::to_string(&line).map_err(enc)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Write the set as JSONL, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = self.to_jsonl()?;
        masteer_types::fsutil::write_atomic(path, |f| f.write_all(text.as_bytes()))?;
        Ok(())
    }

    /// Read a set written by [`SampleSet::save`]. Errors name the offending line.
    pub fn load(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| DatagenError::io("opening", path, e))?;
        Self::read(std::io::BufReader::new(file), &path.display().to_string())
    }

    /// Parse JSONL from a reader (`origin` names it in errors).
    pub fn read(reader: impl BufRead, origin: &str) -> Result<Self> {
        let mut lines = reader.lines().enumerate();
        let header: Header = loop {
            match lines.next() {
                None => {
                    return Err(DatagenError::format(
                        origin,
                        None,
                        "empty file: no header line",
                    ))
                }
                Some((i, line)) => {
                    let line =
                        line.map_err(|e| DatagenError::format(origin, Some(i + 1), e.to_string()))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    break serde_json::from_str(&line).map_err(|e| {
                        DatagenError::format(
                            origin,
                            Some(i + 1),
                            format!("not a sample-set header: {e}"),
                        )
                    })?;
                }
            }
        };
        if header.masteer_sample_set != SAMPLE_SET_VERSION {
            return Err(DatagenError::format(
                origin,
                Some(1),
                format!(
                    "sample-set format version {} is not supported (expected {SAMPLE_SET_VERSION})",
                    header.masteer_sample_set
                ),
            ));
        }
        let mut samples = Vec::new();
        let mut splits = Vec::new();
        for (i, line) in lines {
            let line =
                line.map_err(|e| DatagenError::format(origin, Some(i + 1), e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let l: Line = serde_json::from_str(&line)
                .map_err(|e| DatagenError::format(origin, Some(i + 1), e.to_string()))?;
            samples.push(l.sample);
            splits.push(l.split);
        }
        if samples.len() != header.count {
            return Err(DatagenError::format(
                origin,
                None,
                format!(
                    "header announces {} samples, the file holds {} (truncated?)",
                    header.count,
                    samples.len()
                ),
            ));
        }
        let set = SampleSet {
            name: header.name,
            seed: header.seed,
            samples,
            splits,
        };
        set.validate()?;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize) -> Vec<SteerSample> {
        (0..n)
            .map(|i| {
                SteerSample::new(
                    format!("s{i}"),
                    format!("question {i}"),
                    "(A)",
                    "(B)",
                    SampleKind::AbChoice,
                )
            })
            .collect()
    }

    #[test]
    fn splits_are_seeded_and_proportional() {
        let a = SampleSet::new("x", samples(100))
            .unwrap()
            .split(SplitFractions::default(), 7)
            .unwrap();
        let b = SampleSet::new("x", samples(100))
            .unwrap()
            .split(SplitFractions::default(), 7)
            .unwrap();
        let c = SampleSet::new("x", samples(100))
            .unwrap()
            .split(SplitFractions::default(), 8)
            .unwrap();
        assert_eq!(a.splits(), b.splits());
        assert_ne!(a.splits(), c.splits());
        assert_eq!(a.of(Split::Train).len(), 60);
        assert_eq!(a.of(Split::Validation).len(), 20);
        assert_eq!(a.of(Split::Test).len(), 20);
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn splits_keep_letters_balanced() {
        let mixed: Vec<SteerSample> = (0..40)
            .map(|i| {
                let (p, n) = if i % 2 == 0 {
                    ("(A)", "(B)")
                } else {
                    ("(B)", "(A)")
                };
                SteerSample::new(format!("s{i}"), format!("q{i}"), p, n, SampleKind::AbChoice)
            })
            .collect();
        let set = SampleSet::new("m", mixed)
            .unwrap()
            .split(SplitFractions::default(), 3)
            .unwrap();
        for split in [Split::Train, Split::Validation, Split::Test] {
            let of = set.of(split);
            let a = of.iter().filter(|s| s.positive == "(A)").count();
            assert_eq!(a * 2, of.len(), "{split:?}: {a} of {}", of.len());
        }
    }

    #[test]
    fn jsonl_round_trip_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("set.jsonl");
        let set = SampleSet::new("sycophancy", samples(5))
            .unwrap()
            .split(SplitFractions::default(), 1)
            .unwrap();
        set.save(&p).unwrap();
        assert_eq!(SampleSet::load(&p).unwrap(), set);
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[3] = "{\"split\": \"train\", \"id\": ";
        let e = SampleSet::read(lines.join("\n").as_bytes(), "set.jsonl").unwrap_err();
        assert!(e.to_string().contains("line 4"), "{e}");
        let truncated: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
        let e = SampleSet::read(truncated.as_bytes(), "set.jsonl").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(SampleSet::read("".as_bytes(), "x").is_err());
    }

    #[test]
    fn invalid_sets_are_refused() {
        assert!(SampleSet::new("e", vec![]).is_err());
        let mut dup = samples(2);
        dup[1].id = "s0".into();
        assert!(SampleSet::new("d", dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        let mut one = samples(1);
        one[0].negative = " ".into();
        assert!(SampleSet::new("o", one)
            .unwrap_err()
            .to_string()
            .contains("one-sided"));
        let mut same = samples(1);
        same[0].negative = "(A)".into();
        assert!(SampleSet::new("s", same).is_err());
    }
}
