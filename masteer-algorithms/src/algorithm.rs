//! The `SteeringAlgorithm` trait and the per-layer fitting helper built-ins share.

use std::collections::BTreeMap;

use masteer_types::{HookPoint, Site};
use rayon::prelude::*;

use crate::activations::{ContrastActivations, PairedRows};
use crate::error::{AlgorithmError, Result};
use crate::vector::{LayerVector, SteeringVector};

/// A steering strategy: a value holding its settings that fits contrast activations
/// into a [`SteeringVector`]. Implement it and register it in an
/// [`AlgorithmLibrary`](crate::AlgorithmLibrary); nothing else needs to change.
pub trait SteeringAlgorithm: Send + Sync {
    /// A unique name (used in artifacts and reports).
    fn name(&self) -> &str;

    /// The site it reads and writes (`resid_post` unless overridden).
    fn site(&self) -> Site {
        Site::ResidPost
    }

    /// Fit on `acts` (train split; validation split for held-out diagnostics).
    fn fit(&self, acts: &ContrastActivations) -> Result<SteeringVector>;
}

/// Run `fit_layer` on every layer of `site` in parallel. Layers whose data are
/// degenerate are skipped (with a warning); an error if none is left. Other errors
/// propagate.
pub fn fit_per_layer<F>(
    acts: &ContrastActivations,
    site: Site,
    algorithm: &str,
    fit_layer: F,
) -> Result<BTreeMap<usize, LayerVector>>
where
    F: Fn(HookPoint, &PairedRows) -> Result<LayerVector> + Sync,
{
    acts.validate()?;
    let layers = acts.layers(site);
    if layers.is_empty() {
        return Err(AlgorithmError::Missing(format!(
            "`{algorithm}` needs {site} activations, none were given"
        )));
    }
    let results: Vec<(usize, Result<LayerVector>)> = layers
        .par_iter()
        .map(|&layer| {
            let point = site.at(layer);
            let rows = &acts.train.points[&point];
            (layer, fit_layer(point, rows))
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut last_degenerate = None;
    for (layer, r) in results {
        match r {
            Ok(v) => {
                out.insert(layer, v);
            }
            Err(e @ AlgorithmError::Degenerate { .. }) => {
                tracing::warn!(algorithm, layer, error = %e, "layer skipped");
                last_degenerate = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    if out.is_empty() {
        return Err(last_degenerate.unwrap_or_else(|| AlgorithmError::Empty(String::new())));
    }
    Ok(out)
}
