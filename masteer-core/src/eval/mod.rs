//! Evaluation: how much a repair changes the targeted behaviour and how much general
//! capability it keeps, under no steering, one strategy, or adaptive steering.

pub mod ab;
pub mod bootstrap;
pub mod capability;
#[cfg(feature = "plots")]
pub mod plot;
pub mod premise;
pub mod refusal;
pub mod report;
pub mod simple_qa;
pub mod stance;
pub mod suite;
pub mod truthfulqa;

use burn::tensor::backend::Backend;
use masteer_anchor::Decision;
use masteer_models::{Hooks, LoadedModel, SeqInput};

use crate::error::Result;
pub use ab::Steering;

/// Logits per sequence and position, with each sequence's adaptive decision.
pub type LogitsAndDecisions = (Vec<Vec<Vec<f32>>>, Vec<Option<Decision>>);

/// Logits at chosen positions under a steering, with the adaptive decisions (one per
/// sequence) when steering is adaptive. A fixed plan is attached to every sequence.
pub fn logits_at<B: Backend>(
    lm: &LoadedModel<B>,
    mut inputs: Vec<SeqInput>,
    positions: &[Vec<usize>],
    steering: Steering<'_>,
) -> Result<LogitsAndDecisions> {
    let n = inputs.len();
    if let Some(plan) = steering.fixed_plan() {
        for i in &mut inputs {
            i.plan = Some(plan.clone());
        }
    }
    match steering.decider()? {
        Some(mut decider) => {
            let mut hooks = Hooks::none().with_decider(&mut decider);
            let l =
                masteer_models::generation::logits_at(&lm.model, inputs, positions, &mut hooks)?;
            drop(hooks);
            Ok((l, decider.into_decisions().into_iter().map(Some).collect()))
        }
        None => Ok((
            masteer_models::generation::logits_at(
                &lm.model,
                inputs,
                positions,
                &mut Hooks::none(),
            )?,
            vec![None; n],
        )),
    }
}

/// Greedy replies (at most `max_tokens`) to conversations under a steering, in batches
/// of `batch`, with whether each sequence was steered: the one place evaluation
/// generates, through [`LoadedModel::generate_chat`].
pub fn greedy_replies<B: Backend>(
    lm: &LoadedModel<B>,
    conversations: &[&[masteer_models::ChatMessage]],
    steering: Steering<'_>,
    max_tokens: usize,
    batch: usize,
) -> Result<(Vec<String>, Vec<bool>)> {
    use masteer_models::{GenerateOptions, Steering as ModelSteering};
    let opts = GenerateOptions::greedy(max_tokens);
    let (mut texts, mut steered) = (Vec::new(), Vec::new());
    for chunk in conversations.chunks(batch.max(1)) {
        let conv: Vec<Vec<masteer_models::ChatMessage>> =
            chunk.iter().map(|c| c.to_vec()).collect();
        match (steering.fixed_plan(), steering.decider()?) {
            (Some(plan), _) => {
                let plans = vec![Some(plan.clone()); conv.len()];
                let r = lm.generate_chat(
                    &conv,
                    ModelSteering::PerSequence(plans),
                    &opts,
                    &mut |_, _| {},
                )?;
                texts.extend(r.into_iter().map(|r| r.text));
                steered.extend(std::iter::repeat_n(true, conv.len()));
            }
            (None, Some(mut decider)) => {
                let r = lm.generate_chat(
                    &conv,
                    ModelSteering::Adaptive(&mut decider),
                    &opts,
                    &mut |_, _| {},
                )?;
                texts.extend(r.into_iter().map(|r| r.text));
                steered.extend(decider.into_decisions().iter().map(|d| d.steers()));
            }
            (None, None) => {
                let r = lm.generate_chat(&conv, ModelSteering::None, &opts, &mut |_, _| {})?;
                texts.extend(r.into_iter().map(|r| r.text));
                steered.extend(std::iter::repeat_n(false, conv.len()));
            }
        }
    }
    Ok((texts, steered))
}

/// `log softmax(row)[id]`.
pub(crate) fn log_prob(row: &[f32], id: u32) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    row[id as usize] - lse
}
