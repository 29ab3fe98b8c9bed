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

/// A condition gate routing inputs to one strategy: read at `point` (the last prompt
/// token, before every layer the strategy steers), the gate's probability above its
/// threshold steers the sequence with the strategy named `strategy` (a stable id, not
/// a position); below it the sequence runs unsteered.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateRouter {
    /// Where the gate reads.
    pub point: HookPoint,
    /// The classifier and its threshold.
    pub gate: masteer_anchor::Gate,
    /// The name of the strategy it opens.
    pub strategy: String,
}

impl GateRouter {
    /// Check that the gate reads strictly before every layer the strategy steers.
    pub fn check(&self, strategies: &[Strategy]) -> crate::Result<()> {
        let s = strategies
            .iter()
            .find(|s| s.name == self.strategy)
            .ok_or_else(|| {
                crate::CoreError::InvalidInput(format!(
                    "the gate routes to `{}`, which is not in the library",
                    self.strategy
                ))
            })?;
        if let Some(first) = s.first_point() {
            if first.execution_index() <= self.point.execution_index() {
                return Err(crate::CoreError::InvalidInput(format!(
                    "the gate reads {} but `{}` already steers {first}",
                    self.point, s.name
                )));
            }
        }
        Ok(())
    }
}

/// A [`Decider`] running a [`GateRouter`]: each sequence's decision carries the gate's
/// probability (as the strategy's similarity), its threshold (as the no-steering
/// similarity) and their difference (the margin).
pub struct GateDecider<'a> {
    router: &'a GateRouter,
    strategies: &'a [Strategy],
    index: Option<usize>,
    decisions: Vec<Decision>,
}

impl<'a> GateDecider<'a> {
    /// Gate with `router` among `strategies`.
    pub fn new(router: &'a GateRouter, strategies: &'a [Strategy]) -> Self {
        GateDecider {
            router,
            strategies,
            index: strategies.iter().position(|s| s.name == router.strategy),
            decisions: Vec::new(),
        }
    }

    /// Take the decisions of the last prefill.
    pub fn into_decisions(self) -> Vec<Decision> {
        self.decisions
    }
}

impl Decider for GateDecider<'_> {
    fn point(&self) -> HookPoint {
        self.router.point
    }

    fn decide(
        &mut self,
        reps: ArrayView2<'_, f32>,
    ) -> masteer_models::Result<Vec<Option<InterventionPlan>>> {
        let k = self.strategies.len();
        let mut plans = Vec::with_capacity(reps.nrows());
        self.decisions.clear();
        for (i, row) in reps.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let p = self
                .router
                .gate
                .probability(&row)
                .map_err(|e| ModelError::Decider {
                    at: self.router.point,
                    message: e.to_string(),
                })?;
            let t = self.router.gate.threshold;
            let chosen = self.index.filter(|_| p > t);
            let mut similarities = vec![-1.0; k];
            if let Some(j) = self.index {
                similarities[j] = p;
            }
            tracing::debug!(
                sequence = i,
                probability = p,
                threshold = t,
                steers = chosen.is_some(),
                "gate decision"
            );
            plans.push(chosen.map(|j| self.strategies[j].plan()));
            self.decisions.push(Decision {
                strategy: chosen,
                name: chosen.map(|j| self.strategies[j].name.clone()),
                similarities,
                none_similarity: t,
                margin: p - t,
                weights: Vec::new(),
            });
        }
        Ok(plans)
    }
}

/// The decider of a library's router: anchors or a gate. One type, so callers build
/// and run either the same way.
pub enum LibraryDecider<'a> {
    /// Cosine matching to anchors.
    Anchors(AdaptiveDecider<'a>),
    /// A condition gate.
    Gate(GateDecider<'a>),
}

impl LibraryDecider<'_> {
    /// The decisions of the last prefill, one per sequence.
    pub fn into_decisions(self) -> Vec<Decision> {
        match self {
            LibraryDecider::Anchors(d) => d.into_decisions(),
            LibraryDecider::Gate(d) => d.into_decisions(),
        }
    }
}

impl Decider for LibraryDecider<'_> {
    fn point(&self) -> HookPoint {
        match self {
            LibraryDecider::Anchors(d) => d.point(),
            LibraryDecider::Gate(d) => d.point(),
        }
    }

    fn decide(
        &mut self,
        reps: ArrayView2<'_, f32>,
    ) -> masteer_models::Result<Vec<Option<InterventionPlan>>> {
        match self {
            LibraryDecider::Anchors(d) => d.decide(reps),
            LibraryDecider::Gate(d) => d.decide(reps),
        }
    }
}
