//! A condition gate (in the style of CAST, Lee et al. 2024): a linear classifier of the
//! prompt's representation that says whether an input shows the problem a strategy
//! repairs (a false claim, a harmful request) and so should be steered. Unlike the
//! anchors' cosine matching it learns a direction that separates the two sides, and
//! its threshold is chosen afterwards by what steering does (on a validation split).
//!
//! The classifier is L2-regularised logistic regression (linfa-logistic) on
//! standardised features; the strength is chosen among a grid by held-out accuracy.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::error::{AnchorError, Result};

/// Settings of a gate fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// L2 strengths tried (per training row, on standardised features); the one with
    /// the best held-out accuracy wins. Wide, because 576 features and ~100 rows per
    /// side overfit without strong regularisation.
    pub l2_grid: Vec<f64>,
    /// Iterations of the solver (enough to converge at these strengths).
    pub max_iterations: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            l2_grid: vec![0.01, 0.1, 1.0, 10.0],
            max_iterations: 200,
        }
    }
}

/// A fitted gate: `p = σ(w · (x − μ)/σ + b)`, steering when `p > threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// Feature means of the training rows.
    pub mean: Vec<f32>,
    /// Inverse feature standard deviations.
    pub inv_std: Vec<f32>,
    /// Weights on the standardised features.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
    /// Steer when the probability exceeds it (0.5 until calibrated).
    pub threshold: f32,
    /// The chosen L2 strength.
    pub l2: f64,
    /// Accuracy on the held-out rows at threshold 0.5.
    pub held_out_accuracy: f64,
}

fn check_rows(rows: &[Vec<f32>], width: usize, what: &str) -> Result<()> {
    for r in rows {
        if r.len() != width {
            return Err(AnchorError::Shape(format!(
                "{what}: a row of width {} among rows of width {width}",
                r.len()
            )));
        }
        if r.iter().any(|x| !x.is_finite()) {
            return Err(AnchorError::NonFinite(what.to_string()));
        }
    }
    Ok(())
}

