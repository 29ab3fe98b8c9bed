//! Choosing each strategy's layer and coefficient on the validation split with the
//! model itself: a sweep scored by the mean A/B share of the wanted answer.

use burn::tensor::backend::Backend;
use masteer_algorithms::{rank_layers, sweep, SteeringVector};
use masteer_datagen::SteerSample;
use masteer_models::LoadedModel;

use crate::error::Result;
use crate::eval::ab::{self, Steering};
use crate::strategy::Strategy;

/// Settings of the validation sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepConfig {
    /// Layers tried: the best ones by held-out separation (the cheap default ranking).
    pub top_layers: usize,
    /// Coefficients tried, as multiples of the vector's default coefficient.
    pub coefficient_multipliers: Vec<f32>,
    /// Validation samples scored per setting (the first ones).
    pub max_samples: usize,
    /// Batch size of the scoring passes.
    pub batch: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            top_layers: 2,
            coefficient_multipliers: vec![0.5, 1.0, 2.0, 4.0],
            max_samples: 32,
            batch: 8,
        }
    }
}

/// Sweep the top layers × coefficients of `vector` on A/B validation samples and return
/// the best setting as a strategy (with the whole grid kept for plots).
pub fn select<B: Backend>(
    lm: &LoadedModel<B>,
    issue: &str,
    vector: &SteeringVector,
    validation: &[&SteerSample],
    config: &SweepConfig,
) -> Result<Strategy> {
    let layers: Vec<usize> = rank_layers(vector)
        .into_iter()
        .take(config.top_layers.max(1))
        .map(|r| r.0)
        .collect();
    let coefficients: Vec<f32> = config
        .coefficient_multipliers
        .iter()
        .map(|m| m * vector.default_coefficient)
        .collect();
    let samples: Vec<&SteerSample> = validation
        .iter()
        .take(config.max_samples)
        .copied()
        .collect();
    let selection = sweep(
        &layers,
        &coefficients,
        |layer, coefficient| -> Result<f64> {
            let s = Strategy::new(issue, vector, &[layer], coefficient)?;
            let plan = s.plan();
            let r = ab::score(lm, &samples, Steering::Fixed(&plan), config.batch)?;
            let share = ab::mean_positive_share(&r);
            tracing::info!(algorithm = %vector.algorithm, layer, coefficient, share, "sweep");
            Ok(share)
        },
    )?;
    let mut s = Strategy::new(
        issue,
        vector,
        &[selection.best.layer],
        selection.best.coefficient,
    )?;
    s.selection = Some(selection);
    Ok(s)
}
