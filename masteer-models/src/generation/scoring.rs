//! Scoring: log-probabilities of given continuations after given prompts, and logits
//! at chosen positions, in one batched forward pass.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::session::{Hooks, SeqInput, Session};
use crate::error::{ModelError, Result};
use crate::hooks::InterventionPlan;
use crate::model::Llama;

/// A continuation to score after a prompt.
#[derive(Clone, Debug, Default)]
pub struct ScoreRequest {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Continuation ids (at least one).
    pub continuation: Vec<u32>,
    /// Interventions while scoring (continuation tokens count as generated positions).
    pub plan: Option<InterventionPlan>,
}

/// Log-probabilities of one continuation.
#[derive(Clone, Debug, PartialEq)]
pub struct ContinuationScore {
    /// `log p(token_k | prompt, tokens_<k)` for every continuation token.
    pub token_logprobs: Vec<f32>,
}

impl ContinuationScore {
    /// Sum of the token log-probabilities: the continuation's log-probability.
    pub fn total(&self) -> f32 {
        self.token_logprobs.iter().sum()
    }
}

fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("reading results: {e:?}")))
}

/// Logits of `model` at chosen absolute positions of each sequence: `positions[i]`
/// lists positions of sequence `i`. Returns, per sequence, one `vocab`-long row per
/// requested position. One batched forward pass; no cache is kept.
pub fn logits_at<B: Backend>(
    model: &Llama<B>,
    inputs: Vec<SeqInput>,
    positions: &[Vec<usize>],
    hooks: &mut Hooks<'_>,
) -> Result<Vec<Vec<Vec<f32>>>> {
    if positions.len() != inputs.len() {
        return Err(ModelError::InvalidInput(format!(
            "{} position lists for {} sequences",
            positions.len(),
            inputs.len()
        )));
    }
    let lens: Vec<usize> = inputs.iter().map(|s| s.tokens.len()).collect();
    for (i, ps) in positions.iter().enumerate() {
        if let Some(&p) = ps.iter().find(|&&p| p >= lens[i]) {
            return Err(ModelError::InvalidInput(format!(
                "position {p} of sequence {i} is beyond its {} tokens",
                lens[i]
            )));
        }
    }
    let (_, hidden) = Session::prefill(model, inputs, 0, hooks)?;
    let [b, t, w] = hidden.dims();
    let mut idx = Vec::new();
    for i in 0..b {
        let pad = t - lens[i];
        idx.extend(positions[i].iter().map(|&p| (i * t + pad + p) as i64));
    }
    if idx.is_empty() {
        return Ok(vec![Vec::new(); b]);
    }
    let device = hidden.device();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(idx.clone(), [idx.len()]), &device);
    let rows = hidden.reshape([b * t, w]).select(0, index);
    let logits = model.logits(rows);
    let v = logits.dims()[1];
    let data = to_host(logits)?;
    let mut chunks = data.chunks(v);
    Ok(positions
        .iter()
        .map(|ps| {
            ps.iter()
                .filter_map(|_| chunks.next().map(|c| c.to_vec()))
                .collect()
        })
        .collect())
}

/// Log-probabilities under `model` of each request's continuation, all requests in
/// one batch.
pub fn score<B: Backend>(
    model: &Llama<B>,
    requests: &[ScoreRequest],
    hooks: &mut Hooks<'_>,
) -> Result<Vec<ContinuationScore>> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    for (i, r) in requests.iter().enumerate() {
        if r.prompt.is_empty() || r.continuation.is_empty() {
            return Err(ModelError::InvalidInput(format!(
                "score request {i} needs a non-empty prompt and continuation"
            )));
        }
    }
    let inputs: Vec<SeqInput> = requests
        .iter()
        .map(|r| {
            let mut tokens = r.prompt.clone();
            tokens.extend_from_slice(&r.continuation);
            SeqInput {
                tokens,
                prompt_len: r.prompt.len(),
                plan: r.plan.clone(),
            }
        })
        .collect();
    let lens: Vec<usize> = inputs.iter().map(|s| s.tokens.len()).collect();
    let (_, hidden) = Session::prefill(model, inputs, 0, hooks)?;
    let [b, t, w] = hidden.dims();
    let mut idx = Vec::new();
    let mut targets = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let pad = t - lens[i];
        for (k, &tok) in r.continuation.iter().enumerate() {
            // The logits at position prompt_len − 1 + k predict continuation token k.
            idx.push((i * t + pad + r.prompt.len() - 1 + k) as i64);
            targets.push(tok as i64);
        }
    }
    let device = hidden.device();
    let n = idx.len();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [n]), &device);
    let rows = hidden.reshape([b * t, w]).select(0, index);
    let logp = log_softmax(model.logits(rows), 1);
    let tgt = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
    let picked = to_host(logp.gather(1, tgt))?;
    let mut it = picked.into_iter();
    Ok(requests
        .iter()
        .map(|r| ContinuationScore {
            token_logprobs: it.by_ref().take(r.continuation.len()).collect(),
        })
        .collect())
}
