//! Mean difference (CAA): per layer, the mean over pairs of `positive − negative`.

use masteer_types::{Positions, Site};

use crate::activations::ContrastActivations;
use crate::algorithm::{fit_per_layer, SteeringAlgorithm};
use crate::diagnostics::{layer_diagnostics, layer_vector, mean_rows, normalise};
use crate::error::Result;
use crate::vector::SteeringVector;

/// Contrastive activation addition: the direction is the mean paired difference and
/// the scale its norm, so coefficient 1 adds exactly the mean difference.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanDifference {
    /// Site read and steered.
    pub site: Site,
    /// Positions steered.
    pub positions: Positions,
}

impl Default for MeanDifference {
    fn default() -> Self {
        MeanDifference {
            site: Site::ResidPost,
            positions: Positions::All,
        }
    }
}

impl SteeringAlgorithm for MeanDifference {
    fn name(&self) -> &str {
        "mean_difference"
    }

    fn site(&self) -> Site {
        self.site
    }

    fn fit(&self, acts: &ContrastActivations) -> Result<SteeringVector> {
        let layers = fit_per_layer(acts, self.site, self.name(), |point, rows| {
            let diff = &rows.positive - &rows.negative;
            let mut dir = mean_rows(diff.view());
            let norm = normalise(&mut dir, point, "the mean difference")?;
            Ok(layer_vector(
                &dir,
                norm,
                layer_diagnostics(acts, point, &dir, norm),
            ))
        })?;
        Ok(SteeringVector::additive(
            self.name(),
            self.site,
            self.positions,
            layers,
        ))
    }
}
