//! Deciders: callbacks that read an activation inside the prefill pass and choose,
//! per sequence, the intervention plan of the layers that follow. Adaptive steering
//! (matching each input to a strategy) is built on this, in one forward pass.

use masteer_types::HookPoint;
use ndarray::ArrayView2;

use super::plan::InterventionPlan;
use crate::error::Result;

/// A callback run once during prefill at [`Decider::point`], after the interventions
/// at that point. It receives one row per sequence: the activation at that
/// sequence's last prompt token, or the mean over its last
/// [`pooled_tokens`](Decider::pooled_tokens) prompt tokens. It returns, per sequence,
/// a plan to add (or `None`). Every returned intervention must act strictly after
/// `point`.
pub trait Decider: Send {
    /// Where the decider reads.
    fn point(&self) -> HookPoint;
    /// How many of each prompt's last tokens the row it receives averages (1: the last
    /// token alone; a prompt shorter than this is averaged whole).
    fn pooled_tokens(&self) -> usize {
        1
    }
    /// Choose a plan per sequence from `reps` (`[batch, width]`).
    fn decide(&mut self, reps: ArrayView2<'_, f32>) -> Result<Vec<Option<InterventionPlan>>>;
}

/// The row a pooled decider receives: the mean of `rows` (each `width` wide, summed in
/// order, then divided by their count; one row is returned as it is). Fitting code that
/// must read exactly what a decider reads (a gate's training representations) uses it
/// too.
pub fn mean_of_rows<'r>(rows: impl IntoIterator<Item = &'r [f32]>, width: usize) -> Vec<f32> {
    let mut out = vec![0f32; width];
    let mut n = 0usize;
    for r in rows {
        for (o, v) in out.iter_mut().zip(r) {
            *o += v;
        }
        n += 1;
    }
    if n > 1 {
        out.iter_mut().for_each(|o| *o /= n as f32);
    }
    out
}

/// A decider made from a closure.
pub struct FnDecider<F> {
    point: HookPoint,
    f: F,
}

impl<F> FnDecider<F>
where
    F: FnMut(ArrayView2<'_, f32>) -> Result<Vec<Option<InterventionPlan>>> + Send,
{
    /// Run `f` at `point`.
    pub fn new(point: HookPoint, f: F) -> Self {
        FnDecider { point, f }
    }
}

impl<F> Decider for FnDecider<F>
where
    F: FnMut(ArrayView2<'_, f32>) -> Result<Vec<Option<InterventionPlan>>> + Send,
{
    fn point(&self) -> HookPoint {
        self.point
    }
    fn decide(&mut self, reps: ArrayView2<'_, f32>) -> Result<Vec<Option<InterventionPlan>>> {
        (self.f)(reps)
    }
}
