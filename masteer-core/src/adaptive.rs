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
/// strategy whose weight is positive, its coefficient scaled by its weight. Decisions are
/// logged with `tracing` and kept for the caller.
pub struct AdaptiveDecider<'a> {
    anchors: &'a AnchorSet,
    /// Per anchor route (the anchors' strategy names, in their order), the library
    /// strategy of that name; `None` when the library has none (see [`Router::check`]).
    ///
    /// [`Router::check`]: crate::router::Router::check
    routes: Vec<Option<&'a Strategy>>,
    point: HookPoint,
    decisions: Vec<Decision>,
}

impl<'a> AdaptiveDecider<'a> {
    /// Match with `anchors` at `point`; the anchors' strategy names are looked up in
    /// `strategies` by name, so their order does not matter.
    pub fn new(anchors: &'a AnchorSet, strategies: &'a [Strategy], point: HookPoint) -> Self {
        let routes = anchors
            .strategies
            .iter()
            .map(|name| strategies.iter().find(|s| &s.name == name))
            .collect();
        AdaptiveDecider {
            anchors,
            routes,
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
                .and_then(|k| self.routes.get(k).copied().flatten())
                .map(|s| s.plan());
        }
        let mut plan = InterventionPlan::new();
        for (k, &w) in d.weights.iter().enumerate() {
            let Some(s) = self.routes.get(k).copied().flatten() else {
                continue;
            };
            if w <= 0.0 {
                continue;
            }
            plan.extend(s.plan_weighted(w));
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
/// token, or the mean of the last `pooled_tokens`; before every layer the strategy
/// steers), the gate's probability above its
/// threshold steers the sequence with the strategy named `strategy` (a stable id, not
/// a position). Below it the sequence runs unsteered, or — when the router has a scope
/// gate that says the input belongs to the issue and `below` is not 0 — is steered with
/// `below` times the coefficient (negative: the other way, e.g. towards confirming a
/// claim the gate reads as true).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateRouter {
    /// Where the gate reads.
    pub point: HookPoint,
    /// The classifier and its threshold.
    pub gate: masteer_anchor::Gate,
    /// The name of the strategy it opens.
    pub strategy: String,
    /// Strength that depends on the input: an opened sequence is steered with the
    /// strategy's coefficient times [`GateRouter::weight`] of its probability (half at
    /// the threshold, all of it at certainty) instead of the whole coefficient.
    #[serde(default)]
    pub graded: bool,
    /// A second condition: whether the input belongs to the issue at all (its trigger
    /// or control side, against inputs outside it). Inputs it keeps shut are never
    /// steered, whatever the main gate says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<masteer_anchor::Gate>,
    /// Share of the coefficient for in-scope inputs at or below the threshold (needs
    /// `scope`; 0 leaves them unsteered).
    #[serde(default)]
    pub below: f32,
    /// The gate (and scope gate) read the mean over the prompt's last this many tokens
    /// (1: the last token alone, as artifacts before this field did).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub pooled_tokens: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl GateRouter {
    /// Check that the gate's strategy is in `strategies` and is steered strictly after
    /// the point the gate reads.
    pub fn check(&self, strategies: &[Strategy]) -> crate::Result<()> {
        crate::router::Router::Gate(self.clone()).check(strategies)
    }

    /// The share of the strategy's coefficient an input with gate probability `p`
    /// gets (`in_scope`: whether the scope gate, if any, opens for it): 0 out of scope;
    /// at or below the threshold, `below` when there is a scope gate, else 0; above it,
    /// when graded, rising linearly from ½ just above the threshold to 1 at `p = 1`,
    /// else 1.
    pub fn weight(&self, p: f32, in_scope: bool) -> f32 {
        let t = self.gate.threshold;
        if !in_scope {
            0.0
        } else if p <= t {
            if self.scope.is_some() {
                self.below
            } else {
                0.0
            }
        } else if self.graded {
            (0.5 + 0.5 * (p - t) / (1.0 - t).max(f32::EPSILON)).min(1.0)
        } else {
            1.0
        }
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

    fn pooled_tokens(&self) -> usize {
        self.router.pooled_tokens
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
            let in_scope = match &self.router.scope {
                Some(scope) => scope.fires(&row).map_err(|e| ModelError::Decider {
                    at: self.router.point,
                    message: e.to_string(),
                })?,
                None => true,
            };
            let w = self.router.weight(p, in_scope);
            let chosen = self.index.filter(|_| w != 0.0);
            let mut similarities = vec![-1.0; k];
            let mut weights = Vec::new();
            if let Some(j) = self.index {
                similarities[j] = p;
                if w != 0.0 && w != 1.0 {
                    // The share of the coefficient (negative: steered the other way).
                    weights = vec![0.0; k];
                    weights[j] = w;
                }
            }
            tracing::debug!(
                sequence = i,
                probability = p,
                threshold = t,
                in_scope,
                weight = w,
                "gate decision"
            );
            plans.push(chosen.map(|j| self.strategies[j].plan_weighted(w)));
            self.decisions.push(Decision {
                strategy: chosen,
                name: chosen.map(|j| self.strategies[j].name.clone()),
                similarities,
                none_similarity: t,
                margin: p - t,
                weights,
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

    fn pooled_tokens(&self) -> usize {
        match self {
            LibraryDecider::Anchors(d) => d.pooled_tokens(),
            LibraryDecider::Gate(d) => d.pooled_tokens(),
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
