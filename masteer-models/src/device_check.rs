//! Does a backend compute what another computes? The same model run on two backends
//! (typically a GPU against the CPU): last-position logits, unsteered and under a
//! steering plan; a capture; an input-conditioned decision made inside the prefill pass;
//! and a short greedy reply. `masteer check --device wgpu` prints its report.
//!
//! Generic over both backends and instantiated only where it is called, so a binary
//! that already carries a GPU backend checks it at little extra build cost.

use burn::tensor::backend::Backend;
use ndarray::ArrayView2;

use crate::{
    CaptureSpec, ChatMessage, Decider, GenerateOptions, HookPoint, Hooks, Intervention,
    InterventionPlan, LoadedModel, ModelError, Positions, Result, SeqInput, Session, Site,
    Steering,
};

/// Largest logit difference allowed between backends: f32 on both, reduced in another
/// order (the golden tests' tolerance against llama.cpp).
pub const LOGIT_TOLERANCE: f32 = 0.05;

/// Largest difference allowed in a captured residual stream, whose values are an order
/// of magnitude larger than logits.
pub const CAPTURE_TOLERANCE: f32 = 0.5;

/// Tokens of the greedy reply compared word for word.
pub const REPLY_TOKENS: usize = 6;

/// One comparison: what was compared and how far apart the two backends are.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// What was compared (`logits, unsteered, sequence 0`).
    pub what: String,
    /// Largest absolute difference.
    pub max_abs_diff: f32,
    /// Mean absolute difference.
    pub mean_abs_diff: f32,
    /// The largest difference allowed.
    pub tolerance: f32,
}

impl CheckRow {
    /// Whether the difference is within the tolerance (NaN never is).
    pub fn passed(&self) -> bool {
        self.max_abs_diff <= self.tolerance
    }
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceComparison {
    /// Numeric comparisons.
    pub rows: Vec<CheckRow>,
    /// The gate's scores per prompt on the reference and the other backend, and the
    /// threshold between them (set halfway on the reference).
    pub gate_scores: (Vec<f32>, Vec<f32>, f32),
    /// The greedy replies to the first prompt, reference then other: reported, not a
    /// failure, since logits within tolerance may still flip a near-tie greedy choice.
    pub replies: (String, String),
}

impl DeviceComparison {
    /// The gate's decisions (steer or not, per prompt) on the reference and the other.
    pub fn gate_decisions(&self) -> (Vec<bool>, Vec<bool>) {
        let (a, b, t) = &self.gate_scores;
        let d = |s: &[f32]| s.iter().map(|x| x > t).collect::<Vec<_>>();
        (d(a), d(b))
    }

    /// Every row within tolerance and the same gate decisions.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The failures in words (empty when [`DeviceComparison::passed`]).
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.passed())
            .map(|r| {
                format!(
                    "{}: max |Δ| {} above {}",
                    r.what, r.max_abs_diff, r.tolerance
                )
            })
            .collect();
        let (a, b) = self.gate_decisions();
        if a != b {
            out.push(format!("gate decisions differ: {a:?} against {b:?}"));
        }
        out
    }
}

impl std::fmt::Display for DeviceComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.rows {
            writeln!(
                f,
                "{:<44} max |Δ| {:.5}  mean {:.6}  (≤ {}) {}",
                r.what,
                r.max_abs_diff,
                r.mean_abs_diff,
                r.tolerance,
                if r.passed() { "ok" } else { "FAILED" }
            )?;
        }
        let (a, b, t) = &self.gate_scores;
        let (da, db) = self.gate_decisions();
        writeln!(
            f,
            "{:<44} reference {a:?}, other {b:?} (threshold {t}) {}",
            "gate scores",
            if da == db { "ok" } else { "FAILED" }
        )?;
        write!(
            f,
            "{:<44} {:?} / {:?} {}",
            "greedy reply",
            self.replies.0,
            self.replies.1,
            if self.replies.0 == self.replies.1 {
                "same"
            } else {
                "differ (a near-tie can flip a greedy choice)"
            }
        )
    }
}

