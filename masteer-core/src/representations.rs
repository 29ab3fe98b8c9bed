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
    let mut out: std::collections::BTreeMap<HookPoint, Vec<Vec<f32>>> =
        points.iter().map(|p| (*p, Vec::new())).collect();
    for chunk in samples.chunks(batch.max(1)) {
        let inputs = chunk
            .iter()
            .map(|s| Ok(SeqInput::prompt(lm.encode_chat(&s.prompt)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut hooks = Hooks::capture(CaptureSpec::new(
            points.to_vec(),
            Positions::LastPromptToken,
        ));
        masteer_models::Session::prefill(&lm.model, inputs, 0, &mut hooks)?;
        for p in points {
            let a = hooks.captures.require(*p)?;
            if let Some(v) = out.get_mut(p) {
                v.extend(a.outer_iter().map(|r| r.to_vec()));
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
