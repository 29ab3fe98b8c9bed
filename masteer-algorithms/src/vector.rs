//! `SteeringVector`: what a fitted algorithm produces, per layer a unit direction and
//! a scale, with diagnostics.

use std::collections::BTreeMap;

use masteer_types::{Operation, Positions, Site};
use serde::{Deserialize, Serialize};

use crate::error::{AlgorithmError, Result};

/// Diagnostics of one attention head kept by ITI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadDiagnostics {
    /// Head index within the layer.
    pub head: usize,
    /// Accuracy of the head's probe (held-out when a validation split exists).
    pub probe_accuracy: f32,
    /// Standard deviation of the activations projected on the head's direction.
    pub sigma: f32,
}

/// How well a layer's direction separates the pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnostics {
    /// Fraction of train pairs whose positive projects above its negative.
    pub train_pair_accuracy: f32,
    /// The same on held-out pairs (`None` without a validation split).
    pub pair_accuracy: Option<f32>,
    /// Mean of `(positive − negative) · direction` (held-out when available).
    pub margin: f32,
    /// Margin over the standard deviation of the projected differences (held-out when
    /// available): an effect size comparable across layers.
    pub separation: f32,
    /// Norm of the direction before normalisation (mean difference, weights...).
    pub raw_norm: f32,
    /// Share of variance along the component (PCA).
    pub explained_variance: Option<f32>,
    /// Probe accuracy (held-out when available) for the probe.
    pub probe_accuracy: Option<f32>,
    /// Kept heads (ITI).
    pub heads: Vec<HeadDiagnostics>,
}

/// The fitted direction of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerVector {
    /// Unit-norm direction, the width of the site. (Artifacts store it in their tensor
    /// file and name it under `tensor`, hence the alias.)
    #[serde(alias = "tensor")]
    pub direction: Vec<f32>,
    /// Natural size of the shift: the vector applied is `coefficient · scale · direction`.
    pub scale: f32,
    /// How well the direction separates the pairs.
    pub diagnostics: LayerDiagnostics,
}

impl LayerVector {
    /// `coefficient · scale · direction`.
    pub fn vector(&self, coefficient: f32) -> Vec<f32> {
        self.direction
            .iter()
            .map(|d| d * self.scale * coefficient)
            .collect()
    }
}

/// A fitted steering strategy: per layer a direction and a scale, the site they act
/// on, the operation, the positions and the default coefficient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteeringVector {
    /// Name of the algorithm that produced it.
    pub algorithm: String,
    /// Site it reads and writes.
    pub site: Site,
    /// How it changes activations.
    pub operation: Operation,
    /// Which positions it acts on.
    pub positions: Positions,
    /// Coefficient that fits its scale convention (1 for mean shifts, 15 for ITI's α).
    pub default_coefficient: f32,
    /// Per-layer directions (serialised as a list of `{layer, …}` entries: JSON object
    /// keys are strings, block indices are numbers).
    #[serde(with = "layer_list")]
    pub layers: BTreeMap<usize, LayerVector>,
}

/// `layers` as a list of entries, each a layer index beside its [`LayerVector`].
mod layer_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::LayerVector;

    #[derive(Serialize)]
    struct EntryRef<'a> {
        layer: usize,
        #[serde(flatten)]
        vector: &'a LayerVector,
    }

    #[derive(Deserialize)]
    struct Entry {
        layer: usize,
        #[serde(flatten)]
        vector: LayerVector,
    }

    pub fn serialize<S: Serializer>(
        layers: &BTreeMap<usize, LayerVector>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            layers
                .iter()
                .map(|(&layer, vector)| EntryRef { layer, vector }),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<usize, LayerVector>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for e in entries {
            if out.insert(e.layer, e.vector).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "layer {} is listed twice",
                    e.layer
                )));
            }
        }
        Ok(out)
    }
}

impl SteeringVector {
    /// An additive vector (`x + c · scale · direction` at `site`, `positions`) named
    /// after `algorithm`, with per-layer directions `layers` and default coefficient 1
    /// (one natural shift): what most algorithms return.
    pub fn additive(
        algorithm: impl Into<String>,
        site: Site,
        positions: Positions,
        layers: BTreeMap<usize, LayerVector>,
    ) -> Self {
        SteeringVector {
            algorithm: algorithm.into(),
            site,
            operation: Operation::Add,
            positions,
            default_coefficient: 1.0,
            layers,
        }
    }

    /// The same vector with another operation (e.g. norm-preserving addition).
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operation = operation;
        self
    }

    /// The same vector with another default coefficient (ITI's α, say).
    pub fn with_default_coefficient(mut self, coefficient: f32) -> Self {
        self.default_coefficient = coefficient;
        self
    }

    /// The same strategy restricted to some layers.
    pub fn restricted_to(&self, layers: &[usize]) -> Result<SteeringVector> {
        let mut out = self.clone();
        out.layers.retain(|l, _| layers.contains(l));
        if out.layers.len() != layers.len() {
            let missing: Vec<usize> = layers
                .iter()
                .copied()
                .filter(|l| !self.layers.contains_key(l))
                .collect();
            return Err(AlgorithmError::Missing(format!(
                "`{}` has no direction for layer(s) {missing:?}",
                self.algorithm
            )));
        }
        Ok(out)
    }

    /// The vector applied at `layer` with `coefficient`.
    pub fn vector_at(&self, layer: usize, coefficient: f32) -> Option<Vec<f32>> {
        self.layers.get(&layer).map(|v| v.vector(coefficient))
    }

    /// Width of the directions.
    pub fn width(&self) -> Option<usize> {
        self.layers.values().next().map(|v| v.direction.len())
    }

    /// Check unit norms, equal widths and finite values.
    pub fn validate(&self) -> Result<()> {
        let width = self.width();
        for (layer, v) in &self.layers {
            let point = self.site.at(*layer);
            if Some(v.direction.len()) != width {
                return Err(AlgorithmError::WidthMismatch {
                    point,
                    message: "layers of one steering vector differ in width".into(),
                });
            }
            if v.direction.iter().any(|x| !x.is_finite()) || !v.scale.is_finite() {
                return Err(AlgorithmError::Degenerate {
                    point,
                    message: "non-finite direction or scale".into(),
                });
            }
            let n: f32 = v.direction.iter().map(|x| x * x).sum::<f32>().sqrt();
            if (n - 1.0).abs() > 1e-3 {
                return Err(AlgorithmError::Degenerate {
                    point,
                    message: format!("direction norm {n}, expected 1"),
                });
            }
        }
        Ok(())
    }
}
