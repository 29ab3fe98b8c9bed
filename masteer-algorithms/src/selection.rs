//! Choosing layer and coefficient: a sweep scored by a caller's closure (the model's
//! behaviour score on the validation split), and a cheap default that ranks layers by
//! held-out separation without running the model.

use serde::{Deserialize, Serialize};

use crate::error::{AlgorithmError, Result};
use crate::vector::SteeringVector;

/// One setting of a sweep and its score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Layer steered.
    pub layer: usize,
    /// Coefficient.
    pub coefficient: f32,
    /// Score (higher is better).
    pub score: f64,
}

/// The best setting and the whole grid (row-major: layers, then coefficients), for a
/// heatmap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The highest-scoring setting (the first in grid order on ties).
    pub best: GridPoint,
    /// Every setting tried.
    pub grid: Vec<GridPoint>,
}

/// Score every `(layer, coefficient)` with `score` and keep the best. Non-finite scores
/// are recorded in the grid but never chosen; an error if the closure fails or no score
/// is finite.
pub fn sweep<E: std::fmt::Display>(
    layers: &[usize],
    coefficients: &[f32],
    mut score: impl FnMut(usize, f32) -> std::result::Result<f64, E>,
) -> Result<Selection> {
    if layers.is_empty() || coefficients.is_empty() {
        return Err(AlgorithmError::Selection(
            "no layer or no coefficient to try".into(),
        ));
    }
    let mut grid = Vec::with_capacity(layers.len() * coefficients.len());
    let mut best: Option<GridPoint> = None;
    for &layer in layers {
        for &coefficient in coefficients {
            let s = score(layer, coefficient).map_err(|e| {
                AlgorithmError::Selection(format!(
                    "scoring layer {layer}, coefficient {coefficient}: {e}"
                ))
            })?;
            let p = GridPoint {
                layer,
                coefficient,
                score: s,
            };
            if s.is_finite() && best.is_none_or(|b| s > b.score) {
                best = Some(p);
            }
            grid.push(p);
        }
    }
    let best =
        best.ok_or_else(|| AlgorithmError::Selection("every score was NaN or infinite".into()))?;
    Ok(Selection { best, grid })
}

/// Layers of a vector ranked best first by held-out pair-ordering accuracy (train when
/// there is no validation split), then by separation (effect size); ties by layer.
/// Returns `(layer, accuracy, separation)`.
pub fn rank_layers(vector: &SteeringVector) -> Vec<(usize, f32, f32)> {
    let mut ranked: Vec<(usize, f32, f32)> = vector
        .layers
        .iter()
        .map(|(&l, v)| {
            let d = &v.diagnostics;
            (
                l,
                d.pair_accuracy.unwrap_or(d.train_pair_accuracy),
                d.separation,
            )
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(b.2.total_cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    ranked
}
