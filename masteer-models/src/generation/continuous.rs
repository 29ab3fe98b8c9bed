//! Continuous batching: sequences join a running batch as they arrive and leave it
//! when they stop, each with its own plan (or adaptive decision), sampler and limits.
//!
//! A new sequence is prefilled alone (its decider, if any, runs in that pass), then
//! its cache is stacked under the running batch's ([`Session::join`]); every step
//! decodes one token for all sequences; finished ones are dropped
//! ([`Session::retain`]). Attention masks each sequence's padding, and positions are
//! kept per sequence, so a sequence's tokens are those it gets run alone.

use burn::tensor::backend::Backend;

use super::generate::{last_logits, GenerateOptions, Generation, StopReason};
use super::sampling::Sampler;
use super::session::{Hooks, SeqInput, Session};
use crate::error::{ModelError, Result};
use crate::hooks::Decider;
use crate::model::Llama;

/// Something that happened to one sequence during [`ContinuousBatch::admit`] or
/// [`ContinuousBatch::step`].
#[derive(Clone, Debug, PartialEq)]
pub enum BatchEvent {
    /// Sequence `id` produced `token`.
    Token {
        /// The caller's id of the sequence.
        id: u64,
        /// The new token.
        token: u32,
    },
    /// Sequence `id` stopped; it has left the batch.
    Finished {
        /// The caller's id of the sequence.
        id: u64,
        /// Everything it generated and why it stopped.
        generation: Generation,
    },
}

struct Slot {
    id: u64,
    sampler: Sampler,
    stop_ids: Vec<u32>,
    max_new_tokens: usize,
    tokens: Vec<u32>,
}

impl Slot {
    /// Sample from `logits`, push the token and report it; `Some(stop)` when done.
    fn take(&mut self, logits: &[f32], events: &mut Vec<BatchEvent>) -> Option<StopReason> {
        let token = self.sampler.sample(logits);
        self.tokens.push(token);
        events.push(BatchEvent::Token { id: self.id, token });
        if self.stop_ids.contains(&token) {
            Some(StopReason::StopToken)
        } else if self.tokens.len() >= self.max_new_tokens {
            Some(StopReason::MaxTokens)
        } else {
            None
        }
    }

    fn finish(self, stop: StopReason) -> BatchEvent {
        BatchEvent::Finished {
            id: self.id,
            generation: Generation {
                tokens: self.tokens,
                stop,
            },
        }
    }
}

/// A batch of sequences being decoded, open to new ones between steps.
pub struct ContinuousBatch<B: Backend> {
    session: Option<Session<B>>,
    slots: Vec<Slot>,
    max_batch: usize,
}

impl<B: Backend> ContinuousBatch<B> {
    /// An empty batch that holds at most `max_batch` sequences at once.
    pub fn new(max_batch: usize) -> Self {
        ContinuousBatch {
            session: None,
            slots: Vec::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// Sequences being decoded.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no sequence is being decoded.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether another sequence may join now.
    pub fn has_room(&self) -> bool {
        self.slots.len() < self.max_batch
    }

    /// Ids of the sequences being decoded.
    pub fn ids(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// Prefill `input` alone (with `decider`, if any, choosing its plan), sample its
    /// first token and let it join the batch. `default_stop_ids` apply when `opts`
    /// names none. Returns its first token (and `Finished` if it already stopped).
    pub fn admit(
        &mut self,
        model: &Llama<B>,
        id: u64,
        input: SeqInput,
        opts: &GenerateOptions,
        default_stop_ids: &[u32],
        decider: Option<&mut dyn Decider>,
    ) -> Result<Vec<BatchEvent>> {
        if !self.has_room() {
            return Err(ModelError::InvalidInput(format!(
                "the batch is full ({} sequences)",
                self.max_batch
            )));
        }
        if self.slots.iter().any(|s| s.id == id) {
            return Err(ModelError::InvalidInput(format!(
                "sequence id {id} is already in the batch"
            )));
        }
        let mut events = Vec::new();
        let mut slot = Slot {
            id,
            sampler: Sampler::new(opts.temperature, opts.top_k, opts.top_p, opts.seed),
            stop_ids: opts
                .stop_ids
                .clone()
                .unwrap_or_else(|| default_stop_ids.to_vec()),
            max_new_tokens: opts.max_new_tokens,
            tokens: Vec::new(),
        };
        if opts.max_new_tokens == 0 {
            events.push(slot.finish(StopReason::MaxTokens));
            return Ok(events);
        }
        let mut hooks = Hooks::none();
        if let Some(d) = decider {
            hooks = hooks.with_decider(d);
        }
        let (session, hidden) =
            Session::prefill(model, vec![input], opts.max_new_tokens, &mut hooks)?;
        let logits = last_logits(model, hidden)?;
        if let Some(stop) = slot.take(&logits[0], &mut events) {
            events.push(slot.finish(stop));
            return Ok(events);
        }
        let reserve = opts.max_new_tokens;
        match &mut self.session {
            Some(running) => running.join(session, reserve),
            None => self.session = Some(session),
        }
        self.slots.push(slot);
        Ok(events)
    }

    /// Decode one token for every sequence. Finished sequences leave the batch.
    pub fn step(&mut self, model: &Llama<B>) -> Result<Vec<BatchEvent>> {
        let Some(session) = &mut self.session else {
            return Ok(Vec::new());
        };
        let next: Vec<u32> = self
            .slots
            .iter()
            .map(|s| *s.tokens.last().unwrap_or(&0))
            .collect();
        let hidden = session.step(model, &next, &mut Hooks::none())?;
        let logits = last_logits(model, hidden)?;
        let mut events = Vec::new();
        let mut stops = Vec::with_capacity(self.slots.len());
        for (slot, row) in self.slots.iter_mut().zip(&logits) {
            stops.push(slot.take(row, &mut events));
        }
        if stops.iter().any(Option::is_some) {
            let keep: Vec<usize> = (0..stops.len()).filter(|&i| stops[i].is_none()).collect();
            let slots = std::mem::take(&mut self.slots);
            for (slot, stop) in slots.into_iter().zip(stops) {
                match stop {
                    Some(reason) => events.push(slot.finish(reason)),
                    None => self.slots.push(slot),
                }
            }
            self.keep_rows(&keep)?;
        }
        Ok(events)
    }

    /// Drop sequence `id` (e.g. its client went away). Returns whether it was there.
    pub fn cancel(&mut self, id: u64) -> Result<bool> {
        let Some(pos) = self.slots.iter().position(|s| s.id == id) else {
            return Ok(false);
        };
        self.slots.remove(pos);
        let keep: Vec<usize> = (0..=self.slots.len()).filter(|&i| i != pos).collect();
        self.keep_rows(&keep)?;
        Ok(true)
    }

    fn keep_rows(&mut self, keep: &[usize]) -> Result<()> {
        if keep.is_empty() {
            self.session = None;
            return Ok(());
        }
        match &mut self.session {
            Some(s) => s.retain(keep),
            None => Ok(()),
        }
    }
}
