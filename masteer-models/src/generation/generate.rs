//! Batched, KV-cached generation with per-sequence plans, stop tokens and a
//! streaming callback.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::sampling::Sampler;
use super::session::{Hooks, SeqInput, Session};
use crate::error::{ModelError, Result};
use crate::hooks::{Decider, InterventionPlan};
use crate::model::Llama;
pub use masteer_types::GenerateOptions;

/// Why a sequence stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It produced a stop id (included in the tokens).
    StopToken,
    /// It reached `max_new_tokens`.
    MaxTokens,
}

/// The output of one sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Generated ids (the stop id included when one ended the sequence).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop: StopReason,
}

/// How each sequence of a batch is steered.
pub enum Steering<'a> {
    /// The unsteered model.
    None,
    /// One plan (or none) per sequence, in order.
    PerSequence(Vec<Option<InterventionPlan>>),
    /// Plans chosen per sequence inside the prefill pass (adaptive steering).
    Adaptive(&'a mut dyn Decider),
}

/// A decoded reply with its tokens and why it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The text, special tokens removed.
    pub text: String,
    /// The generated ids.
    pub generation: Generation,
}

/// Logits of the last column of `hidden` (`[batch, cols, width]`) on the host, one row per sequence.
pub(crate) fn last_logits<B: Backend>(
    model: &Llama<B>,
    hidden: Tensor<B, 3>,
) -> Result<Vec<Vec<f32>>> {
    let [b, t, w] = hidden.dims();
    let last = hidden.narrow(1, t - 1, 1).reshape([b, w]);
    let logits = model.logits(last);
    let v = logits.dims()[1];
    let data = logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("reading logits: {e:?}")))?;
    Ok(data.chunks(v).map(|c| c.to_vec()).collect())
}

/// Generate with `model` for a batch of prompts (the token-level loop under
/// [`LoadedModel::generate_chat`](crate::LoadedModel::generate_chat)). `on_token(seq, id)`
/// is called for every new token as soon as it is chosen. Returns each sequence's
/// output and the session (whose cache holds prompt and output).
pub fn generate<B: Backend>(
    model: &Llama<B>,
    inputs: Vec<SeqInput>,
    opts: &GenerateOptions,
    default_stop_ids: &[u32],
    hooks: &mut Hooks<'_>,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<(Vec<Generation>, Session<B>)> {
    run(
        model,
        inputs,
        opts,
        default_stop_ids,
        hooks,
        on_token,
        false,
    )
}

/// [`generate`] for callers that keep only the tokens: a sequence that stops leaves
/// the batch (its cache row is dropped, [`Session::retain`]), so the remaining steps
/// compute only the sequences still running. Each sequence's tokens are the same as
/// with [`generate`] (a row's arithmetic does not depend on its neighbours). Captures
/// are refused: their rows would no longer line up with the batch.
pub fn generate_replies<B: Backend>(
    model: &Llama<B>,
    inputs: Vec<SeqInput>,
    opts: &GenerateOptions,
    default_stop_ids: &[u32],
    hooks: &mut Hooks<'_>,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Generation>> {
    if hooks.capture.is_some() {
        return Err(ModelError::InvalidInput(
            "captures need every sequence in the batch to the end: use `generate`".into(),
        ));
    }
    Ok(run(model, inputs, opts, default_stop_ids, hooks, on_token, true)?.0)
}

/// The loop under [`generate`] and [`generate_replies`]; `drop_finished` lets stopped
/// sequences leave the batch.
fn run<B: Backend>(
    model: &Llama<B>,
    inputs: Vec<SeqInput>,
    opts: &GenerateOptions,
    default_stop_ids: &[u32],
    hooks: &mut Hooks<'_>,
    on_token: &mut dyn FnMut(usize, u32),
    drop_finished: bool,
) -> Result<(Vec<Generation>, Session<B>)> {
    let b = inputs.len();
    let stop_ids: Vec<u32> = opts
        .stop_ids
        .clone()
        .unwrap_or_else(|| default_stop_ids.to_vec());
    let (mut session, hidden) = Session::prefill(model, inputs, opts.max_new_tokens, hooks)?;
    let mut samplers: Vec<Sampler> = (0..b)
        .map(|i| {
            Sampler::new(
                opts.temperature,
                opts.top_k,
                opts.top_p,
                opts.seed.wrapping_add(i as u64),
            )
        })
        .collect();
    let mut outs: Vec<Generation> = (0..b)
        .map(|_| Generation {
            tokens: Vec::new(),
            stop: StopReason::MaxTokens,
        })
        .collect();
    let mut done = vec![false; b];
    if opts.max_new_tokens == 0 {
        return Ok((outs, session));
    }
    let mut logits = last_logits(model, hidden)?;
    // The sequence in each row of the session (rows leave when `drop_finished`).
    let mut live: Vec<usize> = (0..b).collect();
    for step in 0..opts.max_new_tokens {
        let mut next = Vec::with_capacity(live.len());
        for (row, &i) in live.iter().enumerate() {
            if done[i] {
                // Finished sequences keep a valid id flowing; their outputs are ignored.
                next.push(*outs[i].tokens.last().unwrap_or(&0));
                continue;
            }
            let id = samplers[i].sample(&logits[row]);
            outs[i].tokens.push(id);
            on_token(i, id);
            if stop_ids.contains(&id) {
                done[i] = true;
                outs[i].stop = StopReason::StopToken;
            }
            next.push(id);
        }
        if done.iter().all(|&d| d) || step + 1 == opts.max_new_tokens {
            break;
        }
        if drop_finished && live.iter().any(|&i| done[i]) {
            let keep: Vec<usize> = (0..live.len()).filter(|&r| !done[live[r]]).collect();
            session.retain(&keep)?;
            next = keep.iter().map(|&r| next[r]).collect();
            live = keep.iter().map(|&r| live[r]).collect();
        }
        let hidden = session.step(model, &next, hooks)?;
        logits = last_logits(model, hidden)?;
    }
    Ok((outs, session))
}
