//! A batch of sequences being run: left-padded prefill, then KV-cached steps, each
//! sequence with its own prompt length and intervention plan. The session owns what
//! persists between forward calls (cache, padding, plans, kernels) and hands the model
//! one [`ForwardState`] per call.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::{ModelError, Result};
use crate::hooks::apply::{CompiledPlans, ForwardCtx, HookState};
use crate::hooks::{CaptureSpec, Captures, Decider, InterventionPlan};
use crate::model::{ForwardState, Kernels, KvCache, Llama};

/// One sequence to run.
#[derive(Clone, Debug, Default)]
pub struct SeqInput {
    /// Its token ids (at least one).
    pub tokens: Vec<u32>,
    /// How many of the tokens are the prompt (positions after it count as generated).
    pub prompt_len: usize,
    /// Its interventions, or `None` for the unsteered model.
    pub plan: Option<InterventionPlan>,
}

impl SeqInput {
    /// A prompt of `tokens` with no plan.
    pub fn prompt(tokens: Vec<u32>) -> Self {
        let prompt_len = tokens.len();
        SeqInput {
            tokens,
            prompt_len,
            plan: None,
        }
    }

    /// Attach a plan.
    pub fn with_plan(mut self, plan: Option<InterventionPlan>) -> Self {
        self.plan = plan;
        self
    }
}

/// Capture requests, captured values and an optional decider for one run.
#[derive(Default)]
pub struct Hooks<'a> {
    /// What to copy to the host.
    pub capture: Option<CaptureSpec>,
    /// What was copied (appended over prefill and every step).
    pub captures: Captures,
    /// A callback that picks plans inside the prefill pass.
    pub decider: Option<&'a mut dyn Decider>,
}

impl<'a> Hooks<'a> {
    /// No capture, no decider.
    pub fn none() -> Self {
        Self::default()
    }

    /// Capture `spec`.
    pub fn capture(spec: CaptureSpec) -> Self {
        Hooks {
            capture: Some(spec),
            ..Default::default()
        }
    }

    /// Run `decider` during prefill.
    pub fn with_decider(mut self, decider: &'a mut dyn Decider) -> Self {
        self.decider = Some(decider);
        self
    }
}

/// The state of a batch between calls: KV cache, padding and plans of every sequence.
#[derive(Clone, Debug)]
pub struct Session<B: Backend> {
    cache: KvCache<B>,
    pads: Vec<usize>,
    prompt_len: Vec<usize>,
    plans: CompiledPlans,
    raw_plans: Vec<Option<InterventionPlan>>,
    kernels: Kernels,
}

impl<B: Backend> Session<B> {
    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.pads.len()
    }

    /// Columns in the cache (padding included).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing has been run yet.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// The plan each sequence runs with now (including what a decider added).
    pub fn plans(&self) -> &[Option<InterventionPlan>] {
        &self.raw_plans
    }

    /// Number of real tokens of sequence `i` so far.
    pub fn seq_len(&self, i: usize) -> usize {
        self.cache.len().saturating_sub(self.pads[i])
    }

    /// Add the sequences of `other` (e.g. a request prefilled alone) after this
    /// batch's, keeping room for `reserve` more steps. Each sequence keeps its
    /// positions, plan and cache: its next step gives what it would give alone.
    pub fn join(&mut self, other: Session<B>, reserve: usize) {
        let rows = self.batch();
        let (shift_mine, shift_theirs) = self.cache.join(other.cache, reserve);
        for p in &mut self.pads {
            *p += shift_mine;
        }
        self.pads
            .extend(other.pads.iter().map(|&p| p + shift_theirs));
        self.prompt_len.extend(other.prompt_len);
        self.plans.append(other.plans, rows);
        self.raw_plans.extend(other.raw_plans);
    }

    /// Keep only the sequences `rows` (indices of this batch, in their new order),
    /// dropping cache columns that are padding for every kept sequence.
    pub fn retain(&mut self, rows: &[usize]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch()) {
            return Err(ModelError::InvalidInput(format!(
                "sequence {bad} is outside a batch of {}",
                self.batch()
            )));
        }
        if rows.is_empty() {
            return Err(ModelError::InvalidInput(
                "a session must keep at least one sequence".into(),
            ));
        }
        let pads: Vec<usize> = rows.iter().map(|&r| self.pads[r]).collect();
        let front = pads
            .iter()
            .copied()
            .min()
            .unwrap_or(0)
            .min(self.cache.len());
        self.cache.retain(rows, front);
        self.pads = pads.into_iter().map(|p| p - front).collect();
        self.prompt_len = rows.iter().map(|&r| self.prompt_len[r]).collect();
        self.raw_plans = rows.iter().map(|&r| self.raw_plans[r].clone()).collect();
        self.plans.retain(rows);
        Ok(())
    }
}

