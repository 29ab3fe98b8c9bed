//! Calibration data: for held-out samples, the unsteered representation and the repair
//! score of every strategy.

use serde::{Deserialize, Serialize};

use crate::error::{AnchorError, Result};

/// One calibration sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSample {
    /// Sample id (for reports).
    pub id: String,
    /// Its unsteered representation at the anchor point.
    pub representation: Vec<f32>,
    /// Repair score of each strategy (same order as [`CalibrationSet::strategies`]),
    /// as a gain over the unsteered model: "no steering" scores 0 by definition.
    pub scores: Vec<f64>,
    /// Whether the sample is in the scope. Out-of-scope samples (general
    /// prompts) always have "no steering" as their target, so that capability is kept.
    pub in_scope: bool,
}

/// Samples and the strategies they were scored for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSet {
    /// Strategy names, in score order.
    pub strategies: Vec<String>,
    /// The samples.
    pub samples: Vec<CalibrationSample>,
}

impl CalibrationSet {
    /// Width of the representations.
    pub fn width(&self) -> usize {
        self.samples
            .first()
            .map(|s| s.representation.len())
            .unwrap_or(0)
    }

    /// Check non-emptiness, shapes and finiteness.
    pub fn validate(&self) -> Result<()> {
        if self.samples.is_empty() {
            return Err(AnchorError::Empty);
        }
        let w = self.width();
        if w == 0 {
            return Err(AnchorError::Shape("representations have width 0".into()));
        }
        for s in &self.samples {
            if s.representation.len() != w {
                return Err(AnchorError::Shape(format!(
                    "sample `{}` has a representation of width {}, others {w}",
                    s.id,
                    s.representation.len()
                )));
            }
            if s.scores.len() != self.strategies.len() {
                return Err(AnchorError::Shape(format!(
                    "sample `{}` has {} scores for {} strategies",
                    s.id,
                    s.scores.len(),
                    self.strategies.len()
                )));
            }
            if s.representation.iter().any(|x| !x.is_finite()) {
                return Err(AnchorError::NonFinite(format!(
                    "the representation of `{}`",
                    s.id
                )));
            }
            if s.scores.iter().any(|x| !x.is_finite()) {
                return Err(AnchorError::NonFinite(format!("the scores of `{}`", s.id)));
            }
        }
        Ok(())
    }

    /// Index of the best strategy of a sample, or `None` when no strategy gains more
    /// than `min_gain` (or the sample is out of scope): its oracle target.
    pub fn target(&self, i: usize, min_gain: f64) -> Option<usize> {
        let s = &self.samples[i];
        if !s.in_scope {
            return None;
        }
        let (best, score) =
            s.scores
                .iter()
                .enumerate()
                .fold((None, f64::NEG_INFINITY), |(b, v), (k, &x)| {
                    if x > v {
                        (Some(k), x)
                    } else {
                        (b, v)
                    }
                });
        if score > min_gain {
            best
        } else {
            None
        }
    }

    /// Mean score of the per-sample oracle (each sample's best strategy, or none).
    pub fn oracle_score(&self, min_gain: f64) -> f64 {
        let n = self.samples.len().max(1) as f64;
        (0..self.samples.len())
            .map(|i| {
                self.target(i, min_gain)
                    .map(|k| self.samples[i].scores[k])
                    .unwrap_or(0.0)
            })
            .sum::<f64>()
            / n
    }
}
