//! A/B scoring (CAA's format): the probability the model puts on each answer letter
//! right after `(`, under no steering, a fixed plan, or adaptive steering.

use burn::tensor::backend::Backend;
use masteer_anchor::Decision;
use masteer_datagen::{SampleKind, SteerSample};
use masteer_models::{InterventionPlan, LoadedModel, SeqInput};

use crate::error::{CoreError, Result};
use crate::router::Router;
use crate::strategy::Strategy;

/// How sequences are steered while scoring.
#[derive(Clone, Copy)]
pub enum Steering<'a> {
    /// The unsteered model.
    None,
    /// The same plan for every sequence.
    Fixed(&'a InterventionPlan),
    /// Each sequence routed to a strategy (or none) inside the prefill pass.
    Routed {
        /// The router (anchors or a gate).
        router: &'a Router,
        /// The strategies it routes to, looked up by name.
        strategies: &'a [Strategy],
    },
}

impl<'a> Steering<'a> {
    /// Steering by a library's router.
    pub fn by_library(library: &'a crate::StrategyLibrary) -> Result<Self> {
        let router = library.router.as_ref().ok_or_else(|| {
            CoreError::InvalidInput(
                "the library has no router: calibrate anchors or fit a gate first".into(),
            )
        })?;
        Ok(Steering::Routed {
            router,
            strategies: &library.strategies,
        })
    }

    /// The decider of a routed steering, `None` otherwise: the evaluation functions'
    /// way to [`Router::decider`].
    pub fn decider(&self) -> Result<Option<crate::adaptive::LibraryDecider<'a>>> {
        match *self {
            Steering::Routed { router, strategies } => Ok(Some(router.decider(strategies)?)),
            Steering::None | Steering::Fixed(_) => Ok(None),
        }
    }

    /// The fixed plan, if the steering is one.
    pub fn fixed_plan(&self) -> Option<&'a InterventionPlan> {
        match *self {
            Steering::Fixed(p) => Some(p),
            _ => None,
        }
    }
}

/// Log-probabilities of the two answer letters of one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct AbResult {
    /// `log p(positive letter)` after `(`.
    pub logp_positive: f32,
    /// `log p(negative letter)` after `(`.
    pub logp_negative: f32,
    /// The adaptive decision, when adaptive steering ran.
    pub decision: Option<Decision>,
}

impl AbResult {
    /// `p(positive) / (p(positive) + p(negative))`: the share of the two letters' mass on
    /// the wanted answer (CAA's behaviour score is this for the behaviour's letter).
    pub fn positive_share(&self) -> f64 {
        let (a, b) = (self.logp_positive as f64, self.logp_negative as f64);
        let m = a.max(b);
        let (ea, eb) = ((a - m).exp(), (b - m).exp());
        ea / (ea + eb)
    }

    /// `log p(positive) − log p(negative)`.
    pub fn margin(&self) -> f64 {
        (self.logp_positive - self.logp_negative) as f64
    }
}

/// Token id of a letter as it follows `(`.
fn letter_token<B: Backend>(lm: &LoadedModel<B>, answer: &str) -> Result<u32> {
    let ids = lm.tokenizer.encode(answer.trim())?;
    // "(A)" tokenises as "(", "A", ")": the letter is the second token.
    match ids.as_slice() {
        [_, letter, ..] => Ok(*letter),
        _ => Err(CoreError::InvalidInput(format!(
            "answer {answer:?} is not an A/B letter"
        ))),
    }
}

/// Score A/B samples in batches of `batch`.
pub fn score<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    steering: Steering<'_>,
    batch: usize,
) -> Result<Vec<AbResult>> {
    let open = lm.tokenizer.encode("(")?;
    let mut out = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch.max(1)) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut letters = Vec::with_capacity(chunk.len());
        for s in chunk {
            if s.kind != SampleKind::AbChoice {
                return Err(CoreError::InvalidInput(format!(
                    "sample `{}` is not an A/B sample",
                    s.id
                )));
            }
            let mut ids = lm.encode_chat(&s.prompt)?;
            let prompt_len = ids.len();
            ids.extend_from_slice(&open);
            letters.push((
                letter_token(lm, &s.positive)?,
                letter_token(lm, &s.negative)?,
            ));
            inputs.push(SeqInput {
                tokens: ids,
                prompt_len,
                plan: None,
            });
        }
        let positions: Vec<Vec<usize>> = inputs.iter().map(|s| vec![s.tokens.len() - 1]).collect();
        let (logits, decisions) = super::logits_at(lm, inputs, &positions, steering)?;
        for ((row, (p, n)), d) in logits.into_iter().zip(letters).zip(decisions) {
            out.push(AbResult {
                logp_positive: super::log_prob(&row[0], p),
                logp_negative: super::log_prob(&row[0], n),
                decision: d,
            });
        }
    }
    Ok(out)
}

/// Share of samples whose positive letter is more likely than the negative one
/// (accuracy when the positive is the correct answer).
pub fn accuracy(results: &[AbResult]) -> f64 {
    results
        .iter()
        .filter(|r| r.logp_positive > r.logp_negative)
        .count() as f64
        / results.len().max(1) as f64
}

/// Mean of [`AbResult::positive_share`].
pub fn mean_positive_share(results: &[AbResult]) -> f64 {
    results.iter().map(|r| r.positive_share()).sum::<f64>() / results.len().max(1) as f64
}
