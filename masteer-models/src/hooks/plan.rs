//! Intervention plans: per-sequence lists of operations at hook sites, layers and
//! absolute positions.

use std::sync::Arc;

use masteer_types::{HookPoint, Operation, Positions, Site};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};

/// One operation applied at a site of some blocks, at some positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervention {
    /// Site inside each block.
    pub site: Site,
    /// Blocks (0-based) it applies to.
    pub layers: Vec<usize>,
    /// Absolute positions of the sequence it applies to.
    pub positions: Positions,
    /// What it does (the same enum the artifact stores and the kernel applies).
    pub op: Operation,
    /// The vector it uses (width of the site); for [`Operation::Ablate`] the
    /// direction, normalised when the plan is compiled.
    pub vector: Arc<[f32]>,
    /// Its multiplier (for ablation, the share of the component removed).
    pub coefficient: f32,
}

impl Intervention {
    /// `op` with `vector` and `coefficient` at `site` of each of `layers`.
    pub fn new(
        site: Site,
        layers: Vec<usize>,
        positions: Positions,
        op: Operation,
        vector: impl Into<Arc<[f32]>>,
        coefficient: f32,
    ) -> Self {
        Intervention {
            site,
            layers,
            positions,
            op,
            vector: vector.into(),
            coefficient,
        }
    }

    /// `x + coefficient · vector` at `site` of each of `layers`.
    pub fn add(
        site: Site,
        layers: Vec<usize>,
        positions: Positions,
        vector: Vec<f32>,
        coefficient: f32,
    ) -> Self {
        Self::new(site, layers, positions, Operation::Add, vector, coefficient)
    }

    /// Remove the component along `direction` at `site` of each of `layers`.
    pub fn ablate(
        site: Site,
        layers: Vec<usize>,
        positions: Positions,
        direction: Vec<f32>,
    ) -> Self {
        Self::new(site, layers, positions, Operation::Ablate, direction, 1.0)
    }

    /// Norm-preserving addition at `site` of each of `layers`.
    pub fn add_norm_preserving(
        site: Site,
        layers: Vec<usize>,
        positions: Positions,
        vector: Vec<f32>,
        coefficient: f32,
    ) -> Self {
        Self::new(
            site,
            layers,
            positions,
            Operation::AddNormPreserving,
            vector,
            coefficient,
        )
    }

    /// The hook points this intervention touches.
    pub fn points(&self) -> impl Iterator<Item = HookPoint> + '_ {
        self.layers.iter().map(|&l| self.site.at(l))
    }
}

/// The interventions of one sequence. An empty plan leaves the forward pass
/// bit-identical to the unsteered model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterventionPlan {
    /// Interventions, applied in order where several touch the same hook point.
    pub interventions: Vec<Intervention>,
}

impl InterventionPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an intervention (builder style).
    pub fn with(mut self, i: Intervention) -> Self {
        self.interventions.push(i);
        self
    }

    /// Add an intervention.
    pub fn push(&mut self, i: Intervention) {
        self.interventions.push(i);
    }

    /// Whether the plan does nothing.
    pub fn is_empty(&self) -> bool {
        self.interventions.iter().all(|i| i.layers.is_empty())
    }

    /// Append the interventions of another plan.
    pub fn extend(&mut self, other: InterventionPlan) {
        self.interventions.extend(other.interventions);
    }

    /// Check every intervention against the model: layers in range, vector width of
    /// the site, finite values, non-zero ablation directions.
    pub fn validate(&self, cfg: &LlamaConfig) -> Result<()> {
        for i in &self.interventions {
            let width = site_width(cfg, i.site);
            for &layer in &i.layers {
                let point = i.site.at(layer);
                if layer >= cfg.num_hidden_layers {
                    return Err(ModelError::LayerOutOfRange {
                        point,
                        n_layers: cfg.num_hidden_layers,
                    });
                }
                let v = &i.vector;
                if v.len() != width {
                    return Err(ModelError::VectorWidth {
                        point,
                        expected: width,
                        actual: v.len(),
                    });
                }
                if let Some(index) = v.iter().position(|x| !x.is_finite()) {
                    return Err(ModelError::NonFiniteVector { point, index });
                }
                if !i.coefficient.is_finite() {
                    return Err(ModelError::InvalidInput(format!(
                        "coefficient {} for {point} is not finite",
                        i.coefficient
                    )));
                }
                if i.op == Operation::Ablate && norm(v) == 0.0 {
                    return Err(ModelError::InvalidInput(format!(
                        "ablation direction for {point} is the zero vector"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Width of the activation at a site: the residual width, or `heads · head_dim` for
/// `attn_heads`.
pub fn site_width(cfg: &LlamaConfig, site: Site) -> usize {
    match site {
        Site::AttnHeads => cfg.q_width(),
        _ => cfg.hidden_size,
    }
}

pub(crate) fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}
