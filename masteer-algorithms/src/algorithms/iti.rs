//! Inference-time intervention (ITI, Li et al. 2023): probe every attention head,
//! keep the K most accurate, shift each along its direction by α standard deviations.

use std::collections::BTreeMap;

use masteer_types::{Positions, Site};
use ndarray::{concatenate, Axis};
use rayon::prelude::*;

use super::logistic;
use crate::activations::ContrastActivations;
use crate::algorithm::SteeringAlgorithm;
use crate::diagnostics::{layer_diagnostics, layer_vector, mean_rows, normalise};
use crate::error::{AlgorithmError, Result};
use crate::vector::{HeadDiagnostics, SteeringVector};

/// How a kept head's direction is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ItiDirection {
    /// Mean of positive minus mean of negative activations of the head (ITI's default).
    #[default]
    MassMean,
    /// The head probe's weight vector.
    Probe,
}

/// ITI on `attn_heads`. Heads are ranked over all layers by probe accuracy (held-out
/// when a validation split exists); ties — common with small validation sets, where
/// many heads reach 1.0 — are broken by the head's effect size on the training pairs
/// (the mass-mean shift over the projected standard deviation), never by layer order,
/// so that low layers are not favoured. The top `top_k` are kept (clamped to the
/// number of heads). A kept head `h` contributes
/// `σ_h · d_h` to its layer's vector, `σ_h` being the standard deviation of the train
/// activations (positive and negative) projected on the unit direction `d_h`; the
/// layer's direction is that vector normalised and its scale the norm, so coefficient
/// α (default 15) shifts every kept head by α of its standard deviations.
#[derive(Clone, Debug, PartialEq)]
pub struct Iti {
    /// Heads kept over all layers.
    pub top_k: usize,
    /// Default coefficient (standard deviations).
    pub alpha: f32,
    /// Direction of a kept head.
    pub direction: ItiDirection,
    /// L2 weight per training row of the head probes (see [`LinearProbe::l2`](crate::LinearProbe)).
    pub l2: f64,
    /// Most L-BFGS iterations per head probe.
    pub max_iterations: u64,
    /// Positions steered.
    pub positions: Positions,
}

impl Default for Iti {
    fn default() -> Self {
        Iti {
            // Li et al. keep 48 of LLaMA-7B's 1024 heads (~5%); the same share of
            // SmolLM2's 270 (30 blocks × 9) is ~14; 16 keeps a few more.
            top_k: 16,
            alpha: 15.0,
            direction: ItiDirection::MassMean,
            l2: 1.0,
            max_iterations: 100,
            positions: Positions::All,
        }
    }
}

/// One probed head.
struct HeadScore {
    layer: usize,
    head: usize,
    accuracy: f64,
    effect: f64,
    probe_weights: Vec<f64>,
}

/// Effect size of a head on training pairs: |mean(p) − mean(n)| along the mass-mean
/// direction, over the standard deviation of all rows projected on it.
fn effect_size(p: ndarray::ArrayView2<'_, f32>, n: ndarray::ArrayView2<'_, f32>) -> f64 {
    let (mp, mn) = (mean_rows(p), mean_rows(n));
    let d: Vec<f64> = mp.iter().zip(&mn).map(|(a, b)| a - b).collect();
    let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return 0.0;
    }
    let proj: Vec<f64> = p
        .rows()
        .into_iter()
        .chain(n.rows())
        .map(|r| r.iter().zip(&d).map(|(a, b)| *a as f64 * b / norm).sum())
        .collect();
    let m = proj.iter().sum::<f64>() / proj.len() as f64;
    let sd = (proj.iter().map(|x| (x - m).powi(2)).sum::<f64>() / proj.len() as f64).sqrt();
    if sd > 0.0 {
        norm / sd
    } else {
        0.0
    }
}

impl SteeringAlgorithm for Iti {
    fn name(&self) -> &str {
        "iti"
    }

    fn site(&self) -> Site {
        Site::AttnHeads
    }