impl Gate {
    /// Fit on `trigger` rows (should steer) against `control` rows (should not), and
    /// choose the L2 strength by accuracy on the held-out rows.
    pub fn fit(
        trigger: &[Vec<f32>],
        control: &[Vec<f32>],
        held_out_trigger: &[Vec<f32>],
        held_out_control: &[Vec<f32>],
        config: &GateConfig,
    ) -> Result<Gate> {
        if trigger.is_empty() || control.is_empty() {
            return Err(AnchorError::Shape(format!(
                "a gate needs both sides: {} trigger and {} control rows",
                trigger.len(),
                control.len()
            )));
        }
        if held_out_trigger.is_empty() || held_out_control.is_empty() {
            return Err(AnchorError::Shape(
                "a gate needs held-out rows of both sides to choose its strength".into(),
            ));
        }
        if config.l2_grid.is_empty() || config.l2_grid.iter().any(|l| l.is_nan() || *l <= 0.0) {
            return Err(AnchorError::Settings(
                "the L2 grid must hold positive strengths".into(),
            ));
        }
        let width = trigger[0].len();
        for (rows, what) in [
            (trigger, "trigger rows"),
            (control, "control rows"),
            (held_out_trigger, "held-out trigger rows"),
            (held_out_control, "held-out control rows"),
        ] {
            check_rows(rows, width, what)?;
        }
        let n = trigger.len() + control.len();
        let mut mean = vec![0f64; width];
        for r in trigger.iter().chain(control) {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += *x as f64 / n as f64;
            }
        }
        let mut var = vec![0f64; width];
        for r in trigger.iter().chain(control) {
            for ((v, x), m) in var.iter_mut().zip(r).zip(&mean) {
                *v += (*x as f64 - m).powi(2) / n as f64;
            }
        }
        let inv_std: Vec<f64> = var
            .iter()
            .map(|v| if *v > 1e-12 { 1.0 / v.sqrt() } else { 0.0 })
            .collect();
        let standardise = |rows: &[&Vec<f32>]| -> Array2<f64> {
            Array2::from_shape_fn((rows.len(), width), |(i, j)| {
                (rows[i][j] as f64 - mean[j]) * inv_std[j]
            })
        };
        let train_rows: Vec<&Vec<f32>> = trigger.iter().chain(control).collect();
        let x = standardise(&train_rows);
        let y: Array1<bool> = (0..n).map(|i| i < trigger.len()).collect();
        let data = Dataset::new(x, y);
        let mut best: Option<Gate> = None;
        for &l2 in &config.l2_grid {
            let model = LogisticRegression::default()
                .alpha(l2 * n as f64)
                .max_iterations(config.max_iterations)
                .fit(&data)
                .map_err(|e| AnchorError::Settings(format!("logistic regression: {e}")))?;
            let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
            let gate = Gate {
                mean: mean.iter().map(|m| *m as f32).collect(),
                inv_std: inv_std.iter().map(|s| *s as f32).collect(),
                weights: model.params().iter().map(|w| (sign * w) as f32).collect(),
                bias: (sign * model.intercept()) as f32,
                threshold: 0.5,
                l2,
                held_out_accuracy: 0.0,
            };
            if gate.weights.iter().any(|w| !w.is_finite()) || !gate.bias.is_finite() {
                continue;
            }
            let right = held_out_trigger
                .iter()
                .map(|r| gate.probability(r).map(|p| p > 0.5))
                .chain(
                    held_out_control
                        .iter()
                        .map(|r| gate.probability(r).map(|p| p <= 0.5)),
                )
                .collect::<Result<Vec<bool>>>()?
                .into_iter()
                .filter(|ok| *ok)
                .count();
            let acc = right as f64 / (held_out_trigger.len() + held_out_control.len()) as f64;
            // Ties go to the stronger regularisation (the simpler model).
            if best.as_ref().is_none_or(|b| acc >= b.held_out_accuracy) {
                best = Some(Gate {
                    held_out_accuracy: acc,
                    ..gate
                });
            }
        }
        best.ok_or_else(|| AnchorError::NonFinite("every gate fit".into()))
    }

    /// Width of the representations it reads.
    pub fn width(&self) -> usize {
        self.weights.len()
    }

    /// The probability that `rep` is a trigger (should be steered).
    pub fn probability(&self, rep: &[f32]) -> Result<f32> {
        if rep.len() != self.width() {
            return Err(AnchorError::Shape(format!(
                "representation of width {}, gate of width {}",
                rep.len(),
                self.width()
            )));
        }
        if rep.iter().any(|x| !x.is_finite()) {
            return Err(AnchorError::NonFinite("the representation to gate".into()));
        }
        let z: f64 = rep
            .iter()
            .zip(&self.mean)
            .zip(&self.inv_std)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| ((x - m) * s * w) as f64)
            .sum::<f64>()
            + self.bias as f64;
        Ok((1.0 / (1.0 + (-z).exp())) as f32)
    }

    /// Whether the gate opens for `rep`.
    pub fn fires(&self, rep: &[f32]) -> Result<bool> {
        Ok(self.probability(rep)? > self.threshold)
    }

    /// The same gate with another threshold.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian clouds along one axis, known answer: the gate learns that axis.
    fn cloud(n: usize, shift: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        (0..n)
            .map(|_| {
                (0..8)
                    .map(|j| next() + if j == 3 { shift } else { 0.0 })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn separates_clouds_along_the_planted_axis() {
        let g = Gate::fit(
            &cloud(60, 1.0, 1),
            &cloud(60, -1.0, 2),
            &cloud(30, 1.0, 3),
            &cloud(30, -1.0, 4),
            &GateConfig::default(),
        )
        .unwrap();
        assert!(g.held_out_accuracy >= 0.95, "{}", g.held_out_accuracy);
        let axis = g
            .weights
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert_eq!(axis, 3);
        assert!(g.weights[3] > 0.0, "triggers score high");
        let mut x = vec![0.0; 8];
        x[3] = 1.0;
        assert!(g.fires(&x).unwrap());
        x[3] = -1.0;
        assert!(!g.fires(&x).unwrap());
        assert!(!g.clone().with_threshold(1.0).fires(&[0.0; 8]).unwrap());
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let c = GateConfig::default();
        let a = cloud(5, 1.0, 1);
        assert!(matches!(
            Gate::fit(&a, &[], &a, &a, &c),
            Err(AnchorError::Shape(_))
        ));
        let mut nan = a.clone();
        nan[0][0] = f32::NAN;
        assert!(matches!(
            Gate::fit(&nan, &a, &a, &a, &c),
            Err(AnchorError::NonFinite(_))
        ));
        let narrow = vec![vec![0.0; 3]];
        assert!(matches!(
            Gate::fit(&a, &narrow, &a, &a, &c),
            Err(AnchorError::Shape(_))
        ));
        let g = Gate::fit(&a, &cloud(5, -1.0, 2), &a, &cloud(5, -1.0, 3), &c).unwrap();
        assert!(matches!(
            g.probability(&[0.0; 2]),
            Err(AnchorError::Shape(_))
        ));
        let bad = GateConfig {
            l2_grid: vec![],
            ..c
        };
        assert!(matches!(
            Gate::fit(&a, &a, &a, &a, &bad),
            Err(AnchorError::Settings(_))
        ));
    }
}
