//! Matching an input to a strategy by cosine similarity to the anchors: a hard choice
//! with a margin over "no steering", or a softmax mix of strategies.

use serde::{Deserialize, Serialize};

use crate::anchors::{normalise, AnchorSet};
use crate::error::{AnchorError, Result};

/// How a representation is turned into a decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MatchMode {
    /// Steer with the most similar strategy if its similarity exceeds the
    /// no-steering similarity by more than `margin`; otherwise do not steer.
    Hard {
        /// Required lead over "no steering".
        margin: f32,
    },
    /// If the best strategy leads "no steering" by more than `margin`, mix the
    /// strategies with weights `softmax(similarity / temperature)` taken over the
    /// strategies and "no steering" (whose weight steers nothing).
    Soft {
        /// Softmax temperature.
        temperature: f32,
        /// Required lead over "no steering".
        margin: f32,
    },
}

/// The decision for one input, with what it was based on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The chosen strategy (hard), or the largest weight (soft); `None` for no steering.
    pub strategy: Option<usize>,
    /// Its name.
    pub name: Option<String>,
    /// Best cosine similarity to each strategy's anchors (`-1` when it has none).
    pub similarities: Vec<f32>,
    /// Best cosine similarity to the no-steering anchors (`-1` when there are none).
    pub none_similarity: f32,
    /// Lead of the best strategy over "no steering".
    pub margin: f32,
    /// Soft mode: the weight of each strategy (they and "no steering" sum to 1);
    /// empty in hard mode. A condition gate puts the share of its strategy's
    /// coefficient here when it is not the whole one (graded strength, or a negative
    /// share: steered the other way).
    pub weights: Vec<f32>,
}

impl Decision {
    /// Whether anything is steered.
    pub fn steers(&self) -> bool {
        if self.weights.is_empty() {
            self.strategy.is_some()
        } else {
            self.weights.iter().any(|w| *w != 0.0)
        }
    }
}

pub(crate) fn decide(set: &AnchorSet, rep: &[f32], mode: MatchMode) -> Result<Decision> {
    if rep.len() != set.width() {
        return Err(AnchorError::Shape(format!(
            "representation of width {}, anchors of width {}",
            rep.len(),
            set.width()
        )));
    }
    if rep.iter().any(|x| !x.is_finite()) {
        return Err(AnchorError::NonFinite("the representation to match".into()));
    }
    let k = set.strategies.len();
    let mut sims = vec![-1f32; k];
    let mut none = -1f32;
    if let Some(x) = normalise(rep, &set.center) {
        for a in &set.anchors {
            let c: f32 = x.iter().zip(&a.centroid).map(|(p, q)| p * q).sum();
            match a.strategy {
                Some(s) if s < k => sims[s] = sims[s].max(c),
                Some(_) => {}
                None => none = none.max(c),
            }
        }
    }
    let (best, best_sim) =
        sims.iter()
            .enumerate()
            .fold((None, f32::NEG_INFINITY), |(b, v), (i, &s)| {
                if s > v {
                    (Some(i), s)
                } else {
                    (b, v)
                }
            });
    let margin = best_sim - none;
    let has_anchor = |i: usize| set.anchors.iter().any(|a| a.strategy == Some(i));
    let lead = best.is_some_and(has_anchor);
    let (strategy, weights) = match mode {
        MatchMode::Hard { margin: m } => (if lead && margin > m { best } else { None }, Vec::new()),
        MatchMode::Soft {
            temperature,
            margin: m,
        } => {
            if lead && margin > m {
                let logits: Vec<f32> = sims
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        if has_anchor(i) {
                            *s / temperature
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                    .chain(std::iter::once(none / temperature))
                    .collect();
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f32 = exps.iter().sum();
                let w: Vec<f32> = exps[..k].iter().map(|e| e / total).collect();
                (best, w)
            } else {
                (None, vec![0.0; k])
            }
        }
    };
    Ok(Decision {
        name: strategy.map(|i| set.strategies[i].clone()),
        strategy,
        similarities: sims,
        none_similarity: none,
        margin,
        weights,
    })
}