    fn fit(&self, acts: &ContrastActivations) -> Result<SteeringVector> {
        if self.top_k == 0 || !self.alpha.is_finite() {
            return Err(AlgorithmError::InvalidSettings {
                algorithm: self.name().into(),
                message: format!(
                    "top_k = {} must be positive and alpha = {} finite",
                    self.top_k, self.alpha
                ),
            });
        }
        acts.validate()?;
        let n_heads = acts.n_heads.ok_or_else(|| {
            AlgorithmError::Missing(
                "ITI needs the number of attention heads (ContrastActivations::n_heads)".into(),
            )
        })?;
        let layers = acts.layers(Site::AttnHeads);
        if layers.is_empty() {
            return Err(AlgorithmError::Missing(
                "ITI needs attn_heads activations, none were given".into(),
            ));
        }
        let width = acts.train.points[&Site::AttnHeads.at(layers[0])].width();
        let hd = width / n_heads;
        let jobs: Vec<(usize, usize)> = layers
            .iter()
            .flat_map(|&l| (0..n_heads).map(move |h| (l, h)))
            .collect();
        let probed: Vec<Result<Option<HeadScore>>> = jobs
            .par_iter()
            .map(|&(layer, head)| {
                let point = Site::AttnHeads.at(layer);
                let pairs = &acts.train.points[&point];
                let (p, n) = pairs.columns(head * hd, hd);
                let probe = match logistic::fit(p, n, self.l2, self.max_iterations, point) {
                    Ok(f) => f,
                    Err(AlgorithmError::Degenerate { .. }) => return Ok(None), // a dead head
                    Err(e) => return Err(e),
                };
                let accuracy = match acts.held_out(point) {
                    Some(v) => {
                        let (vp, vn) = v.columns(head * hd, hd);
                        logistic::accuracy(&probe, vp, vn)
                    }
                    None => logistic::accuracy(&probe, p, n),
                };
                Ok(Some(HeadScore {
                    layer,
                    head,
                    accuracy,
                    effect: effect_size(p, n),
                    probe_weights: probe.weights,
                }))
            })
            .collect();
        let mut scores = Vec::new();
        for r in probed {
            if let Some(s) = r? {
                scores.push(s);
            }
        }
        scores.sort_by(|a, b| {
            b.accuracy
                .total_cmp(&a.accuracy)
                .then(b.effect.total_cmp(&a.effect))
                .then(a.layer.cmp(&b.layer))
                .then(a.head.cmp(&b.head))
        });
        scores.truncate(self.top_k.min(layers.len() * n_heads));

        // Per kept head: direction and σ; accumulate per layer.
        let mut per_layer: BTreeMap<usize, (Vec<f64>, Vec<HeadDiagnostics>)> = BTreeMap::new();
        for s in &scores {
            let point = Site::AttnHeads.at(s.layer);
            let pairs = &acts.train.points[&point];
            let (p, n) = pairs.columns(s.head * hd, hd);
            let mut dir = match self.direction {
                ItiDirection::MassMean => {
                    let (mp, mn) = (mean_rows(p), mean_rows(n));
                    mp.iter().zip(&mn).map(|(a, b)| a - b).collect::<Vec<f64>>()
                }
                ItiDirection::Probe => s.probe_weights.clone(),
            };
            if normalise(&mut dir, point, "the head direction").is_err() {
                continue;
            }
            let all = concatenate(Axis(0), &[p, n]).map_err(|e| AlgorithmError::WidthMismatch {
                point,
                message: e.to_string(),
            })?;
            let proj: Vec<f64> = all
                .rows()
                .into_iter()
                .map(|r| r.iter().zip(&dir).map(|(a, d)| *a as f64 * d).sum())
                .collect();
            let mean = proj.iter().sum::<f64>() / proj.len() as f64;
            let sigma =
                (proj.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / proj.len() as f64).sqrt();
            if !(sigma.is_finite() && sigma > 0.0) {
                continue;
            }
            let entry = per_layer
                .entry(s.layer)
                .or_insert_with(|| (vec![0f64; width], Vec::new()));
            for (i, d) in dir.iter().enumerate() {
                entry.0[s.head * hd + i] = sigma * d;
            }
            entry.1.push(HeadDiagnostics {
                head: s.head,
                probe_accuracy: s.accuracy as f32,
                sigma: sigma as f32,
            });
        }
        if per_layer.is_empty() {
            return Err(AlgorithmError::Degenerate {
                point: Site::AttnHeads.at(layers[0]),
                message: "no attention head separates the pairs (all constant or identical)".into(),
            });
        }
        let mut out = BTreeMap::new();
        for (layer, (mut v, mut heads)) in per_layer {
            let point = Site::AttnHeads.at(layer);
            let norm = normalise(&mut v, point, "the layer's head shifts")?;
            heads.sort_by_key(|h| h.head);
            let mut diag = layer_diagnostics(acts, point, &v, norm);
            diag.heads = heads;
            out.insert(layer, layer_vector(&v, norm, diag));
        }
        Ok(
            SteeringVector::additive(self.name(), Site::AttnHeads, self.positions, out)
                .with_default_coefficient(self.alpha),
        )
    }
}
