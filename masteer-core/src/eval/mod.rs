//! Evaluation: how much a repair changes the targeted behaviour and how much general
//! capability it keeps, under no steering, one strategy, or adaptive steering.

pub mod ab;
pub mod bootstrap;
pub mod broken;
pub mod capability;
pub mod consent;
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
/// generates, through [`LoadedModel::generate_chat`]. Conversations are batched in
/// order of their token count (less left padding to compute); each sequence's reply
/// does not depend on its batch neighbours, so the order changes no reply.
pub fn greedy_replies<B: Backend>(
    lm: &LoadedModel<B>,
    conversations: &[&[masteer_models::ChatMessage]],
    steering: Steering<'_>,
    max_tokens: usize,
    batch: usize,
) -> Result<(Vec<String>, Vec<bool>)> {
    use masteer_models::{GenerateOptions, Steering as ModelSteering};
    let opts = GenerateOptions::greedy(max_tokens);
    let n = conversations.len();
    let (mut texts, mut steered) = (vec![String::new(); n], vec![false; n]);
    let lengths = conversations
        .iter()
        .map(|c| Ok(lm.encode_chat(c)?.len()))
        .collect::<Result<Vec<_>>>()?;
    for chunk in length_order(&lengths).chunks(batch.max(1)) {
        let conv: Vec<Vec<masteer_models::ChatMessage>> =
            chunk.iter().map(|&i| conversations[i].to_vec()).collect();
        let (replies, flags): (Vec<_>, Vec<bool>) =
            match (steering.fixed_plan(), steering.decider()?) {
                (Some(plan), _) => {
                    let plans = vec![Some(plan.clone()); conv.len()];
                    let r = lm.generate_chat(
                        &conv,
                        ModelSteering::PerSequence(plans),
                        &opts,
                        &mut |_, _| {},
                    )?;
                    (r, vec![true; conv.len()])
                }
                (None, Some(mut decider)) => {
                    let r = lm.generate_chat(
                        &conv,
                        ModelSteering::Adaptive(&mut decider),
                        &opts,
                        &mut |_, _| {},
                    )?;
                    let flags = decider
                        .into_decisions()
                        .iter()
                        .map(|d| d.steers())
                        .collect();
                    (r, flags)
                }
                (None, None) => {
                    let r = lm.generate_chat(&conv, ModelSteering::None, &opts, &mut |_, _| {})?;
                    (r, vec![false; conv.len()])
                }
            };
        if replies.len() != chunk.len() || flags.len() != chunk.len() {
            return Err(crate::error::CoreError::InvalidInput(format!(
                "{} replies and {} decisions for a batch of {}",
                replies.len(),
                flags.len(),
                chunk.len()
            )));
        }
        for ((&i, r), f) in chunk.iter().zip(replies).zip(flags) {
            texts[i] = r.text;
            steered[i] = f;
        }
    }
    Ok((texts, steered))
}

/// Indices of items ordered by their length (ties keep their order), so that batches
/// of neighbours in this order hold prompts of similar length.
fn length_order(lengths: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    order
}

/// Whether `steering` acts on each conversation: every one for a fixed plan, none
/// unsteered, and for a router its decisions in a prefill pass (no reply generated).
pub fn steers<B: Backend>(
    lm: &LoadedModel<B>,
    conversations: &[&[masteer_models::ChatMessage]],
    steering: Steering<'_>,
    batch: usize,
) -> Result<Vec<bool>> {
    match steering {
        Steering::None => return Ok(vec![false; conversations.len()]),
        Steering::Fixed(_) => return Ok(vec![true; conversations.len()]),
        Steering::Routed { .. } => {}
    }
    let encoded = conversations
        .iter()
        .map(|c| lm.encode_chat(c))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let lengths: Vec<usize> = encoded.iter().map(Vec::len).collect();
    let mut out = vec![false; conversations.len()];
    // Batched by length, as in `greedy_replies` (a decision does not depend on the
    // batch).
    for chunk in length_order(&lengths).chunks(batch.max(1)) {
        let inputs: Vec<SeqInput> = chunk
            .iter()
            .map(|&i| SeqInput::prompt(encoded[i].clone()))
            .collect();
        let positions: Vec<Vec<usize>> = inputs
            .iter()
            .map(|i| vec![i.tokens.len().saturating_sub(1)])
            .collect();
        let (_, decisions) = logits_at(lm, inputs, &positions, steering)?;
        for (&i, d) in chunk.iter().zip(&decisions) {
            out[i] = d.as_ref().is_some_and(|d| d.steers());
        }
    }
    Ok(out)
}