impl<B: Backend> Session<B> {
    /// Run the prompts of a batch (left-padded to the longest) through `model` and keep
    /// the cache for `extra` more columns. Returns the session and the residual stream
    /// after the last block, `[batch, cols, width]` (column `cols − 1` is every
    /// sequence's last token).
    pub fn prefill(
        model: &Llama<B>,
        inputs: Vec<SeqInput>,
        extra: usize,
        hooks: &mut Hooks<'_>,
    ) -> Result<(Session<B>, Tensor<B, 3>)> {
        if inputs.is_empty() {
            return Err(ModelError::InvalidInput("empty batch".into()));
        }
        let t = inputs.iter().map(|s| s.tokens.len()).max().unwrap_or(0);
        if let Some(i) = inputs.iter().position(|s| s.tokens.is_empty()) {
            return Err(ModelError::InvalidInput(format!(
                "sequence {i} has no tokens"
            )));
        }
        if let Some(i) = inputs
            .iter()
            .position(|s| s.prompt_len > s.tokens.len() || s.prompt_len == 0)
        {
            return Err(ModelError::InvalidInput(format!(
                "sequence {i}: prompt length {} is outside 1..={}",
                inputs[i].prompt_len,
                inputs[i].tokens.len()
            )));
        }
        let cfg = model.config();
        let max_ctx = cfg.max_position_embeddings;
        if t + extra > max_ctx {
            return Err(ModelError::InvalidInput(format!(
                "{t} prompt columns + {extra} new tokens exceed the model's context of {max_ctx}"
            )));
        }
        let b = inputs.len();
        let pads: Vec<usize> = inputs.iter().map(|s| t - s.tokens.len()).collect();
        let raw_plans: Vec<Option<InterventionPlan>> =
            inputs.iter().map(|s| s.plan.clone()).collect();
        let plans = CompiledPlans::compile(&raw_plans, cfg)?;
        let mut tokens = Vec::with_capacity(b * t);
        // Padding columns repeat the sequence's first token: any valid id works since
        // padding keys are masked, and a real id keeps the embedding lookup in range.
        for s in &inputs {
            tokens.extend(std::iter::repeat_n(s.tokens[0], t - s.tokens.len()));
            tokens.extend_from_slice(&s.tokens);
        }
        let ctx = ForwardCtx {
            cols: t,
            first_pos: pads.iter().map(|&p| -(p as isize)).collect(),
            prompt_len: inputs.iter().map(|s| s.prompt_len).collect(),
        };
        let cache = KvCache::new(
            cfg.num_hidden_layers,
            b,
            cfg.num_key_value_heads,
            cfg.head_dim,
            t + extra,
            model.device(),
        );
        let mut session = Session {
            cache,
            pads,
            prompt_len: ctx.prompt_len.clone(),
            plans,
            raw_plans,
            kernels: model.kernels(),
        };
        let hidden = session.forward(model, &tokens, ctx, hooks)?;
        Ok((session, hidden))
    }

    /// Run one new token per sequence through the cache. Returns the residual stream
    /// after the last block, `[batch, 1, width]`.
    pub fn step(
        &mut self,
        model: &Llama<B>,
        tokens: &[u32],
        hooks: &mut Hooks<'_>,
    ) -> Result<Tensor<B, 3>> {
        let b = self.batch();
        if tokens.len() != b {
            return Err(ModelError::InvalidInput(format!(
                "{} tokens for a batch of {b} sequences",
                tokens.len()
            )));
        }
        let past = self.cache.len();
        if past + 1
            > model.config().max_position_embeddings + self.pads.iter().copied().max().unwrap_or(0)
        {
            return Err(ModelError::InvalidInput("context length exceeded".into()));
        }
        let ctx = ForwardCtx {
            cols: 1,
            first_pos: self
                .pads
                .iter()
                .map(|&p| past as isize - p as isize)
                .collect(),
            prompt_len: self.prompt_len.clone(),
        };
        self.forward(model, tokens, ctx, hooks)
    }

    /// One forward call of `model` over `tokens` at positions `ctx`, with this
    /// session's cache, plans and kernels and the caller's `hooks`.
    fn forward(
        &mut self,
        model: &Llama<B>,
        tokens: &[u32],
        ctx: ForwardCtx,
        hooks: &mut Hooks<'_>,
    ) -> Result<Tensor<B, 3>> {
        let Session {
            cache,
            pads,
            plans,
            raw_plans,
            kernels,
            ..
        } = self;
        let capture = match &hooks.capture {
            Some(spec) => Some((spec, &mut hooks.captures)),
            None => None,
        };
        let mut state = ForwardState {
            cache,
            pads,
            ctx,
            hooks: HookState {
                plans,
                raw_plans,
                capture,
                decider: match &mut hooks.decider {
                    Some(d) => Some(&mut **d),
                    None => None,
                },
                capture_rows: Vec::new(),
            },
            kernels: *kernels,
        };
        model.forward(tokens, &mut state)
    }
}
