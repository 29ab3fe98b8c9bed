//! Applying compiled intervention plans, captures and deciders to an activation
//! inside the forward pass.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use masteer_types::{HookPoint, Operation, Positions};
use ndarray::Array2;

use super::capture::{CaptureRow, CaptureSpec, Captures};
use super::decider::Decider;
use super::plan::{norm, Intervention, InterventionPlan};
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};

/// Which absolute positions the columns of the current forward call hold, per sequence.
#[derive(Clone, Debug)]
pub(crate) struct ForwardCtx {
    /// Number of columns of the call.
    pub cols: usize,
    /// Per sequence: absolute position of column 0 (negative for left padding).
    pub first_pos: Vec<isize>,
    /// Per sequence: prompt length (for `Prompt`, `Generated`, `LastPromptToken`).
    pub prompt_len: Vec<usize>,
}

impl ForwardCtx {
    /// Absolute position of column `t` of sequence `i`, or `None` for padding.
    #[inline]
    pub fn abs_pos(&self, i: usize, t: usize) -> Option<usize> {
        let p = self.first_pos[i] + t as isize;
        (p >= 0).then_some(p as usize)
    }

    pub fn batch(&self) -> usize {
        self.first_pos.len()
    }
}

#[derive(Clone, Debug)]
struct CompiledOp {
    positions: Positions,
    op: Operation,
    /// The vector the kernel uses (see [`compile_op`]).
    vector: Arc<[f32]>,
    /// The weight of the selected positions in the kernel's mask.
    gain: f32,
}

/// Plans of a batch indexed by hook point: for each point, each sequence's operations
/// in plan order.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompiledPlans {
    by_point: HashMap<HookPoint, Vec<(usize, CompiledOp)>>,
}

impl CompiledPlans {
    /// Validate and index the plans of a batch (`plans[i]` belongs to sequence `i`).
    pub fn compile(plans: &[Option<InterventionPlan>], cfg: &LlamaConfig) -> Result<Self> {
        let mut out = CompiledPlans::default();
        for (row, plan) in plans.iter().enumerate() {
            if let Some(plan) = plan {
                out.add_plan(row, plan, cfg)?;
            }
        }
        Ok(out)
    }

    /// Validate and add one sequence's plan after those already present.
    pub fn add_plan(
        &mut self,
        row: usize,
        plan: &InterventionPlan,
        cfg: &LlamaConfig,
    ) -> Result<()> {
        plan.validate(cfg)?;
        for i in &plan.interventions {
            let op = compile_op(i);
            for p in i.points() {
                self.by_point.entry(p).or_default().push((row, op.clone()));
            }
        }
        Ok(())
    }

    /// Append the plans of another batch after this one's `rows` sequences.
    pub fn append(&mut self, other: CompiledPlans, rows: usize) {
        for (p, ops) in other.by_point {
            self.by_point
                .entry(p)
                .or_default()
                .extend(ops.into_iter().map(|(r, op)| (r + rows, op)));
        }
    }

    /// Keep the sequences `keep` (old row indices, in their new order).
    pub fn retain(&mut self, keep: &[usize]) {
        for ops in self.by_point.values_mut() {
            let old = std::mem::take(ops);
            *ops = old
                .into_iter()
                .filter_map(|(r, op)| keep.iter().position(|&k| k == r).map(|n| (n, op)))
                .collect();
        }
        self.by_point.retain(|_, ops| !ops.is_empty());
    }

    fn at(&self, p: HookPoint) -> Option<&[(usize, CompiledOp)]> {
        self.by_point.get(&p).map(|v| v.as_slice())
    }
}

/// The kernel's form of an intervention: additions fold the coefficient into the
/// vector; ablation normalises the direction and weights the removal by the
/// coefficient (1 removes the whole component).
fn compile_op(i: &Intervention) -> CompiledOp {
    let (vector, gain) = match i.op {
        Operation::Add | Operation::AddNormPreserving => {
            (i.vector.iter().map(|v| v * i.coefficient).collect(), 1.0)
        }
        Operation::Ablate => {
            let n = norm(&i.vector);
            (i.vector.iter().map(|v| v / n).collect(), i.coefficient)
        }
    };
    CompiledOp {
        positions: i.positions,
        op: i.op,
        vector,
        gain,
    }
}