/// Largest and mean absolute difference of two equally long slices (NaN anywhere
/// makes the largest NaN, so the row fails).
pub fn abs_diff(a: &[f32], b: &[f32]) -> Result<(f32, f32)> {
    if a.len() != b.len() {
        return Err(ModelError::InvalidInput(format!(
            "comparing {} values with {}",
            a.len(),
            b.len()
        )));
    }
    let mut max = 0f32;
    let mut sum = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        max = if d.is_nan() || max.is_nan() {
            f32::NAN
        } else {
            max.max(d)
        };
        sum += d as f64;
    }
    Ok((max, (sum / a.len().max(1) as f64) as f32))
}

/// The prompts both backends answer.
fn prompts() -> Vec<Vec<ChatMessage>> {
    vec![
        vec![ChatMessage::user("What is the capital of France?")],
        vec![ChatMessage::user("I think 2+2=5. Am I right?")],
    ]
}

/// Where the check reads and steers, placed by depth so any model of four or more
/// blocks takes them: the gate a quarter of the way in, steering at a third, the
/// capture half-way.
struct Layout {
    gate: usize,
    steer: Vec<usize>,
    capture: usize,
}

impl Layout {
    fn of(blocks: usize) -> Result<Self> {
        if blocks < 4 {
            return Err(ModelError::InvalidInput(format!(
                "the device check needs a model of at least 4 blocks, not {blocks}"
            )));
        }
        let steer_from = (blocks / 3).max(blocks / 4 + 1);
        Ok(Layout {
            gate: blocks / 4,
            steer: vec![steer_from, (steer_from + 1).min(blocks - 1)],
            capture: blocks / 2,
        })
    }
}

/// A fixed, deterministic steering plan of the model's width.
fn plan(width: usize, layers: &[usize]) -> InterventionPlan {
    let v: Vec<f32> = (0..width)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    InterventionPlan::new().with(Intervention::add(
        Site::ResidPost,
        layers.to_vec(),
        Positions::All,
        v,
        4.0,
    ))
}

fn last_logits<B: Backend>(
    lm: &LoadedModel<B>,
    plans: &[Option<InterventionPlan>],
    hooks: &mut Hooks<'_>,
) -> Result<Vec<Vec<f32>>> {
    let mut inputs = Vec::new();
    for (p, plan) in prompts().iter().zip(plans) {
        inputs.push(SeqInput::prompt(lm.encode_chat(p)?).with_plan(plan.clone()));
    }
    let pos: Vec<Vec<usize>> = inputs
        .iter()
        .map(|s| vec![s.tokens.len().saturating_sub(1)])
        .collect();
    Ok(
        crate::generation::logits_at(&lm.model, inputs, &pos, hooks)?
            .into_iter()
            .map(|mut v| v.swap_remove(0))
            .collect(),
    )
}

fn capture<B: Backend>(lm: &LoadedModel<B>, point: HookPoint) -> Result<Vec<f32>> {
    let ids = lm.encode_chat(&prompts()[0])?;
    let mut hooks = Hooks::capture(CaptureSpec::new(vec![point], Positions::All));
    Session::prefill(&lm.model, vec![SeqInput::prompt(ids)], 0, &mut hooks)?;
    Ok(hooks.captures.require(point)?.iter().copied().collect())
}

/// An input-conditioned decision as adaptive steering makes it: the last prompt token at
/// the gate's point is projected on the plan's vector, and the sequence is steered when
/// the projection exceeds the threshold.
struct ProjectionGate {
    point: HookPoint,
    plan: InterventionPlan,
    threshold: f32,
    scores: Vec<f32>,
}

impl Decider for ProjectionGate {
    fn point(&self) -> HookPoint {
        self.point
    }

    fn decide(&mut self, reps: ArrayView2<'_, f32>) -> Result<Vec<Option<InterventionPlan>>> {
        let dir = &self.plan.interventions[0].vector;
        Ok(reps
            .rows()
            .into_iter()
            .map(|r| {
                let s: f32 = r.iter().zip(dir.iter()).map(|(a, b)| a * b).sum();
                self.scores.push(s);
                (s > self.threshold).then(|| self.plan.clone())
            })
            .collect())
    }
}

fn gated<B: Backend>(lm: &LoadedModel<B>, gate: &mut ProjectionGate) -> Result<Vec<Vec<f32>>> {
    gate.scores.clear();
    let mut hooks = Hooks::none().with_decider(gate);
    last_logits(lm, &[None, None], &mut hooks)
}

