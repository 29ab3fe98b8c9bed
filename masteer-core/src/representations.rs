//! Building the calibration set of the anchors: for held-out samples, the unsteered
//! representation at the anchor point and, for every strategy, the repair score —
//! the gain of `log p(positive) − log p(negative)` over the unsteered model.

use burn::tensor::backend::Backend;
use masteer_anchor::{CalibrationSample, CalibrationSet};
use masteer_datagen::SteerSample;
use masteer_models::{CaptureSpec, HookPoint, Hooks, LoadedModel, Positions, SeqInput};

use crate::error::Result;
use crate::eval::ab::{self, Steering};
use crate::strategy::Strategy;

/// Representations of each sample's prompt (last prompt token) at `point`, unsteered.
pub fn representations<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    point: HookPoint,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    Ok(prompt_representations(lm, samples, &[point], batch)?
        .remove(&point)
        .unwrap_or_default())
}

/// Representations of each prompt's last token at `points`, unsteered, in one pass per batch.
pub fn prompt_representations<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    points: &[HookPoint],
    batch: usize,
) -> Result<std::collections::BTreeMap<HookPoint, Vec<Vec<f32>>>> {
    Ok(
        pooled_prompt_representations(lm, samples, points, &[1], batch)?
            .into_iter()
            .map(|((p, _), v)| (p, v))
            .collect(),
    )
}

/// Prompt representations keyed by hook point and pooling (tokens averaged).
pub type PooledRepresentations = std::collections::BTreeMap<(HookPoint, usize), Vec<Vec<f32>>>;

/// Representations of each prompt at `points`, unsteered, for every pooling in
/// `pooled` (the mean over the prompt's last `n` tokens, `n = 1` the last token alone,
/// averaged as a gate's decider averages them inside the prefill pass), in one pass per
/// batch. Keyed by point and pooling.
pub fn pooled_prompt_representations<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    points: &[HookPoint],
    pooled: &[usize],
    batch: usize,
) -> Result<PooledRepresentations> {
    let mut out: PooledRepresentations = points
        .iter()
        .flat_map(|p| pooled.iter().map(move |n| ((*p, (*n).max(1)), Vec::new())))
        .collect();
    let longest = pooled.iter().copied().max().unwrap_or(1).max(1);
    for chunk in samples.chunks(batch.max(1)) {
        let tokens = chunk
            .iter()
            .map(|s| lm.encode_chat(&s.prompt).map_err(Into::into))
            .collect::<Result<Vec<Vec<u32>>>>()?;
        let positions = if longest == 1 {
            Positions::LastPromptToken
        } else {
            Positions::Prompt
        };
        let mut hooks = Hooks::capture(CaptureSpec::new(points.to_vec(), positions));
        let inputs = tokens.iter().map(|t| SeqInput::prompt(t.clone())).collect();
        masteer_models::Session::prefill(&lm.model, inputs, 0, &mut hooks)?;
        for p in points {
            let a = hooks.captures.require(*p)?;
            let w = a.ncols();
            let data = a.as_slice().ok_or_else(|| {
                crate::error::CoreError::InvalidInput(format!("captures at {p} are not contiguous"))
            })?;
            for (seq, t) in tokens.iter().enumerate() {
                for &n in pooled {
                    let n = n.max(1);
                    let rows = (t.len().saturating_sub(n)..t.len())
                        .map(|pos| {
                            hooks.captures.row_of(seq, pos).ok_or_else(|| {
                                crate::error::CoreError::InvalidInput(format!(
                                    "position {pos} of prompt {seq} was not captured at {p}"
                                ))
                            })
                        })
                        .collect::<Result<Vec<usize>>>()?;
                    let mean = masteer_models::hooks::mean_of_rows(
                        rows.iter().map(|&r| &data[r * w..(r + 1) * w]),
                        w,
                    );
                    if let Some(v) = out.get_mut(&(*p, n)) {
                        v.push(mean);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Score every strategy on in-scope and out-of-scope A/B samples and collect their
/// representations at `point`.
pub fn calibration_set<B: Backend>(
    lm: &LoadedModel<B>,
    strategies: &[Strategy],
    point: HookPoint,
    in_scope: &[&SteerSample],
    out_of_scope: &[&SteerSample],
    batch: usize,
) -> Result<CalibrationSet> {
    let all: Vec<&SteerSample> = in_scope.iter().chain(out_of_scope).copied().collect();
    let reps = representations(lm, &all, point, batch)?;
    let base = ab::score(lm, &all, Steering::None, batch)?;
    let mut per_strategy = Vec::with_capacity(strategies.len());
    for s in strategies {
        let plan = s.plan();
        per_strategy.push(ab::score(lm, &all, Steering::Fixed(&plan), batch)?);
    }
    let samples = all
        .iter()
        .enumerate()
        .map(|(i, s)| CalibrationSample {
            id: s.id.clone(),
            representation: reps[i].clone(),
            scores: per_strategy
                .iter()
                .map(|r| r[i].margin() - base[i].margin())
                .collect(),
            in_scope: i < in_scope.len(),
        })
        .collect();
    Ok(CalibrationSet {
        strategies: strategies.iter().map(|s| s.name.clone()).collect(),
        samples,
    })
}