/// Everything the forward pass consults at hook points.
pub(crate) struct HookState<'a> {
    pub plans: &'a mut CompiledPlans,
    pub raw_plans: &'a mut Vec<Option<InterventionPlan>>,
    pub capture: Option<(&'a CaptureSpec, &'a mut Captures)>,
    pub decider: Option<&'a mut dyn Decider>,
    /// Flattened row indices (`seq · cols + col`) and identities of the rows to capture.
    pub capture_rows: Vec<(usize, CaptureRow)>,
}

impl<'a> HookState<'a> {
    /// Prepare the capture rows for this call.
    pub fn begin(&mut self, ctx: &ForwardCtx) {
        self.capture_rows.clear();
        if let Some((spec, caps)) = &mut self.capture {
            for i in 0..ctx.batch() {
                for t in 0..ctx.cols {
                    if let Some(pos) = ctx.abs_pos(i, t) {
                        if spec.positions.contains(pos, ctx.prompt_len[i]) {
                            self.capture_rows
                                .push((i * ctx.cols + t, CaptureRow { seq: i, pos }));
                        }
                    }
                }
            }
            let rows: Vec<CaptureRow> = self.capture_rows.iter().map(|r| r.1).collect();
            caps.push_rows(&rows);
        }
    }

    /// Whether anything happens at `p` (so the caller may skip reshapes).
    pub fn wants(&self, p: HookPoint) -> bool {
        self.plans.at(p).is_some()
            || self
                .capture
                .as_ref()
                .is_some_and(|(s, _)| s.points.contains(&p))
            || self.decider.as_ref().is_some_and(|d| d.point() == p)
    }

    /// Interventions, then capture, then the decider, at hook point `p`. `x` is
    /// `[batch, cols, width]`.
    pub fn run<B: Backend>(
        &mut self,
        p: HookPoint,
        x: Tensor<B, 3>,
        ctx: &ForwardCtx,
        cfg: &LlamaConfig,
    ) -> Result<Tensor<B, 3>> {
        let x = match self.plans.at(p) {
            Some(ops) => apply_ops(x, ops, ctx)?,
            None => x,
        };
        if let Some((spec, caps)) = &mut self.capture {
            if spec.points.contains(&p) && !self.capture_rows.is_empty() {
                let [b, t, w] = x.dims();
                let idx: Vec<i64> = self.capture_rows.iter().map(|r| r.0 as i64).collect();
                let values = gather_rows(x.clone().reshape([b * t, w]), &idx)?;
                caps.push_values(p, w, values);
            }
        }
        let decide_here = self.decider.as_ref().is_some_and(|d| d.point() == p);
        if decide_here {
            self.decide(p, &x, ctx, cfg)?;
        }
        Ok(x)
    }

