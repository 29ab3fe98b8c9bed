//! `Strategy`: a fitted steering vector at its validated layer(s) and coefficient,
//! turned into the model's intervention plan.

use masteer_algorithms::{Selection, SteeringVector};
use masteer_models::{Intervention, InterventionPlan, Site};
use masteer_types::HookPoint;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// One repair strategy: an algorithm's vector restricted to the chosen layers, with
/// the chosen coefficient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    /// Unique name, `issue/algorithm`.
    pub name: String,
    /// The issue it repairs.
    pub issue: String,
    /// The vector (only the steered layers); its fields sit beside the strategy's own
    /// in artifacts.
    #[serde(flatten)]
    pub vector: SteeringVector,
    /// Multiplier of the vector's scale.
    pub coefficient: f32,
    /// The validation sweep that chose layer and coefficient, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

impl Strategy {
    /// A strategy from a vector, steering `layers` with `coefficient`.
    pub fn new(
        issue: &str,
        vector: &SteeringVector,
        layers: &[usize],
        coefficient: f32,
    ) -> Result<Self> {
        if !coefficient.is_finite() {
            return Err(CoreError::InvalidInput(format!(
                "coefficient {coefficient} is not finite"
            )));
        }
        Ok(Strategy {
            name: format!("{issue}/{}", vector.algorithm),
            issue: issue.to_string(),
            vector: vector.restricted_to(layers)?,
            coefficient,
            selection: None,
        })
    }

    /// The earliest hook point the strategy writes to.
    pub fn first_point(&self) -> Option<HookPoint> {
        self.vector
            .layers
            .keys()
            .next()
            .map(|&l| self.vector.site.at(l))
    }

    /// The intervention plan applying this strategy, its coefficient scaled by `weight`.
    pub fn plan_weighted(&self, weight: f32) -> InterventionPlan {
        let mut plan = InterventionPlan::new();
        for (&layer, lv) in &self.vector.layers {
            plan.push(Intervention::new(
                self.vector.site,
                vec![layer],
                self.vector.positions,
                self.vector.operation,
                lv.vector(1.0),
                self.coefficient * weight,
            ));
        }
        plan
    }

    /// The intervention plan applying this strategy.
    pub fn plan(&self) -> InterventionPlan {
        self.plan_weighted(1.0)
    }
}

/// The point adaptive matching reads: the input of the earliest block any strategy
/// steers (`resid_pre(L)`, the same value as `resid_post(L−1)`), so that every
/// strategy's interventions run after the decision.
pub fn anchor_point(strategies: &[Strategy]) -> Result<HookPoint> {
    let first = strategies
        .iter()
        .filter_map(|s| s.first_point())
        .min_by_key(|p| p.execution_index())
        .ok_or_else(|| CoreError::InvalidInput("no strategy steers any layer".into()))?;
    if first.site == Site::ResidPre {
        // A strategy writing block L's input is decided at the previous block's input.
        return match first.layer {
            0 => Err(CoreError::InvalidInput(
                "a strategy steers resid_pre(0): there is no earlier point to decide at".into(),
            )),
            l => Ok(HookPoint::resid_pre(l - 1)),
        };
    }
    Ok(HookPoint::resid_pre(first.layer))
}