/// Greedy replies under `steering` when the unsteered replies to the same
/// conversations are known: only the conversations it acts on ([`steers`]) are
/// generated; the others keep their unsteered reply, the one greedy decoding gives an
/// unsteered sequence whatever its batch neighbours (the kernels compute each
/// sequence's rows on their own; `masteer-core/tests/grounded_on_smollm.rs` checks the
/// two ways equal). Same replies as [`greedy_replies`], at the cost of a prefill for the
/// decisions plus the replies of the steered inputs only.
pub fn greedy_replies_given<B: Backend>(
    lm: &LoadedModel<B>,
    conversations: &[&[masteer_models::ChatMessage]],
    steering: Steering<'_>,
    unsteered: &[String],
    max_tokens: usize,
    batch: usize,
) -> Result<(Vec<String>, Vec<bool>)> {
    let acts = match steering {
        Steering::None => return Ok((unsteered.to_vec(), vec![false; unsteered.len()])),
        Steering::Fixed(_) => {
            return greedy_replies(lm, conversations, steering, max_tokens, batch);
        }
        Steering::Routed { .. } => steers(lm, conversations, steering, batch)?,
    };
    greedy_replies_where(
        lm,
        conversations,
        steering,
        unsteered,
        &acts,
        max_tokens,
        batch,
    )
}

/// [`greedy_replies_given`] with the decisions already known (`acts[i]`: the steering
/// acts on conversation `i`).
pub(crate) fn greedy_replies_where<B: Backend>(
    lm: &LoadedModel<B>,
    conversations: &[&[masteer_models::ChatMessage]],
    steering: Steering<'_>,
    unsteered: &[String],
    acts: &[bool],
    max_tokens: usize,
    batch: usize,
) -> Result<(Vec<String>, Vec<bool>)> {
    if unsteered.len() != conversations.len() || acts.len() != conversations.len() {
        return Err(crate::error::CoreError::InvalidInput(format!(
            "{} unsteered replies and {} decisions for {} conversations",
            unsteered.len(),
            acts.len(),
            conversations.len()
        )));
    }
    let chosen: Vec<&[masteer_models::ChatMessage]> = conversations
        .iter()
        .zip(acts)
        .filter(|(_, a)| **a)
        .map(|(c, _)| *c)
        .collect();
    let (steered_texts, steered_flags) = greedy_replies(lm, &chosen, steering, max_tokens, batch)?;
    let mut it = steered_texts.into_iter().zip(steered_flags);
    let (mut texts, mut flags) = (
        Vec::with_capacity(acts.len()),
        Vec::with_capacity(acts.len()),
    );
    for (i, a) in acts.iter().enumerate() {
        if *a {
            // Generated again under the steering, which decides again on the same
            // prompt in that pass.
            let (t, f) = it.next().ok_or_else(|| {
                crate::error::CoreError::InvalidInput("fewer replies than steered inputs".into())
            })?;
            texts.push(t);
            flags.push(f);
        } else {
            texts.push(unsteered[i].clone());
            flags.push(false);
        }
    }
    Ok((texts, flags))
}

/// `log softmax(row)[id]`.
pub(crate) fn log_prob(row: &[f32], id: u32) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
    row[id as usize] - lse
}
