//! Linear probe: L2-regularised logistic regression per layer; the direction is the
//! normalised weight vector.

use masteer_types::{Positions, Site};

use super::logistic;
use crate::activations::ContrastActivations;
use crate::algorithm::{fit_per_layer, SteeringAlgorithm};
use crate::diagnostics::{layer_diagnostics, layer_vector, normalise, orient, pair_stats};
use crate::error::{AlgorithmError, Result};
use crate::vector::SteeringVector;

/// A logistic-regression probe per layer. The scale is the mean paired shift along
/// the direction (so coefficient 1 moves a negative answer's activation, on average,
/// as far as its positive); the diagnostics report the probe's held-out accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearProbe {
    /// Site read and steered.
    pub site: Site,
    /// Positions steered.
    pub positions: Positions,
    /// L2 weight per training row, on features scaled to unit root-mean-square.
    /// Strong by default (1.0): a steering direction must generalise. As `l2` grows
    /// the direction tends to the difference of class means; as it shrinks, to a
    /// max-margin separator that follows individual points.
    pub l2: f64,
    /// Most L-BFGS iterations.
    pub max_iterations: u64,
    /// Strengths tried when a validation split exists: the one with the best held-out
    /// accuracy is used per layer (ties go to the stronger), so the direction is not
    /// forced to the class-mean difference by a fixed strong `l2`. Empty: `l2` alone.
    pub l2_grid: Vec<f64>,
}

impl Default for LinearProbe {
    fn default() -> Self {
        LinearProbe {
            site: Site::ResidPost,
            positions: Positions::All,
            l2: 1.0,
            max_iterations: 100,
            l2_grid: vec![0.001, 0.01, 0.1, 1.0],
        }
    }
}

impl SteeringAlgorithm for LinearProbe {
    fn name(&self) -> &str {
        "linear_probe"
    }

    fn site(&self) -> Site {
        self.site
    }

    fn fit(&self, acts: &ContrastActivations) -> Result<SteeringVector> {
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(AlgorithmError::InvalidSettings {
                algorithm: self.name().into(),
                message: format!("l2 = {} must be finite and non-negative", self.l2),
            });
        }
        if self.l2_grid.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
            return Err(AlgorithmError::InvalidSettings {
                algorithm: self.name().into(),
                message: format!("l2 grid {:?} must be finite and non-negative", self.l2_grid),
            });
        }
        let layers = fit_per_layer(acts, self.site, self.name(), |point, pairs| {
            let fit = |l2: f64| {
                logistic::fit(
                    pairs.positive.view(),
                    pairs.negative.view(),
                    l2,
                    self.max_iterations,
                    point,
                )
            };
            let probe = match acts.held_out(point) {
                Some(held) if !self.l2_grid.is_empty() => {
                    let mut grid = self.l2_grid.clone();
                    grid.sort_by(|a, b| b.total_cmp(a)); // strongest first: ties keep it
                    let mut best: Option<(f64, logistic::ProbeFit)> = None;
                    for l2 in grid {
                        let f = fit(l2)?;
                        let acc =
                            logistic::accuracy(&f, held.positive.view(), held.negative.view());
                        if best.as_ref().is_none_or(|b| acc > b.0) {
                            best = Some((acc, f));
                        }
                    }
                    match best {
                        Some((_, f)) => f,
                        None => fit(self.l2)?,
                    }
                }
                _ => fit(self.l2)?,
            };
            let mut dir = probe.weights.clone();
            let norm = normalise(&mut dir, point, "the probe's weight vector")?;
            orient(&mut dir, pairs);
            let shift = pair_stats(pairs, &dir).margin.abs();
            let mut diag = layer_diagnostics(acts, point, &dir, norm);
            let held = acts.held_out(point).unwrap_or(pairs);
            diag.probe_accuracy =
                Some(logistic::accuracy(&probe, held.positive.view(), held.negative.view()) as f32);
            Ok(layer_vector(&dir, shift, diag))
        })?;
        Ok(SteeringVector::additive(
            self.name(),
            self.site,
            self.positions,
            layers,
        ))
    }
}
