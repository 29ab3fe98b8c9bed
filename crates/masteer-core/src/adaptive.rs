//! Adaptive steering inside one prefill pass: at the anchor point each sequence's
//! representation (at its last prompt token) is matched to a strategy, and that
//! strategy's interventions become the sequence's plan for the later layers and for
//! every decode step.

use masteer_anchor::{AnchorSet, Decision};
use masteer_models::{Decider, HookPoint, InterventionPlan, ModelError};
use ndarray::ArrayView2;

use crate::strategy::Strategy;

/// A [`Decider`] that matches each sequence to a strategy with an [`AnchorSet`].
///
/// In hard mode a sequence gets the chosen strategy's plan; in soft mode it gets every
/// strategy whose weight is positive, each addition scaled by its weight (ablations,
/// which cannot be scaled, only from the strategy of largest weight). Decisions are
/// logged with `tracing` and kept for the caller.
pub struct AdaptiveDecider<'a> {
    anchors: &'a AnchorSet,
    strategies: &'a [Strategy],
    point: HookPoint,
    decisions: Vec<Decision>,
}

impl<'a> AdaptiveDecider<'a> {
    /// Match with `anchors` (whose strategy names index `strategies` by position) at `point`.
    pub fn new(anchors: &'a AnchorSet, strategies: &'a [Strategy], point: HookPoint) -> Self {
        AdaptiveDecider {
            anchors,
            strategies,
            point,
            decisions: Vec::new(),
        }
    }

    /// The decisions of the last prefill, one per sequence.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Take the decisions.
    pub fn into_decisions(self) -> Vec<Decision> {
        self.decisions
    }

    fn plan_for(&self, d: &Decision) -> Option<InterventionPlan> {
        if !d.steers() {
            return None;
        }
        if d.weights.is_empty() {
            return d
                .strategy
                .and_then(|k| self.strategies.get(k))
                .map(|s| s.plan());
        }
        let mut plan = InterventionPlan::new();
        for (k, &w) in d.weights.iter().enumerate() {
            let Some(s) = self.strategies.get(k) else {
                continue;
            };
            if w <= 0.0 {
                continue;
            }
            let scalable = s.vector.operation != masteer_types::OperationKind::Ablate;
            if scalable {
                plan.extend(s.plan_weighted(w));
            } else if d.strategy == Some(k) {
                plan.extend(s.plan());
            }
        }
        (!plan.is_empty()).then_some(plan)
    }
}

impl Decider for AdaptiveDecider<'_> {
    fn point(&self) -> HookPoint {
        self.point
    }

    fn decide(
        &mut self,
        reps: ArrayView2<'_, f32>,
    ) -> masteer_models::Result<Vec<Option<InterventionPlan>>> {
        let decisions = self
            .anchors
            .decide_batch(reps)
            .map_err(|e| ModelError::Decider {
                at: self.point,
                message: e.to_string(),
            })?;
        for (i, d) in decisions.iter().enumerate() {
            tracing::debug!(sequence = i, strategy = ?d.name, margin = d.margin, "adaptive steering decision");
        }
        let plans = decisions.iter().map(|d| self.plan_for(d)).collect();
        self.decisions = decisions;
        Ok(plans)
    }
}