fn row(what: String, a: &[f32], b: &[f32], tolerance: f32) -> Result<CheckRow> {
    let (max_abs_diff, mean_abs_diff) = abs_diff(a, b)?;
    Ok(CheckRow {
        what,
        max_abs_diff,
        mean_abs_diff,
        tolerance,
    })
}

/// Run the same model on `reference` and `other` and compare what they compute. Both
/// must hold the same model (same configuration); an error says so otherwise.
pub fn compare<A: Backend, B: Backend>(
    reference: &LoadedModel<A>,
    other: &LoadedModel<B>,
) -> Result<DeviceComparison> {
    let (ca, cb) = (reference.model.config(), other.model.config());
    if ca != cb {
        return Err(ModelError::InvalidInput(
            "the two models differ in configuration: load the same file on both backends".into(),
        ));
    }
    let layout = Layout::of(ca.num_hidden_layers)?;
    let steering = plan(ca.hidden_size, &layout.steer);
    let mut rows = Vec::new();
    for (what, plans) in [
        ("unsteered", [None, None]),
        ("steered", [None, Some(steering.clone())]),
    ] {
        let a = last_logits(reference, &plans, &mut Hooks::none())?;
        let b = last_logits(other, &plans, &mut Hooks::none())?;
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            rows.push(row(
                format!("logits, {what}, sequence {i}"),
                x,
                y,
                LOGIT_TOLERANCE,
            )?);
        }
    }
    let point = HookPoint::resid_post(layout.capture);
    rows.push(row(
        format!("capture at {point}"),
        &capture(reference, point)?,
        &capture(other, point)?,
        CAPTURE_TOLERANCE,
    )?);

    // The gate's threshold lies halfway between the two prompts' scores on the
    // reference, so it steers exactly one of them there.
    let mut gate = ProjectionGate {
        point: HookPoint::resid_post(layout.gate),
        plan: steering,
        threshold: f32::INFINITY,
        scores: Vec::new(),
    };
    gated(reference, &mut gate)?;
    let threshold = gate.scores.iter().sum::<f32>() / gate.scores.len().max(1) as f32;
    gate.threshold = threshold;
    let a = gated(reference, &mut gate)?;
    let ref_scores = std::mem::take(&mut gate.scores);
    let b = gated(other, &mut gate)?;
    let other_scores = std::mem::take(&mut gate.scores);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        rows.push(row(
            format!("logits, gated, sequence {i}"),
            x,
            y,
            LOGIT_TOLERANCE,
        )?);
    }

    let opts = GenerateOptions::greedy(REPLY_TOKENS);
    let reply = |texts: Vec<crate::Reply>| texts.into_iter().next().map(|r| r.text);
    let first = &prompts()[..1];
    let ra = reply(reference.generate_chat(first, Steering::None, &opts, &mut |_, _| {})?);
    let rb = reply(other.generate_chat(first, Steering::None, &opts, &mut |_, _| {})?);
    Ok(DeviceComparison {
        rows,
        gate_scores: (ref_scores, other_scores, threshold),
        replies: (ra.unwrap_or_default(), rb.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_measured_and_nan_fails() {
        let (max, mean) = abs_diff(&[1.0, 2.0, 3.0], &[1.0, 2.5, 2.0]).unwrap();
        assert_eq!(max, 1.0);
        assert!((mean - 0.5).abs() < 1e-6);
        let (max, _) = abs_diff(&[1.0, f32::NAN], &[1.0, 2.0]).unwrap();
        assert!(max.is_nan());
        let r = CheckRow {
            what: "x".into(),
            max_abs_diff: max,
            mean_abs_diff: 0.0,
            tolerance: 1.0,
        };
        assert!(!r.passed());
        assert!(abs_diff(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn the_layout_fits_small_and_deep_models() {
        let l = Layout::of(30).unwrap();
        assert_eq!((l.gate, l.steer.clone(), l.capture), (7, vec![10, 11], 15));
        let l = Layout::of(4).unwrap();
        assert!(l.gate < l.steer[0] && l.steer[1] < 4 && l.capture < 4);
        assert!(Layout::of(3).is_err());
    }
}
