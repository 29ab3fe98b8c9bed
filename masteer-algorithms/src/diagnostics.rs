//! Shared diagnostics and helpers: orientation, pair-ordering accuracy, margins.

use masteer_types::HookPoint;

use crate::activations::{project, ContrastActivations, PairedRows};
use crate::error::{AlgorithmError, Result};
use crate::vector::{LayerDiagnostics, LayerVector};

/// Pair-ordering statistics of a direction on some pairs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PairStats {
    /// Fraction of pairs with `positive · d > negative · d` (ties count half).
    pub accuracy: f64,
    /// Mean projected difference.
    pub margin: f64,
    /// Margin over the standard deviation of the projected differences.
    pub separation: f64,
}

/// Projected differences `(positive − negative) · dir` of every pair.
pub(crate) fn projected_differences(rows: &PairedRows, dir: &[f64]) -> Vec<f64> {
    rows.positive
        .rows()
        .into_iter()
        .zip(rows.negative.rows())
        .map(|(p, n)| project(p, dir) - project(n, dir))
        .collect()
}

pub(crate) fn pair_stats(rows: &PairedRows, dir: &[f64]) -> PairStats {
    let d = projected_differences(rows, dir);
    let n = d.len().max(1) as f64;
    let accuracy = d
        .iter()
        .map(|&x| {
            if x > 0.0 {
                1.0
            } else if x == 0.0 {
                0.5
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / n;
    let margin = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - margin).powi(2)).sum::<f64>() / n;
    let separation = if var > 0.0 {
        margin / var.sqrt()
    } else if margin > 0.0 {
        1e6
    } else {
        0.0
    };
    PairStats {
        accuracy,
        margin,
        separation,
    }
}

/// Flip `dir` so that positives project above their paired negatives for the majority
/// of pairs; on a tie, so that the mean projected difference is positive; if that is
/// zero too, so that the largest coordinate is positive. Deterministic.
pub(crate) fn orient(dir: &mut [f64], rows: &PairedRows) {
    let d = projected_differences(rows, dir);
    let above = d.iter().filter(|&&x| x > 0.0).count();
    let below = d.iter().filter(|&&x| x < 0.0).count();
    let flip = if above != below {
        below > above
    } else {
        let mean: f64 = d.iter().sum();
        if mean != 0.0 {
            mean < 0.0
        } else {
            let (imax, _) = dir
                .iter()
                .enumerate()
                .fold((0, 0.0f64), |(bi, bv), (i, v)| {
                    if v.abs() > bv {
                        (i, v.abs())
                    } else {
                        (bi, bv)
                    }
                });
            dir[imax] < 0.0
        }
    };
    if flip {
        dir.iter_mut().for_each(|x| *x = -*x);
    }
}

/// Normalise to unit length; an error when the norm is zero or not finite.
pub(crate) fn normalise(v: &mut [f64], point: HookPoint, what: &str) -> Result<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(n.is_finite() && n > 1e-12) {
        return Err(AlgorithmError::Degenerate {
            point,
            message: format!("{what} has norm {n}: positives and negatives do not differ"),
        });
    }
    v.iter_mut().for_each(|x| *x /= n);
    Ok(n)
}

/// Diagnostics of a unit direction at `point`: train and held-out pair ordering.
pub(crate) fn layer_diagnostics(
    acts: &ContrastActivations,
    point: HookPoint,
    dir: &[f64],
    raw_norm: f64,
) -> LayerDiagnostics {
    let train = acts.train.points.get(&point).map(|r| pair_stats(r, dir));
    let held = acts.held_out(point).map(|r| pair_stats(r, dir));
    let reported = held.or(train);
    LayerDiagnostics {
        train_pair_accuracy: train.map(|s| s.accuracy as f32).unwrap_or(0.0),
        pair_accuracy: held.map(|s| s.accuracy as f32),
        margin: reported.map(|s| s.margin as f32).unwrap_or(0.0),
        separation: reported.map(|s| s.separation as f32).unwrap_or(0.0),
        raw_norm: raw_norm as f32,
        ..Default::default()
    }
}

/// A layer vector from an f64 unit direction.
pub(crate) fn layer_vector(dir: &[f64], scale: f64, diagnostics: LayerDiagnostics) -> LayerVector {
    LayerVector {
        direction: dir.iter().map(|&x| x as f32).collect(),
        scale: scale as f32,
        diagnostics,
    }
}

/// Mean of the rows of an f32 view, in f64.
pub(crate) fn mean_rows(a: ndarray::ArrayView2<'_, f32>) -> Vec<f64> {
    let n = a.nrows().max(1) as f64;
    let mut m = vec![0f64; a.ncols()];
    for row in a.rows() {
        for (acc, x) in m.iter_mut().zip(row) {
            *acc += *x as f64;
        }
    }
    m.iter_mut().for_each(|x| *x /= n);
    m
}