    fn decide<B: Backend>(
        &mut self,
        p: HookPoint,
        x: &Tensor<B, 3>,
        ctx: &ForwardCtx,
        cfg: &LlamaConfig,
    ) -> Result<()> {
        let [b, t, w] = x.dims();
        let pooled = self
            .decider
            .as_ref()
            .map_or(1, |d| d.pooled_tokens())
            .max(1);
        // Rows of each sequence's last `pooled` prompt tokens; all must be in this call.
        let mut idx = Vec::with_capacity(b * pooled);
        let mut counts = Vec::with_capacity(b);
        for i in 0..b {
            let len = ctx.prompt_len[i];
            let first = len.saturating_sub(pooled);
            let cols: Vec<usize> = (0..t)
                .filter(|&c| ctx.abs_pos(i, c).is_some_and(|q| q >= first && q < len))
                .collect();
            let has_last = (0..t).any(|c| ctx.abs_pos(i, c) == len.checked_sub(1));
            if !has_last {
                return Ok(()); // not the prefill call: the decision was already made
            }
            if cols.len() != len - first {
                return Err(ModelError::Decider {
                    at: p,
                    message: format!(
                        "the reading averages the last {pooled} prompt tokens, but only {} of sequence {i}'s are in this prefill call",
                        cols.len()
                    ),
                });
            }
            idx.extend(cols.iter().map(|&c| (i * t + c) as i64));
            counts.push(cols.len());
        }
        let values = gather_rows(x.clone().reshape([b * t, w]), &idx)?;
        let mut pooled_rows = Vec::with_capacity(b * w);
        let mut at = 0;
        for &n in &counts {
            let rows = (at..at + n).map(|r| &values[r * w..(r + 1) * w]);
            pooled_rows.extend(super::decider::mean_of_rows(rows, w));
            at += n;
        }
        let reps = Array2::from_shape_vec((b, w), pooled_rows)
            .map_err(|e| ModelError::Backend(format!("decider input: {e}")))?;
        let decider = self.decider.take();
        let Some(decider) = decider else {
            return Ok(());
        };
        let decided = decider.decide(reps.view());
        self.decider = Some(decider);
        let decided = decided?;
        if decided.len() != b {
            return Err(ModelError::Decider {
                at: p,
                message: format!("returned {} plans for a batch of {b}", decided.len()),
            });
        }
        for (row, plan) in decided.into_iter().enumerate() {
            let Some(plan) = plan else { continue };
            for i in &plan.interventions {
                if let Some(bad) = i.points().find(|q| !p.precedes(q)) {
                    return Err(ModelError::Decider {
                        at: p,
                        message: format!(
                            "plan for sequence {row} acts at {bad}, which runs before or at the decision point"
                        ),
                    });
                }
            }
            self.plans.add_plan(row, &plan, cfg)?;
            match &mut self.raw_plans[row] {
                Some(existing) => existing.extend(plan),
                slot @ None => *slot = Some(plan),
            }
        }
        Ok(())
    }
}

/// Copy rows `idx` of a `[n, w]` tensor to the host.
pub(crate) fn gather_rows<B: Backend>(x2: Tensor<B, 2>, idx: &[i64]) -> Result<Vec<f32>> {
    let device = x2.device();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(idx.to_vec(), [idx.len()]), &device);
    let rows = x2.select(0, index);
    rows.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("reading activations: {e:?}")))
}

/// Apply the operations of one hook point. Operations of one sequence run in plan
/// order: the k-th operation of every sequence is applied in the k-th round.
fn apply_ops<B: Backend>(
    mut x: Tensor<B, 3>,
    ops: &[(usize, CompiledOp)],
    ctx: &ForwardCtx,
) -> Result<Tensor<B, 3>> {
    let [b, t, w] = x.dims();
    let device = x.device();
    let mut per_row: Vec<Vec<&CompiledOp>> = vec![Vec::new(); b];
    for (row, op) in ops {
        if *row < b {
            per_row[*row].push(op);
        }
    }
    let rounds = per_row.iter().map(|v| v.len()).max().unwrap_or(0);
    for round in 0..rounds {
        for kind in Operation::ALL {
            let mut vecs = vec![0f32; b * w];
            let mut mask = vec![0f32; b * t];
            let mut any = false;
            for (i, row_ops) in per_row.iter().enumerate() {
                let Some(op) = row_ops.get(round) else {
                    continue;
                };
                if op.op != kind {
                    continue;
                }
                let mut row_any = false;
                for c in 0..t {
                    if let Some(pos) = ctx.abs_pos(i, c) {
                        if op.positions.contains(pos, ctx.prompt_len[i]) {
                            mask[i * t + c] = op.gain;
                            row_any = true;
                        }
                    }
                }
                if row_any {
                    vecs[i * w..(i + 1) * w].copy_from_slice(&op.vector);
                    any = true;
                }
            }
            if !any {
                continue;
            }
            let v = Tensor::<B, 3>::from_data(TensorData::new(vecs, [b, 1, w]), &device);
            let m = Tensor::<B, 3>::from_data(TensorData::new(mask, [b, t, 1]), &device);
            x = match kind {
                Operation::Add => x + m * v,
                Operation::Ablate => {
                    let proj = (x.clone() * v.clone()).sum_dim(2);
                    x - (m * proj) * v
                }
                Operation::AddNormPreserving => {
                    let y = x.clone() + v;
                    let nx = x.clone().powi_scalar(2).sum_dim(2).sqrt();
                    let ny = y.clone().powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-12);
                    let scaled = y * (nx / ny);
                    x.clone() + m * (scaled - x)
                }
            };
        }
    }
    Ok(x)
}
