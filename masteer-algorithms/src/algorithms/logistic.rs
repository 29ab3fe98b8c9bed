//! L2-regularised logistic regression through linfa-logistic, shared by the probe and ITI.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use masteer_types::HookPoint;
use ndarray::{concatenate, Array1, ArrayView2, Axis};

use crate::error::{AlgorithmError, Result};

/// A fitted probe in the activations' own coordinates: `w·x + b > 0` means "positive".
#[derive(Clone, Debug)]
pub(crate) struct ProbeFit {
    pub weights: Vec<f64>,
    pub intercept: f64,
}

/// Fit `positive` (label true) against `negative` (label false). Features are divided
/// by their overall root-mean-square before fitting, and `l2` is the weight per
/// training row (linfa's summed loss gets `alpha = l2 · rows`), so that `l2` means the
/// same at every layer and for every dataset size; the weights are mapped back to the
/// original coordinates.
pub(crate) fn fit<'a>(
    positive: ArrayView2<'a, f32>,
    negative: ArrayView2<'a, f32>,
    l2: f64,
    max_iterations: u64,
    point: HookPoint,
) -> Result<ProbeFit> {
    let x =
        concatenate(Axis(0), &[positive, negative]).map_err(|e| AlgorithmError::WidthMismatch {
            point,
            message: e.to_string(),
        })?;
    let x = x.mapv(|v| v as f64);
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt();
    if !rms.is_finite() || rms <= 1e-30 {
        return Err(AlgorithmError::Degenerate {
            point,
            message: "all activations are zero".into(),
        });
    }
    let y: Array1<bool> = (0..x.nrows()).map(|i| i < positive.nrows()).collect();
    let data = Dataset::new(x / rms, y);
    let model = LogisticRegression::default()
        .alpha(l2 * (positive.nrows() + negative.nrows()) as f64)
        .max_iterations(max_iterations)
        .fit(&data)
        .map_err(|e| AlgorithmError::Probe {
            point,
            message: e.to_string(),
        })?;
    // linfa scores its `pos` class; make "true" (our positives) the positive side.
    let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
    let weights: Vec<f64> = model.params().iter().map(|w| sign * w / rms).collect();
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(AlgorithmError::Probe {
            point,
            message: "non-finite weights".into(),
        });
    }
    Ok(ProbeFit {
        weights,
        intercept: sign * model.intercept(),
    })
}

/// Share of rows classified on the right side (`positive` rows should score > 0).
pub(crate) fn accuracy(
    fit: &ProbeFit,
    positive: ArrayView2<'_, f32>,
    negative: ArrayView2<'_, f32>,
) -> f64 {
    let score = |row: ndarray::ArrayView1<'_, f32>| -> f64 {
        row.iter()
            .zip(&fit.weights)
            .map(|(a, w)| *a as f64 * w)
            .sum::<f64>()
            + fit.intercept
    };
    let right = positive
        .rows()
        .into_iter()
        .filter(|r| score(*r) > 0.0)
        .count()
        + negative
            .rows()
            .into_iter()
            .filter(|r| score(*r) <= 0.0)
            .count();
    right as f64 / (positive.nrows() + negative.nrows()).max(1) as f64
}
